"""Latency emulation with a fake clock: nothing here actually waits (except one tiny wall-clock check)."""

from __future__ import annotations

import numpy as np
import pytest

from policies.latency import (
    PRESETS,
    FakeClock,
    LatencyDistribution,
    LatencyEmulation,
    WallClock,
    parse_latency,
)
from vlash.contracts import Policy, PolicyFeatures, PolicyObservation
from vlash.delay import steps_for_seconds


class CountingPolicy:
    """A policy that takes ``compute_s`` on the fake clock and counts calls."""

    features = PolicyFeatures(state_dim=2, action_dim=2)
    chunk_size = 3
    action_kind = "absolute"
    supports_rtc = False

    def __init__(self, clock: FakeClock, compute_s: float = 0.0) -> None:
        self.clock, self.compute_s, self.calls, self.resets = clock, compute_s, 0, 0

    def reset(self) -> None:
        self.resets += 1

    def predict_chunk(self, observation: PolicyObservation) -> np.ndarray:
        self.calls += 1
        self.clock.advance(self.compute_s)
        return np.zeros((3, 2), np.float32)


def obs() -> PolicyObservation:
    state = np.zeros(2, np.float32)
    return PolicyObservation(step=0, state=state, measured_state=state)


def test_fixed_latency_counts_the_policys_own_time() -> None:
    clock = FakeClock()
    wrapped = LatencyEmulation(CountingPolicy(clock, compute_s=0.010), latency_ms=36.1, clock=clock)
    chunk = wrapped.predict_chunk(obs())
    assert chunk.shape == (3, 2)
    assert clock.sleeps == [pytest.approx(0.0261)]
    assert wrapped.last_latency_s == pytest.approx(0.0361)
    assert clock.now() == pytest.approx(0.0361)


def test_added_mode_sleeps_the_whole_latency() -> None:
    clock = FakeClock()
    wrapped = LatencyEmulation(CountingPolicy(clock, 0.010), latency_ms=30.0, clock=clock, mode="added")
    wrapped.predict_chunk(obs())
    assert clock.sleeps == [pytest.approx(0.030)]
    assert wrapped.last_latency_s == pytest.approx(0.040)


def test_a_policy_slower_than_the_target_is_not_slept_on() -> None:
    clock = FakeClock()
    wrapped = LatencyEmulation(CountingPolicy(clock, compute_s=0.2), latency_ms=103.0, clock=clock)
    wrapped.predict_chunk(obs())
    assert clock.sleeps == []
    assert wrapped.last_latency_s == pytest.approx(0.2)


def test_a_batch_costs_one_draw_plus_the_per_item_cost() -> None:
    clock = FakeClock()
    inner = CountingPolicy(clock, compute_s=0.002)
    wrapped = LatencyEmulation(inner, latency_ms=50.0, clock=clock, per_item_ms=5.0)
    chunks = wrapped.predict_batch([obs() for _ in range(4)])
    assert len(chunks) == 4 and inner.calls == 4
    assert wrapped.last_target_s == pytest.approx(0.065)  # 50 + 3 x 5 ms
    assert clock.now() == pytest.approx(0.065)
    wrapped.predict_batch([obs()])
    assert wrapped.last_target_s == pytest.approx(0.050)  # a batch of one is one call


def test_without_a_per_item_cost_a_batch_costs_every_item_in_full() -> None:
    clock = FakeClock()
    wrapped = LatencyEmulation(CountingPolicy(clock), latency_ms=30.0, clock=clock)
    wrapped.predict_batch([obs() for _ in range(3)])
    assert wrapped.last_target_s == pytest.approx(0.090)
    with pytest.raises(ValueError, match="per_item_ms"):
        LatencyEmulation(CountingPolicy(clock), latency_ms=30.0, per_item_ms=-1.0)


def test_wrapper_is_a_policy_and_delegates() -> None:
    clock = FakeClock()
    inner = CountingPolicy(clock)
    wrapped = LatencyEmulation(inner, distribution="pi05_4090_2img", clock=clock)
    assert isinstance(wrapped, Policy)
    assert wrapped.chunk_size == 3 and wrapped.features == inner.features and not wrapped.supports_rtc
    wrapped.reset()
    assert inner.resets == 1


def test_presets_and_delay_steps() -> None:
    assert PRESETS["pi05_4090_2img"][0] == 103.0
    assert PRESETS["pi05_4090_1img"][0] == 36.1
    assert PRESETS["pi05_5090_1img"][0] == 30.4
    assert PRESETS["pi05_5070_1img"][0] == 64.1
    clock = FakeClock()
    policy = CountingPolicy(clock)
    assert LatencyEmulation(policy, distribution="pi05_4090_2img", clock=clock).delay_steps(30) == 4
    assert LatencyEmulation(policy, distribution="pi05_4090_1img", clock=clock).delay_steps(50) == 2
    assert LatencyEmulation(policy, distribution="pi05_5070_1img", clock=clock).delay_steps(30) == 2
    assert LatencyEmulation(policy, latency_ms=100.0, clock=clock).delay_steps(30) == 3  # not 4
    assert LatencyEmulation(policy, latency_ms=0.0, clock=clock).delay_steps(30) == 0
    assert LatencyEmulation(policy, latency_ms=34.0, clock=clock).delay_steps(30) == 2
    with pytest.raises(ValueError, match="fps > 0"):
        LatencyEmulation(policy, latency_ms=34.0, clock=clock).delay_steps(0)


@pytest.mark.parametrize("latency_ms", [0.0, 1.0, 33.0, 33.4, 34.0, 66.7, 100.0, 103.0, 250.0])
@pytest.mark.parametrize("fps", [10.0, 30.0, 50.0])
def test_delay_steps_is_the_runtimes_one_rule(latency_ms: float, fps: float) -> None:
    clock = FakeClock()
    emulated = LatencyEmulation(CountingPolicy(clock), latency_ms=latency_ms, clock=clock)
    assert emulated.delay_steps(fps) == steps_for_seconds(latency_ms / 1000.0, fps)


def test_jittered_latency_is_seeded_and_has_the_right_mean() -> None:
    def draws(seed: int) -> list[float]:
        clock = FakeClock()
        wrapped = LatencyEmulation(
            CountingPolicy(clock), distribution="lognormal:100,10", seed=seed, clock=clock
        )
        out = []
        for _ in range(2000):
            wrapped.predict_chunk(obs())
            out.append(wrapped.last_latency_s)
        return out

    a, b = draws(1), draws(1)
    assert a == b
    assert draws(2) != a  # the seed picks the stream
    assert np.mean(a) == pytest.approx(0.100, rel=0.02)
    assert np.std(a) == pytest.approx(0.010, rel=0.1)


def test_quantiles_and_sampled_steps() -> None:
    dist = LatencyDistribution("normal", 100.0, 10.0)
    assert dist.quantile_ms(0.5) == pytest.approx(100.0)
    assert dist.quantile_ms(0.975) == pytest.approx(119.6, abs=0.1)
    clock = FakeClock()
    wrapped = LatencyEmulation(CountingPolicy(clock), distribution=dist, clock=clock)
    assert wrapped.delay_steps(30, quantile=0.975) == 4
    steps = {wrapped.sample_delay_steps(30) for _ in range(200)}
    assert steps <= {2, 3, 4, 5} and 3 in steps and 4 in steps
    empirical = LatencyDistribution.empirical([10, 20, 30])
    assert empirical.mean_ms == 20 and empirical.quantile_ms(1.0) == 30


@pytest.mark.parametrize(
    ("spec", "kind", "mean"),
    [
        (42, "fixed", 42.0),
        ("42", "fixed", 42.0),
        ("fixed:7.5", "fixed", 7.5),
        ("normal:50,5", "normal", 50.0),
        ("pi05_5090_1img", "fixed", 30.4),
        ("pi05_5090_1img:0.1", "lognormal", 30.4),
    ],
)
def test_parse_latency(spec: object, kind: str, mean: float) -> None:
    dist = parse_latency(spec)  # type: ignore[arg-type]
    assert dist.kind == kind and dist.mean_ms == pytest.approx(mean)


@pytest.mark.parametrize("spec", ["", "fast", "normal:1", "lognormal:0,1", "normal:-5,1", "rtx9090"])
def test_bad_latency_specs(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_latency(spec)


def test_exactly_one_latency_source() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="exactly one"):
        LatencyEmulation(CountingPolicy(clock), clock=clock)
    with pytest.raises(ValueError, match="exactly one"):
        LatencyEmulation(CountingPolicy(clock), 10.0, distribution="pi05_4090_1img", clock=clock)


def test_wall_clock_sleeps_at_least_the_target() -> None:
    clock = WallClock()
    start = clock.now()
    clock.sleep(0.003)
    assert clock.now() - start >= 0.003
