"""``vlash control`` disconnects its driver on every way out.

A counting driver (``tests.config.parts:CountingDriver``, named in the launch file like any
driver) writes each connect and disconnect to a file, so a real control process can be checked.
"""

import signal
import subprocess
import threading

import pytest
import zmq

from tests.config.parts import events
from tests.faults.procs import ROOT, VLASH, Proc, robot, wait_until, write_launch
from vlash.messages import Config, Hello, decode, encode


def counting_launch(tmp_path, **driver_options):
    record = tmp_path / "driver.txt"
    driver = {"factory": "tests.config.parts:CountingDriver", "record": str(record), **driver_options}
    return write_launch(tmp_path, robots=[robot("arm", driver)]), record


def control(launch, out, *extra: str) -> subprocess.CompletedProcess:
    argv = [*VLASH, "control", str(launch), "--out", str(out), "--status", "none", *extra]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture
def refusing_server():
    """A ZeroMQ ROUTER on loopback that answers every Hello with a refusing Config."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            if sock.poll(50):
                identity, payload = sock.recv_multipart()
                msg = decode(payload)
                if isinstance(msg, Hello):
                    refusal = Config(msg.robot_id, 1, accepted=False, policy={}, reason="refused by the test")
                    sock.send_multipart([identity, encode(refusal)])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{port}"
    stop.set()
    thread.join(5)
    sock.close(0)
    ctx.term()


def test_bad_endpoint_is_refused_before_the_driver_connects(tmp_path):
    launch, record = counting_launch(tmp_path)
    result = control(launch, tmp_path / "run", "--endpoint", "tcp://127.0.0.1:not-a-port")
    assert result.returncode == 2 and "cannot connect to tcp://127.0.0.1:not-a-port" in result.stderr
    assert events(record) == []


def test_refused_hello_disconnects_the_driver(tmp_path, refusing_server):
    launch, record = counting_launch(tmp_path)
    result = control(launch, tmp_path / "run", "--endpoint", refusing_server, "--connect-timeout", "60")
    assert result.returncode != 0 and "refused by the test" in result.stderr
    assert events(record) == ["connect", "disconnect"]


def test_exception_in_the_loop_disconnects_the_driver(tmp_path):
    launch, record = counting_launch(tmp_path, fail_after_reads=5)
    result = control(launch, tmp_path / "run", "--connect-timeout", "0.1", "--duration", "60")
    assert result.returncode != 0 and "fails on purpose after 5 reads" in result.stderr
    assert events(record) == ["connect", "disconnect"]


def test_sigint_disconnects_the_driver(tmp_path):
    launch, record = counting_launch(tmp_path)
    proc = Proc([*VLASH, "control", str(launch), "--out", str(tmp_path / "run"), "--status", "none",
                 "--connect-timeout", "60"], tmp_path / "control.log")
    try:
        wait_until(lambda: events(record) == ["connect"], what="the driver to connect")
        assert proc.stop(signal.SIGINT) == 0
    finally:
        proc.kill()
    assert events(record) == ["connect", "disconnect"]


def test_unusable_run_folder_is_refused_before_the_driver_connects(tmp_path):
    launch, record = counting_launch(tmp_path)
    (tmp_path / "a_file").write_text("not a folder")
    result = control(launch, tmp_path / "a_file", "--connect-timeout", "0.1", "--duration", "1")
    assert result.returncode != 0
    assert events(record) == []
