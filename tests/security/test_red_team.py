"""Red team: each attack class against real ``vlash serve`` / ``vlash control`` / ``vlash launch``
processes on 127.0.0.1, judged by what the robot actually executed.

The policy stamps each action with the step of the observation it answered (``StampPolicy``:
``action[0] = obs_step * 1000 + row``), so the robot's tick log says which request every executed
action came from. Attacks are bounded in count and time.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
import zmq

from tests.faults.procs import ROOT, VLASH, read_lines, robot, serve_counters, wait_until, write_launch
from tests.security.test_decode_cost import scan_bomb
from vlash.curve import generate_keypair
from vlash.messages import ActionChunk, Error, Hello, Observation, encode

FORGED_STEP = 5_000  # forged observations claim steps the robot never reaches in these runs


def executed_requests(run: Path) -> tuple[set[int], set[int], list[dict]]:
    """(obs steps of the chunks the robot took, obs steps its executed actions came from, chunk log)."""
    chunks = read_lines(run / "chunks.jsonl")
    ticks = read_lines(run / "ticks.jsonl")
    taken = {c["obs_step"] for c in chunks}
    executed = {int(t["action"][0]) // 1000 for t in ticks if t["chunk"] >= 0}
    return taken, executed, chunks


def attacker(endpoint: str, ctx: zmq.Context) -> zmq.Socket:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.connect(endpoint)
    return sock


def forged_observation(seq: int, images: dict | None = None) -> bytes:
    state = np.full(2, 7.0, np.float32)
    return encode(Observation("arm", seq, FORGED_STEP + seq, 0.0, state, images or {}, plan_start_step=FORGED_STEP))


def test_strangers_cannot_steer_switch_crowd_out_or_freeze_a_served_robot(tmp_path, procs):
    launch = write_launch(tmp_path, robots=[robot("arm")])
    endpoint = yaml.safe_load(launch.read_text())["endpoint"]
    server = procs.serve(launch)
    control = procs.control(launch, "arm", tmp_path / "arm", None)
    wait_until(lambda: control.status["chunks"] >= 3, what="the robot served")
    before = control.status
    ctx = zmq.Context()
    sock = attacker(endpoint, ctx)
    sent = {"hello": 0, "observation": 0, "bomb": 0}
    bomb = scan_bomb()
    try:
        for i in range(40):  # bounded: 40 rounds of a mode switch, a forged stream and decode bombs
            sock.send(encode(Hello("arm", 0, {"joint_names": ["a", "b"], "action_names": ["a", "b"]}, 30.0, "sync")))
            sent["hello"] += 1
            for j in range(50):
                sock.send(forged_observation(i * 50 + j + 1))
            sent["observation"] += 50
            for _ in range(5):
                sock.send(forged_bomb({"f": bomb}))
            sent["bomb"] += 5
            time.sleep(0.05)
        wait_until(lambda: control.status["chunks"] >= before["chunks"] + 5, what="the robot served after the attack")
    finally:
        sock.close()
        ctx.term()
    assert control.stop() == 0 and server.stop() == 0
    summary = control.summary
    taken, executed, chunks = executed_requests(tmp_path / "arm")
    # steer: every executed action answers an observation of the robot's own
    assert executed <= taken and max(taken) < FORGED_STEP
    assert all(c["mode"] == "vlash" for c in chunks)  # switch: its session kept its mode
    counters = summary["counters"]
    assert not any(k.startswith("chunk_rejected") for k in counters), counters  # nothing forged even reached it
    served, bus = serve_counters(server)
    assert bus["rejected_id_taken"] >= sent["hello"] + sent["observation"] - 5  # the few dropped by a full queue aside
    assert bus["rejected_codec"] == sent["bomb"]  # every bomb refused from its header
    assert served.get("hellos_refused", 0) == 0  # never got as far as the server's handshake
    # crowding out / freezing: the robot kept being served on time
    assert summary["stall_ticks"] <= 10 and summary["missed_ticks"] <= 10, summary
    assert summary["ticks"] >= before["ticks"]


def forged_bomb(images: dict[str, bytes]) -> bytes:
    import msgpack

    tree = msgpack.unpackb(encode(Observation("arm", 1, 1, 0.0, np.zeros(2, np.float32))))
    tree["body"]["images"] = {k: {"codec": "jpeg", "dtype": "uint8", "shape": [256, 256, 3], "data": v}
                              for k, v in images.items()}
    return msgpack.packb(tree)


def keyed_launch(tmp_path: Path) -> Path:
    """A launch file for serve + control on loopback with this launch's own CurveZMQ keys."""
    from vlash.supervisor import ephemeral_keys

    launch = write_launch(tmp_path, robots=[robot("arm")])
    data = yaml.safe_load(launch.read_text())
    data["curve"] = ephemeral_keys(tmp_path / "keys", ["arm"])
    launch.write_text(yaml.safe_dump(data))
    return launch


@pytest.mark.parametrize("squatter_keys", ["none", "its_own"])
def test_a_port_squatter_after_the_server_died_gets_nothing_executed(tmp_path, procs, squatter_keys):
    launch = keyed_launch(tmp_path)
    endpoint = yaml.safe_load(launch.read_text())["endpoint"]
    server = procs.serve(launch)
    control = procs.control(launch, "arm", tmp_path / "arm", None)
    wait_until(lambda: control.status["chunks"] >= 3, what="the robot served")
    server.send(signal.SIGKILL)
    server.wait()
    ctx = zmq.Context()
    squatter = ctx.socket(zmq.ROUTER)
    squatter.setsockopt(zmq.LINGER, 0)
    if squatter_keys == "its_own":
        keys = generate_keypair()
        squatter.curve_secretkey, squatter.curve_publickey, squatter.curve_server = keys.secret, keys.public, True
    squatter.bind(endpoint)  # the port is free again: take it
    heard = 0
    try:
        held = control.status["ticks"]
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:  # answer anything that arrives with a 2^62-step jump chunk
            if squatter.poll(100):
                identity, *_ = squatter.recv_multipart()
                heard += 1
                for seq in range(1, 40):
                    jump = np.full((20, 2), 9e5, np.float32)
                    squatter.send_multipart([identity, encode(ActionChunk("arm", seq, seq, seq, 0, 2**62, jump))])
        wait_until(lambda: control.status["ticks"] > held + 30, what="the robot ticking while squatted")
    finally:
        squatter.close()
        ctx.term()
    assert control.stop() == 0
    taken, executed, _ = executed_requests(tmp_path / "arm")
    assert executed <= taken
    assert heard == 0  # the CurveZMQ handshake never completed: no message either way
    assert not any(k.startswith("chunk_rejected") for k in control.summary["counters"])
    assert control.summary["counters"]["link_lost"] >= 1  # and the robot knew its server was gone


def test_vlash_launch_restarts_a_dead_inference_process_and_then_exits_non_zero(tmp_path):
    launch = write_launch(tmp_path, robots=[robot("arm")])
    run = tmp_path / "run"
    proc = subprocess.Popen([*VLASH, "launch", str(launch), "--duration", "12", "--out", str(run), "--quiet"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def serve_pid() -> int | None:
            out = subprocess.run(["pgrep", "-f", f"serve {run}/launch.yaml"], capture_output=True, text=True).stdout
            return int(out.split()[0]) if out.split() else None

        def served() -> int:
            chunks = run / "arm" / "chunks.jsonl"
            return len(chunks.read_text().splitlines()) if chunks.exists() else 0

        first = wait_until(serve_pid, what="the inference process")
        wait_until(lambda: served() >= 3, what="chunks before the kill")
        subprocess.run(["kill", "-9", str(first)], check=True)
        wait_until(lambda: (serve_pid() or first) != first, what="a restarted inference process")
        after_restart = served()
        wait_until(lambda: served() > after_restart + 3, timeout=30, what="chunks after the restart")
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    assert "inference process failed 1 time(s) and was restarted" in err
    summary = yaml.safe_load((run / "summary.json").read_text())
    assert summary["server_restarts"] == 1 and summary["robots"]["arm"]["exit_code"] == 0
    assert (run / "keys" / "server.key_secret").stat().st_mode & 0o077 == 0  # this launch's secret, private


def test_a_chunk_from_the_right_server_for_a_request_never_made_is_dropped(tmp_path, procs):
    """The robot's side alone: a server answering with chunks nobody asked for (e.g. a bug)."""
    ctx = zmq.Context()
    fake = ctx.socket(zmq.ROUTER)
    fake.setsockopt(zmq.LINGER, 0)
    port = fake.bind_to_random_port("tcp://127.0.0.1")
    launch = write_launch(tmp_path, robots=[robot("arm")], endpoint=f"tcp://127.0.0.1:{port}")
    control = procs.control(launch, "arm", tmp_path / "arm", None, "--connect-timeout", "1")
    try:
        wait_until(lambda: fake.poll(100), what="the robot's Hello")
        identity, _ = fake.recv_multipart()
        deadline = time.monotonic() + 2.0
        n = 0
        while time.monotonic() < deadline:
            for offset in (0, 5, 2**62):
                n += 1
                bad = ActionChunk("arm", n, n, 10_000 + n, 10_000 + n, offset, np.full((20, 2), 9e5, np.float32))
                fake.send_multipart([identity, encode(bad)])
            fake.send_multipart([identity, encode(Error("arm", n, "policy_error", "nope"))])
            time.sleep(0.02)
        wait_until(lambda: control.status["ticks"] > 10, what="ticks")
    finally:
        fake.close()
        ctx.term()
    assert control.stop() == 0
    counters = control.summary["counters"]
    assert counters["chunk_rejected_unrequested"] >= 1 and control.summary["chunks"] == 0
    ticks = read_lines(tmp_path / "arm" / "ticks.jsonl")
    assert all(t["chunk"] == -1 and max(abs(a) for a in t["action"]) < 1.0 for t in ticks)
