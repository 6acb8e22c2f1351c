"""The sim-only ``oracle`` estimator: the simulation's own future, without touching the live simulation."""

import mujoco
import numpy as np
import pytest

import sim
from sim.oracle_estimator import OracleEstimator
from vlash.contracts import PolicyObservation
from vlash.future_state import known_estimators, make_estimator
from vlash.virtual_time import RunConfig, run_episode

DELTA = 4


def snapshot(env) -> tuple:
    u = env.unwrapped
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(u.model, spec))
    mujoco.mj_getState(u.model, u.data, state, spec)
    return state, u.step_count, dict(u.counters), u.target, u.success, dict(u._info())


def expert_actions(env, expert, obs, n):
    chunk = expert.predict_chunk(PolicyObservation(
        step=0, state=obs["state"], measured_state=obs["state"],
        extras={"task_state": obs["task_state"], "velocity": obs["velocity"]}))
    return chunk[:n]


def drive_until(env, expert, obs, done, limit=300):
    """Run the expert (replanning every step) until ``done(info)``; the last observation."""
    for _ in range(limit):
        obs, _, terminated, _, info = env.step(expert_actions(env, expert, obs, 1)[0])
        assert not terminated
        if done(info):
            return obs
    raise AssertionError("condition never met")


def test_oracle_is_known_and_refuses_to_run_without_the_simulation():
    assert "oracle" in known_estimators()
    with pytest.raises(ValueError) as err:
        make_estimator("oracle")
    message = str(err.value)
    assert "needs the simulation" in message and "virtual-time evaluation only" in message and "\n" not in message
    with pytest.raises(ValueError, match="sim task environment"):
        make_estimator("oracle", env=object())
    assert "SIM-ONLY" in OracleEstimator.__doc__


@pytest.mark.parametrize("task,ready,objects_matter", [
    ("detour", lambda info: info["step"] >= 12, False),  # on its way round the post: the arm moves freely
    ("pick_place", lambda info: info["grasped"], True),  # the jaws closing on the cube, which stops them
])
def test_oracle_is_the_future_the_live_env_reaches_and_leaves_it_alone(task, ready, objects_matter):
    """Exactly the live env's future; ``target`` is off (servo lag) and ``model`` (the arm alone) only
    where an object pushes back."""
    env = sim.make_task(task)
    expert = sim.make_expert(task, chunk_size=10)
    obs, _ = env.reset(seed=1)
    obs = drive_until(env, expert, obs, ready)
    queued = expert_actions(env, expert, obs, DELTA)
    oracle = make_estimator("oracle", env=env)
    assert isinstance(oracle, OracleEstimator)
    before = snapshot(env)
    estimate = oracle.estimate(obs["state"], queued, {"velocity": obs["velocity"]})
    after = snapshot(env)
    for a, b in zip(before, after, strict=True):  # the live simulation did not move ...
        np.testing.assert_equal(a, b)
    assert estimate.dtype == np.float32 and estimate.shape == (6,)
    np.testing.assert_array_equal(oracle.estimate(obs["state"], queued), estimate)  # ... so asking again agrees
    model = make_estimator("model", **env.unwrapped.estimator_options).estimate(obs["state"], queued,
                                                                                 {"velocity": obs["velocity"]})
    target = make_estimator("target").estimate(obs["state"], queued)
    for action in queued:
        obs, *_ = env.step(action)
    np.testing.assert_array_equal(estimate, obs["state"])  # exactly where the arm got to
    assert np.abs(target - obs["state"]).max() > 0.01
    if objects_matter:
        assert np.abs(model - obs["state"]).max() > 1e-3
    else:
        assert np.abs(model - obs["state"]).max() < 1e-5
    env.close()


def test_oracle_refuses_a_state_that_is_not_now():
    env = sim.make_task("detour")
    obs, _ = env.reset(seed=0)
    oracle = make_estimator("oracle", env=env.unwrapped)
    with pytest.raises(ValueError, match="not the simulation's current state"):
        oracle.estimate(obs["state"] + np.float32(0.01), np.tile(obs["state"], (DELTA, 1)))
    np.testing.assert_array_equal(oracle.estimate(obs["state"], np.zeros((0, 6), np.float32)), obs["state"])
    env.close()


def test_vlash_conditioned_on_the_oracle_sees_each_chunk_start_exactly():
    env = sim.make_task("detour")
    expert = sim.make_expert("detour", chunk_size=8)
    config = RunConfig(mode="vlash", delay_steps=DELTA, execution_horizon=DELTA, estimator="oracle",
                       estimator_options={"env": env})
    record = run_episode(env, expert, config, seed=3)
    starts = [c for c in record.chunks if 0 < c.start_step < record.steps]
    assert len(starts) >= 5
    for chunk in starts:
        np.testing.assert_array_equal(chunk.conditioned_state, record.states[chunk.start_step])
    assert record.success
    env.close()
