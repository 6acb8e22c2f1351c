import numpy as np
import pytest

from vlash.plan import Plan, queued_window


def rows(*values):
    return np.array([[v] for v in values], np.float32)


def test_install_overwrites_from_start_step_and_keeps_earlier_rows():
    plan = Plan(1)
    plan.install(0, rows(0, 1, 2, 3, 4), chunk_id=0)
    plan.install(2, rows(20, 21, 22), chunk_id=1)
    got = [plan.execute(k, np.zeros(1)) for k in range(5)]
    assert [float(e.action[0]) for e in got] == [0, 1, 20, 21, 22]
    assert [e.chunk_id for e in got] == [0, 0, 1, 1, 1]


def test_rows_for_executed_steps_are_dropped():
    plan = Plan(1)
    plan.install(0, rows(0, 1, 2, 3), chunk_id=0)
    plan.execute(0, np.zeros(1))
    plan.execute(1, np.zeros(1))
    done = plan.install(0, rows(10, 11, 12, 13), chunk_id=1)
    assert (done.dropped, done.first_step, done.installed) == (2, 2, 2)
    assert float(plan.execute(2, np.zeros(1)).action[0]) == 12


def test_gap_before_start_step_holds_and_counts_as_stall():
    plan = Plan(1)
    plan.install(0, rows(5), chunk_id=0)
    plan.install(3, rows(7, 8), chunk_id=1)
    got = [plan.execute(k, np.zeros(1)) for k in range(5)]
    assert [e.stalled for e in got] == [False, True, True, False, False]
    assert [float(e.action[0]) for e in got] == [5, 5, 5, 7, 8]  # hold = last target


def test_empty_plan_holds_current_state_then_last_action():
    plan = Plan(2)
    first = plan.execute(0, np.array([1.0, 2.0]))
    assert first.stalled and first.action.tolist() == [1.0, 2.0]
    delta = Plan(2, "delta")
    assert delta.execute(0, np.array([1.0, 2.0])).action.tolist() == [0.0, 0.0]


def test_steps_execute_in_order_once():
    plan = Plan(1)
    plan.install(0, rows(0, 1, 2, 3), chunk_id=0)
    plan.execute(0, np.zeros(1))
    with pytest.raises(ValueError, match="already executed"):
        plan.execute(0, np.zeros(1))
    assert float(plan.execute(3, np.zeros(1)).action[0]) == 3  # skipped steps 1-2 are dropped
    assert len(plan) == 0


def test_switch_records_discontinuity():
    plan = Plan(1)
    plan.install(0, rows(0, 1, 2), chunk_id=0)
    plan.install(2, rows(-3, -2), chunk_id=1)
    switches = [plan.execute(k, np.zeros(1)).switch for k in range(4)]
    assert switches[:2] == [None, None] and switches[3] is None
    assert switches[2].step == 2 and switches[2].discontinuity == pytest.approx(4.0)


def test_remainder_and_window():
    plan = Plan(1)
    plan.install(3, rows(1, 2), chunk_id=0)
    start, acts = plan.remainder(np.zeros(1))
    assert start == 0 and acts[:, 0].tolist() == [0, 0, 0, 1, 2]  # leading gap filled by hold (state)
    assert plan.window(2, 5, np.zeros(1))[:, 0].tolist() == [0, 1, 2, 2, 2]


def test_queued_window_delta_holds_with_zeros():
    w = queued_window(0, rows(1, 1), 0, 4, np.zeros(1, np.float32), "delta")
    assert w[:, 0].tolist() == [1, 1, 0, 0]


def test_wrong_chunk_shape_is_rejected():
    with pytest.raises(ValueError, match="action_dim"):
        Plan(2).install(0, np.zeros((3, 5)), chunk_id=0)
