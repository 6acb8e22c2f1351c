"""Camera reader threads: one thread per camera keeps the latest frame in a slot (latest frame wins).

The control loop only ever *peeks* at the slots (:meth:`CameraThreads.latest`), so a camera that
is slow, raises, stalls inside its SDK or whose thread dies never delays a tick; the loop keeps
getting the last good frame and the counters say what happened.

Counters, per camera (see :meth:`CameraThread.stats`):

- ``frames``: good frames received;
- ``camera_errors``: grabs that raised (other than timeouts) or returned a malformed frame;
- ``timeouts``: grabs that raised :class:`TimeoutError` (no new frame within the grab's timeout);
- ``stale_reads``: peeks that returned a frame older than ``stale_after_s``, no frame at all, or a
  frame from a thread that is no longer alive;
- ``alive``/``fatal``: whether the thread still runs, and what killed it if it does not.

The module knows nothing about LeRobot: a camera is any ``grab()`` callable returning an
``(H, W, 3)`` image, which may block (up to its own timeout, or forever if the hardware hangs).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

Grab = Callable[[], Any]


@dataclass
class _Slot:
    frame: np.ndarray | None = None
    seq: int = 0  # frames received so far; the slot's frame is frame number `seq`
    stamp: float = float("-inf")  # clock() when the frame arrived


class CameraThread:
    """A daemon thread calling ``grab()`` in a loop and keeping the newest valid frame."""

    def __init__(
        self,
        name: str,
        grab: Grab,
        shape: tuple[int, int] | None = None,
        *,
        stale_after_s: float = 0.5,
        error_backoff_s: float = 0.01,
        max_backoff_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.shape = shape  # expected (height, width); None accepts any size
        self.stale_after_s = float(stale_after_s)
        self._grab = grab
        self._clock = clock
        self._error_backoff_s = float(error_backoff_s)
        self._max_backoff_s = float(max_backoff_s)
        self._lock = threading.Lock()
        self._slot = _Slot()
        self._first_frame = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames = 0
        self.camera_errors = 0
        self.timeouts = 0
        self.stale_reads = 0
        self.fatal: str | None = None
        self.last_error: str | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the reader thread (no-op if it already runs)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to stop after its current grab (does not wait)."""
        self._stop.set()

    def join(self, timeout: float = 2.0) -> bool:
        """Wait up to ``timeout`` s for the thread to end; True if it is gone."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive

    def stop(self, timeout: float = 2.0) -> bool:
        """Request a stop and join; True if the thread ended within ``timeout``."""
        self.request_stop()
        return self.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_first_frame(self, timeout: float) -> bool:
        """Block (at connect time only) until the first good frame arrived; False on timeout."""
        return self._first_frame.wait(timeout)

    # --- the reader loop ----------------------------------------------------------------------
    def _run(self) -> None:
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    raw = self._grab()
                except TimeoutError:
                    self.timeouts += 1
                    continue
                except Exception as e:  # noqa: BLE001 - any camera error is counted, never fatal
                    self._count_error(f"{type(e).__name__}: {e}")
                    frame = None
                else:
                    frame = self._validate(raw)
                if self._stop.is_set():
                    break
                if frame is None:  # an error or a malformed frame: back off, then try again
                    failures += 1
                    self._stop.wait(min(self._max_backoff_s, self._error_backoff_s * 2 ** min(failures, 10)))
                    continue
                failures = 0
                with self._lock:
                    self._slot = _Slot(frame=frame, seq=self._slot.seq + 1, stamp=self._clock())
                self.frames += 1
                self._first_frame.set()
        except BaseException as e:  # noqa: BLE001 - recorded so the driver can report a dead camera
            self.fatal = f"{type(e).__name__}: {e}"
            logger.error("camera %r reader thread died: %s", self.name, self.fatal)

    def _count_error(self, message: str) -> None:
        self.camera_errors += 1
        self.last_error = message
        if self.camera_errors == 1 or self.camera_errors % 100 == 0:
            logger.warning("camera %r error #%d: %s", self.name, self.camera_errors, message)

    def _validate(self, raw: Any) -> np.ndarray | None:
        frame = np.asarray(raw)
        if frame.ndim != 3 or frame.shape[2] != 3:
            self._count_error(f"frame of shape {frame.shape}, expected (H, W, 3)")
            return None
        if self.shape is not None and tuple(frame.shape[:2]) != tuple(self.shape):
            self._count_error(f"frame of size {frame.shape[:2]}, expected {tuple(self.shape)}")
            return None
        if frame.dtype != np.uint8:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
        return frame

    # --- peeking (never blocks on the camera) -------------------------------------------------
    def latest(self) -> tuple[np.ndarray | None, int, float]:
        """``(frame, seq, age_s)`` of the newest frame; counts a stale read if it is old or missing."""
        with self._lock:
            slot = self._slot
        age = self._clock() - slot.stamp
        if slot.frame is None or age > self.stale_after_s or not self.alive:
            self.stale_reads += 1
        return slot.frame, slot.seq, age

    def stats(self) -> dict[str, Any]:
        """Counters and health of this camera."""
        with self._lock:
            seq, stamp = self._slot.seq, self._slot.stamp
        return {
            "frames": self.frames,
            "camera_errors": self.camera_errors,
            "timeouts": self.timeouts,
            "stale_reads": self.stale_reads,
            "seq": seq,
            "age_s": self._clock() - stamp,
            "alive": self.alive,
            "fatal": self.fatal,
            "last_error": self.last_error,
        }


class CameraThreads:
    """A set of :class:`CameraThread` s started and stopped together."""

    def __init__(self, threads: dict[str, CameraThread] | None = None) -> None:
        self.threads: dict[str, CameraThread] = dict(threads or {})

    def add(self, thread: CameraThread) -> None:
        self.threads[thread.name] = thread

    def start(self, first_frame_timeout_s: float | None = None) -> None:
        """Start every thread; optionally wait for each first frame (raises TimeoutError naming the cameras)."""
        for thread in self.threads.values():
            thread.start()
        if first_frame_timeout_s is None:
            return
        deadline = time.monotonic() + first_frame_timeout_s
        missing = [
            name
            for name, thread in self.threads.items()
            if not thread.wait_first_frame(max(0.0, deadline - time.monotonic()))
        ]
        if missing:
            details = {name: self.threads[name].last_error or self.threads[name].fatal for name in missing}
            raise TimeoutError(
                f"no frame from camera(s) {missing} within {first_frame_timeout_s} s: {details}"
            )

    def request_stop(self) -> None:
        for thread in self.threads.values():
            thread.request_stop()

    def join(self, timeout: float = 2.0) -> list[str]:
        """Join every thread (sharing ``timeout``); names of those still alive afterwards."""
        deadline = time.monotonic() + timeout
        for thread in self.threads.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        return [name for name, thread in self.threads.items() if thread.alive]

    def latest(self) -> dict[str, np.ndarray]:
        """The newest frame of every camera that has delivered one (never blocks)."""
        images: dict[str, np.ndarray] = {}
        for name, thread in self.threads.items():
            frame, _, _ = thread.latest()
            if frame is not None:
                images[name] = frame
        return images

    def stats(self) -> dict[str, dict[str, Any]]:
        return {name: thread.stats() for name, thread in self.threads.items()}

    def alive(self) -> list[str]:
        return [name for name, thread in self.threads.items() if thread.alive]
