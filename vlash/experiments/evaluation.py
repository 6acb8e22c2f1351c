"""Virtual-time evaluation: tasks x modes x delays x policies x seeds, deterministic.

Each grid cell runs its episodes through :func:`vlash.virtual_time.run_episode`; cells may run
in parallel processes. The sim tasks, the scripted expert and the checkpoint loader are named
by the factory paths of :mod:`vlash.experiments.parts`. A checkpoint brings its own chunk size;
the cell's ``chunk_size`` is the scripted expert's.
"""

from __future__ import annotations

import functools
import math
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlash.experiments.parts import CHECKPOINT_POLICY, SIM_EXPERT, SIM_TASK
from vlash.factory import resolve
from vlash.scheduler import Mode, default_estimator, parse_mode
from vlash.virtual_time import RunConfig, run_episode, run_episodes_batched


@dataclass(frozen=True)
class Cell:
    """One point of the grid."""

    task: str
    mode: str
    delay: int
    policy: str  # "expert" or a checkpoint path
    seeds: tuple[int, ...]
    chunk_size: int = 50  # the scripted expert's; a checkpoint has its own
    execution_horizon: int | str | None = None  # K or "auto" (streaming); default: half the chunk (default_horizon)
    quantization: int = 1
    estimator: str | None = None  # vlash mode only; default: vlash.scheduler.default_estimator
    env_options: dict[str, Any] = field(default_factory=dict)
    batch: int = 1  # environments run in lockstep, their requests answered by one batched policy call
    video_episodes: int = 0  # MP4s of this many of the first seeds (run again one at a time, with a camera)
    video_dir: str | None = None  # where they go (vlash.experiments.videos names them)


SIM_ONLY_ESTIMATORS = ("oracle",)  # step a copy of the simulation itself: virtual-time evaluation only


def default_horizon(chunk_size: int) -> int:
    """The evaluation's execution horizon K when none is given: half the chunk (25 of 50)."""
    return max(1, chunk_size // 2)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a success rate (well-behaved at 0 and 1)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


MODE_ORDER = ("sync", "naive", "vlash", "rtc")  # the column order of every report


_CHECKPOINTS: dict[str, Any] = {}  # checkpoint -> loaded policy, per process: a worker loads each one once


def checkpoint_key(path: str) -> str:
    """What a checkpoint path names right now: a training run folder means the checkpoint its
    ``checkpoints/last`` points to, which moves when the run trains on (so the cache must follow it)."""
    last = os.path.join(path, "checkpoints", "last")
    return os.path.realpath(last if os.path.exists(last) else path)


def make_policy(cell: Cell, env) -> Any:
    """The scripted expert (with the cell's chunk size) or the checkpoint (with its own)."""
    if cell.policy == "expert":
        return resolve(SIM_EXPERT)(cell.task, chunk_size=cell.chunk_size)
    key = checkpoint_key(cell.policy)
    if key not in _CHECKPOINTS:  # run_episode resets the policy at every episode start
        _CHECKPOINTS[key] = resolve(CHECKPOINT_POLICY)(
            cell.policy, robot_features=getattr(env.unwrapped, "features", None)
        )
    return _CHECKPOINTS[key]


def reaction_steps(episodes: list) -> float | None:
    """Mean steps from a pad lighting to its touch, over the hit events (tasks that report them)."""
    gaps = [
        hit - lit
        for e in episodes
        for lit, hit in zip(e.final_info.get("pad_lit_step") or [], e.final_info.get("pad_hit_step") or [], strict=False)
        if hit >= 0
    ]
    return float(np.mean(gaps)) if gaps else None


def run_cell(cell: Cell) -> dict[str, Any]:
    """Run every seed of one cell (``cell.batch`` environments in lockstep when > 1); returns its result record."""
    mode = parse_mode(cell.mode)
    started = time.perf_counter()
    envs = [resolve(SIM_TASK)(cell.task, **cell.env_options) for _ in range(max(1, min(cell.batch, len(cell.seeds))))]
    try:
        policy = make_policy(cell, envs[0])
        if mode is Mode.RTC and not getattr(policy, "supports_rtc", False):
            raise ValueError(f"mode 'rtc' needs a policy that supports real-time chunking; {cell.policy!r} on "
                             f"{cell.task!r} does not (LeRobot's pi0, pi05 and smolvla do)")
        horizon = cell.execution_horizon or default_horizon(policy.chunk_size)  # the scheduler checks K <= H
        estimator = cell.estimator if mode is Mode.VLASH else None  # None: the scheduler's default rule
        estimator_name = estimator or default_estimator(mode, policy.action_kind)
        options = {"fps": getattr(envs[0].unwrapped, "fps", 30.0)} if estimator_name == "model" else {}
        config = RunConfig(
            mode=mode.value,
            delay_steps=cell.delay,
            execution_horizon=horizon,
            quantization=cell.quantization,
            estimator=estimator,
            estimator_options=options,
            estimator_sees_env=estimator_name in SIM_ONLY_ESTIMATORS,
        )
        if len(envs) > 1:
            episodes = run_episodes_batched(envs, policy, config, list(cell.seeds))
        else:
            episodes = [run_episode(envs[0], policy, config, seed=s) for s in cell.seeds]
    finally:
        for env in envs:
            env.close()
    videos = []
    if cell.video_episodes > 0 and cell.video_dir:
        from vlash.experiments.videos import record_videos

        videos = record_videos(cell, policy, config, functools.partial(resolve(SIM_TASK), cell.task), Path(cell.video_dir))
    wins = [e for e in episodes if e.success]
    low, high = wilson_interval(len(wins), len(episodes))
    extra = [e.final_info.get("tracking_error") for e in episodes if e.final_info.get("tracking_error") is not None]
    record = {
        "task": cell.task,
        "mode": cell.mode,
        "delay": cell.delay,
        "policy": cell.policy,
        "estimator": estimator_name,
        "quantization": cell.quantization,
        "chunk_size": policy.chunk_size,
        "execution_horizon": horizon,
        "episodes": len(episodes),
        "successes": len(wins),
        "success_rate": len(wins) / len(episodes) if episodes else 0.0,
        "success_ci95": [round(low, 4), round(high, 4)],
        "mean_steps": float(np.mean([e.steps for e in wins])) if wins else None,
        "stall_steps": float(np.mean([e.stall_steps for e in episodes])),
        "discontinuity": float(np.mean([e.mean_discontinuity for e in episodes])),
        "seconds": round(time.perf_counter() - started, 2),  # the cell's wall time: what a grid costs
        "seeds": [e.seed for e in episodes],
        "outcomes": [int(e.success) for e in episodes],  # per seed, in seed order: paired tests across modes
    }
    changes = [e.final_info.get("side_changes") for e in episodes if e.final_info.get("side_changes") is not None]
    if changes:
        record["strategy_change_rate"] = float(np.mean([c > 0 for c in changes]))
    if extra:
        record["tracking_error"] = float(np.mean(extra))
    reaction = reaction_steps(episodes)
    if reaction is not None:
        record["reaction_steps"] = reaction
    if videos:
        record["videos"] = videos
    return record



def _one_thread_per_worker() -> None:
    """Runs in each worker before torch is imported: parallel workers must not each spawn a thread per core."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def run_cells(cells: Sequence[Cell], workers: int = 1, done: Callable[[], None] | None = None,
              on_record: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run every cell (in ``workers`` spawned processes when > 1); records sorted by task, policy, delay, mode.

    ``done`` is called after each finished cell (a progress bar); ``on_record`` with each record as it
    arrives (to save it at once: a long run interrupted keeps its finished cells).
    """
    records = []

    def finished(record: dict[str, Any]) -> None:
        records.append(record)
        if on_record:
            on_record(record)
        if done:
            done()

    if workers > 1 and len(cells) > 1:
        with mp.get_context("spawn").Pool(workers, initializer=_one_thread_per_worker) as pool:
            for record in pool.imap_unordered(run_cell, cells):
                finished(record)
    else:
        for cell in cells:
            finished(run_cell(cell))
    order = {m: i for i, m in enumerate(MODE_ORDER)}
    records.sort(key=lambda r: (r["task"], r["policy"], r["delay"], order.get(r["mode"], len(order))))
    return records


def markdown_tables(records: list[dict[str, Any]]) -> str:
    """One table per task and policy: rows Δ, columns mode, cells success rate (mean steps of the successes)."""
    lines = []
    for task in sorted({r["task"] for r in records}):
        for policy in sorted({r["policy"] for r in records if r["task"] == task}):
            rows = [r for r in records if r["task"] == task and r["policy"] == policy]
            modes = sorted({r["mode"] for r in rows}, key=MODE_ORDER.index)
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


def success_curves(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """What :func:`plot_success` draws, per task: one curve per policy and mode (in report order).

    Each curve: ``label`` (mode, checkpoint name, episodes per point ``n``, and ``same as ...`` when an earlier
    curve of the panel has the same outcomes), ``x`` (the delays shifted by the curve's small offset, so that
    equal curves stay visible), ``y``, ``low`` and ``high`` (success % and its 95 % Wilson interval).
    """
    from vlash.experiments.plots import x_offsets

    out: dict[str, list[dict[str, Any]]] = {}
    modes = sorted({r["mode"] for r in records}, key=lambda m: (*MODE_ORDER, m).index(m))
    for task in sorted({r["task"] for r in records}):
        curves = []
        for p, policy in enumerate(sorted({r["policy"] for r in records if r["task"] == task})):
            for mode in modes:
                rows = sorted((r for r in records if r["task"] == task and r["mode"] == mode and r["policy"] == policy),
                              key=lambda r: r["delay"])
                if rows:
                    curves.append({"policy": policy, "policy_index": p, "mode": mode, "rows": rows})
        delays = [r["delay"] for c in curves for r in c["rows"]]
        seen: dict[tuple, str] = {}
        for curve, dx in zip(curves, x_offsets(len(curves), delays), strict=True):
            rows = curve.pop("rows")
            ns = sorted({r["episodes"] for r in rows})
            name = curve["mode"] if curve["policy"] == "expert" else f"{curve['mode']} ({Path(curve['policy']).name})"
            outcome = tuple((r["delay"], r["successes"], r["episodes"]) for r in rows)
            curve["same_as"] = seen.get(outcome)
            seen.setdefault(outcome, name)
            n = f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}–{ns[-1]}"
            same = f", same as {curve['same_as']}" if curve["same_as"] else ""
            curve.update(
                name=name, n=ns, label=f"{name} ({n} per point{same})", delays=[r["delay"] for r in rows],
                x=[r["delay"] + float(dx) for r in rows], y=[100 * r["success_rate"] for r in rows],
                low=[100 * r["success_ci95"][0] for r in rows], high=[100 * r["success_ci95"][1] for r in rows],
            )
        out[task] = curves
    return out


def plot_success(records: list[dict[str, Any]], path: Path) -> None:
    """Success rate vs delay, one panel per task, one curve per mode and policy (:func:`success_curves`): each
    point with its 95 % Wilson interval, n in the legend, a marker per mode (hollow when a curve repeats another).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = success_curves(records)
    markers = dict(zip(MODE_ORDER, ("s", "o", "^", "D"), strict=True))
    cols = min(3, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(max(7.0, 5.2 * cols), 0.6 + 4.2 * rows), squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    for ax, (task, curves) in zip(axes.ravel(), panels.items(), strict=False):
        for c in curves:
            yerr = [[y - lo for y, lo in zip(c["y"], c["low"], strict=True)],
                    [hi - y for y, hi in zip(c["y"], c["high"], strict=True)]]
            ax.errorbar(c["x"], c["y"], yerr=yerr,
                        marker=markers.get(c["mode"], "o"), ls=("-", "--", ":", "-.")[c["policy_index"] % 4],
                        capsize=3, ms=6, mfc="white" if c["same_as"] else None, label=c["label"])
        ax.set_xticks(sorted({d for c in curves for d in c["delays"]}))
        ax.set_title(task)
        ax.set_xlabel("delay Δ (control steps)")
        ax.set_ylabel("success rate (%)")
        ax.set_ylim(-5, 105)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Success rate vs inference delay Δ (virtual time)\nbars: 95 % Wilson interval; curves offset "
                 "slightly in Δ so that equal ones stay visible", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
