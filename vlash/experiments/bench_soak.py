"""``vlash bench soak``: a long real-time run of the sim in ``vlash`` mode, checked for slow decay.

Starts a real ``vlash serve`` (the scripted reach expert behind an emulated model latency) and a
real ``vlash control`` (the MuJoCo sim driver) for ``--minutes``, samples the control process's
resident memory from ``/proc`` while it runs, and reports from its summary and run log:

- ``missed_ticks``: periods skipped because a tick overran by a whole period;
- ``drift_ms``: actual minus scheduled (``t0 + k·dt``) time of the last tick, on the loop's
  monotonic clock; ``drift_wall_ms``: the schedule's drift seen by the wall clock (end vs start);
- ``rss_growth_mb``: control process RSS at the end minus after warm-up;
- ``lateness_ms_p50`` / ``p99`` / ``max``: how late ticks started.

Targets (60 minutes at 50 Hz): 0 missed ticks, drift below one period, RSS growth below 10 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any

from vlash.experiments.parts import SIM_DRIVER, SIM_EXPERT
from vlash.supervisor import interrupt

TARGET_RSS_GROWTH_MB = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=60.0, help="run length in minutes (default 60)")
    parser.add_argument("--seconds", type=float, help="run length in seconds (overrides --minutes; for quick checks)")
    parser.add_argument("--fps", type=float, default=50.0, help="control rate (default 50 Hz)")
    parser.add_argument("--out", type=Path, default=Path("runs/soak"), help="folder for soak.json and the run")
    parser.add_argument("--latency", default="100", help="emulated model latency in ms (default 100)")
    parser.add_argument("--task", default="reach", help="sim task for the default driver and expert")
    parser.add_argument("--driver", default=SIM_DRIVER, help=f"driver factory (default {SIM_DRIVER})")
    parser.add_argument("--policy", default=SIM_EXPERT, help=f"policy factory (default {SIM_EXPERT})")
    parser.add_argument("--driver-options", type=json.loads, help="driver keyword arguments as JSON (default: none)")
    parser.add_argument("--policy-options", type=json.loads, help="policy keyword arguments as JSON (default: none)")
    parser.add_argument("--chunk-size", type=int, default=50, help="actions per chunk H")
    parser.add_argument("--horizon", type=int, default=25, help="execution horizon K")


def launch_data(args: argparse.Namespace, endpoint: str) -> dict[str, Any]:
    """The launch file of the soak run (sim defaults unless other factories are given)."""
    driver = {"factory": args.driver}
    if args.driver == SIM_DRIVER:
        driver.update(task=args.task, fps=args.fps, cameras=["front"], image_size=64, auto_reset=True)
    driver.update(args.driver_options or {})
    policy: dict[str, Any] = {"factory": args.policy, "chunk_size": args.chunk_size}
    if args.policy == SIM_EXPERT:
        policy.update(task=args.task, fps=args.fps)
    policy.update(args.policy_options or {})
    return {
        "name": "soak",
        "fps": args.fps,
        "mode": "vlash",
        "endpoint": endpoint,
        "inference": {"policy": policy, "latency": args.latency},
        "robots": [{"id": "soak", "driver": driver, "chunk_size": args.chunk_size, "execution_horizon": args.horizon}],
    }


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class ControlWatcher:
    """Reads the control process's STATUS/SUMMARY lines; samples its RSS at each STATUS line.

    STATUS lines come from inside the running loop (once a second), so every sample is taken
    while the robot is ticking, never during start-up or shutdown.
    """

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.summary: dict[str, Any] | None = None
        self.rss: list[tuple[int, float]] = []  # (ticks at the time, RSS in MB)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("STATUS "):
                value = rss_mb(self.proc.pid)
                if value is not None:
                    self.rss.append((int(json.loads(line[7:])["ticks"]), value))
            elif line.startswith("SUMMARY "):
                self.summary = json.loads(line[8:])

    def join(self) -> None:
        self._thread.join(timeout=10)


def drift(ticks_path: Path, dt: float, window: int = 50) -> dict[str, float | int | None]:
    """Final schedule error from the run log, and how many steps are missing from it.

    ``drift_ms``: the last tick's lateness (actual minus ``t0 + k·dt`` on the loop's own clock).
    ``drift_wall_ms``: the wall-clock residual ``t_k - k·dt`` over the last ``window`` ticks minus
    that over the first ``window`` (medians, so the per-tick work before the time stamp cancels).
    """
    first: list[float] = []
    last: deque[float] = deque(maxlen=window)
    row = origin = None
    rows = 0
    with open(ticks_path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            origin = origin or (row["t"], row["step"])
            residual = (row["t"] - origin[0]) - (row["step"] - origin[1]) * dt
            if len(first) < window:
                first.append(residual)
            last.append(residual)
            rows += 1
    if row is None or origin is None:
        return {"drift_ms": None, "drift_wall_ms": None, "logged_ticks": 0, "step_gaps": 0}
    return {
        "drift_ms": round(row["lateness_ms"], 3),
        "drift_wall_ms": round((statistics.median(last) - statistics.median(first)) * 1000, 3),
        "logged_ticks": rows,
        "step_gaps": row["step"] - origin[1] + 1 - rows,
    }


def soak(args: argparse.Namespace) -> dict[str, Any]:
    from vlash.launchfile import free_port

    seconds = args.seconds if args.seconds is not None else args.minutes * 60.0
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    launch = out / "soak.yaml"
    import yaml

    launch.write_text(yaml.safe_dump(launch_data(args, f"tcp://127.0.0.1:{free_port()}"), sort_keys=False))
    vlash = [sys.executable, "-m", "vlash.cli"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(out / "serve.log", "w") as serve_log, open(out / "control.log", "w") as control_log:
        server = subprocess.Popen([*vlash, "serve", str(launch)], stdout=serve_log, stderr=serve_log, env=env)
        control = subprocess.Popen(
            [*vlash, "control", str(launch), "--robot", "soak", "--out", str(out / "soak"), "--status", "json",
             "--duration", str(seconds)],
            stdout=subprocess.PIPE, stderr=control_log, text=True, env=env,
        )
        watcher = ControlWatcher(control)
        try:
            control.wait(timeout=seconds + 120)
        finally:
            for proc in (control, server):
                interrupt(proc, 20)
            watcher.join()
    summary = watcher.summary
    if summary is None:
        raise RuntimeError(f"the control process gave no summary; see {out / 'control.log'}")
    dt = 1.0 / args.fps
    warm_ticks = min(int(10 * args.fps), summary["ticks"] // 10)  # after 10 s (or 10 % of a short run)
    warm = [mb for ticks, mb in watcher.rss if ticks >= warm_ticks] or [mb for _, mb in watcher.rss]
    rss_start, rss_end = (warm[0], warm[-1]) if warm else (None, None)
    result = {
        "minutes": round(seconds / 60.0, 3),
        "seconds": seconds,
        "fps": args.fps,
        "driver": args.driver,
        "policy": args.policy,
        "ticks": summary["ticks"],
        "expected_ticks": int(round(seconds * args.fps)),
        "missed_ticks": summary["missed_ticks"],
        **drift(out / "soak" / "ticks.jsonl", dt),
        "period_ms": round(dt * 1000, 3),
        "rss_start_mb": None if rss_start is None else round(rss_start, 2),
        "rss_end_mb": None if rss_end is None else round(rss_end, 2),
        "rss_growth_mb": None if rss_start is None else round(rss_end - rss_start, 2),
        "rss_mb_series": [round(mb, 2) for _, mb in watcher.rss[:: max(1, len(watcher.rss) // 60)]],
        "lateness_ms_p50": summary["lateness_ms_p50"],
        "lateness_ms_p99": summary["lateness_ms_p99"],
        "lateness_ms_max": summary["lateness_ms_max"],
        "stall_ticks": summary["stall_ticks"],
        "chunks": summary["chunks"],
        "rtt_ms_p50": summary["rtt_ms_p50"],
        "task_successes": summary["task_successes"],
        "control_exit_code": control.returncode,
    }
    result["meets_targets"] = bool(
        result["missed_ticks"] == 0
        and result["drift_ms"] is not None
        and abs(result["drift_ms"]) < result["period_ms"]
        and result["rss_growth_mb"] is not None
        and result["rss_growth_mb"] < TARGET_RSS_GROWTH_MB
    )
    return result


def run(args: argparse.Namespace) -> int:
    if args.fps <= 0 or (args.seconds if args.seconds is not None else args.minutes) <= 0:
        print("vlash bench soak: --fps and the run length must be positive", file=sys.stderr)
        return 2
    result = soak(args)
    path = args.out / "soak.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    for key in ("minutes", "fps", "ticks", "missed_ticks", "drift_ms", "drift_wall_ms", "rss_growth_mb",
                "lateness_ms_p50", "lateness_ms_p99", "lateness_ms_max", "stall_ticks", "chunks", "meets_targets"):
        print(f"{key:>18}: {result[key]}")
    print(f"wrote {path}")
    return 0 if result["control_exit_code"] == 0 else 1
