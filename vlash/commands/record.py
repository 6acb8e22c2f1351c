"""``vlash record``: the flags of recording scripted demonstrations; the work is :func:`policies.record.record`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from policies.record import RecordOptions, record
from sim import make_task
from sim.experts import make_expert


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``vlash record``."""
    parser.add_argument("--task", required=True, help="sim task name (e.g. reach)")
    parser.add_argument("--episodes", type=int, default=50, help="number of episodes (default 50)")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to create (must be new)")
    parser.add_argument(
        "--cameras", default="", help="comma-separated cameras to record (e.g. front,wrist); default none"
    )
    parser.add_argument("--image-size", type=int, default=96, help="square camera image size (default 96)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (then +1 each)")
    parser.add_argument("--fps", type=float, default=None, help="control rate (default: the task's)")
    parser.add_argument("--chunk-size", type=int, default=None, help="expert chunk size (default: its own)")
    parser.add_argument("--max-steps", type=int, default=None, help="cap on steps per episode (default: the task's own time limit)")
    parser.add_argument("--only-success", action="store_true", help="drop episodes the expert failed")
    parser.add_argument("--video", action="store_true", help="store cameras as MP4 (default: PNG frames)")
    parser.add_argument("--repo-id", default=None, help="dataset repo id label (default vlash/<out name>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--action-noise", type=float, default=0.0, metavar="SIGMA",
        help="add N(0, SIGMA) radians to every executed action, seeded by the episode's seed (default 0: none); "
        "the recorded action is the executed noisy one",
    )
    parser.add_argument(
        "--strategy", default=None, metavar="NAME",
        help="the expert's way of doing a task that has several (detour: random, drawn per episode from its "
        "seed, the default; left; right); each episode's is stored in meta/vlash_episodes.json",
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``vlash record``."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.video:  # LeRobot's writer names its video codec even when no video is written
        logging.getLogger("lerobot.configs.video").setLevel(logging.WARNING)
    options = RecordOptions(
        task=args.task,
        episodes=args.episodes,
        out=args.out,
        cameras=tuple(c.strip() for c in args.cameras.split(",") if c.strip()),
        image_size=args.image_size,
        seed=args.seed,
        fps=args.fps,
        chunk_size=args.chunk_size,
        max_steps=args.max_steps,
        only_success=args.only_success,
        video=args.video,
        repo_id=args.repo_id,
        progress=not args.no_progress,
        action_noise=args.action_noise,
        strategy=args.strategy,
    )
    try:
        summary = record(options, make_task, make_expert)
    except (ValueError, FileExistsError, RuntimeError) as exc:
        print(f"vlash record: {exc}", file=sys.stderr)
        return 2
    rate = summary.frames / summary.seconds if summary.seconds else 0.0
    print(
        f"wrote {summary.episodes} episodes, {summary.frames} frames to {summary.root} "
        f"({summary.successes} successes, {summary.discarded} discarded) in {summary.seconds:.1f} s "
        f"({rate:.0f} frames/s)"
    )
    return 0
