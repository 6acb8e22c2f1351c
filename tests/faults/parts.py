"""Misbehaving parts for fault tests, built from launch files by factory path.

- :class:`RecordingDriver`: appends every action it is sent to a file and never asserts, so a
  test can check afterwards that no invalid action reached the "hardware".
- :class:`BadPolicy`: cycles through NaN, infinite, out-of-limit, jumping, wrong-shape and good
  chunks.
- :class:`CameraDriver`: three camera threads, one healthy, one that dies, one that stalls.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from robot_drivers.camera_threads import CameraThread, CameraThreads
from vlash.contracts import DriverBase, DriverReading, PolicyFeatures, PolicyObservation, RobotFeatures


class RecordingDriver(DriverBase):
    """A 2-joint arm in ``[-1, 1]`` limited to ``max_step`` per tick that logs every sent action."""

    def __init__(self, log_path: str, max_step: float = 0.05, fps: float = 30.0) -> None:
        self.features = RobotFeatures(
            joint_names=("a", "b"),
            action_names=("a", "b"),
            action_low=(-1.0, -1.0),
            action_high=(1.0, 1.0),
            fps=fps,
            max_step=(max_step, max_step),
        )
        self.state = np.zeros(2, np.float32)
        self.log_path = Path(log_path)
        self._file = None

    def connect(self) -> None:
        self._file = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in disconnect()

    def read(self) -> DriverReading:
        return DriverReading(state=self.state.copy())

    def send_action(self, action: np.ndarray) -> None:
        action = np.asarray(action)
        self._file.write(" ".join(repr(float(x)) for x in action.ravel()) + f" {action.dtype} {action.shape}\n")
        self._file.flush()
        self.state = np.asarray(action, np.float32).copy()

    def disconnect(self) -> None:
        if self._file is not None:
            self._file.close()


def read_actions(path: Path) -> tuple[np.ndarray, set[str]]:
    """The actions a :class:`RecordingDriver` was sent, and the ``dtype shape`` tags it saw."""
    rows, tags = [], set()
    for line in Path(path).read_text().splitlines():
        parts = line.split(" ", 2)
        rows.append([float(parts[0]), float(parts[1])])
        tags.add(parts[2])
    return np.asarray(rows, np.float64), tags


class BadPolicy:
    """A 2-dim absolute policy whose chunks cycle through every way a model output can be wrong."""

    action_kind = "absolute"
    supports_rtc = False
    KINDS = ("nan", "good", "out_of_limits", "inf", "jump", "wrong_shape", "good")

    def __init__(self, chunk_size: int = 20) -> None:
        self.chunk_size = chunk_size
        self.features = PolicyFeatures(state_dim=2, action_dim=2)
        self.calls = 0

    def reset(self) -> None:
        self.calls = 0

    def predict_chunk(self, observation: PolicyObservation) -> np.ndarray:
        kind = self.KINDS[self.calls % len(self.KINDS)]
        self.calls += 1
        ramp = np.linspace(-0.5, 0.5, self.chunk_size, dtype=np.float32)
        chunk = np.stack([ramp, -ramp], axis=1)
        if kind == "nan":
            chunk[self.chunk_size // 2, 0] = np.nan
        elif kind == "inf":
            chunk[0, 1] = -np.inf
        elif kind == "out_of_limits":
            chunk[:, 0] = 50.0
            chunk[::2, 1] = -1e6
        elif kind == "jump":  # in limits, but alternating between the extremes every step
            chunk[:, 0] = np.where(np.arange(self.chunk_size) % 2 == 0, 0.99, -0.99)
        elif kind == "wrong_shape":
            return np.zeros((self.chunk_size, 3), np.float32)
        return chunk


class _Panic(BaseException):
    """Escapes ``except Exception``: kills the camera's reader thread."""


class CameraDriver(DriverBase):
    """A toy arm with cameras ``ok`` (30 fps), ``dies`` (thread dies) and ``stalls`` (grab blocks).

    Each tick reports ``events.cameras_alive``; :meth:`stats` gives per-camera counters.
    """

    SIZE = (16, 16)

    def __init__(self, good_frames: int = 5, fps: float = 30.0) -> None:
        self.features = RobotFeatures(
            joint_names=("a", "b"),
            action_names=("a", "b"),
            action_low=(-1e6, -1e6),
            action_high=(1e6, 1e6),
            fps=fps,
            cameras={name: self.SIZE for name in ("ok", "dies", "stalls")},
        )
        self.good_frames = good_frames
        self.state = np.zeros(2, np.float32)
        self._released = threading.Event()
        self._counts = {"ok": 0, "dies": 0, "stalls": 0}
        self.threads = CameraThreads(
            {name: CameraThread(name, self._grabber(name), self.SIZE, stale_after_s=0.2) for name in self._counts}
        )

    def _grabber(self, name: str):
        def grab() -> np.ndarray:
            self._counts[name] += 1
            n = self._counts[name]
            if n > self.good_frames and name == "dies":
                raise _Panic("camera driver crashed")
            if n > self.good_frames and name == "stalls":
                self._released.wait()  # a camera SDK stuck forever (until disconnect)
            else:
                time.sleep(1 / 30)
            return np.full((*self.SIZE, 3), n % 256, np.uint8)

        return grab

    def connect(self) -> None:
        self.threads.start(first_frame_timeout_s=5.0)

    def read(self) -> DriverReading:
        images = self.threads.latest()
        return DriverReading(state=self.state.copy(), images=images, events={"cameras_alive": len(self.threads.alive())})

    def send_action(self, action: np.ndarray) -> None:
        self.state = np.asarray(action, np.float32).copy()

    def stats(self) -> dict:
        return {"cameras": self.threads.stats()}

    def disconnect(self) -> None:
        self.threads.request_stop()
        self._released.set()
        self.threads.join(2.0)
