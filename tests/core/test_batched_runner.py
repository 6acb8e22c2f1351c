"""The batched lockstep runner gives exactly what the one-at-a-time runner gives, with one call per step."""

from __future__ import annotations

import numpy as np
import pytest

from tests.core.toy import ToyArm
from vlash.contracts import PolicyFeatures, PolicyObservation
from vlash.virtual_time import RunConfig, run_episode, run_episodes_batched, sample_key


class NoisyHistoryPolicy:
    """Stochastic (seeded by ``sample_key``), conditions on one past frame, records every batch it gets."""

    action_kind = "absolute"
    supports_rtc = False

    def __init__(self, chunk_size: int = 6, dim: int = 2):
        self.chunk_size, self.dim = chunk_size, dim
        self.features = PolicyFeatures(state_dim=dim, action_dim=dim, history_steps=1)
        self.batches: list[int] = []
        self.seen: list[PolicyObservation] = []

    def reset(self) -> None:
        pass

    def predict_chunk(self, observation: PolicyObservation) -> np.ndarray:
        self.seen.append(observation)
        rng = np.random.default_rng(observation.sample_key)
        previous = observation.history[-1].state if observation.history else observation.state
        velocity = observation.state - previous
        steps = np.arange(1, self.chunk_size + 1, dtype=np.float32)[:, None]
        return (observation.state + 0.5 + velocity + 0.05 * steps
                + rng.normal(0, 0.1, (self.chunk_size, self.dim))).astype(np.float32)

    def predict_batch(self, observations: list[PolicyObservation]) -> list[np.ndarray]:
        self.batches.append(len(observations))
        return [self.predict_chunk(o) for o in observations]


CASES = [("sync", 0, 3), ("sync", 2, 3), ("naive", 2, 2), ("naive", 3, 3), ("vlash", 1, 1), ("vlash", 3, 4)]


@pytest.mark.parametrize(("mode", "delay", "horizon"), CASES)
def test_batched_equals_sequential(mode, delay, horizon):
    config = RunConfig(mode=mode, delay_steps=delay, execution_horizon=horizon, max_steps=25)
    seeds = [3, 4, 5, 6, 7]
    one = NoisyHistoryPolicy()
    sequential = [run_episode(ToyArm(gain=0.5), one, config, seed=s) for s in seeds]
    many = NoisyHistoryPolicy()
    batched = run_episodes_batched([ToyArm(gain=0.5) for _ in range(3)], many, config, seeds)
    assert [r.seed for r in batched] == seeds
    for a, b in zip(sequential, batched, strict=True):
        assert np.array_equal(a.actions, b.actions)
        assert np.array_equal(a.chunk_ids, b.chunk_ids) and np.array_equal(a.rows, b.rows)
        assert [c.obs_step for c in a.chunks] == [c.obs_step for c in b.chunks]
    assert len(many.seen) == len(one.seen)
    assert max(many.batches) == 3  # three environments asked at the same step, in one call
    assert sum(many.batches) <= len(many.seen)  # single requests take predict_chunk directly


def test_seeds_give_different_chunks_and_keys_repeat():
    assert sample_key(1, 5) == sample_key(1, 5)
    assert sample_key(1, 5) != sample_key(2, 5) and sample_key(1, 5) != sample_key(1, 6)
    assert sample_key(None, 5) is None
    config = RunConfig(mode="naive", delay_steps=1, execution_horizon=2, max_steps=10)
    a, b = (run_episode(ToyArm(), NoisyHistoryPolicy(), config, seed=s) for s in (1, 2))
    assert not np.array_equal(a.actions, b.actions)


def test_history_frames_are_the_measured_previous_steps():
    policy = NoisyHistoryPolicy()
    config = RunConfig(mode="vlash", delay_steps=2, execution_horizon=3, max_steps=20)
    record = run_episode(ToyArm(gain=0.5), policy, config, seed=0)
    first, *rest = policy.seen
    assert first.step == 0 and first.history == ()  # nothing before an episode's first step
    assert rest
    for obs in rest:
        (frame,) = obs.history
        assert frame.step == obs.step - 1
        assert np.array_equal(frame.state, record.states[obs.step - 1])  # measured, never the estimate
        assert np.array_equal(obs.measured_state, record.states[obs.step])


def test_history_never_crosses_episodes():
    policy = NoisyHistoryPolicy()
    config = RunConfig(mode="naive", delay_steps=1, execution_horizon=2, max_steps=8)
    run_episodes_batched([ToyArm()], policy, config, [0, 1, 2])
    starts = [o for o in policy.seen if o.step == 0]
    assert len(starts) == 3 and all(o.history == () for o in starts)


def test_no_environment_is_an_error():
    with pytest.raises(ValueError, match="at least one environment"):
        run_episodes_batched([], NoisyHistoryPolicy(), RunConfig(), [0])
