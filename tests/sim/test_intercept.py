"""The intercept task: the ball's launch and path, touch and miss distance, its expert, timing deciding."""

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim
from sim.tasks.intercept import GOAL_RADIUS, GUARD_RADIUS, TOUCH_DISTANCE, ball_path_crossing
from vlash.contracts import PolicyObservation
from vlash.virtual_time import RunConfig, run_episode


def finite_numbers(info: dict) -> bool:
    values = [v for v in info.values() if isinstance(v, (int, float))]
    values += [x for v in info.values() if isinstance(v, list) for x in v]
    return all(math.isfinite(v) for v in values)


def observation(obs, step):
    return PolicyObservation(step=step, state=obs["state"], measured_state=obs["state"],
                             extras={"task_state": obs["task_state"], "velocity": obs["velocity"]})


def test_registered_at_50hz_with_its_expert():
    env = gym.make("vlash/intercept-v0", disable_env_checker=True)
    assert env.unwrapped.task_name == "intercept" and env.unwrapped.fps == 50.0
    assert sim.make_expert("intercept").fps == 50.0
    env.close()


def test_passes_gymnasium_env_checker():
    env = sim.make_task("intercept")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checker's advice on unbounded / unnormalised boxes
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_ball_waits_then_rolls_straight_at_its_launch_velocity():
    env = sim.make_task("intercept")
    obs, info = env.reset(seed=4)
    u = env.unwrapped
    start, launch = obs["task_state"][1:4].copy(), u.launch_step
    assert obs["task_state"][0] == 0 and np.all(obs["task_state"][4:7] == 0) and info["ball_launch_step"] == []
    assert 0 < info["miss_distance"] < 1 and finite_numbers(info)
    for step in range(1, launch + 6):
        obs, _, terminated, _, info = env.step(obs["state"])
        assert not terminated and finite_numbers(info)
        ts = obs["task_state"]
        if step < launch:
            np.testing.assert_allclose(ts[1:4], start, atol=1e-6)
            assert ts[0] == 0
        else:
            assert ts[0] == 1 and info["ball_launch_step"] == [launch]
            np.testing.assert_allclose(ts[4:7], u.launch_velocity, atol=1e-6)
            np.testing.assert_allclose(ts[1:4], start + u.launch_velocity * (step - launch) / 50.0, atol=1e-6)
            np.testing.assert_allclose(ts[7], (step - launch) / 50.0, atol=1e-6)
    speed = np.linalg.norm(u.launch_velocity)
    assert u.speed_range[0] <= speed <= u.speed_range[1] and u.launch_velocity[0] < 0  # toward the base
    env.close()


def test_a_ball_passing_a_parked_arm_is_a_miss_with_its_closest_distance():
    env = sim.make_task("intercept")
    obs, info = env.reset(seed=0)  # the arm waits 10 cm above the table; the ball rolls underneath
    park = obs["state"].copy()
    closest = info["miss_distance"]
    terminated = False
    while not terminated:
        obs, _, terminated, truncated, info = env.step(park)
        assert not truncated and finite_numbers(info)
        closest = min(closest, info["distance"])
        assert info["miss_distance"] == pytest.approx(closest)
    ball = obs["task_state"][1:3]
    assert info["success"] is False and info["ball_hit_step"] == [-1]
    assert np.linalg.norm(ball) < GOAL_RADIUS and info["miss_distance"] > 0.02
    env.close()


def test_path_crossing_of_the_guard_circle():
    point = ball_path_crossing(np.array([0.4, 0.1, 0.02]), np.array([-0.3, 0.0, 0.0]), GUARD_RADIUS)
    np.testing.assert_allclose(point, [np.sqrt(GUARD_RADIUS**2 - 0.01), 0.1, 0.02])
    assert ball_path_crossing(np.array([0.4, 0.1, 0.0]), np.array([0.3, 0.0, 0.0]), GUARD_RADIUS) is None  # away
    assert ball_path_crossing(np.array([0.1, 0.0, 0.0]), np.array([-0.3, 0.0, 0.0]), GUARD_RADIUS) is None  # inside
    assert ball_path_crossing(np.array([0.4, 0.0, 0.0]), np.zeros(3), GUARD_RADIUS) is None  # resting


def test_expert_intercepts_in_sync_at_zero_delay():
    env = sim.make_task("intercept")
    expert = sim.make_expert("intercept")
    records = [run_episode(env, expert, RunConfig(mode="sync", execution_horizon=25), seed=s) for s in range(5)]
    hits = [r for r in records if r.success]
    assert len(hits) >= 4
    for r in hits:
        info = r.final_info
        assert info["miss_distance"] < TOUCH_DISTANCE and info["ball_hit_step"][0] > info["ball_launch_step"][0]
        assert r.steps == info["ball_hit_step"][0]  # the touch ends the episode
    env.close()


def react_after(env, expert, seed: int, lag_steps: int) -> bool:
    """Wait on the ready plan; replan once, ``lag_steps`` after the launch; whether the ball was touched."""
    obs, _ = env.reset(seed=seed)
    chunk, row, replanned = expert.predict_chunk(observation(obs, 0)), 0, False
    for step in range(env.unwrapped.max_steps):
        if not replanned and obs["task_state"][0] > 0 and round(float(obs["task_state"][7]) * 50.0) >= lag_steps:
            chunk, row, replanned = expert.predict_chunk(observation(obs, step)), 0, True
        obs, _, terminated, _, info = env.step(chunk[min(row, len(chunk) - 1)])
        row += 1
        if terminated:
            return info["success"]
    return False


def test_timing_decides_a_prompt_reaction_hits_a_late_one_misses():
    env = sim.make_task("intercept")
    expert = sim.make_expert("intercept")
    seeds = range(6)
    prompt = [react_after(env, expert, s, 0) for s in seeds]
    late = [react_after(env, expert, s, 30) for s in seeds]  # 0.6 s late
    assert sum(prompt) >= 5 and sum(late) < sum(prompt)
    env.close()
