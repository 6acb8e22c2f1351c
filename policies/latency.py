"""Latency emulation: make any policy take a given time, so a CPU machine shows GPU-scale timing.

:class:`LatencyEmulation` wraps a :class:`Policy`; each ``predict_chunk`` takes a latency drawn
from a :class:`LatencyDistribution` (fixed, normal, lognormal, or measured samples). The wrapped
policy's own compute time counts toward that total (``mode="total"``) unless ``mode="added"``.
Sleeping goes through a replaceable :class:`Clock`, so tests use :class:`FakeClock` and never wait.
In virtual time the same latency maps to a delay in control steps, ``Δ = ceil(latency · fps)``
(:func:`vlash.delay.steps_for_seconds`, the rule the server and the delay estimator use too).

Presets are the π0.5 inference times the VLASH paper reports (arXiv 2512.01031, Table 2 and the
LIBERO set-up); the paper gives means only, so presets are fixed unless a jitter is asked for.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from vlash.contracts import ActionKind, Policy, PolicyFeatures, PolicyObservation, predict_chunks
from vlash.delay import steps_for_seconds

# name -> (mean latency in ms, where the number comes from)
PRESETS: dict[str, tuple[float, str]] = {
    "pi05_4090_2img": (103.0, "π0.5, two images, laptop RTX 4090 (LIBERO, paper §5)"),
    "pi05_4090_1img": (36.1, "π0.5, one image, RTX 4090 (paper Table 2)"),
    "pi05_5090_1img": (30.4, "π0.5, one image, RTX 5090 (paper Table 2)"),
    "pi05_5070_1img": (64.1, "π0.5, one image, RTX 5070 (paper Table 2)"),
}
class Clock(Protocol):
    """Time source used for sleeping; replace it in tests."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class WallClock:
    """The monotonic clock; sleeps coarsely, then spins the last millisecond for precision."""

    spin_s = 0.001

    def now(self) -> float:
        return time.perf_counter()

    def sleep(self, seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        if seconds > self.spin_s:
            time.sleep(seconds - self.spin_s)
        while time.perf_counter() < deadline:
            pass


class FakeClock:
    """A clock that only moves when slept on (or advanced); records every sleep."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = float(start)
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(float(seconds))
        self.t += max(0.0, float(seconds))

    def advance(self, seconds: float) -> None:
        """Let time pass without a sleep (e.g. to stand for a policy's compute time)."""
        self.t += float(seconds)


@dataclass(frozen=True)
class LatencyDistribution:
    """Latencies in milliseconds: ``fixed`` (mean), ``normal``/``lognormal`` (mean, std), ``empirical``."""

    kind: Literal["fixed", "normal", "lognormal", "empirical"]
    mean_ms: float
    std_ms: float = 0.0
    samples_ms: tuple[float, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind == "empirical":
            if not self.samples_ms or min(self.samples_ms) < 0:
                raise ValueError("an empirical latency needs non-negative samples")
        elif self.mean_ms < 0 or self.std_ms < 0:
            raise ValueError(f"latency mean and std must be >= 0, got {self.mean_ms}, {self.std_ms}")
        if self.kind == "lognormal" and self.mean_ms == 0:
            raise ValueError("a lognormal latency needs a positive mean")

    @classmethod
    def fixed(cls, ms: float) -> LatencyDistribution:
        return cls("fixed", float(ms))

    @classmethod
    def empirical(cls, samples_ms: list[float] | np.ndarray) -> LatencyDistribution:
        samples = tuple(float(x) for x in np.asarray(samples_ms).reshape(-1))
        return cls("empirical", float(np.mean(samples)) if samples else 0.0, samples_ms=samples)

    @classmethod
    def preset(cls, name: str, jitter: float = 0.0) -> LatencyDistribution:
        """A paper preset; ``jitter`` > 0 makes it lognormal with that coefficient of variation."""
        if name not in PRESETS:
            raise ValueError(f"unknown latency preset {name!r}; known: {', '.join(PRESETS)}")
        mean = PRESETS[name][0]
        if jitter > 0:
            return cls("lognormal", mean, jitter * mean, name=name)
        return cls("fixed", mean, name=name)

    def _lognormal(self) -> tuple[float, float]:
        sigma2 = math.log1p((self.std_ms / self.mean_ms) ** 2)
        return math.log(self.mean_ms) - sigma2 / 2, math.sqrt(sigma2)

    def sample_ms(self, rng: np.random.Generator) -> float:
        """One latency draw (never negative)."""
        if self.kind == "fixed" or (self.std_ms == 0 and self.kind != "empirical"):
            return self.mean_ms
        if self.kind == "normal":
            return max(0.0, float(rng.normal(self.mean_ms, self.std_ms)))
        if self.kind == "lognormal":
            mu, sigma = self._lognormal()
            return float(rng.lognormal(mu, sigma))
        return float(self.samples_ms[int(rng.integers(len(self.samples_ms)))])

    def quantile_ms(self, q: float) -> float:
        """The ``q`` quantile (0..1) of the latency."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], got {q}")
        if self.kind == "empirical":
            return float(np.quantile(self.samples_ms, q))
        if self.kind == "fixed" or self.std_ms == 0:
            return self.mean_ms
        if q in (0.0, 1.0):
            return 0.0 if q == 0.0 else math.inf
        z = statistics.NormalDist().inv_cdf(q)
        if self.kind == "normal":
            return max(0.0, self.mean_ms + z * self.std_ms)
        mu, sigma = self._lognormal()
        return math.exp(mu + sigma * z)


def parse_latency(spec: str | float | LatencyDistribution) -> LatencyDistribution:
    """``103`` / ``"103"`` (fixed ms), a preset name (``"pi05_4090_2img"``, optionally ``":0.05"``
    jitter), ``"fixed:103"``, ``"normal:103,5"`` or ``"lognormal:103,5"`` (mean, std in ms)."""
    if isinstance(spec, LatencyDistribution):
        return spec
    if isinstance(spec, int | float):
        return LatencyDistribution.fixed(float(spec))
    text = spec.strip()
    head, _, rest = text.partition(":")
    try:
        if head in PRESETS:
            return LatencyDistribution.preset(head, float(rest) if rest else 0.0)
        if not rest:
            return LatencyDistribution.fixed(float(head))
        values = [float(v) for v in rest.split(",")]
        if head == "fixed" and len(values) == 1:
            return LatencyDistribution.fixed(values[0])
        if head in ("normal", "lognormal") and len(values) == 2:
            return LatencyDistribution(head, values[0], values[1])  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"bad latency spec {spec!r}: {exc}") from exc
    raise ValueError(
        f"bad latency spec {spec!r}: use MS, fixed:MS, normal:MEAN,STD, lognormal:MEAN,STD "
        f"or a preset ({', '.join(PRESETS)}[:JITTER])"
    )


class LatencyEmulation:
    """Wrap ``policy`` so each ``predict_chunk`` takes a drawn latency (see module docstring).

    Exactly one of ``latency_ms`` and ``distribution`` is given. After each call
    ``last_latency_s`` is the time it took by ``clock`` and ``last_target_s`` the drawn target.

    ``predict_batch`` of B observations costs the drawn latency plus ``per_item_ms`` for each
    item after the first (a GPU-like fixed cost plus a per-item cost); with ``per_item_ms=None``
    every item costs a full draw, as on a machine where batching buys nothing.
    """

    def __init__(
        self,
        policy: Policy,
        latency_ms: float | None = None,
        *,
        distribution: LatencyDistribution | str | None = None,
        seed: int = 0,
        clock: Clock | None = None,
        mode: Literal["total", "added"] = "total",
        per_item_ms: float | None = None,
    ) -> None:
        if (latency_ms is None) == (distribution is None):
            raise ValueError("give exactly one of latency_ms and distribution")
        if mode not in ("total", "added"):
            raise ValueError(f"mode must be 'total' or 'added', got {mode!r}")
        if per_item_ms is not None and not (math.isfinite(per_item_ms) and per_item_ms >= 0):
            raise ValueError(f"per_item_ms must be a number >= 0, got {per_item_ms!r}")
        self.per_item_ms = per_item_ms
        self.policy = policy
        self.distribution = (
            LatencyDistribution.fixed(latency_ms) if latency_ms is not None else parse_latency(distribution)
        )
        self.clock: Clock = clock or WallClock()
        self.mode = mode
        self._rng = np.random.default_rng(seed)
        self.last_latency_s: float | None = None
        self.last_target_s: float | None = None

    # Policy protocol: everything but timing is the wrapped policy's
    @property
    def features(self) -> PolicyFeatures:
        return self.policy.features

    @property
    def chunk_size(self) -> int:
        return self.policy.chunk_size

    @property
    def action_kind(self) -> ActionKind:
        return self.policy.action_kind

    @property
    def supports_rtc(self) -> bool:
        return self.policy.supports_rtc

    def reset(self) -> None:
        """Reset the wrapped policy (the latency stream carries on)."""
        self.policy.reset()

    def predict_chunk(self, observation: PolicyObservation) -> np.ndarray:
        """The wrapped policy's chunk, returned no earlier than the drawn latency after the call."""
        return self.predict_batch([observation])[0]

    def predict_batch(self, observations: Sequence[PolicyObservation]) -> list[np.ndarray]:
        """The wrapped policy's chunks (batched where it can), returned after the batch's emulated cost."""
        observations = list(observations)
        draws = 1 if self.per_item_ms is not None else len(observations)
        target = sum(self.distribution.sample_ms(self._rng) for _ in range(draws)) / 1000.0
        if self.per_item_ms is not None:
            target += self.per_item_ms * (len(observations) - 1) / 1000.0
        start = self.clock.now()
        chunks = predict_chunks(self.policy, observations)
        spent = self.clock.now() - start
        wait = target if self.mode == "added" else target - spent
        if wait > 0:
            self.clock.sleep(wait)
        self.last_target_s = target
        self.last_latency_s = self.clock.now() - start
        return chunks

    def delay_steps(self, fps: float, quantile: float | None = None) -> int:
        """Δ for virtual time: the mean latency (or its ``quantile``) in control steps at ``fps``."""
        ms = self.distribution.mean_ms if quantile is None else self.distribution.quantile_ms(quantile)
        return _steps(ms, fps)

    def sample_delay_steps(self, fps: float) -> int:
        """One drawn latency in control steps (for virtual time with jitter)."""
        return _steps(self.distribution.sample_ms(self._rng), fps)


def _steps(latency_ms: float, fps: float) -> int:
    """Control steps a latency spans at ``fps`` (the runtime's one rule, :func:`vlash.delay.steps_for_seconds`)."""
    if latency_ms < 0 or not fps > 0:
        raise ValueError(f"need latency >= 0 and fps > 0, got {latency_ms} ms at {fps} Hz")
    return steps_for_seconds(latency_ms / 1000.0, fps)
