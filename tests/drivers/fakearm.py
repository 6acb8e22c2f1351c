"""A fake LeRobot arm registered in LeRobot's robot registry as ``vlash_fake_arm``.

It is built by ``make_robot_from_config`` exactly like a third-party plugin robot: the config class
``FakeArmConfig`` lives in this module, and LeRobot's ``make_device_from_device_class`` finds the
robot class ``FakeArm`` next to it. It mirrors ``SOFollower`` (SO-101 motor names, a motor bus with
LeRobot's own normalization, ``max_relative_target`` through LeRobot's ``ensure_safe_goal_position``)
but talks to no hardware.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lerobot.cameras import CameraConfig
from lerobot.motors import Motor, MotorCalibration, MotorNormMode
from lerobot.motors.feetech import FeetechMotorsBus
from lerobot.robots import Robot, RobotConfig
from lerobot.robots.utils import ensure_safe_goal_position

MOTORS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


@RobotConfig.register_subclass("vlash_fake_arm")
@dataclass
class FakeArmConfig(RobotConfig):
    port: str = "/dev/fake"
    disable_torque_on_disconnect: bool = True
    max_relative_target: float | dict[str, float] | None = None
    cameras: dict[str, CameraConfig] = field(default_factory=dict)
    use_degrees: bool = True
    calibrated: bool = True  # what is_calibrated reports after connect


@RobotConfig.register_subclass("vlash_fake_base")
@dataclass
class FakeBaseConfig(RobotConfig):
    """A robot type without ``max_relative_target`` (never built: the driver refuses it first)."""

    port: str = "/dev/fake"


class FakeBus:
    """Just enough of a LeRobot ``MotorsBus``: motors, calibration, Feetech's own ``_normalize``."""

    apply_drive_mode = True
    model_resolution_table = FeetechMotorsBus.model_resolution_table
    _normalize = FeetechMotorsBus._normalize
    _id_to_name = FeetechMotorsBus._id_to_name
    _id_to_model = FeetechMotorsBus._id_to_model

    def __init__(self, motors: dict[str, Motor], calibration: dict[str, MotorCalibration]) -> None:
        self.motors = motors
        self.calibration = calibration
        self._id_to_name_dict = {m.id: name for name, m in motors.items()}
        self._id_to_model_dict = {m.id: m.model for m in motors.values()}
        self.positions = {name: 0.0 for name in motors}
        self.velocities = {name: float(i) for i, name in enumerate(motors)}
        self.is_connected = False
        self.fail_reads = 0  # the next N reads raise ConnectionError (like a corrupted status packet)
        self.fail_writes = 0
        self.writes: list[dict[str, float]] = []

    def sync_read(self, data_name: str, motors: Any = None, *, normalize: bool = True, num_retry: int = 0):
        if not self.is_connected:
            raise ConnectionError("bus not connected")
        if self.fail_reads > 0:
            self.fail_reads -= 1
            raise ConnectionError(f"Failed to sync read '{data_name}'")
        table = self.positions if data_name == "Present_Position" else self.velocities
        names = list(self.motors) if motors is None else list(motors)
        return {name: table[name] for name in names}

    def sync_write(self, data_name: str, values: dict[str, float]) -> None:
        if self.fail_writes > 0:
            self.fail_writes -= 1
            raise ConnectionError(f"Failed to sync write '{data_name}'")
        self.writes.append(dict(values))
        self.positions.update(values)  # an ideal servo


class FakeArm(Robot):
    config_class = FakeArmConfig
    name = "vlash_fake_arm"

    def __init__(self, config: FakeArmConfig) -> None:
        super().__init__(config)  # loads <calibration_dir>/<id>.json if present (LeRobot's code)
        self.config = config
        body = MotorNormMode.DEGREES if config.use_degrees else MotorNormMode.RANGE_M100_100
        motors = {
            name: Motor(i + 1, "sts3215", MotorNormMode.RANGE_0_100 if name == "gripper" else body)
            for i, name in enumerate(MOTORS)
        }
        self.bus = FakeBus(motors, self.calibration)
        self.cameras: dict[str, Any] = {}  # the driver keeps cameras out of the robot's config
        self.received: list[dict[str, float]] = []
        self.connect_calls: list[bool] = []

    @property
    def observation_features(self) -> dict:
        return {f"{m}.pos": float for m in self.bus.motors}

    @property
    def action_features(self) -> dict:
        return {f"{m}.pos": float for m in self.bus.motors}

    @property
    def is_connected(self) -> bool:
        return self.bus.is_connected

    def connect(self, calibrate: bool = True) -> None:
        self.connect_calls.append(calibrate)
        self.bus.is_connected = True

    @property
    def is_calibrated(self) -> bool:
        return self.config.calibrated

    def calibrate(self) -> None:
        raise AssertionError("the driver must not run LeRobot's interactive calibration")

    def configure(self) -> None:
        pass

    def get_observation(self) -> dict[str, Any]:
        return {f"{m}.pos": v for m, v in self.bus.sync_read("Present_Position").items()}

    def send_action(self, action: dict[str, float]) -> dict[str, float]:
        if not self.is_connected:
            raise ConnectionError("not connected")
        self.received.append(dict(action))
        goal = {k.removesuffix(".pos"): v for k, v in action.items() if k.endswith(".pos")}
        if self.config.max_relative_target is not None:
            present = self.bus.sync_read("Present_Position")
            goal = ensure_safe_goal_position(
                {k: (g, present[k]) for k, g in goal.items()}, self.config.max_relative_target
            )
        self.bus.sync_write("Goal_Position", goal)
        return {f"{m}.pos": v for m, v in goal.items()}

    def disconnect(self) -> None:
        if not self.is_connected:
            raise ConnectionError("not connected")  # like LeRobot's check_if_not_connected
        self.bus.is_connected = False
