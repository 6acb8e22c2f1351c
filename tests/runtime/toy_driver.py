"""A hardware-free driver for runtime tests: a 2-joint arm that reaches each target at once."""

from __future__ import annotations

import numpy as np

from vlash.contracts import DriverBase, DriverReading, RobotFeatures


class ToyDriver(DriverBase):
    def __init__(self, low: float = -1e6, high: float = 1e6, fps: float = 30.0):
        self.features = RobotFeatures(
            joint_names=("a", "b"),
            action_names=("a", "b"),
            action_low=(low, low),
            action_high=(high, high),
            fps=fps,
            task="toy",
        )
        self.state = np.zeros(2, np.float32)
        self.sent: list[np.ndarray] = []
        self.connected = False

    def connect(self) -> None:
        self.connected = True

    def read(self) -> DriverReading:
        return DriverReading(state=self.state.copy(), extras={"velocity": np.zeros(2, np.float32)})

    def send_action(self, action: np.ndarray) -> None:
        action = np.asarray(action, np.float32)
        assert action.shape == (2,) and np.all(np.isfinite(action)), "invalid action reached the driver"
        self.sent.append(action.copy())
        self.state = action.copy()

    def disconnect(self) -> None:
        self.connected = False
