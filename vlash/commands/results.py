"""``vlash results``: regenerate ``docs/RESULTS.md`` end to end, with its figures under ``docs/img/``.

The steps and the document are :mod:`vlash.experiments.results` (text from
``vlash/experiments/results_template.md``). ``--reuse`` keeps outputs already under ``--work``
(re-rendering only); ``--quick`` is a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from vlash.experiments.results import collect, copy_images, load_json, machine_info, render
from vlash.experiments.study import CommandLog


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="docs", help="where RESULTS.md and img/ go (default docs)")
    parser.add_argument("--work", default="runs/results", help="folder for the raw outputs")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per expert eval cell (default 20)")
    parser.add_argument("--quick", action="store_true", help="small grids and short runs (a smoke test)")
    parser.add_argument("--reuse", action="store_true", help="keep outputs already under --work")
    parser.add_argument("--skip-study", action="store_true", help="no learned-policy study")
    parser.add_argument("--accuracy-study", default="runs/study",
                        help="folder of a `vlash study` run to report (its accuracy_study.json; hours to make, so "
                             "never run from here; default: %(default)s, skipped when absent)")
    parser.add_argument("--accuracy-only", action="store_true",
                        help="re-render only section (iv b) of the existing RESULTS.md from --accuracy-study")
    parser.add_argument("--skip-bench", action="store_true", help="no real-time benchmarks")
    parser.add_argument("--skip-eval", action="store_true", help="no scripted-expert evaluation")


def run(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        print("vlash results: --episodes must be >= 1", file=sys.stderr)
        return 2
    work, out = Path(args.work), Path(args.out)
    if args.accuracy_only:
        return _accuracy_only(Path(args.accuracy_study), out)
    (out / "img").mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    log = CommandLog()
    previous = load_json(work / "commands.json") or []
    started = time.monotonic()
    machine = machine_info()
    print(f"vlash results: {machine['cpu']} x{machine['cores']}, load {os.getloadavg()[0]:.2f}; work {work}",
          flush=True)
    try:
        data = collect(work, log, quick=args.quick, reuse=args.reuse, episodes=args.episodes,
                       bench=not args.skip_bench, evaluation=not args.skip_eval, study=not args.skip_study)
    except RuntimeError as exc:
        print(f"vlash results: {exc}", flush=True)
        return 1
    finally:
        # a reused step keeps the duration it took when it ran
        known = {e["command"]: e for e in previous if e.get("seconds") is not None}
        entries = [known.get(e["command"], e) if e.get("reused") else e for e in log.entries]
        (work / "commands.json").write_text(json.dumps(entries, indent=2) + "\n")
    data["accuracy"] = load_json(Path(args.accuracy_study) / "accuracy_study.json")
    images = copy_images(work, out / "img", data)
    (out / "RESULTS.md").write_text(render(data, machine, entries, images, quick=args.quick))
    print(f"\nwrote {out / 'RESULTS.md'} and {len(images)} figures under {out / 'img'} "
          f"in {time.monotonic() - started:.0f} s")
    return 0


def _accuracy_only(study_folder: Path, out: Path) -> int:
    from vlash.experiments.results import update_accuracy_section

    study = load_json(study_folder / "accuracy_study.json")
    if study is None:
        print(f"vlash results: no {study_folder / 'accuracy_study.json'} (run `vlash study`, or "
              f"`vlash study --report` while it runs)", file=sys.stderr)
        return 2
    if not (out / "RESULTS.md").exists():
        print(f"vlash results: no {out / 'RESULTS.md'} to update (run `vlash results` once)", file=sys.stderr)
        return 2
    update_accuracy_section(out / "RESULTS.md", study, out / "img")
    print(f"updated section (iv b) of {out / 'RESULTS.md'} from {study_folder}: {len(study['records'])} cells")
    return 0
