"""``vlash demo``: the MuJoCo SO-101 in ``sync`` and in ``vlash`` mode, side by side.

Runs ``launch/sim_sync.yaml`` and ``launch/sim_vlash.yaml`` for ``--duration`` seconds each
(emulated 150 ms model), writes both run folders and prints a comparison table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vlash.commands.launch import launch
from vlash.launchfile import load_launch
from vlash.supervisor import LaunchFailed

LAUNCH_DIR = Path(__file__).resolve().parents[2] / "launch"
ROWS = [
    ("ticks", "ticks"),
    ("stall_ticks", "stall ticks"),
    ("missed_ticks", "missed ticks"),
    ("lateness_ms_p99", "lateness p99 (ms)"),
    ("rtt_ms_p50", "round trip p50 (ms)"),
    ("chunks", "chunks"),
    ("task_successes", "task successes"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per mode")
    parser.add_argument("--modes", default="sync,vlash", help="comma-separated launch/sim_MODE.yaml to run")
    parser.add_argument("--out", default="runs/demo")


def comparison(summaries: dict[str, dict]) -> str:
    modes = list(summaries)
    lines = ["| | " + " | ".join(modes) + " |", "|---" * (len(modes) + 1) + "|"]
    for key, label in ROWS:
        lines.append(f"| {label} | " + " | ".join(str(summaries[m].get(key)) for m in modes) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    summaries = {}
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        spec = load_launch(LAUNCH_DIR / f"sim_{mode}.yaml")
        print(f"== {mode}: {args.duration:.0f} s of the MuJoCo SO-101 ({spec.source}) ==")
        try:
            summaries[mode] = launch(spec, Path(args.out) / mode, args.duration)
        except LaunchFailed as exc:
            print(f"vlash demo: {mode}: {exc}", file=sys.stderr)
            return 1
    print()
    print(comparison(summaries))
    print(f"\nrun folders: {', '.join(str(Path(args.out) / m) for m in summaries)} (summary.json, timeline.png)")
    return 0
