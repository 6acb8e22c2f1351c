"""``vlash eval``: success rate and completion time per task, mode, delay and policy, in virtual time.

Writes ``results.json`` (one record per task/mode/delay/policy), ``results.md`` (tables) and
``success_vs_delay.png``. ``--quick`` runs a small grid in well under a minute.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from pathlib import Path

from vlash.experiments.evaluation import Cell, run_cell
from vlash.runlog import write_json


def _csv(kind):
    return lambda text: [kind(x) for x in text.split(",") if x.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=_csv(str), default=["reach", "track", "whack", "pick_place"])
    parser.add_argument("--modes", type=_csv(str), default=["sync", "naive", "vlash"])
    parser.add_argument("--delays", type=_csv(int), default=[0, 1, 2, 4, 8])
    parser.add_argument("--policies", type=_csv(str), default=["expert"], help="'expert' and/or checkpoint folders")
    parser.add_argument("--episodes", type=int, default=20, help="seeded episodes per cell")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--chunk-size", type=int, default=50)
    parser.add_argument("--execution-horizon", type=int, default=25)
    parser.add_argument("--quantization", type=int, default=1)
    parser.add_argument("--estimator", default=None, help="vlash mode estimator: target (default), model, ...")
    parser.add_argument("--workers", type=int, default=max(1, min(2, mp.cpu_count())))
    parser.add_argument("--quick", action="store_true", help="a small grid (reach, delays 0 and 4, 3 episodes)")
    parser.add_argument("--out", default="runs/eval")


def grid(args: argparse.Namespace) -> list[Cell]:
    if args.quick:
        args.tasks, args.delays, args.episodes = ["reach"], [0, 4], 3
    seeds = tuple(range(args.seed, args.seed + args.episodes))
    return [
        Cell(task, mode, delay, policy, seeds, args.chunk_size, args.execution_horizon, args.quantization, args.estimator)
        for task in args.tasks
        for policy in args.policies
        for delay in args.delays
        for mode in args.modes
    ]


def markdown_table(records: list[dict]) -> str:
    lines = []
    for task in sorted({r["task"] for r in records}):
        for policy in sorted({r["policy"] for r in records if r["task"] == task}):
            rows = [r for r in records if r["task"] == task and r["policy"] == policy]
            modes = sorted({r["mode"] for r in rows}, key=["sync", "naive", "vlash", "rtc"].index)
            delays = sorted({r["delay"] for r in rows})
            lines += [f"### {task} — {policy}", "", "| Δ | " + " | ".join(modes) + " |", "|---" * (len(modes) + 1) + "|"]
            for d in delays:
                cells = []
                for m in modes:
                    r = next((x for x in rows if x["delay"] == d and x["mode"] == m), None)
                    if r is None:
                        cells.append("")
                        continue
                    steps = f"{r['mean_steps']:.0f}" if r["mean_steps"] is not None else "–"
                    cells.append(f"{100 * r['success_rate']:.0f}% ({steps} steps)")
                lines.append(f"| {d} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines) + "\nCells: success rate over seeded episodes (mean steps of the successful ones).\n"


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in records})
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for policy in sorted({r["policy"] for r in records}):
            for mode in ["sync", "naive", "vlash", "rtc"]:
                rows = sorted((r for r in records if r["task"] == task and r["mode"] == mode and r["policy"] == policy),
                              key=lambda r: r["delay"])
                if not rows:
                    continue
                x = [r["delay"] for r in rows]
                y = [100 * r["success_rate"] for r in rows]
                lo = [100 * r["success_ci95"][0] for r in rows]
                hi = [100 * r["success_ci95"][1] for r in rows]
                label = mode if policy == "expert" else f"{mode} ({Path(policy).name})"
                ax.plot(x, y, marker="o", label=label)
                ax.fill_between(x, lo, hi, alpha=0.12)
        ax.set_title(task)
        ax.set_xlabel("delay Δ (control steps)")
        ax.set_ylabel("success %")
        ax.set_ylim(-5, 105)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _one_thread_per_worker() -> None:
    """Runs in each worker before torch is imported: parallel workers must not each spawn a thread per core."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    cells = grid(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    records = []
    bar = tqdm(total=len(cells), desc="eval", unit="cell")
    if args.workers > 1 and len(cells) > 1:
        with mp.get_context("spawn").Pool(args.workers, initializer=_one_thread_per_worker) as pool:
            for record in pool.imap_unordered(run_cell, cells):
                records.append(record)
                bar.update()
    else:
        for cell in cells:
            records.append(run_cell(cell))
            bar.update()
    bar.close()
    order = {c: i for i, c in enumerate(["sync", "naive", "vlash", "rtc"])}
    records.sort(key=lambda r: (r["task"], r["policy"], r["delay"], order.get(r["mode"], 9)))
    (out / "results.json").write_text(json.dumps(records, indent=2) + "\n")
    write_json(out / "eval_config.json", {**vars(args), "seconds": round(time.monotonic() - started, 1)})
    table = markdown_table(records)
    (out / "results.md").write_text(table)
    plot(records, out / "success_vs_delay.png")
    print(table)
    print(f"wrote {out}/results.json, results.md, success_vs_delay.png in {time.monotonic() - started:.0f}s")
    return 0

