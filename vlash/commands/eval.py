"""``vlash eval``: success rate and completion time per task, mode, delay and policy, in virtual time.

Writes ``results.json`` (one record per task/mode/delay/policy), ``results.md`` (tables) and
``success_vs_delay.png`` (and, with ``--video N``, MP4s of the first N episodes of each cell in
``videos/``). ``--quick`` runs a small grid in well under a minute. The grid, its
runner and its report are :mod:`vlash.experiments.evaluation`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

from policies.loading import PolicyLoadError
from vlash.experiments.evaluation import Cell, markdown_tables, plot_success, run_cells
from vlash.runlog import write_json
from vlash.scheduler import parse_mode


def _csv(kind):
    return lambda text: [kind(x) for x in text.split(",") if x.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=_csv(str), default=["reach", "track", "whack", "pick_place"],
                        help="comma-separated sim tasks (reach, track, whack, whack_fast, pick_place, intercept, detour)")
    parser.add_argument("--modes", type=_csv(str), default=["sync", "naive", "vlash"],
                        help="comma-separated execution modes, of sync, naive, vlash, rtc (rtc: flow policies only)")
    parser.add_argument("--delays", type=_csv(int), default=[0, 1, 2, 4, 8],
                        help="comma-separated inference delays Δ in control steps")
    parser.add_argument("--policies", type=_csv(str), default=["expert"], help="'expert' and/or checkpoint folders")
    parser.add_argument("--episodes", type=int, default=20, help="seeded episodes per cell")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--chunk-size", type=int, default=50,
                        help="the scripted expert's chunk size H (a checkpoint uses its own)")
    parser.add_argument("--execution-horizon", type=_horizon, default=None,
                        help="actions executed per chunk K, or 'auto' for the streaming schedule K = max(Δ, 1) "
                             "(default: half of each policy's chunk size)")
    parser.add_argument("--quantization", type=int, default=1,
                        help="action quantization q: execute every q-th action of a chunk (1: all)")
    parser.add_argument("--estimator", default=None,
                        help="future-state estimator of vlash mode: target, model, or oracle (SIM-ONLY: steps a "
                             "copy of the simulation itself) (default: by the policy's action kind, target for "
                             "absolute actions)")
    parser.add_argument("--workers", type=int, default=max(1, min(2, mp.cpu_count())),
                        help="cells run in this many processes at once (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=16,
                        help="environments per cell run in lockstep, each step's requests answered by one batched "
                             "policy call; results equal the one-at-a-time runner's (default: %(default)s; 1: "
                             "one episode at a time)")
    parser.add_argument("--quick", action="store_true", help="a small grid (reach, delays 0 and 4, 3 episodes)")
    parser.add_argument("--video", type=int, default=0, metavar="N",
                        help="write MP4s (H.264) of the first N episodes of each cell to OUT/videos, named "
                             "TASK-MODE-delayΔ-seedS.mp4, with the executed chunk and stalls shown below the front "
                             "camera (default: %(default)s, none)")
    parser.add_argument("--out", default="runs/eval", help="folder for results.json, results.md and the plot")


def _horizon(text: str) -> int | str:
    """``--execution-horizon``: ``auto`` or an integer."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or an integer, got {text!r}") from None


def bad_arguments(args: argparse.Namespace) -> str | None:
    """One line naming the first unusable option, or None."""
    for mode in args.modes:
        try:
            parse_mode(mode)
        except ValueError as exc:
            return f"--modes: {exc}"
    checks = [
        ("--tasks", bool(args.tasks), "must name at least one task"),
        ("--policies", bool(args.policies), "must name at least one policy"),
        ("--delays", bool(args.delays) and min(args.delays) >= 0, "must be one or more delays >= 0"),
        ("--episodes", args.episodes >= 1, "must be >= 1"),
        ("--chunk-size", args.chunk_size >= 1, "must be >= 1"),
        ("--execution-horizon", args.execution_horizon in (None, "auto") or args.execution_horizon >= 1,
         "must be 'auto' or >= 1"),
        ("--quantization", args.quantization >= 1, "must be >= 1"),
        ("--workers", args.workers >= 1, "must be >= 1"),
        ("--batch", args.batch >= 1, "must be >= 1"),
        ("--video", args.video >= 0, "must be >= 0"),
    ]
    return next((f"{name} {message}" for name, ok, message in checks if not ok), None)


def grid(args: argparse.Namespace) -> list[Cell]:
    """The cells of the requested grid (``--quick`` first shrinks it)."""
    if args.quick:
        args.tasks, args.delays, args.episodes = ["reach"], [0, 4], 3
    seeds = tuple(range(args.seed, args.seed + args.episodes))
    videos = min(args.video, len(seeds))
    video_dir = str(Path(args.out) / "videos") if videos else None
    return [
        Cell(task, mode, delay, policy, seeds, args.chunk_size, args.execution_horizon, args.quantization, args.estimator,
             batch=args.batch, video_episodes=videos, video_dir=video_dir)
        for task in args.tasks
        for policy in args.policies
        for delay in args.delays
        for mode in args.modes
    ]


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    problem = bad_arguments(args)
    if problem:
        print(f"vlash eval: {problem}", file=sys.stderr)
        return 2
    cells = grid(args)
    started = time.monotonic()
    with tqdm(total=len(cells), desc="eval", unit="cell") as bar:
        try:
            records = run_cells(cells, args.workers, done=bar.update)
        except (ValueError, PolicyLoadError) as exc:  # a checkpoint or setting it cannot run (rtc without RTC, K > H)
            records, problem = [], str(exc)
    if problem:
        print(f"vlash eval: {problem}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(records, indent=2) + "\n")
    write_json(out / "eval_config.json", {**vars(args), "seconds": round(time.monotonic() - started, 1)})
    table = markdown_tables(records)
    (out / "results.md").write_text(table)
    plot_success(records, out / "success_vs_delay.png")
    print(table)
    videos = sum(len(r.get("videos", [])) for r in records)
    made = f", {videos} videos in {out}/videos" if videos else ""
    print(f"wrote {out}/results.json, results.md, success_vs_delay.png{made} in {time.monotonic() - started:.0f}s")
    return 0
