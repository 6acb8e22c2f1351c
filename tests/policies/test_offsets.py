"""The delay augmentation's index arithmetic against hand-computed indices and masks."""

from __future__ import annotations

import numpy as np
import pytest

from policies.offsets import (
    check_state_source,
    delayed_indices,
    episode_ends,
    episode_starts,
    gather_delayed,
    history_indices,
    sample_delays,
    stack_history,
)

# Two episodes: rows 0..4 (length 5) and rows 5..7 (length 3).
EPISODES = np.array([0, 0, 0, 0, 0, 1, 1, 1])
ENDS = episode_ends(EPISODES)
STARTS = episode_starts(EPISODES)


def test_episode_ends() -> None:
    assert ENDS.tolist() == [5, 5, 5, 5, 5, 8, 8, 8]
    assert episode_ends(np.array([3, 3, 7])).tolist() == [2, 2, 3]
    assert episode_ends(np.array([], dtype=np.int64)).tolist() == []


def test_episode_ends_rejects_interleaved_episodes() -> None:
    with pytest.raises(ValueError, match="contiguous"):
        episode_ends(np.array([0, 0, 1, 0]))


def test_zero_delay_is_plain_training() -> None:
    idx = delayed_indices(np.array([1]), ENDS[[1]], np.array([0]), chunk_size=3)
    assert idx.action_index.tolist() == [[1, 2, 3]]
    assert idx.action_is_pad.tolist() == [[False, False, False]]
    assert idx.state_index.tolist() == [1]
    assert idx.state_from_action.tolist() == [False]  # δ=0: the recorded s_t


def test_hand_computed_action_as_state() -> None:
    rows = np.array([0, 1, 3, 5, 6])
    delay = np.array([2, 1, 1, 1, 0])
    idx = delayed_indices(rows, ENDS[rows], delay, chunk_size=3, state_source="action")
    # t=0, δ=2: targets a2 a3 a4, state a1
    # t=1, δ=1: targets a2 a3 a4, state a1
    # t=3, δ=1: targets a4 | pad pad (episode ends at 5), state a3
    # t=5, δ=1: targets a6 a7 | pad, state a5
    # t=6, δ=0: targets a6 a7 | pad, state s6
    assert idx.action_index.tolist() == [[2, 3, 4], [2, 3, 4], [4, 4, 4], [6, 7, 7], [6, 7, 7]]
    assert idx.action_is_pad.tolist() == [
        [False, False, False],
        [False, False, False],
        [False, True, True],
        [False, False, True],
        [False, False, True],
    ]
    assert idx.state_index.tolist() == [1, 1, 3, 5, 6]
    assert idx.state_from_action.tolist() == [True, True, True, True, False]
    assert idx.delay.tolist() == delay.tolist()


def test_hand_computed_recorded_state() -> None:
    rows = np.array([0, 3, 6])
    delay = np.array([2, 1, 1])
    idx = delayed_indices(rows, ENDS[rows], delay, chunk_size=2, state_source="state")
    assert idx.state_index.tolist() == [2, 4, 7]  # s_{t+δ}
    assert idx.state_from_action.tolist() == [False, False, False]
    assert idx.action_index.tolist() == [[2, 3], [4, 4], [7, 7]]
    assert idx.action_is_pad.tolist() == [[False, False], [False, True], [False, True]]


def test_delay_past_the_episode_end_is_masked_not_an_error() -> None:
    rows = np.array([3, 7])
    delay = np.array([9, 4])
    for source in ("action", "state"):
        idx = delayed_indices(rows, ENDS[rows], delay, chunk_size=4, state_source=source)
        assert idx.action_is_pad.all()
        assert idx.action_index.tolist() == [[4] * 4, [7] * 4]  # clamped to each episode's last row
        assert idx.state_index.tolist() == [4, 7]  # the last frame, never the next episode


def test_gather_uses_the_right_columns() -> None:
    states = np.arange(8, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)  # s_i = (i, i)
    actions = states + 0.5  # a_i = (i + .5, i + .5)
    rows = np.array([0, 1])
    idx = delayed_indices(rows, ENDS[rows], np.array([0, 2]), chunk_size=2)
    state, action, pad = gather_delayed(idx, states, actions)
    assert state.tolist() == [[0.0, 0.0], [2.5, 2.5]]  # s_0 ; a_{1+2-1} = a_2
    assert action[:, :, 0].tolist() == [[0.5, 1.5], [3.5, 4.5]]
    assert not pad.any()


def test_action_as_state_needs_equal_sizes() -> None:
    check_state_source(6, 6, "action")
    check_state_source(7, 6, "state")
    with pytest.raises(ValueError, match="--state-source state"):
        check_state_source(7, 6, "action")
    with pytest.raises(ValueError, match="state_source"):
        check_state_source(6, 6, "future")


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        delayed_indices(np.array([5]), np.array([5]), np.array([0]), 2)  # row not before its end
    with pytest.raises(ValueError):
        delayed_indices(np.array([0]), np.array([5]), np.array([-1]), 2)
    with pytest.raises(ValueError):
        delayed_indices(np.array([0]), np.array([5]), np.array([0]), 0)
    with pytest.raises(ValueError):
        sample_delays(np.random.default_rng(0), 3, -1)


def test_sample_delays_covers_zero_to_max() -> None:
    rng = np.random.default_rng(0)
    draws = sample_delays(rng, 5000, 4)
    assert draws.min() == 0 and draws.max() == 4
    counts = np.bincount(draws, minlength=5)
    assert (np.abs(counts / 5000 - 0.2) < 0.03).all()
    assert (sample_delays(rng, 10, 0) == 0).all()


def test_episode_starts() -> None:
    assert STARTS.tolist() == [0, 0, 0, 0, 0, 5, 5, 5]
    assert episode_starts(np.array([3, 3, 7])).tolist() == [0, 0, 2]
    assert episode_starts(np.array([], dtype=np.int64)).tolist() == []
    with pytest.raises(ValueError, match="contiguous"):
        episode_starts(np.array([0, 1, 0]))


def test_history_indices_clamp_to_the_episode_start() -> None:
    rows = np.array([0, 1, 4, 5, 7])
    # n = 3: rows t-2, t-1, t; before an episode's first frame, that frame (LeRobot's padding)
    assert history_indices(rows, STARTS[rows], 3).tolist() == [
        [0, 0, 0],
        [0, 0, 1],
        [2, 3, 4],
        [5, 5, 5],  # never the previous episode's rows
        [5, 6, 7],
    ]
    assert history_indices(rows, STARTS[rows], 1).tolist() == [[0], [1], [4], [5], [7]]
    with pytest.raises(ValueError):
        history_indices(rows, STARTS[rows], 0)
    with pytest.raises(ValueError):
        history_indices(np.array([5]), np.array([6]), 2)  # start after the row


def test_history_policy_actions_start_before_t_and_shift_with_the_delay() -> None:
    # n_obs_steps = 2: targets a_{t+δ-1} .. a_{t+δ+H-2}; row 1 is for t+δ
    rows = np.array([0, 1, 3, 5])
    delay = np.array([0, 2, 1, 0])
    idx = delayed_indices(
        rows, ENDS[rows], delay, chunk_size=3, action_start=-1, episode_start=STARTS[rows]
    )
    assert idx.action_index.tolist() == [[0, 0, 1], [2, 3, 4], [3, 4, 4], [5, 5, 6]]
    assert idx.action_is_pad.tolist() == [
        [True, False, False],  # a_{-1}: before the episode
        [False, False, False],
        [False, False, True],  # a_5 belongs to the next episode
        [True, False, False],  # a_4 belongs to the previous one
    ]
    assert idx.state_index.tolist() == [0, 2, 3, 5]  # the state rule is the one-frame rule
    assert idx.state_from_action.tolist() == [False, True, True, False]
    with pytest.raises(ValueError, match="episode_start"):
        delayed_indices(rows, ENDS[rows], delay, chunk_size=3, action_start=-1)


def test_stacked_history_is_recorded_past_then_the_delayed_state() -> None:
    states = np.arange(8, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)  # s_i = (i, i)
    actions = states + 0.5
    rows = np.array([0, 3, 6])
    delay = np.array([2, 1, 0])
    idx = delayed_indices(rows, ENDS[rows], delay, chunk_size=2, action_start=-1, episode_start=STARTS[rows])
    current, _, _ = gather_delayed(idx, states, actions)
    history = history_indices(rows, STARTS[rows], 2)
    stacked = stack_history(history, states, current)
    assert stacked.shape == (3, 2, 2)
    # t=0, δ=2: [s_0 (clamped s_{-1}), a_1]; t=3, δ=1: [s_2, a_3]; t=6, δ=0: [s_5, s_6]
    assert stacked[:, :, 0].tolist() == [[0.0, 1.5], [2.0, 3.5], [5.0, 6.0]]
    # the history stays at t whatever the delay: the same past frames with δ=0
    plain = delayed_indices(rows, ENDS[rows], np.zeros(3, np.int64), chunk_size=2, action_start=-1,
                            episode_start=STARTS[rows])
    plain_stack = stack_history(history, states, gather_delayed(plain, states, actions)[0])
    np.testing.assert_array_equal(plain_stack[:, :-1], stacked[:, :-1])
