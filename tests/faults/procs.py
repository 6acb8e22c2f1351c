"""Real ``vlash serve`` / ``vlash control`` processes on loopback for fault and security tests.

:class:`Proc` starts one process, reads its ``STATUS``/``SUMMARY`` lines in a thread and keeps
its stderr in a file; :class:`Procs` (the ``procs`` fixture) kills whatever is still running at
teardown, so no test leaves an orphan. Waiting is by condition with a generous timeout (a
safety net, never an assertion about durations).
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
VLASH = [sys.executable, "-m", "vlash.cli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def robot(robot_id: str, driver: dict | None = None, **over: Any) -> dict[str, Any]:
    """A robot entry of a launch file (the toy driver unless ``driver`` is given)."""
    entry = {
        "id": robot_id,
        "driver": driver or {"factory": "tests.runtime.toy_driver:ToyDriver"},
        "chunk_size": 20,
        "execution_horizon": 10,
        "request_timeout_s": 0.5,
    }
    entry.update(over)
    return entry


def write_launch(folder: Path, name: str = "launch", robots: list[dict] | None = None, **over: Any) -> Path:
    """A launch file on a fixed free loopback port (so a restarted server binds the same one)."""
    data: dict[str, Any] = {
        "name": name,
        "fps": 30,
        "mode": "vlash",
        "endpoint": f"tcp://127.0.0.1:{free_port()}",
        "inference": {"policy": {"factory": "tests.core.toy:StampPolicy", "chunk_size": 20}, "latency": 30},
        "robots": robots or [robot("arm")],
    }
    data.update(over)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def wait_until(cond: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``cond`` until truthy; fail the test (not a timing assertion: a hang guard) otherwise."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Proc:
    """One child process; stdout ``STATUS``/``SUMMARY`` lines parsed, stderr to ``log_path``."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in wait()/kill()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env)
        self.statuses: list[dict[str, Any]] = []
        self.summary: dict[str, Any] | None = None
        self.other: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("STATUS "):
                self.statuses.append(json.loads(line[7:]))
            elif line.startswith("SUMMARY "):
                self.summary = json.loads(line[8:])
            else:
                self.other.append(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def status(self) -> dict[str, Any]:
        return self.statuses[-1] if self.statuses else {"ticks": 0, "chunks": 0}

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, sig: int) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float = 20.0) -> int:
        try:
            rc = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.kill()
        self._reader.join(timeout=5)
        self._log.close()
        return rc

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
        self.send(sig)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # also ends a SIGSTOPped process
            self.proc.wait()
        if not self._log.closed:
            self._log.close()

    def stderr(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def rss_kb(self) -> int:
        """Resident set size from /proc (kB)."""
        return rss_kb(self.proc.pid)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Procs:
    """Starts serve/control processes and kills every one still alive at :meth:`close`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[Proc] = []
        self._n = 0

    def start(self, argv: list[str], name: str) -> Proc:
        self._n += 1
        proc = Proc(argv, self.folder / f"{self._n:02d}-{name}.log")
        self.started.append(proc)
        return proc

    def serve(self, launch: Path, *extra: str) -> Proc:
        return self.start([*VLASH, "serve", str(launch), *extra], "serve")

    def control(self, launch: Path, robot_id: str, out: Path, duration: float | None, *extra: str) -> Proc:
        argv = [*VLASH, "control", str(launch), "--robot", robot_id, "--out", str(out), "--status", "json"]
        if duration is not None:
            argv += ["--duration", str(duration)]
        return self.start([*argv, *extra], f"control-{robot_id}")

    def close(self) -> None:
        for proc in self.started:
            proc.kill()


_COUNTERS = re.compile(r"counters (\{.*?\}) bus (\{.*\})")


def counters_in_log(text: str) -> tuple[dict[str, int], dict[str, int]]:
    """``(server counters, bus counters)`` from the final line a stopped ``vlash serve`` logs."""
    for line in reversed(text.splitlines()):
        match = _COUNTERS.search(line)
        if match:
            return ast.literal_eval(match.group(1)), ast.literal_eval(match.group(2))
    raise AssertionError(f"no counters line in the serve log:\n{text[-2000:]}")


def serve_counters(proc: Proc) -> tuple[dict[str, int], dict[str, int]]:
    return counters_in_log(proc.stderr())


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSON-lines file, each of which must parse (no torn or garbage lines)."""
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"{path} ends in a partial line"
    return [json.loads(line) for line in text.splitlines()]


def check_tick_log(rows: list[dict[str, Any]]) -> None:
    """The per-tick log: strictly increasing steps (nothing executed twice), finite actions."""
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)), "steps repeat or go backwards"
    for r in rows:
        assert r["action"] is not None and all(a is not None for a in r["action"]), r
