"""The powered accuracy study (``vlash study``): where does future-state conditioning beat naive async?

The configuration is fixed in advance in ``docs/STUDY_PLAN.md``; :class:`StudyConfig`'s defaults are
exactly that plan. Steps, all through the public commands or the evaluation layer:

1. ``vlash record`` noisy, multimodal demonstrations (per-episode strategy, N(0, σ) action noise);
2. ``vlash train`` each policy (Diffusion and ACT, plain and with offsets);
3. the quality gate: sync at Δ = 0 on held-out gate seeds; a policy below it trains on once, to twice its steps;
4. the grid (modes x Δ x K, the same seeds in every cell) in virtual time, batched, each cell saved to
   ``cells.jsonl`` as it finishes, so ``--resume`` continues an interrupted run.

Statistics and the figure are :mod:`vlash.experiments.accuracy_report`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vlash.experiments.evaluation import Cell, run_cells
from vlash.experiments.study import CommandLog

STUDY_FILE = "accuracy_study.json"
CELLS_FILE = "cells.jsonl"
STARTED_FILE = "started.json"  # when the study first started (wall clock), for its total wall time


@dataclass(frozen=True)
class PolicySpec:
    """One trained policy of the study."""

    kind: str  # a LeRobot policy type: "diffusion" or "act"
    max_delay: int  # 0: plain behaviour cloning; > 0: VLASH offsets δ ~ U{0..max_delay}
    steps: int

    @property
    def label(self) -> str:
        return f"{self.kind} " + ("plain" if self.max_delay == 0 else f"offsets Δmax={self.max_delay}")

    @property
    def slug(self) -> str:
        return f"{self.kind}_md{self.max_delay}"


def _policies() -> tuple[PolicySpec, ...]:
    # the primary comparison's policy first, then the cheap ACT pair, the plain Diffusion last (the
    # dearest to train; see the plan's amendment 1): each is trained, gated and evaluated before the next
    return (PolicySpec("diffusion", 4, 6000), PolicySpec("act", 4, 4000),
            PolicySpec("act", 0, 4000), PolicySpec("diffusion", 0, 6000))


@dataclass
class StudyConfig:
    """Every knob of the study; the defaults are ``docs/STUDY_PLAN.md``."""

    task: str = "detour"
    demo_episodes: int = 100
    action_noise: float = 0.05  # radians, added to every executed action while recording
    strategy: str = "random"
    policies: tuple[PolicySpec, ...] = field(default_factory=_policies)
    batch_size: int = 64
    chunk_size: int = 8  # ACT's; the Diffusion preset's n_action_steps is 8 too
    state_source: str = "state"
    gate_seed: int = 5000
    gate_episodes: int = 100
    gate: float = 0.85
    modes: tuple[str, ...] = ("sync", "naive", "vlash:target", "vlash:model", "vlash:oracle")
    delays: tuple[int, ...] = (0, 1, 2, 3, 4)
    horizons: tuple[int | str, ...] = ("max", 4)  # "max": K = max(Δ, 1); an int: that K
    episodes: int = 200
    eval_seed: int = 10000
    batch: int = 50  # environments in lockstep per cell
    workers: int = 2
    train_seed: int = 0
    retrain: bool = True  # below the gate: train on once to twice the steps

    @classmethod
    def quick(cls) -> StudyConfig:
        """A smoke test (a couple of minutes): tiny data, a few training steps of a small ACT, a small grid."""
        return cls(demo_episodes=3, policies=(PolicySpec("act", 2, 10),), batch_size=8, gate_episodes=2,
                   modes=("sync", "naive", "vlash:oracle"), delays=(0, 2), horizons=("max",), episodes=2, batch=2,
                   workers=1, retrain=False)


def horizon_of(spec: int | str, delay: int) -> int:
    """K for a horizon spec at delay Δ: ``"max"`` is the back-to-back K = max(Δ, 1)."""
    return max(delay, 1) if spec == "max" else int(spec)


def split_mode(mode: str) -> tuple[str, str | None]:
    """``"vlash:oracle"`` -> ("vlash", "oracle"); ``"naive"`` -> ("naive", None)."""
    name, _, estimator = mode.partition(":")
    return name, estimator or None


def grid(config: StudyConfig, checkpoint: str) -> list[Cell]:
    """The cells of one policy: Δ = 0 runs sync only (every mode is the same schedule there), K deduplicated."""
    seeds = tuple(range(config.eval_seed, config.eval_seed + config.episodes))
    cells = []
    for delay in config.delays:
        for k in sorted({horizon_of(h, delay) for h in config.horizons}):
            for mode in config.modes:
                name, estimator = split_mode(mode)
                if delay == 0 and name != "sync":
                    continue
                cells.append(Cell(config.task, name, delay, checkpoint, seeds, execution_horizon=k,
                                  estimator=estimator, batch=config.batch))
    return cells


def cell_key(task: str, policy: str, mode: str, estimator: str | None, delay: int, horizon: int) -> str:
    return f"{task}|{policy}|{mode}|{estimator}|{delay}|{horizon}"


def record_key(record: dict[str, Any]) -> str:
    estimator = record["estimator"] if record["mode"] == "vlash" else None
    return cell_key(record["task"], record["policy"], record["mode"], estimator, record["delay"],
                    record["execution_horizon"])


def _cell_key(cell: Cell) -> str:
    return cell_key(cell.task, cell.policy, cell.mode, cell.estimator, cell.delay, int(cell.execution_horizon or 0))


def _train_args(config: StudyConfig, spec: PolicySpec, data: Path, out: Path, steps: int, resume: bool) -> list[str]:
    args = ["train", "--dataset", str(data), "--policy", spec.kind, "--preset", "small", "--steps", str(steps),
            "--batch-size", str(config.batch_size), "--max-delay-steps", str(spec.max_delay),
            "--state-source", config.state_source, "--seed", str(config.train_seed), "--save-every", "1000",
            "--no-progress", "--out", str(out)]
    if spec.kind == "act":
        args += ["--chunk-size", str(config.chunk_size)]
    return args + (["--resume"] if resume else [])


def _gate(config: StudyConfig, checkpoint: Path) -> dict[str, Any]:
    seeds = tuple(range(config.gate_seed, config.gate_seed + config.gate_episodes))
    cell = Cell(config.task, "sync", 0, str(checkpoint), seeds, execution_horizon=1,
                batch=min(config.batch, len(seeds)))
    record = run_cells([cell])[0]
    return {"success_rate": record["success_rate"], "episodes": record["episodes"],
            "passed": record["success_rate"] >= config.gate}


def _trained(out: Path) -> dict[str, Any]:
    return json.loads((out / "train_summary.json").read_text())


def _record(work: Path, config: StudyConfig, log: CommandLog) -> Path:
    data = work / "data"
    if not (data / "meta" / "info.json").exists():
        log.run("study: record", ["record", "--task", config.task, "--episodes", str(config.demo_episodes),
                                  "--seed", "0", "--strategy", config.strategy, "--action-noise",
                                  str(config.action_noise), "--chunk-size", str(config.chunk_size),
                                  "--out", str(data), "--no-progress"])
    return data


def prepare_policy(work: Path, data: Path, config: StudyConfig, spec: PolicySpec, log: CommandLog) -> dict[str, Any]:
    """Train one policy and run its quality gate; each finished step is kept in ``study_gate.json``.

    The file is written after the first gate (``complete`` false while a retraining is due), so an
    interrupted study resumes where it stopped and never trains past the plan's twice the steps.
    """
    out = work / "ckpt" / spec.slug
    info_file = out / "study_gate.json"
    info = _read_json(info_file)
    if info is None:
        if not (out / "train_summary.json").exists():
            cut_short = (out / "checkpoints" / "last").exists()  # a run interrupted after a save: continue it
            if out.exists() and not cut_short:
                shutil.rmtree(out)
            log.run(f"study: train {spec.label}", _train_args(config, spec, data, out, spec.steps, cut_short))
        info = {"label": spec.label, "runs": [{**_trained(out), "gate": _gate(config, out)}], "complete": False}
        info["complete"] = info["runs"][0]["gate"]["passed"] or not config.retrain
        info_file.write_text(json.dumps(info, indent=2) + "\n")
    if not info.get("complete", True):  # files of earlier versions have no flag: they were written when done
        if _trained(out)["steps"] < 2 * spec.steps:
            log.run(f"study: train {spec.label} on (below the gate)",
                    _train_args(config, spec, data, out, 2 * spec.steps, True))
        info["runs"].append({**_trained(out), "gate": _gate(config, out)})
        info["complete"] = True
        info_file.write_text(json.dumps(info, indent=2) + "\n")
    return info


def run_study(work: Path, config: StudyConfig, log: CommandLog,
              progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run (or resume) the whole study under ``work``; returns and writes ``work/accuracy_study.json``.

    Policy by policy (train, gate, its grid), so a run cut short leaves whole policies' results.
    """
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if not (work / STARTED_FILE).exists():
        (work / STARTED_FILE).write_text(json.dumps({"epoch": time.time(), "at": time.strftime("%Y-%m-%d %H:%M:%S")}))
    data = _record(work, config, log)
    cells_file = work / CELLS_FILE
    done = {record_key(r): r for r in _read_cells(cells_file)}
    total = len(config.policies) * len(grid(config, "-"))
    training: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    finished = sum(1 for spec in config.policies for c in grid(config, str(work / "ckpt" / spec.slug))
                   if _cell_key(c) in done)

    def save(record: dict[str, Any]) -> None:
        nonlocal finished
        with cells_file.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        done[record_key(record)] = record
        finished += 1
        if progress:
            progress(finished, total)

    if progress:
        progress(finished, total)
    for spec in config.policies:
        training[spec.label] = prepare_policy(work, data, config, spec, log)
        cells = grid(config, str(work / "ckpt" / spec.slug))
        run_cells([c for c in cells if _cell_key(c) not in done], config.workers, on_record=save)
        records += [{**done[_cell_key(c)], "checkpoint": spec.label} for c in cells]
    previous = _read_json(work / STUDY_FILE) or {}
    earlier = 0.0 if previous.get("snapshot") else previous.get("wall_s", {}).get("total", 0.0)
    study = _summary(config, training, records, earlier + round(time.monotonic() - started, 1), log.entries)
    (work / STUDY_FILE).write_text(json.dumps(study, indent=2) + "\n")
    return study


def snapshot(work: Path, config: StudyConfig) -> dict[str, Any]:
    """What a running or interrupted study has finished, in ``accuracy_study.json``'s shape; runs nothing.

    Policies whose gate has run are listed with their finished cells; the wall time is the time since
    the study first started (``started.json``), pauses included.
    """
    done = {record_key(r): r for r in _read_cells(work / CELLS_FILE)}
    training: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    for spec in config.policies:
        info = _read_json(work / "ckpt" / spec.slug / "study_gate.json")
        if info is None:
            continue
        training[spec.label] = info
        cells = grid(config, str(work / "ckpt" / spec.slug))
        records += [{**done[_cell_key(c)], "checkpoint": spec.label} for c in cells if _cell_key(c) in done]
    started = (_read_json(work / STARTED_FILE) or {}).get("epoch", time.time())
    study = _summary(config, training, records, round(time.time() - started, 1), [])
    study["snapshot"] = True
    return study


def _summary(config: StudyConfig, training: dict[str, Any], records: list[dict[str, Any]], wall_total: float,
             commands: list[Any]) -> dict[str, Any]:
    return {
        "config": asdict(config),
        "training": training,
        "records": records,
        "wall_s": {"total": wall_total,
                   "cells_s": round(sum(r.get("seconds", 0.0) for r in records), 1),
                   "training_s": round(sum(run.get("seconds", 0.0) for t in training.values() for run in t["runs"]),
                                       1)},
        "commands": commands,
    }


def _read_cells(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by an interrupted run: that cell runs again
            continue
    return records


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
