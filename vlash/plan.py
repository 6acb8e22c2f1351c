"""The plan: a step-indexed timeline of actions, the one record of what the robot will do.

Installing a chunk overwrites the plan from its start step on; rows for steps that have
already been executed are dropped; steps are executed strictly in order, each at most once.
No I/O, no clock: the virtual-time runner and the real-time control process share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlash.contracts import ActionKind


@dataclass(frozen=True)
class Installed:
    """What one :meth:`Plan.install` did."""

    chunk_id: int
    start_step: int  # the step the chunk's row 0 was for
    first_step: int  # the first step the chunk will actually act on
    dropped: int  # rows for steps already executed, never run
    installed: int  # rows now in the plan


@dataclass(frozen=True)
class Switch:
    """A step where execution passed from one chunk to another."""

    step: int
    from_chunk: int
    to_chunk: int
    discontinuity: float  # max |a_step - a_{step-1}| over action dims


@dataclass(frozen=True)
class Executed:
    """What the plan yields for one step."""

    step: int
    action: np.ndarray  # (A,) float32: the planned action, or the hold action on a stall
    chunk_id: int  # -1 on a stall
    stalled: bool
    switch: Switch | None
    row: int = -1  # the chunk row executed (after quantization); -1 on a stall


def hold_action(kind: ActionKind, last_action: np.ndarray | None, state: np.ndarray) -> np.ndarray:
    """The action that keeps the robot where it is: the last target (absolute) or zero (delta)."""
    if kind == "delta":
        return np.zeros_like(np.asarray(state, dtype=np.float32))
    if last_action is not None:
        return np.asarray(last_action, dtype=np.float32).copy()
    return np.asarray(state, dtype=np.float32).copy()


def queued_window(
    plan_start: int, plan: np.ndarray, step: int, n: int, hold: np.ndarray, kind: ActionKind = "absolute"
) -> np.ndarray:
    """Actions the robot will execute at steps ``step .. step+n-1`` given a plan remainder.

    ``plan`` row i is for step ``plan_start + i``. A step the plan does not cover holds: it
    repeats the last covered target (absolute) or is ``hold`` (delta, or nothing covered yet).
    """
    hold = np.asarray(hold, dtype=np.float32)
    out = np.repeat(hold[None], max(n, 0), axis=0)
    rows = np.arange(step, step + max(n, 0)) - plan_start
    inside = (rows >= 0) & (rows < len(plan))
    out[inside] = plan[rows[inside]]
    if kind == "absolute" and len(plan):
        out[rows >= len(plan)] = plan[-1]
    return out


class Plan:
    """Step-indexed action timeline. ``next_step`` is the first step not yet executed."""

    def __init__(self, action_dim: int, action_kind: ActionKind = "absolute", first_step: int = 0):
        self.action_dim = action_dim
        self.action_kind: ActionKind = action_kind
        self.next_step = first_step
        self._actions = np.zeros((0, action_dim), dtype=np.float32)  # row i is for next_step + i
        self._chunk_ids = np.zeros(0, dtype=np.int64)
        self._rows = np.zeros(0, dtype=np.int64)  # which row of its chunk each queued action is
        self.last_action: np.ndarray | None = None
        self.last_chunk_id = -1

    def __len__(self) -> int:
        """Number of queued actions (steps ``next_step ..``)."""
        return len(self._actions)

    @property
    def end_step(self) -> int:
        """First step with no queued action."""
        return self.next_step + len(self._actions)

    def install(self, start_step: int, actions: np.ndarray, chunk_id: int) -> Installed:
        """Overwrite the plan from ``start_step`` on with ``actions`` (row 0 is for ``start_step``).

        Rows for executed steps are dropped. Queued actions before ``start_step`` stay (the
        old chunk keeps running until the new one starts); a gap between the old plan's end
        and ``start_step`` becomes hold steps.
        """
        actions = np.asarray(actions, dtype=np.float32)
        if actions.ndim != 2 or actions.shape[1] != self.action_dim:
            raise ValueError(f"chunk shape {actions.shape} does not match action_dim {self.action_dim}")
        dropped = max(0, min(self.next_step - start_step, len(actions)))
        first = max(start_step, self.next_step)
        keep_rows = actions[dropped:]
        keep_old = min(first - self.next_step, len(self._actions))
        gap = first - self.next_step - keep_old
        if gap > 0:  # the old plan ends before the new chunk starts: hold meanwhile
            hold = self._hold_for_gap()
            filler = np.repeat(hold[None], gap, axis=0)
            self._actions = np.concatenate([self._actions[:keep_old], filler, keep_rows])
            self._chunk_ids = np.concatenate(
                [self._chunk_ids[:keep_old], np.full(gap, -1), np.full(len(keep_rows), chunk_id)]
            )
            self._rows = np.concatenate([self._rows[:keep_old], np.full(gap, -1), np.arange(dropped, len(actions))])
        else:
            self._actions = np.concatenate([self._actions[:keep_old], keep_rows])
            self._chunk_ids = np.concatenate([self._chunk_ids[:keep_old], np.full(len(keep_rows), chunk_id)])
            self._rows = np.concatenate([self._rows[:keep_old], np.arange(dropped, len(actions))])
        return Installed(chunk_id, start_step, first, dropped, len(keep_rows))

    def _hold_for_gap(self) -> np.ndarray:
        if self.action_kind == "delta":
            return np.zeros(self.action_dim, dtype=np.float32)
        if len(self._actions):
            return self._actions[-1].copy()
        if self.last_action is not None:
            return self.last_action.copy()
        return np.full(self.action_dim, np.nan, dtype=np.float32)  # resolved to the state at execution

    def execute(self, step: int, state: np.ndarray) -> Executed:
        """Take the action for ``step`` (>= ``next_step``; skipped steps are dropped) or hold."""
        if step < self.next_step:
            raise ValueError(f"step {step} already executed (next step is {self.next_step})")
        skip = step - self.next_step
        if skip:
            self._actions, self._chunk_ids, self._rows = self._actions[skip:], self._chunk_ids[skip:], self._rows[skip:]
        self.next_step = step + 1
        chunk_id, row = -1, -1
        if len(self._actions):
            action, chunk_id, row = self._actions[0], int(self._chunk_ids[0]), int(self._rows[0])
            self._actions, self._chunk_ids, self._rows = self._actions[1:], self._chunk_ids[1:], self._rows[1:]
        if chunk_id < 0 or not np.all(np.isfinite(action)):
            action = hold_action(self.action_kind, self.last_action, state)
            chunk_id, row = -1, -1
        switch = None
        if chunk_id >= 0 and chunk_id != self.last_chunk_id and self.last_chunk_id >= 0:
            prev = self.last_action if self.last_action is not None else action
            jump = float(np.max(np.abs(action - prev))) if self.action_kind == "absolute" else 0.0
            switch = Switch(step, self.last_chunk_id, chunk_id, jump)
        if chunk_id >= 0:
            self.last_chunk_id = chunk_id
        self.last_action = np.asarray(action, dtype=np.float32).copy()
        return Executed(step, self.last_action, chunk_id, chunk_id < 0, switch, row)

    def remainder(self, state: np.ndarray) -> tuple[int, np.ndarray]:
        """Queued actions as ``(first_step, (P, A) array)``, holds filled in (always finite)."""
        acts = self._actions.copy()
        if len(acts) and not np.all(np.isfinite(acts)):
            hold = hold_action(self.action_kind, self.last_action, state)
            acts[~np.isfinite(acts).all(axis=1)] = hold
        return self.next_step, acts

    def window(self, step: int, n: int, state: np.ndarray) -> np.ndarray:
        """Actions that will execute at ``step .. step+n-1`` (holds filled in)."""
        start, acts = self.remainder(state)
        hold = hold_action(self.action_kind, self.last_action, state)
        return queued_window(start, acts, step, n, hold, self.action_kind)

    def clear(self) -> None:
        """Drop every queued action (the robot will hold)."""
        self._actions, self._chunk_ids, self._rows = self._actions[:0], self._chunk_ids[:0], self._rows[:0]
