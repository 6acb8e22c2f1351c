"""The learned-policy study: does offset fine-tuning + ``vlash`` beat naive async for a *learned* policy?

Scripted experts plan from whatever state they are given and know the delay, so they say little about
VLASH's claim, which is about learned policies. This study trains small state-based ACT policies on
expert demonstrations and evaluates them under delay, all through the public commands:

1. ``vlash record`` expert demonstrations per task (seeds ``0..demo_episodes-1``);
2. ``vlash train --policy act`` per checkpoint spec (``--max-delay-steps`` 0 = plain behaviour cloning,
   >0 = VLASH's offset fine-tuning; optionally ``--state-source state``);
3. ``vlash eval`` on held-out seeds: sync, naive and vlash for every checkpoint at every delay (the
   plain checkpoint in vlash mode is the ablation the paper lacks: a future-state estimate without
   offset fine-tuning), then vlash with the ``model`` estimator instead of ``target``.

:func:`run_study` writes ``study.json``; :func:`study_values` gives the tables and computed verdicts that
fill the study section of ``results_template.md``, and :func:`plot_study` plots it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vlash.experiments.markdown import percent, table
from vlash.experiments.verdicts import BEATS, LOSES_TO, compare_success

MODES = ("sync", "naive", "vlash")


@dataclass
class StudyConfig:
    """Every knob of the study; the defaults are what ``docs/RESULTS.md`` reports."""

    tasks: tuple[str, ...] = ("track", "whack")
    demo_episodes: int = 40
    train_steps: int = 2000
    batch_size: int = 32
    chunk_size: int = 30
    execution_horizon: int = 15
    # per task, one spec per checkpoint: "Δmax" or "Δmax:state" (state input read from the recorded state
    # s_{t+δ} instead of the action a_{t+δ-1}); the first must be "0", the plain baseline
    checkpoints: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"track": ("0", "4", "4:state"), "whack": ("0", "4")}
    )
    delays: tuple[int, ...] = (0, 1, 2, 4, 8)
    episodes: int = 20
    eval_seed: int = 1000  # held out: demonstrations use seeds 0..demo_episodes-1
    train_seed: int = 0
    workers: int = 2

    @classmethod
    def quick(cls) -> StudyConfig:
        """A smoke-test configuration (a few minutes): one task, short training, few episodes."""
        return cls(tasks=("track",), demo_episodes=8, train_steps=200, checkpoints={"track": ("0", "4")}, delays=(0, 4),
                   episodes=4)


@dataclass
class CommandLog:
    """Every command run, how long it took and the machine load around it (for the write-up)."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def run(self, label: str, args: Sequence[str], *, cwd: Path | None = None) -> float:
        """Run ``vlash ARGS`` (as ``python -m vlash.cli``) with live output; raise on failure."""
        shown = "vlash " + shlex.join(list(args))
        print(f"\n>>> [{label}] {shown}", flush=True)
        load = os.getloadavg()[0]
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "vlash.cli", *args], cwd=cwd)
        seconds = time.monotonic() - start
        self.entries.append({"label": label, "command": shown, "seconds": round(seconds, 1), "rc": proc.returncode,
                             "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)})
        print(f"<<< [{label}] rc={proc.returncode} in {seconds:.0f} s", flush=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{shown} failed with exit code {proc.returncode}")
        return seconds

    def skipped(self, label: str, args: Sequence[str], shown: str | None = None) -> None:
        shown = shown or "vlash " + shlex.join(list(args))
        print(f"--- [{label}] reusing earlier output of: {shown}", flush=True)
        self.entries.append({"label": label, "command": shown, "seconds": None, "rc": 0, "reused": True})


@dataclass(frozen=True)
class Checkpoint:
    """One trained policy of the study, parsed from a spec such as ``"4"`` or ``"4:state"``."""

    max_delay: int
    state_source: str = "action"

    @classmethod
    def parse(cls, spec: str) -> Checkpoint:
        md, _, source = spec.partition(":")
        return cls(int(md), source or "action")

    @property
    def label(self) -> str:
        return f"Δmax={self.max_delay}" + (", state src" if self.state_source == "state" else "")

    @property
    def slug(self) -> str:
        return f"md{self.max_delay}" + ("_state" if self.state_source == "state" else "")

    @property
    def estimator(self) -> str:
        """The estimator that matches what the policy saw as future state in training."""
        return "model" if self.state_source == "state" else "target"


def _build(log: CommandLog, label: str, args: list[str], path: Path, done: Path, reuse: bool) -> None:
    """Run ``args`` to (re)build ``path`` unless ``reuse`` and ``done`` (its completion marker) exists."""
    if reuse and done.exists():
        log.skipped(label, args)
        return
    if path.exists():
        shutil.rmtree(path)
    log.run(label, args)


def run_study(work: Path, config: StudyConfig, log: CommandLog, reuse: bool = False) -> dict[str, Any]:
    """Run the whole study under ``work``; returns (and writes) ``work/study.json``."""
    work.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    training: dict[str, dict[str, Any]] = {}
    for task in config.tasks:
        data = work / "data" / task
        args = ["record", "--task", task, "--episodes", str(config.demo_episodes), "--seed", "0",
                "--out", str(data), "--no-progress"]
        _build(log, f"study: record {task}", args, data, data / "meta" / "info.json", reuse)
        ckpts: dict[str, Path] = {}
        for spec in config.checkpoints[task]:
            ck = Checkpoint.parse(spec)
            out = work / "ckpt" / f"{task}_{ck.slug}"
            args = ["train", "--dataset", str(data), "--policy", "act", "--chunk-size", str(config.chunk_size),
                    "--steps", str(config.train_steps), "--batch-size", str(config.batch_size),
                    "--max-delay-steps", str(ck.max_delay), "--state-source", ck.state_source,
                    "--seed", str(config.train_seed), "--save-every", "0", "--no-progress", "--out", str(out)]
            _build(log, f"study: train {task} {ck.label}", args, out, out / "train_summary.json", reuse)
            ckpts[ck.label] = out
            training[f"{task} {ck.label}"] = json.loads((out / "train_summary.json").read_text())
        labels = {str(path): label for label, path in ckpts.items()}
        policies = ",".join(str(p) for p in ckpts.values())
        common = ["--tasks", task, "--policies", policies, "--episodes", str(config.episodes),
                  "--seed", str(config.eval_seed), "--execution-horizon", str(config.execution_horizon),
                  "--workers", str(config.workers)]
        runs = [
            ("target", ["--modes", ",".join(MODES), "--delays", ",".join(map(str, config.delays))]),
            ("model", ["--modes", "vlash", "--estimator", "model", "--delays",
                       ",".join(str(d) for d in config.delays if d > 0) or "0"]),
        ]
        for name, extra in runs:
            out = work / "eval" / f"{task}_{name}"
            args = ["eval", *common, *extra, "--out", str(out)]
            _build(log, f"study: eval {task} ({name} estimator)", args, out, out / "results.json", reuse)
            for record in json.loads((out / "results.json").read_text()):
                record["checkpoint"] = labels[record["policy"]]
                records.append(record)
    study = {"config": asdict(config), "training": training, "records": records}
    (work / "study.json").write_text(json.dumps(study, indent=2) + "\n")
    return study


# ------------------------------------------------------------------------------------------ reporting
def checkpoints(study: dict[str, Any], task: str) -> list[Checkpoint]:
    return [Checkpoint.parse(spec) for spec in study["config"]["checkpoints"][task]]


Column = tuple[str, str, str, str]  # (header, checkpoint label, mode, estimator)


def variants(study: dict[str, Any], task: str) -> list[Column]:
    """The main table's columns for ``task``; each fine-tuned checkpoint runs vlash with its matching estimator."""
    base, *tuned = checkpoints(study, task)
    b = base.label
    cols = [("sync", b, "sync", "none"), ("naive", b, "naive", "none"),
            ("vlash, no offset FT, target est. (ablation)", b, "vlash", "target"),
            ("vlash, no offset FT, model est. (ablation)", b, "vlash", "model")]
    for ck in tuned:
        cols += [(f"naive, {ck.label}", ck.label, "naive", "none"),
                 (f"**VLASH** {ck.label}, {ck.estimator} est.", ck.label, "vlash", ck.estimator)]
    return cols


def find(records: list[dict], task: str, ckpt: str, mode: str, estimator: str, delay: int) -> dict | None:
    key = (task, ckpt, mode, estimator, delay)
    return next((r for r in records if (r["task"], r["checkpoint"], r["mode"], r["estimator"], r["delay"]) == key),
                None)


def _cell(r: dict | None, metric: str) -> str:
    if r is None or (metric != "success" and r.get(metric) is None):
        return "–"
    if metric == "success":
        lo, hi = r["success_ci95"]
        return f"{100 * r['success_rate']:.0f}% [{100 * lo:.0f}–{100 * hi:.0f}]"
    scale, digits = {"tracking_error": (100, 2), "discontinuity": (1, 3)}.get(metric, (1, 1))
    return f"{scale * r[metric]:.{digits}f}"


METRICS = {
    "success": "success rate [95% Wilson CI]",
    "tracking_error": "mean tip-to-target error (cm; success needs < 1.5 cm)",
    "mean_steps": "mean steps of the successful episodes (lower = faster)",
    "reaction_steps": "mean control steps from a pad lighting to its touch (30 Hz; lower = faster)",
    "discontinuity": "mean joint jump at chunk switches (rad; lower = smoother)",
}


def second_metric(task: str) -> str:
    return {"track": "tracking_error", "whack": "reaction_steps"}.get(task, "mean_steps")


def _grid(study: dict[str, Any], task: str, title: str, cols: list[Column], fmt) -> list[str]:
    lines = [f"**{task}: {title}**", "", "| Δ | " + " | ".join(c[0] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for d in study["config"]["delays"]:
        row = [fmt(find(study["records"], task, ck, mode, est, d)) for _, ck, mode, est in cols]
        lines.append(f"| {d} | " + " | ".join(row) + " |")
    return [*lines, ""]


def study_tables(study: dict[str, Any]) -> str:
    """Per task: success, its own metric and switch jumps (target estimator), then target vs model estimator."""
    lines: list[str] = []
    for task in study["config"]["tasks"]:
        cols, metric = variants(study, task), second_metric(task)
        for m in ("success", metric, "discontinuity"):
            lines += _grid(study, task, METRICS[m], cols, lambda r, m=m: _cell(r, m))
        est_cols = [(f"{ck.label}, {est}", ck.label, "vlash", est) for ck in checkpoints(study, task)
                    for est in ("target", "model")]
        lines += _grid(study, task, f"vlash mode, `target` vs `model` estimator: success · {METRICS[metric]}",
                       est_cols, lambda r, m=metric: "–" if r is None else f"{_cell(r, 'success').split()[0]} · "
                       f"{_cell(r, m)}")
    return "\n".join(lines)


def verdicts(study: dict[str, Any]) -> list[str]:
    """Computed sentences per task: the Δ=0 cost of fine-tuning, then per delay each variant vs plain naive."""
    records, out = study["records"], []
    for task in study["config"]["tasks"]:
        cks, metric = checkpoints(study, task), second_metric(task)
        base, tuned = cks[0], cks[1:]

        def show(r: dict | None, metric: str = metric) -> str:
            return "–" if r is None else f"{100 * r['success_rate']:.0f}% ({_cell(r, metric)})"

        out.append(f"- {task}, Δ=0 (no delay; the cost of offset fine-tuning): " + ", ".join(
            f"{c.label} {show(find(records, task, c.label, 'naive', 'none', 0))}" for c in cks) + ".")
        for d in [d for d in study["config"]["delays"] if d > 0]:
            n = find(records, task, base.label, "naive", "none", d)
            if n is None:
                continue
            parts = []
            for name, ck, est in [(f"VLASH {c.label}", c, c.estimator) for c in tuned] + [
                    ("ablation, target est.", base, "target"), ("ablation, model est.", base, "model")]:
                v = find(records, task, ck.label, "vlash", est, d)
                if v:
                    same = find(records, task, ck.label, "naive", "none", d) if ck is not base else None
                    extra = f" [naive with the same checkpoint {show(same)}]" if same else ""
                    parts.append(f"{name} {show(v)} {compare_success(v, n)} it{extra}")
            out.append(f"- {task}, Δ={d}: naive ({base.label}) {show(n)}; " + "; ".join(parts) + ".")
    return out


def headline(study: dict[str, Any], delay: int = 4) -> list[list[str]]:
    """Rows for the targets table: best VLASH vs naive (plain checkpoint) per task at ``delay``."""
    rows = []
    for task in study["config"]["tasks"]:
        base, *tuned = checkpoints(study, task)
        n = find(study["records"], task, base.label, "naive", "none", delay)
        vs = [v for c in tuned if (v := find(study["records"], task, c.label, "vlash", c.estimator, delay))]
        if n and vs:
            v = max(vs, key=lambda r: r["success_rate"])
            m = second_metric(task)
            rows.append([f"learned ACT, {task}, Δ={delay}: best VLASH vs naive success (paper, Kinetix: 81.7% vs "
                         "51.2%)", "VLASH > naive", f"{100 * v['success_rate']:.0f}% vs {100 * n['success_rate']:.0f}% "
                         f"({_cell(v, m)} vs {_cell(n, m)} {METRICS[m].split(' (')[0].removeprefix('mean ')})",
                         {BEATS: "**meets**", LOSES_TO: "**misses** (VLASH significantly lower)"}.get(
                             compare_success(v, n), "**misses** (difference within the 95% intervals)")])
    return rows


def plot_study(study: dict[str, Any], path: Path) -> None:
    """Success (top) and each task's own metric (bottom) vs delay, one line per table column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, delays = study["config"]["tasks"], study["config"]["delays"]
    fig, axes = plt.subplots(2, len(tasks), figsize=(6 * len(tasks), 7.5), squeeze=False)
    for col, task in enumerate(tasks):
        metric = second_metric(task)
        scale = 100.0 if metric == "tracking_error" else 1.0
        for label, ck, mode, est in variants(study, task):
            pts = [(d, r) for d in delays if (r := find(study["records"], task, ck, mode, est, d))]
            if not pts:
                continue
            label = label.replace("*", "")
            axes[0][col].plot([d for d, _ in pts], [100 * r["success_rate"] for _, r in pts], marker="o", label=label)
            ys = [(d, r[metric] * scale) for d, r in pts if r.get(metric) is not None]
            axes[1][col].plot([d for d, _ in ys], [y for _, y in ys], marker="o", label=label)
        axes[0][col].set_title(f"{task}: learned state-based ACT")
        axes[0][col].set_ylabel("success %")
        axes[0][col].set_ylim(-5, 105)
        axes[1][col].set_ylabel({"tracking_error": "tracking error (cm)", "reaction_steps": "pad lit → touch (steps)"}
                                .get(metric, metric))
        for ax in axes[:, col]:
            ax.set_xlabel("delay Δ (control steps)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def within(study: dict[str, Any]) -> list[str]:
    """Per fine-tuned checkpoint: vlash vs naive success with that same checkpoint, delay by delay."""
    out = []
    for task in study["config"]["tasks"]:
        for ck in checkpoints(study, task)[1:]:
            ds = [d for d in study["config"]["delays"] if d > 0]
            v = [find(study["records"], task, ck.label, "vlash", ck.estimator, d) for d in ds]
            n = [find(study["records"], task, ck.label, "naive", "none", d) for d in ds]
            pct = lambda rs: "/".join("–" if r is None else f"{100 * r['success_rate']:.0f}" for r in rs)  # noqa: E731
            wins = sum(1 for a, b in zip(v, n, strict=True) if a and b and a["success_rate"] > b["success_rate"])
            out.append(f"- {task}, {ck.label}, Δ={'/'.join(map(str, ds))}: vlash {pct(v)}% vs naive {pct(n)}% "
                       f"(vlash higher at {wins} of {len(ds)} delays)")
    return out


def _positive_delays(study: dict[str, Any]) -> list[int]:
    return [d for d in study["config"]["delays"] if d > 0]


def vlash_wins(study: dict[str, Any]) -> list[str]:
    """Where an offset-fine-tuned checkpoint in vlash mode beats naive with the plain checkpoint (95% intervals apart)."""
    out = []
    for task in study["config"]["tasks"]:
        base, *tuned = checkpoints(study, task)
        for d in _positive_delays(study):
            n = find(study["records"], task, base.label, "naive", "none", d)
            for ck in tuned:
                v = find(study["records"], task, ck.label, "vlash", ck.estimator, d)
                if n and v and compare_success(v, n) == BEATS:
                    out.append(f"{task} {ck.label} at Δ={d}")
    return out


def _mean_success(records: list[dict | None]) -> float | None:
    rates = [r["success_rate"] for r in records if r is not None]
    return sum(rates) / len(rates) if rates else None


def ablation_estimators(study: dict[str, Any]) -> str:
    """Per task: the plain checkpoint's mean vlash-mode success over Δ>0 with the ``target`` and ``model`` estimators."""
    parts = []
    for task in study["config"]["tasks"]:
        base = checkpoints(study, task)[0]
        means = [_mean_success([find(study["records"], task, base.label, "vlash", est, d) for d in _positive_delays(study)])
                 for est in ("target", "model")]
        parts.append(f"{task} {percent(means[0])} vs {percent(means[1])}")
    return "; ".join(parts)


def cost_at_zero(study: dict[str, Any]) -> tuple[str, bool]:
    """Δ=0 naive success of every checkpoint per task, and whether each fine-tuned one is below the plain one."""
    parts, costs = [], True
    for task in study["config"]["tasks"]:
        cks = checkpoints(study, task)
        rs = [find(study["records"], task, c.label, "naive", "none", 0) for c in cks]
        parts.append(f"{task} " + ", ".join(f"{c.label} {percent(r['success_rate'] if r else None)}"
                                            for c, r in zip(cks, rs, strict=True)))
        base = rs[0]
        costs = costs and base is not None and all(r is not None and r["success_rate"] < base["success_rate"]
                                                   for r in rs[1:])
    return "; ".join(parts), costs


def study_values(study: dict[str, Any], image: str | None = None) -> dict[str, Any]:
    """The study section's placeholders and flags in ``results_template.md``."""
    c = study["config"]
    rows = [[name, f"{t['steps']}", f"{t['seconds']:.0f}", f"{t['steps_per_s']:.1f}", f"{t['final_loss']:.4f}"]
            for name, t in study["training"].items()]
    wins = vlash_wins(study)
    cost, costs = cost_at_zero(study)
    return {
        "study": True,
        "study_tasks": ", ".join(c["tasks"]),
        "demo_episodes": c["demo_episodes"],
        "demo_last_seed": c["demo_episodes"] - 1,
        "study_chunk_size": c["chunk_size"],
        "train_steps": c["train_steps"],
        "batch_size": c["batch_size"],
        "train_seed": c["train_seed"],
        "study_checkpoints": "; ".join(f"{t}: " + ", ".join(Checkpoint.parse(x).label for x in specs)
                                       for t, specs in c["checkpoints"].items() if t in c["tasks"]),
        "eval_first_seed": c["eval_seed"],
        "eval_last_seed": c["eval_seed"] + c["episodes"] - 1,
        "study_episodes": c["episodes"],
        "study_horizon": c["execution_horizon"],
        "study_delays": list(c["delays"]),
        "training_table": "\n".join(table(["checkpoint", "steps", "seconds", "steps/s", "final loss"], rows)),
        "study_tables": study_tables(study),
        "study_verdicts": "\n".join(verdicts(study)),
        "study_figure": f"![learned-policy study]({image})\n" if image else "",
        "study_naive_unbeaten": not wins,
        "study_vlash_wins": "; ".join(wins),
        "study_ablation_estimators": ablation_estimators(study),
        "study_cost_at_zero": cost,
        "study_ft_costs": costs,
        "study_within": "\n".join(within(study)),
    }
