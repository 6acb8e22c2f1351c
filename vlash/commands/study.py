"""``vlash study``: the powered accuracy study of ``docs/STUDY_PLAN.md`` (hours on a laptop CPU; not part of CI).

Records noisy multimodal demonstrations, trains Diffusion and ACT plainly and with offsets, gates
them on sync success, then runs sync / naive / vlash (target, model, oracle) at Δ 0..4 with paired
seeds, batched in virtual time. Every finished cell is saved at once; ``--resume`` continues.
Writes ``accuracy_study.json``, ``study.md`` (tables, McNemar p-values) and ``study.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/study", help="work folder (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: 4 demos, 20 training steps, a 2-delay grid of 3 episodes (minutes)")
    parser.add_argument("--workers", type=int, default=None,
                        help="cells evaluated in parallel processes (default: the plan's, 2)")
    parser.add_argument("--resume", action="store_true",
                        help="keep what --out already holds (data, checkpoints, finished cells) and continue")
    parser.add_argument("--report", action="store_true",
                        help="run nothing: write accuracy_study.json, study.md and study.png from the cells finished "
                             "so far (also while the study runs), for `vlash results`")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vlash.experiments.accuracy_study import StudyConfig, run_study, snapshot
    from vlash.experiments.study import CommandLog

    out = Path(args.out)
    config = StudyConfig.quick() if args.quick else StudyConfig()
    if args.report:
        if not (out / "cells.jsonl").exists() and not out.joinpath("ckpt").exists():
            print(f"vlash study: {out} holds no study to report", file=sys.stderr)
            return 2
        study = snapshot(out, config)
        (out / "accuracy_study.json").write_text(json.dumps(study, indent=2) + "\n")
        write_report(out, study)
        print(f"wrote {out}/accuracy_study.json, study.md, study.png: {len(study['records'])} cells so far")
        return 0
    if out.exists() and any(out.iterdir()) and not args.resume:
        print(f"vlash study: {out} already holds a study; pass --resume to continue it, or a new --out",
              file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print("vlash study: --workers must be >= 1", file=sys.stderr)
        return 2
    if args.workers:
        config.workers = args.workers
    bar = tqdm(desc="study cells", unit="cell")
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        study = run_study(out, config, CommandLog(), progress)
    except RuntimeError as exc:  # a recording or training command failed; its own output says why
        print(f"vlash study: {exc}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    print(write_report(out, study))
    print(f"wrote {out}/accuracy_study.json, study.md, study.png in {time.monotonic() - started:.0f} s")
    return 0


def write_report(out: Path, study: dict) -> str:
    """``study.md`` (tables, McNemar p-values) and ``study.png`` from a study's results; returns the text."""
    from vlash.experiments.accuracy_report import (
        comparison_table,
        comparisons,
        plot_study,
        side_change_table,
        success_tables,
    )

    rows = comparisons(study["records"])
    text = "\n".join([success_tables(study), "", "#### vlash vs naive (McNemar exact, paired seeds)", "",
                      comparison_table(rows), "", side_change_table(study), ""])
    (out / "study.md").write_text(text)
    plot_study(study, out / "study.png")
    return text
