"""A driver for any ``lerobot.robots`` robot (SO-100/101, Koch, OMX, … and third-party plugins).

The robot is built exactly as ``lerobot-record`` builds it: its config class is looked up by type in
LeRobot's draccus registry (``RobotConfig``), decoded from plain options, and instantiated with
``lerobot.robots.make_robot_from_config``. Cameras are given as plain dicts
(``{"front": {"type": "opencv", "index_or_path": 0, "width": 640, "height": 480, "fps": 30}}``),
decoded into LeRobot ``CameraConfig`` s and built with ``make_cameras_from_configs``.

Cameras are deliberately **not** put into the robot's config: the driver owns them and reads each in
its own thread (:mod:`robot_drivers.camera_threads`), so ``robot.get_observation()`` only reads the
motors and :meth:`LeRobotDriver.read` never waits for a camera. The observation keys and camera
names are the same as a ``lerobot-record`` dataset recorded with the same cameras.

Mapping to the runtime's vectors (:class:`~vlash.contracts.RobotFeatures`):

- state: every scalar entry of ``robot.observation_features`` in LeRobot's order
  (``"shoulder_pan.pos"`` → joint ``"shoulder_pan"``) — the layout of ``observation.state`` in a
  LeRobot dataset;
- action: ``robot.action_features`` in order, ``".pos"`` stripped; actions are absolute targets;
- cameras: ``name -> (height, width)``; images are uint8 ``(H, W, 3)`` RGB (depth streams are not
  forwarded);
- limits: from the robot's calibration file when the robot has a motor bus and a calibration for the
  motor (the calibrated range of motion, normalized with the bus's own ``_normalize``); else from the
  motor's normalization mode (degrees: ±180, ``range_m100_100``: ±100, ``range_0_100``: 0..100);
  else a wide default of ±360 (``DEFAULT_LIMIT``) that only rejects garbage — pass
  ``action_limits`` to set real ones. :attr:`LeRobotDriver.limit_sources` says which applied;
- ``max_step``: LeRobot's ``max_relative_target`` when given (so the runtime's per-tick limit and
  LeRobot's own goal-vs-present cap agree), else ``None``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from lerobot.cameras import make_cameras_from_configs
from lerobot.robots import make_robot_from_config

from robot_drivers.camera_threads import CameraThread, CameraThreads
from robot_drivers.lerobot_config import (
    known_camera_types,
    known_robot_types,
    make_camera_configs,
    make_robot_config,
    robot_config_class,
)
from vlash.contracts import DriverBase, DriverReading, RobotFeatures

logger = logging.getLogger(__name__)

__all__ = ["LeRobotDriver", "known_camera_types", "known_robot_types", "make_camera_configs", "make_robot_config"]

DEFAULT_LIMIT = 360.0  # wide fallback joint limit (LeRobot arms report degrees or percentages)
_NORM_MODE_LIMITS = {
    "degrees": (-180.0, 180.0),
    "range_m100_100": (-100.0, 100.0),
    "range_0_100": (0.0, 100.0),
}

class LeRobotDriver(DriverBase):
    """Drive any LeRobot robot at a fixed rate without ever waiting for a camera.

    ``robot_options`` go to the robot's LeRobot config as they are (e.g. ``use_degrees``,
    ``disable_torque_on_disconnect``). ``max_relative_target`` (float, or dict motor → float) is
    LeRobot's own goal-vs-present safety cap; the driver refuses a robot type that lacks it rather
    than drop it. ``calibrate=True`` lets LeRobot run its *interactive* calibration at connect;
    by default a robot whose motors do not match its calibration file makes ``connect`` fail.
    ``read_velocity`` adds ``extras["velocity"]`` (raw ``Present_Velocity`` of the bus motors; one
    more bus transaction per tick). Transient bus errors (``OSError``/``RuntimeError``) are counted
    and tolerated up to ``max_consecutive_errors`` in a row: ``read`` returns the last state,
    ``send_action`` skips the tick. ``clock`` is the monotonic clock used for frame ages.
    """

    def __init__(
        self,
        robot_type: str,
        *,
        port: str | None = None,
        cameras: Mapping[str, Any] | None = None,
        max_relative_target: float | Mapping[str, float] | None = None,
        fps: float = 30.0,
        task: str = "",
        robot_id: str | None = None,
        calibration_dir: str | None = None,
        calibrate: bool = False,
        action_limits: Mapping[str, tuple[float, float]] | None = None,
        read_velocity: bool = False,
        camera_stale_s: float | None = None,
        first_frame_timeout_s: float = 5.0,
        max_consecutive_errors: int = 3,
        clock: Callable[[], float] = time.monotonic,
        **robot_options: Any,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.robot_type = robot_type
        self._calibrate = bool(calibrate)
        self._read_velocity = bool(read_velocity)
        self._first_frame_timeout_s = float(first_frame_timeout_s)
        self._max_errors = int(max_consecutive_errors)
        self._clock = clock

        config_cls = robot_config_class(robot_type)
        field_names = {f.name for f in dataclasses.fields(config_cls)}
        mrt = _check_max_relative_target(max_relative_target)
        if mrt is not None and "max_relative_target" not in field_names:
            raise ValueError(
                f"robot_type {robot_type!r} has no 'max_relative_target' option; refusing to drop the "
                "safety limit silently (remove it, or enforce max_step in the runtime's safety filter)"
            )
        options = dict(robot_options, port=port, id=robot_id, calibration_dir=calibration_dir)
        options["max_relative_target"] = mrt
        if "cameras" in field_names:
            options["cameras"] = {}  # the driver owns the cameras (see module docstring)
        self.config = make_robot_config(robot_type, **options)
        self.robot = make_robot_from_config(self.config)

        self.camera_configs = make_camera_configs(cameras)
        self.cameras: dict[str, Any] = make_cameras_from_configs(self.camera_configs)
        self._threads = CameraThreads()
        self._camera_stale_s = camera_stale_s

        self._user_action_limits = dict(action_limits or {})
        self._map_features(self._user_action_limits, mrt, float(fps), task)
        if isinstance(mrt, dict):  # LeRobot would only complain at the first send_action
            motors = {k.removesuffix(".pos") for k in self.action_keys if k.endswith(".pos")}
            if set(mrt) != motors:
                raise ValueError(
                    f"max_relative_target keys {sorted(mrt)} must be exactly the motors {sorted(motors)}"
                )
        self._io_lock = threading.Lock()  # the motor bus is not thread-safe
        self._connected = False
        self._last_state: np.ndarray | None = None
        self._read_failures = 0
        self._send_failures = 0
        self.last_sent: dict[str, float] = {}
        self.counters: dict[str, int] = {
            "reads": 0,
            "motor_errors": 0,
            "sends": 0,
            "send_errors": 0,
            "lerobot_clamped": 0,
            "velocity_errors": 0,
        }

    # --- features --------------------------------------------------------------------------------
    def _map_features(
        self, action_limits: Mapping[str, tuple[float, float]] | None, mrt: Any, fps: float, task: str
    ) -> None:
        obs_ft = dict(self.robot.observation_features)
        act_ft = dict(self.robot.action_features)
        self.state_keys: tuple[str, ...] = tuple(k for k, v in obs_ft.items() if isinstance(v, type))
        self.action_keys: tuple[str, ...] = tuple(act_ft)
        # Robots that make images inside get_observation (not from config cameras): passed through.
        self.robot_image_keys: tuple[str, ...] = tuple(
            k for k, v in obs_ft.items() if isinstance(v, tuple) and len(v) == 3 and v[2] == 3
        )
        if not self.state_keys or not self.action_keys:
            raise ValueError(f"robot_type {self.robot_type!r} has no scalar state or action features")
        bad = [k for k, v in act_ft.items() if not isinstance(v, type)]
        if bad:
            raise ValueError(f"robot_type {self.robot_type!r}: non-scalar action features {bad}")

        camera_sizes: dict[str, tuple[int, int]] = {}
        for name, cam in self.cameras.items():
            camera_sizes[name] = (int(cam.height), int(cam.width))
        for key in self.robot_image_keys:
            if key in camera_sizes:
                raise ValueError(f"camera name {key!r} clashes with the robot's own image {key!r}")
            camera_sizes[key] = (int(obs_ft[key][0]), int(obs_ft[key][1]))

        low, high, sources = self._action_limits(action_limits)
        self.limit_sources: dict[str, str] = sources
        max_step: tuple[float, ...] | None = None
        if isinstance(mrt, float):
            max_step = tuple(mrt if k.endswith(".pos") else math.inf for k in self.action_keys)
        elif isinstance(mrt, dict):
            max_step = tuple(mrt.get(k.removesuffix(".pos"), math.inf) for k in self.action_keys)
        self.features = RobotFeatures(
            joint_names=_strip_pos(self.state_keys),
            action_names=_strip_pos(self.action_keys),
            action_low=low,
            action_high=high,
            fps=fps,
            cameras=camera_sizes,
            action_kind="absolute",
            max_step=max_step,
            task=task,
        )

    def _action_limits(
        self, user: Mapping[str, tuple[float, float]] | None
    ) -> tuple[tuple[float, ...], tuple[float, ...], dict[str, str]]:
        user = dict(user or {})
        names = _strip_pos(self.action_keys)
        unknown = set(user) - set(names) - set(self.action_keys)
        if unknown:
            raise ValueError(f"action_limits for unknown actions {sorted(unknown)}; actions: {list(names)}")
        bus = getattr(self.robot, "bus", None)
        motors = getattr(bus, "motors", None) or {}
        calibration = getattr(bus, "calibration", None) or {}
        low: list[float] = []
        high: list[float] = []
        sources: dict[str, str] = {}
        for key, name in zip(self.action_keys, names, strict=True):
            motor = key.removesuffix(".pos") if key.endswith(".pos") else None
            lim: tuple[float, float] | None = None
            if name in user or key in user:
                lim, sources[name] = tuple(user.get(name, user.get(key))), "user"  # type: ignore[assignment]
            elif motor in motors and motor in calibration:
                lim = _calibrated_range(bus, motor)
                if lim is not None:
                    sources[name] = "calibration"
            if lim is None and motor in motors:
                mode = getattr(getattr(motors[motor], "norm_mode", None), "value", None)
                if mode in _NORM_MODE_LIMITS:
                    lim, sources[name] = _NORM_MODE_LIMITS[mode], f"norm_mode:{mode}"
            if lim is None:
                lim, sources[name] = (-DEFAULT_LIMIT, DEFAULT_LIMIT), "default"
            lo, hi = float(lim[0]), float(lim[1])
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise ValueError(f"invalid limits for {name!r}: {lim}")
            low.append(lo)
            high.append(hi)
        return tuple(low), tuple(high), sources

    # --- lifecycle --------------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        """Connect the robot (no interactive calibration unless asked), then the cameras and their threads."""
        if self._connected:
            return
        try:
            self.robot.connect(calibrate=self._calibrate)
            if not self._calibrate and not self.robot.is_calibrated:
                raise RuntimeError(
                    f"{self.robot} is not calibrated (its motors do not match "
                    f"{getattr(self.robot, 'calibration_fpath', 'its calibration file')}); run "
                    f"`lerobot-calibrate --robot.type={self.robot_type} --robot.id={self.config.id}` "
                    "or pass calibrate=True"
                )
            for cam in self.cameras.values():
                cam.connect()
            self._threads = CameraThreads()
            for name, cam in self.cameras.items():
                self._threads.add(self._camera_thread(name, cam))
            self._connected = True  # so a failure below is cleaned up by disconnect()
            self._threads.start(first_frame_timeout_s=self._first_frame_timeout_s)
        except BaseException:
            self._connected = True
            self.disconnect()
            raise
        # A calibration run during connect may have changed the ranges: refresh the limits.
        low, high, self.limit_sources = self._action_limits(self._user_action_limits)
        self.features = dataclasses.replace(self.features, action_low=low, action_high=high)

    def _camera_thread(self, name: str, cam: Any) -> CameraThread:
        fps = float(getattr(cam, "fps", None) or 30.0)
        stale = self._camera_stale_s if self._camera_stale_s is not None else max(0.1, 3.0 / fps)
        timeout_ms = max(200.0, 5000.0 / fps)
        async_read = getattr(cam, "async_read", None)

        def grab() -> Any:
            return async_read(timeout_ms=timeout_ms) if async_read is not None else cam.read()

        return CameraThread(
            name, grab, (int(cam.height), int(cam.width)), stale_after_s=stale, clock=self._clock
        )

    def disconnect(self, timeout: float = 3.0) -> None:
        """Stop the camera threads, disconnect cameras and robot. Idempotent; logs, never raises."""
        if not self._connected:
            return
        self._connected = False
        self._threads.request_stop()
        for name, cam in self.cameras.items():  # also unblocks a thread stuck in a camera read
            try:
                if cam.is_connected:
                    cam.disconnect()
            except Exception as e:  # noqa: BLE001
                logger.warning("camera %r disconnect failed: %s", name, e)
        alive = self._threads.join(timeout)
        if alive:
            logger.warning(
                "camera thread(s) %s still alive after %.1f s (daemon threads, left behind)", alive, timeout
            )
        try:
            if self.robot.is_connected:
                self.robot.disconnect()
        except Exception as e:  # noqa: BLE001
            logger.warning("%s disconnect failed: %s", self.robot, e)

    # --- the tick calls ----------------------------------------------------------------------------
    def read(self) -> DriverReading:
        """Motor state (float32, ``features.joint_names`` order) and the latest camera frames."""
        if not self._connected:
            raise RuntimeError("LeRobotDriver.read() before connect()")
        self.counters["reads"] += 1
        try:
            with self._io_lock:
                obs = self.robot.get_observation()  # motors only: the cameras are not in its config
            state = np.asarray([obs[k] for k in self.state_keys], dtype=np.float32)
            self._read_failures = 0
            self._last_state = state
        except (OSError, RuntimeError) as e:
            self.counters["motor_errors"] += 1
            self._read_failures += 1
            if self._last_state is None or self._read_failures > self._max_errors:
                raise RuntimeError(
                    f"reading {self.robot} failed {self._read_failures} time(s) in a row: {e}"
                ) from e
            logger.warning("reading %s failed (%s); reusing the last state", self.robot, e)
            obs, state = {}, self._last_state.copy()
        images = self._threads.latest()
        for key in self.robot_image_keys:
            if key in obs:
                images[key] = np.asarray(obs[key], dtype=np.uint8)
        extras: dict[str, np.ndarray] = {}
        if self._read_velocity:
            velocity = self._read_bus_velocity()
            if velocity is not None:
                extras["velocity"] = velocity
        return DriverReading(state=state, images=images, extras=extras)

    def _read_bus_velocity(self) -> np.ndarray | None:
        bus = getattr(self.robot, "bus", None)
        motors = [k.removesuffix(".pos") for k in self.state_keys]
        if bus is None or not all(m in getattr(bus, "motors", {}) for m in motors):
            return None
        try:
            with self._io_lock:
                values = bus.sync_read("Present_Velocity", motors, normalize=False)
            return np.asarray([values[m] for m in motors], dtype=np.float32)
        except (OSError, RuntimeError) as e:
            self.counters["velocity_errors"] += 1
            logger.debug("velocity read failed: %s", e)
            return None

    def send_action(self, action: np.ndarray) -> None:
        """Send one absolute (A,) target as ``{"name.pos": value}`` through ``robot.send_action``."""
        if not self._connected:
            raise RuntimeError("LeRobotDriver.send_action() before connect()")
        vec = np.asarray(action, dtype=np.float64).reshape(-1)
        if vec.shape != (len(self.action_keys),):
            raise ValueError(f"action has shape {np.shape(action)}, expected ({len(self.action_keys)},)")
        if not np.all(np.isfinite(vec)):
            raise ValueError(f"non-finite action {vec.tolist()}")
        command = {k: float(v) for k, v in zip(self.action_keys, vec, strict=True)}
        try:
            with self._io_lock:
                sent = self.robot.send_action(command)
        except (OSError, RuntimeError) as e:
            self.counters["send_errors"] += 1
            self._send_failures += 1
            if self._send_failures > self._max_errors:
                raise RuntimeError(
                    f"sending to {self.robot} failed {self._send_failures} time(s) in a row: {e}"
                ) from e
            logger.warning("sending to %s failed (%s); skipping this tick", self.robot, e)
            return
        self._send_failures = 0
        self.counters["sends"] += 1
        self.last_sent = {k: float(v) for k, v in (sent or command).items()}
        if any(abs(self.last_sent.get(k, v) - v) > 1e-4 for k, v in command.items()):
            self.counters["lerobot_clamped"] += 1

    # --- health ---------------------------------------------------------------------------------
    def camera_stats(self) -> dict[str, dict[str, Any]]:
        """Per camera: frames, camera_errors, timeouts, stale_reads, seq, age_s, alive, fatal."""
        return self._threads.stats()

    def stats(self) -> dict[str, Any]:
        """Driver counters plus camera totals (``frames``, ``stale_reads``, ``camera_errors``)."""
        cams = self.camera_stats()
        totals = {
            k: sum(int(s[k]) for s in cams.values())
            for k in ("frames", "stale_reads", "camera_errors", "timeouts")
        }
        return {**self.counters, **totals, "cameras_alive": self._threads.alive(), "cameras": cams}

    def __repr__(self) -> str:
        return (
            f"LeRobotDriver({self.robot_type!r}, cameras={list(self.cameras)}, connected={self._connected})"
        )


# --- helpers ---------------------------------------------------------------------------------------
def _strip_pos(keys: tuple[str, ...]) -> tuple[str, ...]:
    stripped = tuple(k.removesuffix(".pos") for k in keys)
    return stripped if len(set(stripped)) == len(stripped) else keys


def _check_max_relative_target(value: Any) -> float | dict[str, float] | None:
    """LeRobot only accepts a float or a dict (an int makes its ``ensure_safe_goal_position`` raise)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        out = {str(k): float(v) for k, v in value.items()}
    else:
        out = float(value)
    values = out.values() if isinstance(out, dict) else [out]
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"max_relative_target must be positive and finite, got {value!r}")
    return out


def _calibrated_range(bus: Any, motor: str) -> tuple[float, float] | None:
    """The calibrated range of ``motor`` in the bus's normalized units (via the bus's own ``_normalize``)."""
    try:
        cal = bus.calibration[motor]
        motor_id = bus.motors[motor].id
        a = bus._normalize({motor_id: cal.range_min})[motor_id]
        b = bus._normalize({motor_id: cal.range_max})[motor_id]
    except Exception as e:  # noqa: BLE001 - a bus without LeRobot's normalization: fall back
        logger.debug("no calibrated range for %s: %s", motor, e)
        return None
    return (float(min(a, b)), float(max(a, b)))
