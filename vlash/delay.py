"""Delay estimators: Δ, the number of control steps between an observation and the first step
a chunk computed from it can act on.

Virtual time uses :class:`FixedDelay`. Real time uses :class:`RoundTripDelay`, a high quantile
of recent round trips plus a margin, with warm-up samples excluded and old samples decaying,
so one cold-start spike cannot make the robot skip most of a chunk (LeRobot RTC #4223).
No clock reads: callers pass measured durations in.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np


def steps_for_seconds(seconds: float, fps: float, margin_steps: int = 0) -> int:
    """The one seconds-to-steps rule for Δ: whole control periods a latency spans, plus a margin.

    A latency of exactly n periods needs n steps, not n+1 (the 1 % slack absorbs float noise and
    a sub-millisecond transport on top of an n-period model). Latency emulation, the delay
    estimator and the server's first guess all use it.
    """
    return max(math.ceil(seconds * fps - 0.01), 0) + margin_steps


@dataclass
class FixedDelay:
    """Δ given, not measured (virtual time, or a user who knows their latency)."""

    steps: int

    def observe(self, rtt_s: float) -> None:
        """Ignored: the delay is fixed."""

    def delay_steps(self) -> int:
        return self.steps


@dataclass
class RoundTripDelay:
    """Δ from measured round trips: weighted ``quantile`` of recent samples, plus ``margin_steps``.

    Each sample's weight halves every ``half_life`` newer samples, so a spike fades; the first
    ``warmup`` samples (model compilation, cache warm-up) are ignored; Δ never exceeds
    ``max_steps`` (set it below the chunk's execution horizon).
    """

    dt: float  # control period in seconds
    quantile: float = 0.95
    margin_steps: int = 1
    window: int = 64
    warmup: int = 2
    half_life: float = 16.0
    max_steps: int = 1_000_000
    initial_steps: int = 0  # before any usable sample
    _samples: deque = field(default_factory=deque, init=False, repr=False)
    _seen: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.dt <= 0:
            raise ValueError("dt must be positive")
        if not 0.0 < self.quantile <= 1.0:
            raise ValueError("quantile must be in (0, 1]")
        self._samples = deque(maxlen=self.window)

    def observe(self, rtt_s: float) -> None:
        """Add one measured round trip (seconds). Non-finite or negative samples are ignored."""
        if not math.isfinite(rtt_s) or rtt_s < 0:
            return
        self._seen += 1
        if self._seen <= self.warmup:
            return
        self._samples.append(rtt_s)

    @property
    def samples(self) -> int:
        return len(self._samples)

    def delay_seconds(self) -> float | None:
        """The weighted quantile of recent round trips, or None before any usable sample."""
        if not self._samples:
            return None
        values = np.asarray(self._samples, dtype=np.float64)
        ages = np.arange(len(values) - 1, -1, -1, dtype=np.float64)
        weights = 0.5 ** (ages / self.half_life)
        order = np.argsort(values)
        cum = np.cumsum(weights[order])
        idx = int(np.searchsorted(cum, self.quantile * cum[-1] - 1e-12))
        return float(values[order][min(idx, len(values) - 1)])

    def delay_steps(self) -> int:
        seconds = self.delay_seconds()
        if seconds is None:
            return min(self.initial_steps, self.max_steps)
        return int(min(steps_for_seconds(seconds, 1.0 / self.dt, self.margin_steps), self.max_steps))
