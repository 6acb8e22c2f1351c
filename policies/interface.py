"""The policy interface: what the runtime hands a policy and what it gets back.

Scripted experts (``sim/``) and learned LeRobot policies both implement :class:`Policy`,
so they run through exactly the same runtime paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

ActionKind = Literal["absolute", "delta"]


@dataclass(frozen=True)
class PolicyFeatures:
    """What a policy consumes and produces, described as data."""

    state_dim: int
    action_dim: int
    cameras: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (height, width)
    uses_task: bool = False
    extras: tuple[str, ...] = ()  # names of privileged arrays it needs (e.g. "task_state")


@dataclass
class PolicyObservation:
    """One observation as a policy sees it.

    ``state`` is the state to plan from: the measured state in ``sync``/``naive`` mode, the
    estimated state at ``start_step`` in ``vlash`` mode. ``measured_state`` is always the state
    actually read at ``step``. Row 0 of the returned chunk is for ``start_step``. Images are
    always the current ones.
    """

    step: int
    state: np.ndarray  # (S,) float32
    measured_state: np.ndarray  # (S,) float32
    images: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (H, W, 3) uint8
    task: str = ""
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. task_state, velocity
    # rtc mode only: actions already queued for steps start_step.. and the delay in steps
    prefix: np.ndarray | None = None  # (P, A) float32
    delay_steps: int = 0
    start_step: int | None = None  # the step row 0 is for; None means ``step``

    def __post_init__(self) -> None:
        if self.start_step is None:
            self.start_step = self.step


@runtime_checkable
class Policy(Protocol):
    """A chunking policy: one observation in, ``chunk_size`` actions out."""

    features: PolicyFeatures
    chunk_size: int
    action_kind: ActionKind
    supports_rtc: bool

    def reset(self) -> None:
        """Forget any per-episode state (called at each episode start)."""

    def predict_chunk(self, observation: PolicyObservation) -> np.ndarray:
        """Return a (chunk_size, action_dim) float32 array; row 0 is for the chunk's first step."""
