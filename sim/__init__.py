"""MuJoCo SO-101 tasks, scripted experts, cameras and the ``model`` and (sim-only) ``oracle`` future-state estimators.

Importing ``sim`` registers the gymnasium ids ``vlash/<task>-v0`` of :data:`TASKS` (reach, whack,
pick_place, track, whack_fast, intercept, detour); it builds no model and opens no GL context. The ``model``
and ``oracle`` future-state estimators are declared as entry points (``vlash.estimators`` in
pyproject.toml), so they resolve by name without importing ``sim`` first. ``oracle`` is SIM-ONLY: it
steps a copy of the live simulation (``make_estimator("oracle", env=env)``, virtual-time evaluation).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before anything imports mujoco; rendering is headless

import gymnasium as gym  # noqa: E402

TASKS = ("reach", "whack", "pick_place", "track", "whack_fast", "intercept", "detour")
_ENTRY_POINTS = {
    "reach": "sim.tasks.reach:ReachEnv",
    "whack": "sim.tasks.whack:WhackEnv",
    "pick_place": "sim.tasks.pick_place:PickPlaceEnv",
    "track": "sim.tasks.track:TrackEnv",
    "whack_fast": "sim.tasks.whack:WhackFastEnv",
    "intercept": "sim.tasks.intercept:InterceptEnv",
    "detour": "sim.tasks.detour:DetourEnv",
}


def env_id(name: str) -> str:
    """The gymnasium id of a task's short name (``"reach"`` -> ``"vlash/reach-v0"``)."""
    if name not in _ENTRY_POINTS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return f"vlash/{name}-v0"


def make_task(name: str, **kwargs) -> gym.Env:
    """Create a task environment by short name; kwargs: cameras, image_size, fps, max_steps, render_mode, ..."""
    return gym.make(env_id(name), disable_env_checker=True, **kwargs)


def _register() -> None:
    for name, entry in _ENTRY_POINTS.items():
        if env_id(name) not in gym.registry:
            gym.register(id=env_id(name), entry_point=entry)


def bench_estimators(*args, **kwargs) -> dict[str, float]:
    """RMS error of the ``none``/``target``/``model`` estimators; see :func:`sim.bench.bench_estimators`."""
    from sim.bench import bench_estimators as bench

    return bench(*args, **kwargs)


def make_expert(task: str, chunk_size: int = 50, **kwargs):
    """The scripted chunk planner of a task; see :func:`sim.experts.make_expert`."""
    from sim.experts import make_expert as make

    return make(task, chunk_size=chunk_size, **kwargs)


_register()

__all__ = ["TASKS", "bench_estimators", "env_id", "make_expert", "make_task"]
