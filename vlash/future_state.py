"""Future-state estimators: the state the robot will be in when a new chunk starts.

VLASH conditions the policy on ``ŝ_{k+Δ}``, estimated from the state read at step ``k`` and
the actions the robot will execute during the delay, ``a_k .. a_{k+Δ-1}`` (``queued``, exactly
Δ rows, holds already filled in by the caller). Estimators are pure functions of their inputs:
no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import numpy as np

from vlash.contracts import FutureStateEstimator
from vlash.factory import resolve


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


_BUILTIN: dict[str, Callable[..., FutureStateEstimator]] = {
    "none": NoEstimate,
    "target": LastTarget,
    "integrate": IntegrateDeltas,
}
_REGISTERED: dict[str, Callable[..., FutureStateEstimator]] = {}
ENTRY_POINT_GROUP = "vlash.estimators"  # packages name their estimators here (pyproject entry points)


def register_estimator(name: str, factory: Callable[..., FutureStateEstimator]) -> None:
    """Make an estimator available by name in this process (tests, notebooks).

    Installed packages declare theirs as ``[project.entry-points."vlash.estimators"]`` instead, so a
    name resolves without anything having been imported first (``sim`` declares ``model``).
    """
    _REGISTERED[name] = factory


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def estimator_factory(name: str) -> Callable[..., FutureStateEstimator]:
    """The callable that builds estimator ``name``: built in, registered, an entry point, or a
    ``"package.module:callable"`` factory path (named like policies and drivers)."""
    if name in _BUILTIN:
        return _BUILTIN[name]
    if name in _REGISTERED:
        return _REGISTERED[name]
    if ":" in name:
        return resolve(name)
    found = _entry_points().get(name)
    if found is None:
        raise ValueError(f"unknown future-state estimator {name!r}; known: {', '.join(known_estimators())} "
                         "(or a 'package.module:callable' factory path)")
    try:
        return found.load()
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"future-state estimator {name!r} ({found.value}) cannot be loaded: {exc}") from None


def make_estimator(name: str, **options: Any) -> FutureStateEstimator:
    """Build estimator ``name`` with ``options`` (e.g. the arm model and fps for ``model``)."""
    return estimator_factory(name)(**options)


def known_estimators() -> list[str]:
    return sorted({*_BUILTIN, *_REGISTERED, *_entry_points()})
