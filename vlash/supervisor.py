"""The process supervisor: start a launch file's inference process and robot control processes.

It starts the processes, prints one live status line, forwards Ctrl-C, stops everything (no
orphans) and writes one run folder: the resolved launch file, each process's log, each robot's
ticks/chunks/summary and ``summary.json``. A robot's process that fails fails the launch with that
process's own last words and a non-zero exit. A dead inference process is restarted (up to
``MAX_RESTARTS`` times, with backoff) while the robots hold; a launch that needed a restart still
exits non-zero.

Without ``curve`` keys in the file, the launch makes ephemeral CurveZMQ keys for its own processes
(in the run folder, secrets 0600): on loopback too, a robot then takes chunks only from the server
this launch started, and the server takes robots only from this launch.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from vlash.launchfile import LaunchSpec
from vlash.runlog import read_jsonl, write_json


def interrupt(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """Stop a child as Ctrl-C would (SIGINT, so it flushes its logs), killing it after ``timeout``; its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class LaunchFailed(RuntimeError):
    """A process of the launch failed; the message is its own last words and where its log is."""


MAX_RESTARTS = 5  # of the inference process, per launch
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)


def last_words(path: Path) -> str:
    """A failed process's own account: the last line of its log (a one-line error or a traceback's last line)."""
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    lines = [line.strip() for line in text if line.strip()]
    return lines[-1] if lines else "(nothing in its log)"


def ephemeral_keys(folder: Path, robot_ids: list[str]) -> dict[str, Any]:
    """Fresh CurveZMQ keys for this launch's processes, as a launch file's ``curve`` section."""
    from vlash.curve import save_keypair

    server_public, server_secret = save_keypair(folder, "server")
    client_public, client_secret = save_keypair(folder, "robots")
    return {
        "server_secret": str(server_secret),
        "server_public": str(server_public),
        "client_secret": str(client_secret),
        "allowed_clients": [str(client_public)],
        "robot_keys": {robot: [str(client_public)] for robot in robot_ids},
    }


class Child:
    """One started process whose stdout lines (STATUS / SUMMARY) are read by a thread."""

    def __init__(self, name: str, argv: list[str], log_path: Path, append: bool = False):
        self.name, self.argv = name, argv
        self.log = open(log_path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1)
        self.log_path = log_path
        self.status: dict[str, Any] = {}
        self.summary: dict[str, Any] | None = None
        self.reported = False
        self.stopped = False  # True once stop() had to end it (it had not exited by itself)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("STATUS "):
                self.status = json.loads(line[7:])
            elif line.startswith("SUMMARY "):
                self.summary = json.loads(line[8:])
            else:
                self.log.write(line)

    def stop(self, timeout: float = 10.0) -> int:
        self.stopped = self.stopped or self.proc.poll() is None
        interrupt(self.proc, timeout)
        self._reader.join(timeout=2)
        self.log.close()
        return self.proc.returncode

    def failed(self, interrupted: bool) -> bool:
        """Exited non-zero, other than by the Ctrl-C that stopped it (ours or the user's)."""
        code = self.proc.returncode
        return code != 0 and not ((self.stopped or interrupted) and code in (130, -signal.SIGINT))

    def failure(self, what: str) -> str:
        return f"{what} exited with code {self.proc.returncode}: {last_words(self.log_path)}\n(log: {self.log_path})"


def start_processes(spec: LaunchSpec, resolved: Path, out: Path, duration: float | None,
                    control_args: dict[str, list[str]] | None = None) -> tuple[Child, list[Child]]:
    vlash = [sys.executable, "-m", "vlash.cli"]
    server = Child("serve", vlash + ["serve", str(resolved)], out / "serve.log")
    robots = []
    for robot in spec.robots:
        argv = vlash + ["control", str(resolved), "--robot", robot.id, "--out", str(out / robot.id), "--status", "json"]
        if duration is not None:
            argv += ["--duration", str(duration)]
        argv += (control_args or {}).get(robot.id, [])
        robots.append(Child(robot.id, argv, out / f"{robot.id}.log"))
    return server, robots


def status_line(robots: list[Child], elapsed: float, server: str = "up") -> str:
    parts = [f"server: {server}"]
    for child in robots:
        s = child.status
        if not s:
            parts.append(f"{child.name}: connecting")
            continue
        parts.append(
            f"{child.name}: {s['ticks']} ticks  stalls {s['stall_ticks']}  missed {s['missed_ticks']}  "
            f"Δ {s['delay_steps']}  rtt {s['rtt_ms']} ms  chunks {s['chunks']}  ok {s['successes']}  link {s.get('link', '?')}"
        )
    return f"[{elapsed:5.1f}s] " + " | ".join(parts)


def supervise(spec: LaunchSpec, out: Path, duration: float | None, quiet: bool = False,
              control_args: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Run the launch spec's processes into ``out``; returns the combined summary.

    ``control_args``: extra command-line options per robot id for its control process (e.g. the live view's).

    The spec must already be checked (values by the launch-file parser, factories by the caller).
    Raises :class:`LaunchFailed` when a process failed, after writing the run folder.
    """
    out.mkdir(parents=True, exist_ok=True)
    resolved = out / "launch.yaml"
    raw = {**spec.raw, "endpoint": spec.endpoint}
    if spec.curve is None:  # loopback without keys: this launch's processes still know each other
        raw["curve"] = ephemeral_keys(out / "keys", [r.id for r in spec.robots])
    resolved.write_text(yaml.safe_dump(raw, sort_keys=False))
    server, robots = start_processes(spec, resolved, out, duration, control_args)
    started = time.monotonic()
    interrupted, gave_up = False, False
    restarts: list[str] = []  # why each restart was needed
    restart_at: float | None = None
    live = sys.stderr.isatty()
    last_print = 0.0

    def say(line: str) -> None:
        if not quiet:
            print(("\n" if live else "") + f"[launch] {line}", file=sys.stderr, flush=True)

    try:
        while any(r.proc.poll() is None for r in robots):
            if any(r.proc.poll() not in (None, 0) for r in robots):  # a robot failed: stop, say why below
                break
            now = time.monotonic()
            if restart_at is None and server.proc.poll() is not None:
                if not any(r.status for r in robots):  # it never came up: a restart would fail the same way
                    break
                if len(restarts) >= MAX_RESTARTS:
                    gave_up = True
                    break
                restarts.append(server.failure("inference process"))
                restart_at = now + RESTART_BACKOFF_S[min(len(restarts), len(RESTART_BACKOFF_S)) - 1]
                say(f"inference process exited ({server.proc.returncode}); robots hold; restart "
                    f"{len(restarts)}/{MAX_RESTARTS} in {restart_at - now:.1f} s (see {server.log_path})")
            if restart_at is not None and now >= restart_at:
                server.stop()
                server = Child("serve", server.argv, server.log_path, append=True)
                restart_at = None
                say(f"inference process restarted ({len(restarts)}/{MAX_RESTARTS})")
            elapsed = now - started
            if not quiet and (live or elapsed - last_print >= 5.0):
                last_print = elapsed
                state = "restarting" if restart_at is not None else f"up (restarts {len(restarts)})" if restarts else "up"
                line = status_line(robots, elapsed, state)
                print("\r" + line.ljust(110) if live else line, end="" if live else "\n", file=sys.stderr, flush=True)
            time.sleep(0.2)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for child in robots:
            child.stop()
        server.stop()
    if not quiet:
        print(file=sys.stderr)
    summary = collect(spec, out, robots, interrupted)
    summary["server_restarts"] = len(restarts)
    write_json(out / "summary.json", summary)
    failures = [c.failure(f"robot {c.name}: control process") for c in robots if c.failed(interrupted)]
    if server.failed(interrupted) or gave_up:
        failures.append(server.failure("inference process") + (f" (gave up after {MAX_RESTARTS} restarts)" if gave_up else ""))
    elif restarts:  # it recovered, but a child did fail: never an exit 0
        failures.append(f"the inference process failed {len(restarts)} time(s) and was restarted:\n" + "\n".join(restarts))
    if failures:
        raise LaunchFailed("\n".join(failures))
    return summary


def collect(spec: LaunchSpec, out: Path, robots: list[Child], interrupted: bool) -> dict[str, Any]:
    """Every robot's summary (from its SUMMARY line, else its run folder) and the combined ``summary.json``."""

    per_robot = {}
    for child in robots:
        summary = child.summary
        if summary is None:  # killed before it could print: rebuild from its folder
            path = out / child.name / "summary.json"
            summary = json.loads(path.read_text()) if path.exists() else {"ticks": len(read_jsonl(out / child.name / "ticks.jsonl"))}
        summary["exit_code"] = child.proc.returncode
        per_robot[child.name] = summary
    first = per_robot[robots[0].name]
    combined = {
        **{k: first.get(k) for k in ("ticks", "stall_ticks", "missed_ticks", "lateness_ms_p99", "rtt_ms_p50",
                                      "rtt_ms_p99", "chunks", "task_successes")},
        "mode": spec.mode,
        "name": spec.name,
        "fps": spec.fps,
        "interrupted": interrupted,
        "robots": per_robot,
    }
    write_json(out / "summary.json", combined)
    return combined
