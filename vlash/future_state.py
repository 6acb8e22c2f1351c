"""Future-state estimators: the state the robot will be in when a new chunk starts.

VLASH conditions the policy on ``ŝ_{k+Δ}``, estimated from the state read at step ``k`` and
the actions the robot will execute during the delay, ``a_k .. a_{k+Δ-1}`` (``queued``, exactly
Δ rows, holds already filled in by the caller). Estimators are pure functions of their inputs:
no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FutureStateEstimator(Protocol):
    name: str

    def estimate(
        self, state: np.ndarray, queued: np.ndarray, extras: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """Return the estimated state after executing the ``queued`` (Δ, A) actions from ``state``."""


class NoEstimate:
    """``none``: the current state, unchanged (what naive async inference does)."""

    name = "none"

    def estimate(self, state, queued, extras=None):
        return np.asarray(state, dtype=np.float32).copy()


class LastTarget:
    """``target``: for absolute joint-position actions, the last target commanded before the switch."""

    name = "target"

    def estimate(self, state, queued, extras=None):
        if len(queued) == 0:
            return np.asarray(state, dtype=np.float32).copy()
        return np.asarray(queued[-1], dtype=np.float32).copy()


class IntegrateDeltas:
    """``integrate``: for delta actions, the state plus the sum of the queued deltas."""

    name = "integrate"

    def estimate(self, state, queued, extras=None):
        out = np.asarray(state, dtype=np.float32).copy()
        if len(queued):
            out += np.asarray(queued, dtype=np.float32).sum(axis=0)
        return out


_REGISTRY: dict[str, Callable[..., FutureStateEstimator]] = {
    "none": NoEstimate,
    "target": LastTarget,
    "integrate": IntegrateDeltas,
}


def register_estimator(name: str, factory: Callable[..., FutureStateEstimator]) -> None:
    """Make an estimator available by name (e.g. ``sim`` registers ``model``).

    ``factory(**options)`` builds it; options come from the caller (e.g. the arm model and fps).
    """
    _REGISTRY[name] = factory


def make_estimator(name: str, **options) -> FutureStateEstimator:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown future-state estimator {name!r}; known: {known}") from None
    return factory(**options)


def known_estimators() -> list[str]:
    return sorted(_REGISTRY)
