"""Virtual-time evaluation: tasks x modes x delays x policies x seeds, deterministic.

Each grid cell runs its episodes through :func:`vlash.virtual_time.run_episode`; cells may run
in parallel processes. Environments and policies are named by factory paths (data), so the
core never imports a concrete simulator or policy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from vlash.factory import resolve
from vlash.virtual_time import RunConfig, run_episode

ENV_FACTORY = "sim:make_task"
EXPERT_FACTORY = "sim.experts:make_expert"
CHECKPOINT_FACTORY = "policies.lerobot_adapter:load_policy"


@dataclass(frozen=True)
class Cell:
    """One point of the grid."""

    task: str
    mode: str
    delay: int
    policy: str  # "expert" or a checkpoint path
    seeds: tuple[int, ...]
    chunk_size: int = 50
    execution_horizon: int | None = None
    quantization: int = 1
    estimator: str | None = None
    env_options: dict[str, Any] = field(default_factory=dict)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a success rate (well-behaved at 0 and 1)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


_CHECKPOINTS: dict[str, Any] = {}  # path -> loaded policy, per process: a worker loads each checkpoint once


def make_policy(cell: Cell, env):
    if cell.policy == "expert":
        return resolve(EXPERT_FACTORY)(cell.task, chunk_size=cell.chunk_size)
    if cell.policy not in _CHECKPOINTS:  # run_episode resets the policy at every episode start
        _CHECKPOINTS[cell.policy] = resolve(CHECKPOINT_FACTORY)(
            cell.policy, robot_features=getattr(env.unwrapped, "features", None)
        )
    return _CHECKPOINTS[cell.policy]


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
    """Run every seed of one cell; returns its result record."""
    env = resolve(ENV_FACTORY)(cell.task, **cell.env_options)
    policy = make_policy(cell, env)
    if cell.mode == "rtc" and not getattr(policy, "supports_rtc", False):
        env.close()
        raise ValueError(f"mode 'rtc' needs a policy that supports real-time chunking; {cell.policy!r} on "
                         f"{cell.task!r} does not (LeRobot's pi0, pi05 and smolvla do)")
    estimator = cell.estimator if cell.mode == "vlash" else None
    options = {}
    if estimator == "model":
        options = {"fps": getattr(env.unwrapped, "fps", 30.0)}
    config = RunConfig(
        mode=cell.mode,
        delay_steps=cell.delay,
        execution_horizon=cell.execution_horizon,
        quantization=cell.quantization,
        estimator=estimator,
        estimator_options=options,
    )
    episodes = [run_episode(env, policy, config, seed=s) for s in cell.seeds]
    env.close()
    wins = [e for e in episodes if e.success]
    low, high = wilson_interval(len(wins), len(episodes))
    extra = [e.final_info.get("tracking_error") for e in episodes if e.final_info.get("tracking_error") is not None]
    record = {
        "task": cell.task,
        "mode": cell.mode,
        "delay": cell.delay,
        "policy": cell.policy,
        "estimator": estimator or ("target" if cell.mode == "vlash" else "none"),
        "quantization": cell.quantization,
        "execution_horizon": cell.execution_horizon or cell.chunk_size,
        "episodes": len(episodes),
        "successes": len(wins),
        "success_rate": len(wins) / len(episodes) if episodes else 0.0,
        "success_ci95": [round(low, 4), round(high, 4)],
        "mean_steps": float(np.mean([e.steps for e in wins])) if wins else None,
        "stall_steps": float(np.mean([e.stall_steps for e in episodes])),
        "discontinuity": float(np.mean([e.mean_discontinuity for e in episodes])),
    }
    if extra:
        record["tracking_error"] = float(np.mean(extra))
    reaction = reaction_steps(episodes)
    if reaction is not None:
        record["reaction_steps"] = reaction
    return record


def cell_dict(cell: Cell) -> dict[str, Any]:
    return asdict(cell)
