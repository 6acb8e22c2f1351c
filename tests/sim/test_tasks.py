"""The four task environments: registration, observation layout, servo lag, bad actions, episode ends."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import sim
from sim.arm import JOINT_NAMES
from vlash.contracts import RobotFeatures


@pytest.mark.parametrize("task", sim.TASKS)
def test_task_resets_and_steps_with_documented_layout(task):
    env = sim.make_task(task, max_steps=5)
    obs, info = env.reset(seed=3)
    u = env.unwrapped
    assert obs["state"].shape == (6,) and obs["state"].dtype == np.float32
    assert obs["velocity"].shape == (6,) and obs["velocity"].dtype == np.float32
    assert obs["task_state"].shape == (len(u.task_state_names),) and obs["task_state"].dtype == np.float32
    assert "images" not in obs and info["success"] is False
    assert isinstance(u.features, RobotFeatures) and u.features.joint_names == JOINT_NAMES
    assert np.all(np.array(u.features.action_low) < np.array(u.features.action_high))
    assert u.task_description and u.fps == (50.0 if task in ("whack_fast", "intercept") else 30.0)
    assert u.arm_model_path.endswith(".xml")
    for _ in range(5):
        obs, reward, terminated, truncated, info = env.step(obs["state"])
        assert isinstance(info["success"], bool) and isinstance(reward, float)
        assert np.all(np.isfinite(obs["state"]))
    assert truncated or terminated  # max_steps=5
    env.close()


def test_gym_ids_are_registered_on_import():
    for task in sim.TASKS:
        assert sim.env_id(task) in gym.registry
    env = gym.make("vlash/reach-v0", disable_env_checker=True)
    assert env.unwrapped.task_name == "reach"
    env.close()


def test_unknown_task_lists_known_names():
    with pytest.raises(ValueError) as err:
        sim.make_task("juggle")
    for task in sim.TASKS:
        assert task in str(err.value)


def test_same_seed_same_episode_different_seed_different_task():
    env = sim.make_task("pick_place")
    a = env.reset(seed=7)[0]["task_state"]
    b = env.reset(seed=7)[0]["task_state"]
    c = env.reset(seed=8)[0]["task_state"]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[:3], c[:3])
    env.close()


def test_servos_lag_a_step_target():
    env = sim.make_task("reach")
    obs, _ = env.reset(seed=0)
    jump = np.array([0.3, 0.2, -0.2, -0.2, 0.3, 0.3], dtype=np.float32)
    target = obs["state"] + jump
    obs, *_ = env.step(target)
    remaining = np.abs(target - obs["state"])  # still well short of the target after one control period
    assert np.all(remaining[:5] > 0.3 * np.abs(jump[:5]))
    for _ in range(15):
        obs, *_ = env.step(target)
    assert np.max(np.abs(obs["state"][:5] - target[:5])) < 0.03  # but it gets there
    env.close()


def test_bad_actions_are_counted_and_never_reach_the_physics():
    env = sim.make_task("reach")
    obs, _ = env.reset(seed=0)
    u = env.unwrapped
    held = u.target
    calls = []
    real_step = mujoco.mj_step

    def spy(model, data, *args):
        calls.append(data.ctrl.copy())
        return real_step(model, data, *args)

    mujoco.mj_step = spy
    try:
        for bad in ([np.nan] * 6, [0.0, np.inf, 0, 0, 0, 0], [0.0] * 5, np.zeros((2, 6)), "left", None):
            env.step(bad)
        assert u.counters["actions_rejected"] == 6
        too_far = np.array([5.0, -5.0, 0.0, 0.0, 0.0, 9.0], dtype=np.float32)
        env.step(too_far)
        assert u.counters["actions_clipped"] == 1
    finally:
        mujoco.mj_step = real_step
    assert calls and all(np.all(np.isfinite(c)) for c in calls)
    for c in calls[: 6 * u.n_substeps]:
        np.testing.assert_array_equal(c[:6], held)  # rejected actions hold the previous target
    low, high = u.limits.low, u.limits.high
    assert all(np.all(c[:6] >= low) and np.all(c[:6] <= high) for c in calls)
    np.testing.assert_allclose(u.target[[0, 1, 5]], [high[0], low[1], high[5]])
    env.close()


def test_whack_records_lit_and_hit_steps_and_reports_misses():
    env = sim.make_task("whack", n_events=2, window_s=0.5, pause_s=(0.1, 0.2))
    obs, _ = env.reset(seed=1)
    done = False
    while not done:  # never move: every pad times out
        obs, _, terminated, truncated, info = env.step(obs["state"])
        done = terminated or truncated
    assert terminated and not info["success"]
    assert len(info["pad_lit_step"]) == 2 and info["pad_hit_step"] == [-1, -1] and info["misses"] == 2
    assert info["pad_lit_step"][1] > info["pad_lit_step"][0]
    env.close()


def test_track_success_is_decided_at_the_end():
    env = sim.make_task("track", max_steps=40)
    obs, _ = env.reset(seed=0)
    for _ in range(40):
        obs, _, terminated, truncated, info = env.step(obs["state"])
    assert truncated and not info["success"]  # standing still does not track
    assert info["tracking_error"] > 0.015
    env.close()
