"""A hostile peer floods the inference endpoint while a robot is being served.

Malformed bytes, oversized, wrong-version, unknown-kind, multipart, wrong-direction, NaN and
never-introduced messages: every one is rejected and counted by reason, the server keeps
running and the robot keeps getting chunks throughout.
"""

from __future__ import annotations

import random
import signal

import msgpack
import numpy as np
import zmq

from tests.faults.procs import read_lines, serve_counters, wait_until, write_launch
from vlash.messages import ActionChunk, Config, Hello, Observation, decode, encode
from vlash.wire_fields import Limits


def _valid_obs(robot_id: str) -> Observation:
    return Observation(robot_id=robot_id, seq=1, step=1, wall_time=1.0, state=np.zeros(2, np.float32))


def hostile_messages(rng: random.Random) -> list[tuple[str, list[bytes]]]:
    """One of each kind of bad message, as ``(expected reason, frames)``."""
    good = encode(_valid_obs("ghost"))
    envelope = msgpack.unpackb(good)
    wrong_version = msgpack.packb({**envelope, "v": 2})
    unknown_kind = msgpack.packb({**envelope, "kind": "exec"})
    nan_state = bytearray(good)
    at = good.index(np.zeros(2, np.float32).tobytes())  # the state's data
    nan_state[at : at + 4] = np.float32(np.nan).tobytes()
    chunk = encode(ActionChunk("arm", 1, 1, 1, 1, 1, np.zeros((2, 2), np.float32)))
    return [
        ("malformed", [bytes([0xC1]) + rng.randbytes(rng.randrange(0, 200))]),  # 0xc1: never valid msgpack
        ("truncated", [good[: rng.randrange(1, len(good))]]),
        ("too_large", [b"\x00" * (Limits().max_bytes + 1)]),
        ("version", [wrong_version]),
        ("kind", [unknown_kind]),
        ("frames", [good, good]),
        ("direction", [chunk]),  # an action chunk sent *to* the server
        ("nonfinite", [bytes(nan_state)]),
        ("unknown_robot", [good]),  # valid, but robot "ghost" never said Hello
    ]


def test_flood_of_bad_messages_is_rejected_while_the_robot_is_served(tmp_path, procs):
    launch = write_launch(tmp_path)
    server = procs.serve(launch)
    control = procs.control(launch, "arm", tmp_path / "arm", None)
    wait_until(lambda: control.status["chunks"] >= 1, what="first chunk")
    endpoint = launch.read_text().split("endpoint: ")[1].split()[0]

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.SNDTIMEO, 5000)
    sock.connect(endpoint)
    rng = random.Random(0)
    sent: dict[str, int] = {}
    chunks_before = control.status["chunks"]
    try:
        rounds = 0
        # flood until the robot has been served several more chunks (or enough rounds went by)
        while rounds < 300 or control.status["chunks"] < chunks_before + 3:
            for reason, frames in hostile_messages(rng):
                if reason == "too_large" and rounds % 50:
                    continue  # 16 MB each: a few are enough
                sock.send_multipart(frames)
                sent[reason] = sent.get(reason, 0) + 1
            rounds += 1
            assert rounds < 20_000 and control.alive() and server.alive()
        # barrier: the server handles one connection's messages in order, so once our Hello is
        # answered, every message we flooded has been received and counted
        sock.send(encode(Hello("flooder", 0)))
        sock.setsockopt(zmq.RCVTIMEO, 20_000)
        while not isinstance(decode(sock.recv()), Config):
            pass
    finally:
        sock.close(linger=0)
        ctx.term()
    during = control.status["chunks"]
    wait_until(lambda: control.status["chunks"] >= during + 1, what="chunks after the flood")
    assert control.stop() == 0 and server.stop(signal.SIGINT) == 0
    assert control.summary["chunks"] >= chunks_before + 3
    assert control.summary["counters"].get("bus_rejected", 0) == 0  # the robot saw none of it
    assert len(read_lines(tmp_path / "arm" / "ticks.jsonl")) == control.summary["ticks"]
    _, bus = serve_counters(server)
    for reason, n in sent.items():
        assert bus.get(f"rejected_{reason}", 0) == n, (reason, n, bus)
    assert bus["rejected"] == sum(sent.values())
