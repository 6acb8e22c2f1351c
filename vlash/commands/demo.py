"""``vlash demo``: the MuJoCo SO-101 playing whack-a-mole in ``sync`` and in ``vlash`` mode, side by side.

Runs ``launch/whack_fast_sync.yaml`` (the paper's sync setting, K = 25) and
``launch/whack_fast_vlash.yaml`` (streaming, K = Δ) for ``--duration`` seconds each: 50 Hz, a 1.2 s
window per pad, the scripted expert behind an emulated 100 ms model. Prints what the robot achieved
(pads hit of pads lit, the reaction time from a pad lighting to the first action planned from it)
next to stall ticks, and writes both run folders.
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
    ("pads_hit", "pads hit"),
    ("pads_lit", "pads lit"),
    ("hit_rate", "hit rate"),
    ("reaction_ms_p50", "reaction p50 (ms)"),
    ("stall_ticks", "stall ticks"),
    ("missed_ticks", "missed ticks"),
    ("rtt_ms_p50", "round trip p50 (ms)"),
    ("chunks", "chunks"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per run")
    parser.add_argument("--runs", default="whack_fast_sync,whack_fast_vlash",
                        help="comma-separated launch/NAME.yaml files to run and compare")
    parser.add_argument("--out", default="runs/demo", help="folder for one run folder per launch file")


def achievement(folder: Path, fps: float) -> dict:
    """Pads lit and hit, and the median reaction, from a robot's run folder."""
    from vlash.experiments.bench_reaction import reaction_from_run
    from vlash.runlog import percentile

    r = reaction_from_run(folder, 1.0 / fps)
    lit, hit = len(r["reaction_ms"]), len(r["touch_ms"])
    p50 = percentile(r["reaction_ms"], 50)
    return {"pads_lit": lit, "pads_hit": hit, "hit_rate": f"{100 * hit / lit:.0f} %" if lit else "–",
            "reaction_ms_p50": None if p50 is None else round(p50)}


def comparison(summaries: dict[str, dict]) -> str:
    names = list(summaries)
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for key, label in ROWS:
        lines.append(f"| {label} | " + " | ".join(str(summaries[n].get(key)) for n in names) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    summaries = {}
    for name in [n.strip() for n in args.runs.split(",") if n.strip()]:
        spec = load_launch(LAUNCH_DIR / f"{name}.yaml")
        print(f"== {name}: {args.duration:.0f} s of the MuJoCo SO-101 ({spec.source}) ==")
        try:
            summary = launch(spec, Path(args.out) / name, args.duration)
        except LaunchFailed as exc:
            print(f"vlash demo: {name}: {exc}", file=sys.stderr)
            return 1
        summaries[name] = {**summary, **achievement(Path(args.out) / name / spec.robots[0].id, spec.fps)}
    print()
    print(comparison(summaries))
    print(f"\nrun folders: {', '.join(str(Path(args.out) / n) for n in summaries)} (summary.json; timeline.png in each robot's folder)")
    return 0
