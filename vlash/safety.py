"""The safety filter: the last gate before the driver. No invalid action ever passes it.

A non-finite or wrong-shaped action becomes a hold; targets are clipped to the joint limits and
their change per tick is limited. Every intervention is counted by reason.
"""

from __future__ import annotations

from collections import Counter

import numpy as np


class SafetyFilter:
    """Clip to ``[low, high]`` and to ``max_step`` per tick (absolute targets); count interventions."""

    def __init__(self, low, high, max_step=None, action_kind: str = "absolute"):
        self.low = np.asarray(low, dtype=np.float32)
        self.high = np.asarray(high, dtype=np.float32)
        if self.low.shape != self.high.shape or np.any(self.low > self.high):
            raise ValueError("joint limits must have equal shapes and low <= high")
        self.max_step = None if max_step is None else np.asarray(max_step, dtype=np.float32)
        self.action_kind = action_kind
        self.counters: Counter[str] = Counter()

    def apply(self, action: np.ndarray, last_sent: np.ndarray) -> np.ndarray:
        """A safe version of ``action`` given the previously sent ``last_sent`` (always valid)."""
        last_sent = np.asarray(last_sent, dtype=np.float32)
        try:
            action = np.asarray(action, dtype=np.float32)
        except (TypeError, ValueError):
            self.counters["invalid"] += 1
            return self._hold(last_sent)
        if action.shape != self.low.shape:
            self.counters["wrong_shape"] += 1
            return self._hold(last_sent)
        if not np.all(np.isfinite(action)):
            self.counters["nonfinite"] += 1
            return self._hold(last_sent)
        if self.action_kind == "delta":
            return self._limit_step(action)
        clipped = np.clip(action, self.low, self.high)
        if np.any(clipped != action):
            self.counters["clipped"] += 1
        if self.max_step is not None and np.all(np.isfinite(last_sent)):
            step = np.clip(clipped - last_sent, -self.max_step, self.max_step)
            if np.any(last_sent + step != clipped):
                self.counters["rate_limited"] += 1
            clipped = np.clip(last_sent + step, self.low, self.high)
        return clipped.astype(np.float32)

    def _limit_step(self, delta: np.ndarray) -> np.ndarray:
        if self.max_step is None:
            return delta
        limited = np.clip(delta, -self.max_step, self.max_step)
        if np.any(limited != delta):
            self.counters["rate_limited"] += 1
        return limited

    def _hold(self, last_sent: np.ndarray) -> np.ndarray:
        if self.action_kind == "delta":
            return np.zeros_like(self.low)
        if last_sent.shape == self.low.shape and np.all(np.isfinite(last_sent)):
            return np.clip(last_sent, self.low, self.high)
        return (self.low + self.high) / 2  # nothing valid was ever sent: unreachable after connect
