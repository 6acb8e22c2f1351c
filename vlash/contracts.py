"""The contracts: every interface the runtime talks to, described as data. The ground floor.

Policies (``policies/``, scripted experts in ``sim/``), drivers (``sim/``, ``robot_drivers/``) and
estimators implement these; the runtime core imports nothing else of theirs. Like LeRobot's
``Robot`` and openpi-client's ``BasePolicy``: small protocols, features as plain data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, Self, runtime_checkable

import numpy as np

ActionKind = Literal["absolute", "delta"]
ACTION_KINDS: tuple[str, ...] = ("absolute", "delta")


# --- policies -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyFeatures:
    """What a policy consumes and produces, described as data."""

    state_dim: int
    action_dim: int
    cameras: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (height, width)
    uses_task: bool = False
    extras: tuple[str, ...] = ()  # names of privileged arrays it needs (e.g. "task_state")
    history_steps: int = 0  # past frames it conditions on besides the current one (LeRobot's n_obs_steps - 1)


@dataclass(frozen=True)
class ObservationFrame:
    """A past observation a shell kept for a policy with observation history (measured, never estimated)."""

    step: int
    state: np.ndarray  # (S,) float32, as read at ``step``
    images: dict[str, np.ndarray] = field(default_factory=dict)  # empty: the policy reuses the current images
    extras: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class PolicyObservation:
    """One observation as a policy sees it.

    ``state`` is the state to plan from: the measured state in ``sync``/``naive`` mode, the
    estimated state at ``start_step`` in ``vlash`` mode. ``measured_state`` is always the state
    actually read at ``step``. Row 0 of the returned chunk is for ``start_step``. Images are
    always the current ones.

    ``history`` holds the frames of steps before ``step`` (oldest first, at most the policy's
    ``history_steps``; fewer at an episode's start, when the policy repeats the oldest it has).
    ``sample_key`` seeds a stochastic policy's sampling for this request: the same key gives the
    same chunk, so batched and sequential evaluation agree; ``None`` uses the policy's own RNG.
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
    history: tuple[ObservationFrame, ...] = ()
    sample_key: int | None = None

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


def predict_chunks(policy: Policy, observations: list[PolicyObservation]) -> list[np.ndarray]:
    """Chunks for several observations: one batched call where the policy has ``predict_batch``.

    ``predict_batch(observations) -> list of (chunk_size, action_dim)`` is optional; it must give what
    ``predict_chunk`` gives for each observation (same ``sample_key``, same chunk).
    """
    batch = getattr(policy, "predict_batch", None)
    if callable(batch) and len(observations) > 1:
        return list(batch(observations))
    return [policy.predict_chunk(o) for o in observations]


# --- drivers --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RobotFeatures:
    """Names, limits and rate of a robot, so the runtime can validate everything it sends."""

    joint_names: tuple[str, ...]  # state vector layout, e.g. ("shoulder_pan", ..., "gripper")
    action_names: tuple[str, ...]  # action vector layout
    action_low: tuple[float, ...]  # joint limits, per action dimension
    action_high: tuple[float, ...]
    fps: float = 30.0
    cameras: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (height, width)
    action_kind: ActionKind = "absolute"
    max_step: tuple[float, ...] | None = None  # largest change per tick, per dimension
    task: str = ""

    @property
    def state_dim(self) -> int:
        return len(self.joint_names)

    @property
    def action_dim(self) -> int:
        return len(self.action_names)


@dataclass
class DriverReading:
    """What one tick reads from a robot. Images are the latest frames (never waited for)."""

    state: np.ndarray  # (S,) float32
    images: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (H, W, 3) uint8
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. velocity, task_state
    events: dict[str, float] = field(default_factory=dict)  # e.g. success, pad_lit, pad_hit


@runtime_checkable
class Driver(Protocol):
    """A robot the control process can drive at a fixed rate. No call may block for long.

    Use it as a context manager (:class:`DriverBase` gives any driver one): ``with driver:``
    connects and, on every exit path, disconnects.
    """

    features: RobotFeatures

    def connect(self) -> None: ...

    def read(self) -> DriverReading: ...

    def send_action(self, action: np.ndarray) -> None:
        """Command one (A,) float32 action; it has already passed the safety filter."""

    def disconnect(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class DriverBase:
    """Mixin: ``with driver:`` connects, and disconnects however the block ends."""

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()


# --- estimators -----------------------------------------------------------------------------
@runtime_checkable
class FutureStateEstimator(Protocol):
    """``ŝ_{k+Δ}`` from the state read at step k and the Δ actions queued for steps k .. k+Δ-1."""

    name: str

    def estimate(
        self, state: np.ndarray, queued: np.ndarray, extras: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """Return the estimated state after executing the ``queued`` (Δ, A) actions from ``state``."""


@runtime_checkable
class DelayEstimator(Protocol):
    """Δ in control steps, from measured round trips (or fixed)."""

    def observe(self, rtt_s: float) -> None:
        """Add one measured round trip in seconds."""

    def delay_steps(self) -> int:
        """The current Δ."""
