"""A fake LeRobot camera registered in LeRobot's camera registry as ``vlash_fake_camera``.

``make_cameras_from_configs`` builds it like a plugin camera (``FakeCameraConfig`` → ``FakeCamera``
in this module). Frames are released by the test (:meth:`FakeCamera.push`), so tests depend on
counts, never on timing. Frame ``n`` is filled with the value ``n``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from lerobot.cameras import Camera, CameraConfig


class CameraPanic(BaseException):
    """Escapes ``except Exception``: kills the driver's reader thread (a "dead camera thread")."""


@CameraConfig.register_subclass("vlash_fake_camera")
@dataclass
class FakeCameraConfig(CameraConfig):
    label: str = "fake"


class FakeCamera(Camera):
    """Modes (set by the test): ``ok``, ``raise`` (every read raises), ``stall`` (reads block until
    disconnect), ``panic`` (raises :class:`CameraPanic`), ``bad_shape`` (wrong frame size)."""

    def __init__(self, config: FakeCameraConfig) -> None:
        super().__init__(config)
        self.config = config
        self.mode = "ok"
        self._connected = False
        self._pending = threading.Semaphore(0)
        self._released = threading.Event()
        self.stalled = threading.Event()  # set once a read is blocked in 'stall' mode
        self.count = 0
        self.reads = 0

    @property
    def is_connected(self) -> bool:
        return self._connected

    @staticmethod
    def find_cameras() -> list[dict[str, Any]]:
        return []

    def connect(self, warmup: bool = True) -> None:
        self._connected = True
        self._released.clear()

    def push(self, n: int = 1) -> None:
        """Let ``n`` more frames through."""
        for _ in range(n):
            self._pending.release()

    def read(self) -> np.ndarray:
        return self.async_read()

    def async_read(self, timeout_ms: float = 200) -> np.ndarray:
        self.reads += 1
        if not self._connected:
            raise RuntimeError("camera not connected")
        if self.mode == "raise":
            raise OSError("USB camera unplugged")
        if self.mode == "panic":
            raise CameraPanic("driver bug")
        if self.mode == "stall":
            self.stalled.set()
            self._released.wait()  # a hung SDK call: only disconnect() ends it
            raise RuntimeError("camera disconnected while reading")
        if not self._pending.acquire(timeout=min(timeout_ms, 50) / 1000):
            raise TimeoutError("no new frame")  # like LeRobot's async_read
        self.count += 1
        h, w = (self.height, self.width) if self.mode != "bad_shape" else (self.height + 1, self.width)
        return np.full((h, w, 3), self.count % 256, dtype=np.uint8)

    def disconnect(self) -> None:
        self._connected = False
        self._released.set()
