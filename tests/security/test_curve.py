"""CurveZMQ end to end through real ``vlash serve`` / ``vlash control`` processes.

Keys come from ``vlash keys``; the server binds a non-loopback (wildcard) address, which it may
only do with keys, and admits the robot key on its allow-list only. A control process with a key
that is not on the list, one with the wrong server key and a plain (unencrypted) client all get
nothing in (the server never hears of them) and nothing out (they receive no byte of data).
"""

from __future__ import annotations

import os
import stat
import subprocess
import time

import zmq

from tests.faults.procs import ROOT, VLASH, free_port, robot, serve_counters, wait_until, write_launch
from vlash.messages import Hello, encode


def make_keys(folder, *names: str) -> None:
    for name in names:
        proc = subprocess.run([*VLASH, "keys", "--out", str(folder), "--name", name], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert stat.S_IMODE(os.stat(folder / f"{name}.key_secret").st_mode) == 0o600
    again = subprocess.run([*VLASH, "keys", "--out", str(folder), "--name", names[0]], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "exists" in again.stderr  # a secret key is never silently replaced


def curve_launch(tmp_path, name: str, client: str, port: int, server_public: str = "server"):
    keys = tmp_path / "keys"
    return write_launch(
        tmp_path,
        name=name,
        endpoint=f"tcp://127.0.0.1:{port}",
        robots=[robot(client)],
        curve={
            "server_secret": str(keys / "server.key_secret"),
            "server_public": str(keys / f"{server_public}.key"),
            "client_secret": str(keys / f"{client}.key_secret"),
            "allowed_clients": [str(keys / "robot.key")],
        },
    )


def test_curve_end_to_end_and_strangers_get_nothing(tmp_path, procs):
    make_keys(tmp_path / "keys", "server", "robot", "intruder")
    port = free_port()
    good = curve_launch(tmp_path, "good", "robot", port)
    intruder = curve_launch(tmp_path, "intruder", "intruder", port)  # a valid key pair, not on the allow-list
    wrong_server = curve_launch(tmp_path, "wrong_server", "robot", port, server_public="intruder")
    server = procs.serve(good, "--endpoint", f"tcp://0.0.0.0:{port}")  # off-host bind: allowed with keys
    control = procs.control(good, "robot", tmp_path / "robot", None)
    strangers = [
        procs.control(launch, "robot" if launch is wrong_server else "intruder", tmp_path / launch.stem, 1.5,
                      "--connect-timeout", "1")
        for launch in (intruder, wrong_server)
    ]
    # a plain ZeroMQ client that knows the protocol but has no keys at all
    ctx = zmq.Context()
    plain = ctx.socket(zmq.DEALER)
    plain.setsockopt(zmq.LINGER, 0)
    plain.connect(f"tcp://127.0.0.1:{port}")
    try:
        plain.send(encode(Hello("plain", 0)), zmq.NOBLOCK)
        wait_until(lambda: control.status["chunks"] >= 3, what="the robot served over CurveZMQ")
        for stranger in strangers:
            assert stranger.wait(30) == 0, stranger.stderr()
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:  # a count over a window: nothing may arrive
            assert plain.poll(50) == 0, "a client without keys received data"
    finally:
        plain.close()
        ctx.term()
    assert control.stop() == 0 and server.stop() == 0
    assert control.summary["chunks"] >= 3 and control.summary["counters"].get("got_config") == 1
    for stranger in strangers:
        summary = stranger.summary
        assert summary["chunks"] == 0 and "got_config" not in summary["counters"]
        assert summary["counters"]["bus_received"] == 0  # nothing out: not even a heartbeat
    _, bus = serve_counters(server)
    assert bus["robots_joined"] == 1  # nothing in: only the robot was ever heard
    assert bus["rejected"] == 0  # strangers' bytes never reached the decoder
    assert "intruder" not in server.stderr() and "plain" not in server.stderr()
