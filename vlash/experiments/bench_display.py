"""``vlash bench display``: control-loop lateness with the live view on vs off, in one run.

Each run is a real launch (inference and control processes, ZeroMQ on loopback) of the MuJoCo
SO-101 with its front camera, the scripted expert behind an emulated model latency. "On" streams
the live view (:mod:`vlash.live_view`) over gRPC to rerun's own server (``rerun --save``: what a
viewer receives, without a window) and saves the ``.rrd`` too; "off" runs the same launch without
it. Runs alternate (off, on, on, off, ...) so that a drift in machine load hits both alike. The
figure is the ratio of the median tick-lateness p99, on over off, reported, never asserted.

Writes ``display.json`` and ``display.md``; every run folder is kept under ``runs/TIMESTAMP/``.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vlash.experiments.launch_specs import sim_spec
from vlash.experiments.markdown import table
from vlash.launchfile import free_port, parse_launch
from vlash.runlog import percentile, read_jsonl, write_json
from vlash.supervisor import interrupt, supervise


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="one pair of 3 s runs")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per run (default 6, quick 3)")
    parser.add_argument("--pairs", type=int, default=None, help="off/on pairs of runs (default 3, quick 1)")
    parser.add_argument("--fps", type=float, default=30.0, help="control rate in Hz (default: %(default)s)")
    parser.add_argument("--out", default="runs/bench_display", help="folder for display.json, display.md and runs/")


@contextmanager
def headless_viewer(save: Path) -> Iterator[str]:
    """rerun's gRPC server on a free loopback port, saving what it receives to ``save``; yields its URL."""
    port = free_port()
    exe = Path(sys.executable).parent / "rerun"
    proc = subprocess.Popen([str(exe) if exe.exists() else "rerun", "--bind", "127.0.0.1", "--port", str(port),
                             "--save", str(save)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("rerun's server did not start (is rerun-sdk installed?)") from None
                time.sleep(0.1)
        yield f"rerun+http://127.0.0.1:{port}/proxy"
    finally:
        interrupt(proc)


def one_run(name: str, out: Path, seconds: float, fps: float, view_url: str | None) -> dict[str, Any]:
    """One launch; the robot's lateness figures and (display on) the live view's counters."""
    spec = sim_spec(name, "vlash", fps=fps, latency=60, horizon=20, cameras=["front"])
    args = {"arm": ["--display", view_url, "--save-rrd", str(out / "arm" / "recording.rrd")]} if view_url else None
    robot = supervise(parse_launch(spec, name), out, seconds, quiet=True, control_args=args)["robots"]["arm"]
    view = robot.get("live_view", {})
    return {
        "lateness_ms": [t["lateness_ms"] for t in read_jsonl(out / "arm" / "ticks.jsonl")],
        "run": name, "display": view_url is not None, "ticks": robot["ticks"], "missed_ticks": robot["missed_ticks"],
        "lateness_ms_p50": robot["lateness_ms_p50"], "lateness_ms_p99": robot["lateness_ms_p99"],
        "lateness_ms_max": robot["lateness_ms_max"], "view_dropped": view.get("dropped"),
        "view_ops_dropped": view.get("ops_dropped"), "view_errors": view.get("errors"),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per setting, over the ticks of all its runs pooled: lateness p50/p99/max and missed ticks; the headline
    ratio (display on / off) of the pooled p99. (One run's p99 is its second-worst of a few hundred ticks.)"""
    out: dict[str, Any] = {}
    for key, on in (("off", False), ("on", True)):
        mine = [r for r in runs if r["display"] is on]
        pooled = [x for r in mine for x in r["lateness_ms"]]
        out[key] = {"ticks": len(pooled), "missed_ticks": sum(r["missed_ticks"] for r in mine),
                    **{f"lateness_ms_p{q}": percentile(pooled, q) for q in (50, 99)},
                    "lateness_ms_max": max(pooled, default=None)}
    off, on = out["off"]["lateness_ms_p99"], out["on"]["lateness_ms_p99"]
    out["p99_ratio_on_over_off"] = round(on / off, 3) if off else None
    return out


def markdown(result: dict[str, Any]) -> str:
    rows = [[r["run"], "on" if r["display"] else "off", r["ticks"], r["missed_ticks"], f"{r['lateness_ms_p50']:.3f}",
             f"{r['lateness_ms_p99']:.3f}", f"{r['lateness_ms_max']:.3f}", r["view_dropped"] if r["display"] else "–"]
            for r in result["runs"]]
    head = ["run", "live view", "ticks", "missed", "lateness p50 (ms)", "p99 (ms)", "max (ms)", "view items dropped"]
    s = result["summary"]
    pooled = [[k, s[k]["ticks"], s[k]["missed_ticks"], f"{s[k]['lateness_ms_p50']:.3f}", f"{s[k]['lateness_ms_p99']:.3f}",
               f"{s[k]['lateness_ms_max']:.3f}"] for k in ("off", "on")]
    return (f"## Live view on vs off: control-loop lateness ({result['fps']:g} Hz, {result['seconds']:g} s per run, "
            f"front camera)\n\n" + "\n".join(table(head, rows)) + "\nAll ticks of a setting pooled:\n\n" +
            "\n".join(table(["live view", "ticks", "missed", "p50 (ms)", "p99 (ms)", "max (ms)"], pooled)) +
            f"\n**p99 lateness ratio on/off: {s['p99_ratio_on_over_off']}** (one run of the benchmark, runs "
            "alternating; reported, not asserted).\n")


def run(args: argparse.Namespace) -> int:
    seconds = args.seconds or (3.0 if args.quick else 6.0)
    pairs = args.pairs or (1 if args.quick else 3)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    order = [flag for i in range(pairs) for flag in ((False, True) if i % 2 == 0 else (True, False))]
    runs, folder = [], out / "runs" / time.strftime("%Y%m%d-%H%M%S")  # a fresh folder: run folders are never reused
    folder.mkdir(parents=True)
    with headless_viewer(folder / "viewer.rrd") as url:
        for i, on in enumerate(order, 1):
            name = f"display_{'on' if on else 'off'}_{i}"
            print(f"[bench display {i}/{len(order)}] {name}", file=sys.stderr, flush=True)
            runs.append(one_run(name, folder / name, seconds, args.fps, url if on else None))
    result = {"fps": args.fps, "seconds": seconds, "pairs": pairs, "runs": runs, "summary": summarise(runs)}
    write_json(out / "display.json", result)
    text = markdown(result)
    (out / "display.md").write_text(text)
    print(text)
    return 0
