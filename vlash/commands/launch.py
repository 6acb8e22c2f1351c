"""``vlash launch FILE.yaml``: start the inference process and every robot's control process.

Validates the whole file first (values, factories and their keyword arguments: a bad one is a
one-line error before anything starts), starts the processes, prints one live status line,
forwards Ctrl-C, stops everything (no orphans) and writes one run folder: the resolved launch
file, each process's log, each robot's ticks/chunks/summary, ``summary.json`` and ``timeline.png``.
A process that fails (a robot's driver that will not build or connect, a crashed server) fails
the launch with that process's own last words and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from vlash.launchfile import LaunchSpec, load_launch
from vlash.runlog import write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("launch", help="launch file (YAML), e.g. launch/sim_vlash.yaml")
    parser.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    parser.add_argument("--out", help="run folder (default: runs/NAME-TIMESTAMP)")
    parser.add_argument("--quiet", action="store_true", help="no live status line")


class LaunchFailed(RuntimeError):
    """A process of the launch failed; the message is its own last words and where its log is."""


DEBUG_HINT = "(set VLASH_DEBUG=1"  # the CLI's line after a one-line error: not the error itself


def last_words(path: Path) -> str:
    """A failed process's own account: the last line of its log (a one-line error or a traceback's last line)."""
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    lines = [line.strip() for line in text if line.strip() and not line.startswith(DEBUG_HINT)]
    return lines[-1] if lines else "(nothing in its log)"


class Child:
    """One started process whose stdout lines (STATUS / SUMMARY) are read by a thread."""

    def __init__(self, name: str, argv: list[str], log_path: Path):
        self.name = name
        self.log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
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
        if self.proc.poll() is None:
            self.stopped = True
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=2)
        self.log.close()
        return self.proc.returncode

    def failed(self, interrupted: bool) -> bool:
        """Exited non-zero, other than by the Ctrl-C that stopped it (ours or the user's)."""
        code = self.proc.returncode
        return code != 0 and not ((self.stopped or interrupted) and code in (130, -signal.SIGINT))

    def failure(self, what: str) -> str:
        return f"{what} exited with code {self.proc.returncode}: {last_words(self.log_path)}\n(log: {self.log_path})"


def start_processes(spec: LaunchSpec, resolved: Path, out: Path, duration: float | None) -> tuple[Child, list[Child]]:
    vlash = [sys.executable, "-m", "vlash.cli"]
    server = Child("serve", vlash + ["serve", str(resolved)], out / "serve.log")
    robots = []
    for robot in spec.robots:
        argv = vlash + ["control", str(resolved), "--robot", robot.id, "--out", str(out / robot.id), "--status", "json"]
        if duration is not None:
            argv += ["--duration", str(duration)]
        robots.append(Child(robot.id, argv, out / f"{robot.id}.log"))
    return server, robots


def status_line(robots: list[Child], elapsed: float) -> str:
    parts = []
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


def launch(spec: LaunchSpec, out: Path, duration: float | None, quiet: bool = False) -> dict[str, Any]:
    """Run the launch spec into ``out``; returns the combined summary.

    Raises :class:`~vlash.launchfile.LaunchError` (a ValueError) before anything starts when a
    factory or its keyword arguments are wrong, and :class:`LaunchFailed` when a process failed
    (after writing the run folder).
    """
    from vlash.commands import control, serve

    serve.check(spec)  # factories are imported here, before any process or run folder exists
    for robot in spec.robots:
        control.check(spec, robot)
    out.mkdir(parents=True, exist_ok=True)
    resolved = out / "launch.yaml"
    resolved.write_text(yaml.safe_dump({**spec.raw, "endpoint": spec.endpoint}, sort_keys=False))
    server, robots = start_processes(spec, resolved, out, duration)
    started = time.monotonic()
    interrupted = False
    live = sys.stderr.isatty()
    last_print = 0.0
    try:
        while any(r.proc.poll() is None for r in robots):
            if any(r.proc.poll() not in (None, 0) for r in robots):  # a robot failed: stop, say why below
                break
            if server.proc.poll() is not None and not server.reported:
                server.reported = True
                if not any(r.status for r in robots):  # it never came up: nothing will run
                    break
                print(f"\n[launch] inference process exited ({server.proc.returncode}); robots hold. "
                      f"See {out}/serve.log", file=sys.stderr)
            elapsed = time.monotonic() - started
            if not quiet and (live or elapsed - last_print >= 5.0):
                last_print = elapsed
                line = status_line(robots, elapsed)
                print("\r" + line.ljust(110) if live else line, end="" if live else "\n", file=sys.stderr, flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for child in robots:
            child.stop()
        server.stop()
    if not quiet:
        print(file=sys.stderr)
    summary = finish(spec, out, robots, interrupted)
    failures = [c.failure(f"robot {c.name}: control process") for c in robots if c.failed(interrupted)]
    if server.failed(interrupted):
        failures.append(server.failure("inference process"))
    if failures:
        raise LaunchFailed("\n".join(failures))
    return summary


def finish(spec: LaunchSpec, out: Path, robots: list[Child], interrupted: bool) -> dict[str, Any]:
    from vlash.experiments.plots import timeline
    from vlash.runlog import read_jsonl

    per_robot = {}
    for child in robots:
        summary = child.summary
        if summary is None:  # killed before it could print: rebuild from its folder
            path = out / child.name / "summary.json"
            summary = json.loads(path.read_text()) if path.exists() else {"ticks": len(read_jsonl(out / child.name / "ticks.jsonl"))}
        summary["exit_code"] = child.proc.returncode
        per_robot[child.name] = summary
        if (out / child.name / "ticks.jsonl").exists():
            timeline(out / child.name, out / child.name / "timeline.png")
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
    first_png = out / robots[0].name / "timeline.png"
    if first_png.exists():
        (out / "timeline.png").write_bytes(first_png.read_bytes())
    return combined


def run(args: argparse.Namespace) -> int:
    from vlash.bus import KEYS_HINT
    from vlash.curve import InsecureEndpointError, check_endpoint
    from vlash.launchfile import client_curve, server_curve

    spec = load_launch(args.launch)  # every key checked before anything starts (factories: in launch())
    try:  # and the endpoint: off-host only with CurveZMQ keys, which must load
        check_endpoint(spec.endpoint, server_curve(spec))
        client_curve(spec)
    except ValueError as exc:
        print(f"vlash launch: {exc}{KEYS_HINT if isinstance(exc, InsecureEndpointError) else ''}", file=sys.stderr)
        return 2
    out = Path(args.out or f"runs/{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        summary = launch(spec, out, args.duration, args.quiet)
    except LaunchFailed as exc:
        print(f"vlash launch: {exc}", file=sys.stderr)
        return 1
    keys = ("ticks", "stall_ticks", "missed_ticks", "lateness_ms_p99", "rtt_ms_p50", "rtt_ms_p99", "chunks", "task_successes")
    print(f"{spec.name} ({spec.mode}): " + ", ".join(f"{k}={summary.get(k)}" for k in keys))
    print(f"run folder: {out}")
    return 0
