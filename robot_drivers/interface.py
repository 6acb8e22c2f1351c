"""The driver interface: the few calls a control process makes on a robot (real or simulated).

Like LeRobot's ``Robot``, a driver describes what flows as data (:class:`RobotFeatures`);
the runtime core never imports a concrete driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class RobotFeatures:
    """Names, limits and rate of a robot, so the runtime can validate everything it sends."""

    joint_names: tuple[str, ...]  # state vector layout, e.g. ("shoulder_pan", ..., "gripper")
    action_names: tuple[str, ...]  # action vector layout
    action_low: tuple[float, ...]  # joint limits, per action dimension
    action_high: tuple[float, ...]
    fps: float = 30.0
    cameras: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (height, width)
    action_kind: Literal["absolute", "delta"] = "absolute"
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
    """A robot the control process can drive at a fixed rate. No call may block for long."""

    features: RobotFeatures

    def connect(self) -> None: ...

    def read(self) -> DriverReading: ...

    def send_action(self, action: np.ndarray) -> None:
        """Command one (A,) float32 action; it has already passed the safety filter."""

    def disconnect(self) -> None: ...
