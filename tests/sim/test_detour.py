"""The ``detour`` task and its expert: layout, collisions, side bookkeeping, per-episode strategies."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim
from sim.experts.detour import layout_side
from sim.tasks.detour import HOME_TIP, SIDE_MARGIN, lateral_frame
from vlash.contracts import PolicyObservation
from vlash.virtual_time import RunConfig, run_episode


@pytest.fixture
def env():
    env = sim.make_task("detour")
    yield env
    env.close()


def observation(obs, state=None):
    state = obs["state"] if state is None else state
    return PolicyObservation(step=0, state=state, measured_state=state,
                             extras={"task_state": obs["task_state"], "velocity": obs["velocity"]})


def test_gymnasium_checker_passes(env):
    check_env(env.unwrapped, skip_render_check=True)


def test_post_stands_on_the_way_from_home_to_the_target(env):
    u = env.unwrapped
    assert u.default_max_steps == 120 and len(u.task_state_names) == 9
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        ts = obs["task_state"].astype(np.float64)
        target, post, radius = ts[0:3], ts[6:8], ts[8]
        np.testing.assert_allclose(ts[3:6], u.tip_pos, atol=1e-6)
        along, left = lateral_frame(post, target)
        assert abs((HOME_TIP[:2] - post) @ left) < 1e-6  # the post is on the home-target line ...
        assert (HOME_TIP[:2] - post) @ along < -0.05 and np.linalg.norm(target[:2] - post) > 0.07  # ... between them
        assert 0.015 <= radius <= 0.025
        assert info == {"success": False, "step": 0, "distance": pytest.approx(np.linalg.norm(ts[3:6] - target)),
                        "collided": False, "side": 0, "side_changes": 0}
    a, b = env.reset(seed=4)[0]["task_state"], env.reset(seed=4)[0]["task_state"]
    np.testing.assert_array_equal(a, b)


def test_going_straight_hits_the_post_and_ends_the_episode(env):
    straight = sim.make_expert("reach", chunk_size=8)  # the tip straight to the target
    for seed in range(10):
        record = run_episode(env, straight, RunConfig(mode="sync"), seed=seed)
        assert record.final_info["collided"] is True and not record.success, seed
        assert record.steps < env.unwrapped.default_max_steps  # terminated, not timed out


def test_side_commits_past_the_margin_and_counts_flips(env):
    """Move the tip sideways beside the start (between home and the post): +3 cm, -3 cm, +3 cm, +1 cm."""
    obs, _ = env.reset(seed=0)
    u, expert = env.unwrapped, sim.make_expert("detour", chunk_size=8)
    ts = obs["task_state"].astype(np.float64)
    _, left = lateral_frame(ts[6:8], ts[0:3])
    seen = []
    for offset in (0.01, 0.03, -0.03, 0.03, 0.01):
        point = np.append(HOME_TIP[:2] + offset * left, HOME_TIP[2])
        pose = expert.pose(point, obs["state"].astype(np.float64), 0.3, down=False)
        for _ in range(20):
            obs, _, terminated, _, info = env.step(pose)
        assert not terminated and not info["collided"]
        assert abs(u.lateral_offset()[1] - offset) < 0.005
        seen.append((info["side"], info["side_changes"]))
    assert SIDE_MARGIN == 0.02
    assert seen == [(0, 0), (1, 0), (-1, 1), (1, 2), (1, 2)]


@pytest.mark.parametrize("chunk_size", [8, 50])
def test_expert_succeeds_in_sync_mode_on_either_side(env, chunk_size):
    expert = sim.make_expert("detour", chunk_size=chunk_size)
    results = []
    for seed in range(50):
        record = run_episode(env, expert, RunConfig(mode="sync", delay_steps=0), seed=seed)
        side = 1 if expert.strategy_name == "left" else -1
        results.append((record.success, record.steps, expert.strategy_name))
        if record.success:  # it went round on its own side, without changing its mind
            assert record.final_info["side"] == side and record.final_info["side_changes"] == 0, seed
    assert np.mean([r[0] for r in results]) >= 0.95
    steps = [r[1] for r in results if r[0]]
    assert 40 <= np.mean(steps) <= 80
    lefts = sum(r[2] == "left" for r in results)
    assert 15 <= lefts <= 35  # the per-episode draw mixes both ways


def test_both_ways_work_and_take_about_as_long(env):
    mean_steps = {}
    for strategy in ("left", "right"):
        expert = sim.make_expert("detour", chunk_size=8, strategy=strategy)
        records = [run_episode(env, expert, RunConfig(mode="sync"), seed=seed) for seed in range(20)]
        assert all(r.success for r in records), strategy
        assert expert.strategy_name == strategy
        mean_steps[strategy] = np.mean([r.steps for r in records])
    assert abs(mean_steps["left"] - mean_steps["right"]) < 0.15 * mean_steps["left"]


def test_random_strategy_is_a_function_of_the_episode(env):
    expert = sim.make_expert("detour", chunk_size=8)
    assert expert.strategies == ("random", "left", "right") and expert.strategy_name is None
    names = []
    for seed in range(6):
        obs, _ = env.reset(seed=seed)
        expert.predict_chunk(observation(obs))
        names.append(expert.strategy_name)
        expert.reset()
        moved = obs["state"] + np.float32(0.05)  # another arm state (noise, a delay) in the same episode
        expert.predict_chunk(observation(obs, state=moved))
        assert expert.strategy_name == names[-1]
        assert names[-1] == ("left" if layout_side(obs["task_state"]) > 0 else "right")
    again = []
    for seed in range(6):
        obs, _ = env.reset(seed=seed)
        expert.predict_chunk(observation(obs))
        again.append(expert.strategy_name)
    assert again == names and len(set(names)) == 2
    other = [layout_side(env.reset(seed=s)[0]["task_state"], seed=1) for s in range(20)]
    assert other != [layout_side(env.reset(seed=s)[0]["task_state"], seed=0) for s in range(20)]


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="strategy must be one of random, left, right"):
        sim.make_expert("detour", strategy="over")
