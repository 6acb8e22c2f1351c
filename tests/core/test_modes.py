"""The execution modes, checked step by step in virtual time with stamped chunks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.toy import PathPolicy, StampPolicy, ToyArm
from vlash.virtual_time import RunConfig, run_episode


def origin(action):
    """(obs step, row) that produced a stamped action."""
    return int(action[0]) // 1000, int(round(action[1]))


def run(mode, H, K, d, steps=60, **kw):
    policy = StampPolicy(chunk_size=H)
    rec = run_episode(ToyArm(), policy, RunConfig(mode=mode, delay_steps=d, execution_horizon=K, max_steps=steps, **kw))
    return rec, policy


@pytest.mark.parametrize("H,K,d", [(8, 5, 2), (8, 4, 3), (10, 10, 0), (12, 6, 1)])
def test_naive_executes_prev_prefix_then_new_chunk(H, K, d):
    rec, _ = run("naive", H, K, d)
    queries = [c.obs_step for c in rec.chunks]
    assert queries == list(range(0, queries[-1] + 1, K))  # one query every K steps
    for prev_t, t in zip(queries[1:], queries[2:], strict=False):
        executed = [origin(a) for a in rec.actions[t : t + K]]
        expected = [(prev_t, K + i) for i in range(d)] + [(t, i) for i in range(d, K)]
        assert executed == expected  # prev[:d] + new[d:K]
    assert rec.stall_steps == 0 and rec.wait_steps == d


@pytest.mark.parametrize("H,d", [(5, 2), (6, 0), (4, 3)])
def test_sync_executes_whole_chunks_with_d_held_steps_between(H, d):
    rec, _ = run("sync", H, H, d, steps=40)
    for c in rec.chunks:
        assert c.first_step == c.obs_step + d
        got = [origin(a) for a in rec.actions[c.first_step : c.first_step + H]]
        assert got[: min(H, len(got))] == [(c.obs_step, i) for i in range(len(got))]
    n_after_first = len(rec.chunks) - 1
    gaps = [b.obs_step - a.obs_step for a, b in zip(rec.chunks, rec.chunks[1:], strict=False)]
    assert all(g == H + d for g in gaps)
    assert rec.stall_steps >= d * (n_after_first - 1) and rec.wait_steps == d


def test_vlash_target_conditions_on_last_queued_target_before_start_step():
    H, K, d = 8, 5, 3
    rec, policy = run("vlash", H, K, d)
    assert [c.start_step - c.obs_step for c in rec.chunks] == [d] * len(rec.chunks)
    for c, seen in zip(rec.chunks[1:], policy.seen[1:], strict=True):
        expected = rec.actions[c.start_step - 1]  # the target executed just before the switch
        np.testing.assert_array_equal(c.conditioned_state, expected)
        np.testing.assert_array_equal(seen.state, expected)
        np.testing.assert_array_equal(seen.measured_state, rec.states[c.obs_step])
    # each chunk's row 0 runs exactly at its start step
    for c in rec.chunks[1:]:
        assert origin(rec.actions[c.start_step]) == (c.obs_step, 0)


def test_with_zero_delay_all_modes_match():
    path = np.linspace([0, 0], [3, -2], 40).astype(np.float32)
    trajectories = []
    for mode in ("sync", "naive", "vlash"):
        env = ToyArm(gain=0.6)
        rec = run_episode(env, PathPolicy(path, 10), RunConfig(mode=mode, delay_steps=0, execution_horizon=6, max_steps=50))
        trajectories.append(rec.actions)
    np.testing.assert_array_equal(trajectories[0], trajectories[1])
    np.testing.assert_array_equal(trajectories[0], trajectories[2])


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from(["sync", "naive", "vlash"]),
    H=st.integers(2, 12),
    k_frac=st.floats(0.1, 1.0),
    d=st.integers(0, 6),
)
def test_every_action_runs_once_in_order_and_never_late(mode, H, k_frac, d):
    K = max(1, int(H * k_frac))
    rec, _ = run(mode, H, K, d, steps=50)
    offset = d if mode == "vlash" else 0
    first_step = {c.obs_step: c.first_step for c in rec.chunks}
    executed = []
    for step, (action, chunk_id) in enumerate(zip(rec.actions, rec.chunk_ids, strict=True)):
        if chunk_id < 0:
            continue  # held
        obs_step, row = origin(action)
        planned = first_step[obs_step] + row if mode == "sync" else obs_step + offset + row
        assert step == planned  # run at the step it was planned for: never late, never early
        executed.append((obs_step, row))
    assert len(executed) == len(set(executed))  # never twice
    assert executed == sorted(executed)  # in order
    assert (rec.chunk_ids < 0).sum() == rec.stall_steps + rec.wait_steps


@settings(max_examples=30, deadline=None)
@given(mode=st.sampled_from(["sync", "naive", "vlash"]), H=st.integers(2, 10), d=st.integers(0, 5))
def test_plan_never_grows_beyond_a_chunk(mode, H, d):
    from vlash.scheduler import Scheduler, SchedulerConfig

    sched = Scheduler(SchedulerConfig(mode=mode, chunk_size=H), action_dim=1)
    pending = []
    for step in range(100):
        while pending and pending[0][0] <= step:
            _, req = pending.pop(0)
            sched.receive(req.start_step, np.ones((H, 1)) * step, step)
        if sched.should_request(step, d):
            req = sched.build_request(step, np.zeros(1), d)
            sched.mark_requested(step)
            pending.append((step + d, req))
        if pending and pending[0][0] <= step:  # Δ = 0: usable at once
            _, req = pending.pop(0)
            sched.receive(req.start_step, np.ones((H, 1)) * step, step)
        sched.execute(step, np.zeros(1))
        assert len(sched.plan) <= H


def test_quantization_q2_halves_steps_on_open_loop_path():
    path = np.linspace([0, 0], [4, 2], 41).astype(np.float32)
    steps = {}
    for q in (1, 2):
        env = ToyArm(goal=path[-1])
        rec = run_episode(env, PathPolicy(path, 10), RunConfig(mode="sync", quantization=q, max_steps=200))
        assert rec.success
        steps[q] = rec.steps
    assert steps[1] == 40 and steps[2] == 20


def test_unknown_mode_and_estimator_are_clear_errors():
    with pytest.raises(ValueError, match="known: sync, naive, vlash, rtc"):
        run("fast", 4, 4, 0)
    with pytest.raises(ValueError, match="unknown future-state estimator"):
        run("vlash", 4, 4, 0, estimator="clairvoyant")
    with pytest.raises(ValueError, match="needs the simulation"):  # sim-only, and this toy env is no simulation
        run("vlash", 4, 4, 0, estimator="oracle")


def test_wrong_chunk_shape_from_policy_is_a_clear_error():
    policy = StampPolicy(4)
    policy.features = type(policy.features)(state_dim=2, action_dim=3)
    with pytest.raises(ValueError, match="policy returned shape"):
        run_episode(ToyArm(), policy, RunConfig(mode="naive", max_steps=5))
