"""LeRobotDriver against a fake LeRobot robot and fake cameras, built through LeRobot's registries.

No hardware: ``vlash_fake_arm`` / ``vlash_fake_camera`` are registered in LeRobot's own
``RobotConfig`` / ``CameraConfig`` registries and built by ``make_robot_from_config`` /
``make_cameras_from_configs`` exactly as a real SO-101 and OpenCV camera would be. Tests check
counters and values, never durations; frame ages come from an injected clock.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from robot_drivers.lerobot_driver import (
    LeRobotDriver,
    known_robot_types,
    make_camera_configs,
    make_robot_config,
)
from tests.drivers.fakearm import MOTORS, FakeArm, FakeArmConfig
from tests.drivers.fakecamera import CameraPanic, FakeCamera
from vlash.contracts import Driver, DriverReading

CAMERAS = {
    "front": {"type": "vlash_fake_camera", "width": 64, "height": 48, "fps": 30},
    "wrist": {"type": "vlash_fake_camera", "width": 32, "height": 24, "fps": 30},
}


class FakeClock:
    """A monotonic clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll until ``condition()`` (a bound on a hang, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def camera_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("camera-")]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_driver(tmp_path: Path, clock: FakeClock) -> Iterator[Callable[..., LeRobotDriver]]:
    drivers: list[LeRobotDriver] = []

    def make(**kwargs) -> LeRobotDriver:
        kwargs.setdefault("cameras", CAMERAS)
        kwargs.setdefault("calibration_dir", str(tmp_path / "calibration"))
        kwargs.setdefault("camera_stale_s", 0.5)
        driver = LeRobotDriver("vlash_fake_arm", port="/dev/fake0", clock=clock, **kwargs)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.disconnect()
    wait_for(lambda: not camera_threads(), "camera threads to end")


def connect(driver: LeRobotDriver) -> None:
    """Connect, letting each camera's first frame through (connect waits for it)."""
    for cam in driver.cameras.values():
        cam.push()
    driver.connect()


def push_and_wait(driver: LeRobotDriver, name: str, n: int = 1) -> None:
    cam = driver.cameras[name]
    target = driver.camera_stats()[name]["frames"] + n
    cam.push(n)
    wait_for(lambda: driver.camera_stats()[name]["frames"] >= target, f"{name} frame {target}")


# --- building through LeRobot's registry --------------------------------------------------------
def test_builds_through_lerobot_registry(make_driver) -> None:
    driver = make_driver(max_relative_target=5.0, robot_id="arm7", disable_torque_on_disconnect=False)
    assert isinstance(driver, Driver)
    assert type(driver.robot) is FakeArm and type(driver.config) is FakeArmConfig
    assert driver.config.port == "/dev/fake0" and driver.config.id == "arm7"
    assert driver.config.cameras == {}  # the driver owns the cameras
    assert all(type(cam) is FakeCamera for cam in driver.cameras.values())
    assert driver.camera_configs["front"].width == 64


def test_features_mapping(make_driver) -> None:
    f = make_driver(fps=50.0, task="pick the cube").features
    assert f.joint_names == MOTORS and f.action_names == MOTORS
    assert f.state_dim == f.action_dim == 6
    assert list(f.cameras.items()) == [("front", (48, 64)), ("wrist", (24, 32))]
    assert f.fps == 50.0 and f.task == "pick the cube" and f.action_kind == "absolute"
    assert f.max_step is None
    # no calibration file: limits from each motor's normalization mode
    assert f.action_low == (-180.0,) * 5 + (0.0,) and f.action_high == (180.0,) * 5 + (100.0,)


def test_limits_from_calibration_file(make_driver, tmp_path: Path) -> None:
    cal_dir = tmp_path / "cal"
    cal_dir.mkdir()
    calibration = {
        m: {"id": i + 1, "drive_mode": 0, "homing_offset": 0, "range_min": 1000, "range_max": 3000}
        for i, m in enumerate(MOTORS)
    }
    calibration["wrist_roll"].update(range_min=0, range_max=4095)
    (cal_dir / "arm1.json").write_text(json.dumps(calibration))
    driver = make_driver(robot_id="arm1", calibration_dir=str(cal_dir), action_limits={"gripper": (5, 95)})
    f = driver.features
    half = 1000 * 360 / 4095  # LeRobot's degrees: (range_min - mid) * 360 / (resolution - 1)
    assert f.action_low[0] == pytest.approx(-half) and f.action_high[0] == pytest.approx(half)
    assert f.action_low[4] == pytest.approx(-180.0) and f.action_high[4] == pytest.approx(180.0)
    assert (f.action_low[5], f.action_high[5]) == (5.0, 95.0)
    assert driver.limit_sources == {**dict.fromkeys(MOTORS[:5], "calibration"), "gripper": "user"}


def test_camera_dicts_become_lerobot_configs() -> None:
    from lerobot.cameras.opencv import OpenCVCameraConfig

    configs = make_camera_configs(
        {
            "front": {
                "type": "opencv",
                "index_or_path": 2,
                "width": 640,
                "height": 480,
                "fps": 30,
                "rotation": 90,
            }
        }
    )
    cfg = configs["front"]
    assert isinstance(cfg, OpenCVCameraConfig)
    assert (cfg.index_or_path, cfg.width, cfg.height, cfg.fps, int(cfg.rotation)) == (2, 640, 480, 30, 90)
    with pytest.raises(ValueError, match="width"):
        make_camera_configs({"front": {"type": "opencv", "index_or_path": 0, "height": 480, "fps": 30}})
    with pytest.raises(ValueError, match="unknown camera type 'webcam'.*opencv"):
        make_camera_configs({"front": {"type": "webcam"}})


def test_real_robot_config_types_resolve() -> None:
    cfg = make_robot_config("so101_follower", port="/dev/ttyACM0", max_relative_target=10, cameras={})
    assert type(cfg).__name__ == "SOFollowerRobotConfig"
    assert cfg.port == "/dev/ttyACM0" and cfg.max_relative_target == 10.0
    assert make_robot_config("koch_follower", port="/dev/ttyUSB0").use_degrees is False


def test_unknown_robot_type_lists_known_types() -> None:
    with pytest.raises(ValueError, match="unknown LeRobot robot_type 'so102_follower'") as err:
        LeRobotDriver("so102_follower", port="/dev/null")
    for known in ("so100_follower", "so101_follower", "koch_follower", "vlash_fake_arm"):
        assert known in str(err.value)
    assert {"so101_follower", "koch_follower"} <= set(known_robot_types())


def test_bad_robot_options_are_named(make_driver) -> None:
    with pytest.raises(ValueError, match="max_relative_targt"):
        make_driver(max_relative_targt=5.0)
    with pytest.raises(ValueError, match="no 'max_relative_target' option"):
        LeRobotDriver("vlash_fake_base", max_relative_target=5.0)
    with pytest.raises(ValueError, match="positive"):
        make_driver(max_relative_target=-1.0)


# --- max_relative_target -------------------------------------------------------------------------
def test_max_relative_target_passed_to_lerobot(make_driver) -> None:
    driver = make_driver(max_relative_target=5)  # an int (as YAML gives): LeRobot needs a float
    assert driver.config.max_relative_target == 5.0 and isinstance(driver.config.max_relative_target, float)
    assert driver.features.max_step == (5.0,) * 6
    connect(driver)
    driver.send_action(np.array([20.0, -2.0, 0, 0, 0, 50.0], dtype=np.float32))
    assert driver.robot.received[-1]["shoulder_pan.pos"] == 20.0  # asked
    assert driver.robot.bus.writes[-1]["shoulder_pan"] == 5.0  # LeRobot's cap from present 0
    assert driver.robot.bus.writes[-1]["shoulder_lift"] == -2.0
    assert driver.last_sent["gripper.pos"] == 5.0
    assert driver.counters["lerobot_clamped"] == 1


def test_max_relative_target_per_motor(make_driver) -> None:
    per_motor = dict.fromkeys(MOTORS, 3.0) | {"gripper": 10.0}
    driver = make_driver(max_relative_target=per_motor)
    assert driver.config.max_relative_target == per_motor
    assert driver.features.max_step == (3.0,) * 5 + (10.0,)
    with pytest.raises(ValueError, match="must be exactly the motors"):
        make_driver(max_relative_target={"shoulder_pan": 3.0})


# --- the tick calls -------------------------------------------------------------------------------
def test_read_state_in_order_and_latest_frames(make_driver) -> None:
    driver = make_driver()
    connect(driver)
    driver.robot.bus.positions.update({m: float(i) * 1.5 for i, m in enumerate(MOTORS)})
    reading = driver.read()
    assert isinstance(reading, DriverReading)
    assert reading.state.dtype == np.float32 and reading.state.tolist() == [0.0, 1.5, 3.0, 4.5, 6.0, 7.5]
    assert set(reading.images) == {"front", "wrist"} and reading.extras == {}
    assert reading.images["front"].shape == (48, 64, 3) and reading.images["front"].dtype == np.uint8
    assert reading.images["front"][0, 0, 0] == 1 and reading.images["wrist"][0, 0, 0] == 1

    push_and_wait(driver, "front", 3)  # latest frame wins: frames 2 and 3 are skipped
    reading = driver.read()
    assert reading.images["front"][0, 0, 0] == 4 and reading.images["wrist"][0, 0, 0] == 1
    stats = driver.stats()
    assert stats["frames"] == 5 and stats["camera_errors"] == 0 and stats["stale_reads"] == 0
    assert stats["reads"] == 2


def test_read_velocity_extra(make_driver) -> None:
    driver = make_driver(cameras={}, read_velocity=True)
    driver.connect()
    assert driver.read().extras["velocity"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_send_action_sends_named_dict(make_driver) -> None:
    driver = make_driver(cameras={})
    driver.connect()
    driver.send_action(np.array([1, 2, 3, 4, 5, 60], dtype=np.float32))
    sent = driver.robot.received[-1]
    assert list(sent) == [f"{m}.pos" for m in MOTORS]
    assert list(sent.values()) == [1.0, 2.0, 3.0, 4.0, 5.0, 60.0]
    assert all(type(v) is float for v in sent.values())
    assert driver.counters["lerobot_clamped"] == 0 and driver.read().state[5] == 60.0


def test_send_action_rejects_bad_vectors(make_driver) -> None:
    driver = make_driver(cameras={})
    driver.connect()
    with pytest.raises(ValueError, match="shape"):
        driver.send_action(np.zeros(5, dtype=np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        driver.send_action(np.array([0, 0, np.nan, 0, 0, 0], dtype=np.float32))
    assert driver.robot.received == []


def test_transient_bus_errors_are_tolerated_then_raised(make_driver) -> None:
    driver = make_driver(cameras={}, max_consecutive_errors=2)
    driver.connect()
    driver.robot.bus.positions["elbow_flex"] = 12.0
    first = driver.read().state
    driver.robot.bus.positions["elbow_flex"] = 99.0
    driver.robot.bus.fail_reads = 2
    assert driver.read().state.tolist() == first.tolist()  # the last good state
    assert driver.read().state.tolist() == first.tolist()
    assert driver.read().state[2] == 99.0 and driver.counters["motor_errors"] == 2
    driver.robot.bus.fail_reads = 3
    driver.read(), driver.read()
    with pytest.raises(RuntimeError, match="3 time"):
        driver.read()

    driver.robot.bus.fail_writes = 1
    driver.send_action(np.ones(6, dtype=np.float32))  # skipped, counted
    assert driver.counters["send_errors"] == 1 and driver.counters["sends"] == 0


# --- cameras that fail -----------------------------------------------------------------------------
def test_camera_that_raises_does_not_block_read(make_driver) -> None:
    driver = make_driver()
    connect(driver)
    front: FakeCamera = driver.cameras["front"]
    front.mode = "raise"
    wait_for(lambda: driver.camera_stats()["front"]["camera_errors"] >= 2, "camera errors")
    driver.robot.bus.positions["gripper"] = 42.0
    reading = driver.read()
    assert reading.state[5] == 42.0
    assert reading.images["front"][0, 0, 0] == 1  # the last good frame
    stats = driver.camera_stats()["front"]
    assert stats["alive"] and stats["frames"] == 1 and "unplugged" in stats["last_error"]
    front.mode = "ok"  # the camera comes back: new frames flow again
    push_and_wait(driver, "front")
    assert driver.read().images["front"][0, 0, 0] == 2


def test_bad_frames_are_counted_not_returned(make_driver) -> None:
    driver = make_driver()
    connect(driver)
    driver.cameras["wrist"].mode = "bad_shape"
    driver.cameras["wrist"].push()
    wait_for(lambda: driver.camera_stats()["wrist"]["camera_errors"] >= 1, "bad frame")
    assert driver.read().images["wrist"].shape == (24, 32, 3)


def test_stalled_camera_does_not_block_read(make_driver, clock: FakeClock) -> None:
    driver = make_driver()
    connect(driver)
    front: FakeCamera = driver.cameras["front"]
    front.mode = "stall"
    assert front.stalled.wait(5.0)  # the reader thread is now stuck inside the camera
    assert driver.read().images["front"][0, 0, 0] == 1
    assert driver.stats()["stale_reads"] == 0  # young frame: not stale yet
    clock.now += 0.6  # older than camera_stale_s
    push_and_wait(driver, "wrist")  # the other camera keeps delivering
    for i in range(3):
        driver.robot.bus.positions["shoulder_pan"] = float(i)
        reading = driver.read()
        assert reading.state[0] == float(i)
        assert reading.images["front"][0, 0, 0] == 1 and reading.images["wrist"][0, 0, 0] == 2
    stats = driver.camera_stats()
    assert stats["front"]["stale_reads"] == 3 and stats["front"]["age_s"] > 0.5
    assert stats["wrist"]["stale_reads"] == 0
    driver.disconnect()  # releases the stuck read
    assert not camera_threads()


def test_dead_camera_thread_is_detected(make_driver) -> None:
    driver = make_driver()
    connect(driver)
    driver.cameras["wrist"].mode = "panic"
    wait_for(lambda: not driver.camera_stats()["wrist"]["alive"], "wrist thread death")
    reading = driver.read()
    assert reading.images["wrist"][0, 0, 0] == 1
    stats = driver.stats()
    assert stats["cameras_alive"] == ["front"]
    assert stats["cameras"]["wrist"]["stale_reads"] == 1
    assert "CameraPanic" in stats["cameras"]["wrist"]["fatal"]
    assert CameraPanic.__name__ in stats["cameras"]["wrist"]["fatal"]


# --- lifecycle -------------------------------------------------------------------------------------
def test_connect_disconnect_lifecycle(make_driver) -> None:
    driver = make_driver()
    with pytest.raises(RuntimeError, match="before connect"):
        driver.read()
    connect(driver)
    assert driver.robot.connect_calls == [False]  # never LeRobot's interactive calibration
    assert len(camera_threads()) == 2 and driver.is_connected
    driver.disconnect()
    assert not camera_threads() and not driver.is_connected
    assert not driver.robot.is_connected and not any(c.is_connected for c in driver.cameras.values())
    driver.disconnect()  # idempotent
    with pytest.raises(RuntimeError, match="before connect"):
        driver.send_action(np.zeros(6, dtype=np.float32))


def test_uncalibrated_robot_refuses_to_connect(make_driver) -> None:
    driver = make_driver(calibrated=False)
    with pytest.raises(RuntimeError, match="lerobot-calibrate --robot.type=vlash_fake_arm"):
        connect(driver)
    assert not driver.robot.is_connected and not driver.is_connected and not camera_threads()


def test_camera_without_first_frame_fails_connect_cleanly(make_driver) -> None:
    driver = make_driver(first_frame_timeout_s=0.2)
    driver.cameras["front"].push()  # wrist never delivers
    with pytest.raises(TimeoutError, match="wrist"):
        driver.connect()
    assert not driver.robot.is_connected and not driver.is_connected
    wait_for(lambda: not camera_threads(), "camera threads to end")
