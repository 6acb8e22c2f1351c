"""MuJoCo SO-101 tasks, scripted experts, cameras and the ``model`` and (sim-only) ``oracle`` future-state estimators.

Importing ``sim`` registers the gymnasium ids ``vlash/<task>-v0`` of :data:`TASKS` (reach, whack,
pick_place, track, whack_fast, intercept, detour); it builds no model and opens no GL context. The ``model``
and ``oracle`` future-state estimators are declared as entry points (``vlash.estimators`` in
pyproject.toml), so they resolve by name without importing ``sim`` first. ``oracle`` is SIM-ONLY: it
steps a copy of the live simulation (``make_estimator("oracle", env=env)``, virtual-time evaluation).

Vector envs: a process forked after its parent rendered a camera (EGL) hangs on its first frame, so a task
with cameras (or ``render_mode="rgb_array"``) refuses to be created there (``RuntimeError`` naming
``context="spawn"``). Use :func:`make_vector_task`, or ``gymnasium.vector.AsyncVectorEnv(fns,
context="spawn")``; camera-less tasks work under fork too.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Sequence

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


def make_vector_task(name: str, num_envs: int, **kwargs) -> gym.vector.AsyncVectorEnv:
    """``num_envs`` copies of a task in worker processes started with ``context="spawn"`` (fork hangs once
    this process has rendered a camera); kwargs as for :func:`make_task`."""
    env_id(name)  # an unknown task fails here, not in a worker
    fns = [functools.partial(make_task, name, **kwargs) for _ in range(int(num_envs))]
    return gym.vector.AsyncVectorEnv(fns, context="spawn")


_FORKED_AFTER_EGL = False  # set in a process forked from one whose EGL display was initialised


def _note_fork_in_child() -> None:
    global _FORKED_AFTER_EGL
    egl = sys.modules.get("mujoco.egl")
    if egl is not None and getattr(egl, "EGL_DISPLAY", None) is not None:
        _FORKED_AFTER_EGL = True


def check_render_safe(cameras: Sequence[str] = (), render_mode: str | None = None) -> None:
    """Raise ``RuntimeError`` if this process would hang rendering: it was forked after its parent rendered."""
    if _FORKED_AFTER_EGL and (tuple(cameras) or render_mode is not None):
        raise RuntimeError(
            "this process was forked after its parent rendered a camera (EGL), and rendering here would hang: "
            'start vector envs with gymnasium.vector.AsyncVectorEnv(env_fns, context="spawn") '
            "or sim.make_vector_task()")


def _create(entry: str, **kwargs) -> gym.Env:
    """A gymnasium entry point: :func:`check_render_safe`, then the task class at ``module:Class``."""
    check_render_safe(kwargs.get("cameras", ()), kwargs.get("render_mode"))
    module, cls = entry.split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)


def _register() -> None:
    os.register_at_fork(after_in_child=_note_fork_in_child)
    for name, entry in _ENTRY_POINTS.items():
        if env_id(name) not in gym.registry:
            gym.register(id=env_id(name), entry_point=functools.partial(_create, entry))


def bench_estimators(*args, **kwargs) -> dict[str, float]:
    """RMS error of the ``none``/``target``/``model`` estimators; see :func:`sim.bench.bench_estimators`."""
    from sim.bench import bench_estimators as bench

    return bench(*args, **kwargs)


def make_expert(task: str, chunk_size: int = 50, **kwargs):
    """The scripted chunk planner of a task; see :func:`sim.experts.make_expert`."""
    from sim.experts import make_expert as make

    return make(task, chunk_size=chunk_size, **kwargs)


_register()

__all__ = ["TASKS", "bench_estimators", "check_render_safe", "env_id", "make_expert", "make_task", "make_vector_task"]
