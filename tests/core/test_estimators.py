import numpy as np
import pytest

from vlash.delay import FixedDelay, RoundTripDelay
from vlash.future_state import known_estimators, make_estimator, register_estimator
from vlash.quantize import quantize
from vlash.scheduler import Mode, plan_request

DT = 1 / 30


def test_fixed_delay():
    d = FixedDelay(4)
    d.observe(10.0)
    assert d.delay_steps() == 4


def test_round_trip_delay_is_quantile_plus_margin():
    d = RoundTripDelay(dt=DT, quantile=0.9, margin_steps=1, warmup=0)
    for _ in range(40):
        d.observe(0.050)  # 1.5 periods -> 2 steps
    assert d.delay_steps() == 3


def test_cold_start_spike_is_excluded():
    d = RoundTripDelay(dt=DT, warmup=2, margin_steps=0)
    d.observe(2.0)  # compilation
    d.observe(1.0)
    for _ in range(5):
        d.observe(0.030)
    assert d.delay_steps() == 1


def test_a_spike_decays_and_delay_is_capped():
    d = RoundTripDelay(dt=DT, warmup=0, margin_steps=0, quantile=0.9, half_life=4, max_steps=10)
    for _ in range(10):
        d.observe(0.030)
    d.observe(3.0)  # one 90-step hiccup
    assert d.delay_steps() == 10  # the spike decides the quantile; the cap decides the value
    for _ in range(12):
        d.observe(0.030)
    assert d.delay_steps() == 1  # forgotten


def test_delay_before_samples_and_bad_samples():
    d = RoundTripDelay(dt=DT, initial_steps=3, warmup=0)
    d.observe(float("nan"))
    d.observe(-1.0)
    assert d.samples == 0 and d.delay_steps() == 3
    with pytest.raises(ValueError):
        RoundTripDelay(dt=0)


def test_estimators():
    state = np.array([0.0, 1.0], np.float32)
    queued = np.array([[1.0, 1.0], [2.0, 3.0]], np.float32)
    np.testing.assert_array_equal(make_estimator("target").estimate(state, queued), [2.0, 3.0])
    np.testing.assert_array_equal(make_estimator("integrate").estimate(state, queued), [3.0, 5.0])
    np.testing.assert_array_equal(make_estimator("none").estimate(state, queued), state)
    np.testing.assert_array_equal(make_estimator("target").estimate(state, queued[:0]), state)
    with pytest.raises(ValueError, match="known: .*integrate.*target"):
        make_estimator("crystal_ball")


def test_custom_estimator_plugs_in_by_name():
    class Double:
        name = "double"

        def __init__(self, factor=2.0):
            self.factor = factor

        def estimate(self, state, queued, extras=None):
            return state * self.factor

    register_estimator("double", Double)
    assert "double" in known_estimators()
    assert make_estimator("double", factor=3.0).estimate(np.ones(2), np.zeros((0, 2))).tolist() == [3, 3]


def test_plan_request_per_mode():
    plan = np.array([[1.0], [2.0], [3.0]], np.float32)  # steps 10, 11, 12
    state, hold = np.array([0.5], np.float32), np.array([0.9], np.float32)
    target = make_estimator("target")
    v = plan_request(Mode.VLASH, target, 10, state, 10, plan, 2, hold)
    assert (v.start_step, v.state.tolist()) == (12, [2.0])
    late = plan_request(Mode.VLASH, target, 10, state, 10, plan, 5, hold)
    assert late.state.tolist() == [3.0]  # plan runs out: the robot holds its last target
    n = plan_request(Mode.NAIVE, target, 10, state, 10, plan, 2, hold)
    assert (n.start_step, n.state.tolist(), n.prefix) == (10, [0.5], None)
    r = plan_request(Mode.RTC, target, 11, state, 10, plan, 2, hold)
    assert r.prefix[:, 0].tolist() == [2.0, 3.0] and r.delay_steps == 2


def test_quantize():
    fine = np.arange(10, dtype=np.float32)[:, None]
    assert quantize(fine, 2)[:, 0].tolist() == [1, 3, 5, 7, 9]
    assert quantize(fine, 3)[:, 0].tolist() == [2, 5, 8, 9]
    assert quantize(np.ones((5, 1)), 2, "delta")[:, 0].tolist() == [2, 2, 1]
    assert quantize(fine, 1) is not None and len(quantize(fine, 1)) == 10
    with pytest.raises(ValueError):
        quantize(fine, 0)
