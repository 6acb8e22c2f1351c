"""gymnasium conventions: ``check_env`` passes on every task, and vector envs work (spawn) or fail clearly (fork)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("task", sim.TASKS)
def test_check_env_passes(task):
    env = sim.make_task(task, cameras=("front",), image_size=16, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # advice only: unnormalised action bounds, infinite state bounds
        check_env(env.unwrapped)  # reset/step determinism (info included), spaces, render, close twice
    env.close()


def test_track_info_is_none_until_defined_then_a_number():
    env = sim.make_task("track", max_steps=40)
    obs, info = env.reset(seed=0)
    assert info["distance"] is None and info["tracking_error"] is None
    obs, *_, info = env.step(obs["state"])
    assert info["distance"] > 0 and info["tracking_error"] is None  # still inside the settle second
    for _ in range(39):
        obs, *_, info = env.step(obs["state"])
    assert np.isfinite(info["tracking_error"]) and info["tracking_error"] > 0
    env.close()


def test_async_vector_env_with_spawn_steps_and_returns_images():
    env = sim.make_task("reach", cameras=("front",), image_size=16)  # this process has rendered (EGL) first
    obs, _ = env.reset(seed=0)
    vec = gym.vector.AsyncVectorEnv([lambda: sim.make_task("reach", cameras=("front",), image_size=16)] * 2,
                                    context="spawn")
    try:
        batch, _ = vec.reset(seed=[0, 1])
        assert batch["images"]["front"].shape == (2, 16, 16, 3) and batch["images"]["front"].dtype == np.uint8
        np.testing.assert_array_equal(batch["images"]["front"][0], obs["images"]["front"])  # same seed, same frame
        batch, reward, terminated, truncated, info = vec.step(batch["state"])
        assert batch["images"]["front"].shape == (2, 16, 16, 3) and reward.shape == (2,)
        assert list(info["step"]) == [1, 1]
    finally:
        vec.close()
        env.close()


def test_make_vector_task_uses_spawn():
    vec = sim.make_vector_task("reach", 2, cameras=("wrist",), image_size=16)
    try:
        assert vec.context == "spawn"
        batch, _ = vec.reset(seed=0)
        assert batch["images"]["wrist"].shape == (2, 16, 16, 3)
    finally:
        vec.close()


FORK_AFTER_RENDER = textwrap.dedent("""
    import gymnasium as gym
    import sim
    env = sim.make_task("reach", cameras=("front",), image_size=16)
    env.reset(seed=0)  # the parent renders: EGL is initialised here
    vec = gym.vector.AsyncVectorEnv([lambda: sim.make_task("reach", cameras=("front",), image_size=16)] * 2,
                                    context="fork")
    vec.reset(seed=0)
    print("RESET DONE")
""")


def _run_bounded(code: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; on a hang kill its whole process group (workers included)."""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env={**os.environ, "MUJOCO_GL": "egl"})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the vector env hung instead of failing")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_fork_after_render_fails_with_a_clear_error_instead_of_hanging():
    result = _run_bounded(FORK_AFTER_RENDER)
    assert result.returncode != 0 and "RESET DONE" not in result.stdout
    assert 'RuntimeError: this process was forked after its parent rendered a camera' in result.stderr
    assert 'context="spawn"' in result.stderr


def test_fork_without_cameras_in_the_child_still_works():
    code = FORK_AFTER_RENDER.replace('lambda: sim.make_task("reach", cameras=("front",), image_size=16)',
                                     'lambda: sim.make_task("reach")')
    result = _run_bounded(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "RESET DONE" in result.stdout


def test_check_render_safe_refuses_only_after_a_fork_from_a_rendering_parent(monkeypatch):
    sim.check_render_safe(("front",), "rgb_array")  # not forked: fine
    monkeypatch.setattr(sim, "_FORKED_AFTER_EGL", True)
    sim.check_render_safe((), None)  # no cameras, no render: fine
    with pytest.raises(RuntimeError, match='context="spawn"'):
        sim.check_render_safe(("front",), None)
    with pytest.raises(RuntimeError, match='context="spawn"'):
        gym.make(sim.env_id("reach"), render_mode="rgb_array")
