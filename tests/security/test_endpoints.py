"""Off-host endpoints need CurveZMQ keys: every command refuses to start without them, clearly."""

from __future__ import annotations

import subprocess

import pytest

from tests.faults.procs import ROOT, VLASH, free_port, write_launch


def run_vlash(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*VLASH, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "{launch}", "--endpoint", "tcp://0.0.0.0:{port}"],
        ["serve", "{launch}", "--endpoint", "tcp://192.0.2.1:{port}"],
        ["control", "{launch}", "--endpoint", "tcp://192.0.2.1:{port}", "--out", "{out}", "--duration", "1"],
        ["launch", "{far}", "--duration", "1", "--out", "{out}"],
    ],
)
def test_non_loopback_endpoint_without_keys_refuses_to_start(tmp_path, command):
    port = free_port()
    launch = write_launch(tmp_path)
    far = write_launch(tmp_path, name="far", endpoint=f"tcp://10.20.30.40:{port}")
    argv = [a.format(launch=launch, far=far, port=port, out=tmp_path / "out") for a in command]
    proc = run_vlash(*argv)
    assert proc.returncode == 2, proc.stderr
    assert "refusing non-loopback endpoint" in proc.stderr and "vlash keys" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()  # refused before anything ran: no robot connected, no run folder


def test_unreadable_key_file_is_a_clear_error(tmp_path):
    curve = {k: str(tmp_path / "missing.key_secret") for k in ("server_secret", "server_public", "client_secret")}
    launch = write_launch(tmp_path, curve=curve)
    for command in (["serve", str(launch)], ["control", str(launch), "--out", str(tmp_path / "out")]):
        proc = run_vlash(*command)
        assert proc.returncode == 2 and "cannot read a CurveZMQ certificate" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_serve_warns_when_keys_come_without_an_allow_list(tmp_path):
    from vlash.curve import save_keypair

    server_public, server_secret = save_keypair(tmp_path / "keys", "server")
    _, client_secret = save_keypair(tmp_path / "keys", "robot")
    curve = {"server_secret": str(server_secret), "server_public": str(server_public), "client_secret": str(client_secret)}
    proc = run_vlash("serve", str(write_launch(tmp_path, curve=curve)), "--duration", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert "warning: curve keys without allowed_clients or robot_keys" in proc.stderr
