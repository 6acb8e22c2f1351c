"""VLASH temporal-delay augmentation as pure index arithmetic (numpy only, no torch, no I/O).

For a training sample at frame ``t`` and a delay ``δ`` drawn uniformly from ``{0..max_delay_steps}``:

- action targets are ``a_{t+δ} .. a_{t+δ+H-1}``; positions at or past the episode end are padding
  (``action_is_pad``, LeRobot's convention: the index is clamped to the episode's last frame and
  the loss ignores it), so a delay longer than the episode is masked, never an index error;
- the state input is the future state at ``t+δ``: with ``state_source="action"`` (state and action
  share a space, e.g. absolute joint targets) the last commanded target ``a_{t+δ-1}`` stands in
  for it, and ``s_t`` itself when ``δ=0``; with ``state_source="state"`` the recorded ``s_{t+δ}``;
  past the episode end both clamp to the last frame;
- images (and other observations) stay at ``t``.

Policies with an observation history of ``n`` frames (LeRobot's ``n_obs_steps``, e.g. Diffusion
Policy) predict actions from ``t-n+1`` on (``action_start = 1-n``): the whole action window shifts by
``δ``, so its row ``n-1`` is for ``t+δ``, as in the one-frame case. Their inputs are stacked over
``t-n+1..t`` (:func:`history_indices`): the past frames are the recorded ones, never shifted (the
history stays at ``t``, like the image); only the last frame's state is the delayed future state.
Indices before an episode's first frame clamp to it (LeRobot's padding convention); action targets
there are padding too.

``max_delay_steps=0`` is plain behaviour-cloning training. Indices are absolute rows of the
dataset's columns; episodes are contiguous runs of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

StateSource = Literal["action", "state"]
STATE_SOURCES: tuple[str, ...] = ("action", "state")


@dataclass(frozen=True)
class DelayedIndices:
    """Where to read one batch of delay-augmented samples from (all arrays share the batch axis)."""

    delay: np.ndarray  # (B,) int64, δ per sample
    action_index: np.ndarray  # (B, H) int64 rows of the action column (clamped into the episode)
    action_is_pad: np.ndarray  # (B, H) bool, True where t+δ+j is at or past the episode end
    state_index: np.ndarray  # (B,) int64 row to read the state input from
    state_from_action: np.ndarray  # (B,) bool: read state_index from the action column, else the state column


def episode_ends(episode_index: np.ndarray) -> np.ndarray:
    """Per row, the (exclusive) row index where its episode ends. Episodes must be contiguous."""
    episode_index = np.asarray(episode_index).reshape(-1)
    n = episode_index.shape[0]
    if n == 0:
        return np.zeros(0, np.int64)
    change = np.flatnonzero(episode_index[1:] != episode_index[:-1]) + 1  # first row of each new run
    run_ends = np.append(change, n).astype(np.int64)
    if len(np.unique(episode_index)) != len(run_ends):
        raise ValueError("episode_index is not contiguous: each episode's rows must be consecutive")
    run_id = np.zeros(n, np.int64)
    run_id[change] = 1
    return run_ends[np.cumsum(run_id)]


def episode_starts(episode_index: np.ndarray) -> np.ndarray:
    """Per row, the row index where its episode starts. Episodes must be contiguous."""
    episode_index = np.asarray(episode_index).reshape(-1)
    episode_ends(episode_index)  # the contiguity check
    change = np.flatnonzero(episode_index[1:] != episode_index[:-1]) + 1
    run_starts = np.concatenate([np.zeros(1, np.int64), change]).astype(np.int64)
    run_id = np.zeros(episode_index.shape[0], np.int64)
    run_id[change] = 1
    return run_starts[np.cumsum(run_id)]


def sample_delays(rng: np.random.Generator, n: int, max_delay_steps: int) -> np.ndarray:
    """``n`` delays drawn uniformly from ``{0..max_delay_steps}``."""
    if max_delay_steps < 0:
        raise ValueError(f"max_delay_steps must be >= 0, got {max_delay_steps}")
    return rng.integers(0, max_delay_steps + 1, size=n, dtype=np.int64)


def check_state_source(state_dim: int, action_dim: int, state_source: str) -> None:
    """Refuse action-as-state when the two vectors are not the same size (so not the same space)."""
    if state_source not in STATE_SOURCES:
        raise ValueError(f"state_source must be one of {STATE_SOURCES}, got {state_source!r}")
    if state_source == "action" and state_dim != action_dim:
        raise ValueError(
            f"state ({state_dim} values) and action ({action_dim} values) differ in size, so the action "
            "a_(t+δ-1) cannot stand in for the future state. Use --state-source state "
            "(state_source='state') to read the recorded state s_(t+δ) instead."
        )


def delayed_indices(
    rows: np.ndarray,
    episode_end: np.ndarray,
    delay: np.ndarray,
    chunk_size: int,
    state_source: StateSource = "action",
    *,
    action_start: int = 0,
    episode_start: np.ndarray | None = None,
) -> DelayedIndices:
    """Indices and masks for samples at absolute ``rows`` with per-sample ``delay``.

    ``episode_end[i]`` is the exclusive end row of ``rows[i]``'s episode (see :func:`episode_ends`).
    Action targets are ``a_{t+δ+action_start} .. a_{t+δ+action_start+chunk_size-1}``; a negative
    ``action_start`` (a history policy's ``1-n``) needs ``episode_start`` (:func:`episode_starts`)
    so that targets before the episode are clamped and marked as padding.
    """
    if state_source not in STATE_SOURCES:
        raise ValueError(f"state_source must be one of {STATE_SOURCES}, got {state_source!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    rows = np.asarray(rows, np.int64).reshape(-1)
    end = np.asarray(episode_end, np.int64).reshape(-1)
    delay = np.asarray(delay, np.int64).reshape(-1)
    if not (rows.shape == end.shape == delay.shape):
        raise ValueError("rows, episode_end and delay must have the same length")
    if np.any(delay < 0):
        raise ValueError("delays must be >= 0")
    if np.any(rows >= end):
        raise ValueError("every row must lie before its episode end")
    if action_start < 0 and episode_start is None:
        raise ValueError("a negative action_start needs episode_start")
    first = rows if episode_start is None else np.asarray(episode_start, np.int64).reshape(-1)
    if first.shape != rows.shape or np.any(first > rows):
        raise ValueError("episode_start must have one entry per row, at or before it")
    last = end - 1
    offsets = action_start + np.arange(chunk_size, dtype=np.int64)
    wanted = rows[:, None] + delay[:, None] + offsets[None, :]
    action_is_pad = (wanted > last[:, None]) | (wanted < first[:, None])
    action_index = np.clip(wanted, first[:, None], last[:, None])
    if state_source == "action":
        state_from_action = delay > 0
        state_index = np.where(state_from_action, np.minimum(rows + delay - 1, last), rows)
    else:
        state_from_action = np.zeros_like(delay, dtype=bool)
        state_index = np.minimum(rows + delay, last)
    return DelayedIndices(
        delay=delay,
        action_index=action_index,
        action_is_pad=action_is_pad,
        state_index=state_index,
        state_from_action=state_from_action,
    )


def gather_delayed(
    indices: DelayedIndices, states: np.ndarray, actions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply :class:`DelayedIndices` to the state (N, S) and action (N, A) columns.

    Returns ``(state (B, S), action (B, H, A), action_is_pad (B, H))``.
    """
    state = np.asarray(states)[indices.state_index]
    if indices.state_from_action.any():
        check_state_source(states.shape[-1], actions.shape[-1], "action")
        from_action = np.asarray(actions)[indices.state_index]
        state = np.where(indices.state_from_action[:, None], from_action, state)
    return state, np.asarray(actions)[indices.action_index], indices.action_is_pad


def history_indices(rows: np.ndarray, episode_start: np.ndarray, n_obs_steps: int) -> np.ndarray:
    """``(B, n)`` rows ``t-n+1 .. t`` of each sample's observation history, oldest first.

    Rows before the episode's first frame clamp to it (LeRobot's padding convention).
    """
    if n_obs_steps < 1:
        raise ValueError(f"n_obs_steps must be >= 1, got {n_obs_steps}")
    rows = np.asarray(rows, np.int64).reshape(-1)
    first = np.asarray(episode_start, np.int64).reshape(-1)
    if first.shape != rows.shape or np.any(first > rows):
        raise ValueError("episode_start must have one entry per row, at or before it")
    offsets = np.arange(1 - n_obs_steps, 1, dtype=np.int64)
    return np.maximum(rows[:, None] + offsets[None, :], first[:, None])


def stack_history(history_index: np.ndarray, states: np.ndarray, current: np.ndarray) -> np.ndarray:
    """``(B, n, S)``: the recorded states at ``history_index[:, :-1]``, then ``current`` (B, S) last.

    ``current`` is the sample's (possibly delayed) state input from :func:`gather_delayed`.
    """
    history_index = np.asarray(history_index, np.int64)
    stacked = np.asarray(states)[history_index].copy()
    stacked[:, -1] = current
    return stacked
