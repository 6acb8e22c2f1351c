"""A MuJoCo task as a robot: the sim driver the control process talks to like a real SO-101.

``send_action`` advances the physics by exactly one control period (the control process owns the
clock, so a run is real time when it ticks at ``fps``). Cameras are rendered by a background thread
from snapshots of the simulation state; ``read`` returns the newest finished frames and never waits
for a render, so a slow renderer shows up as stale images (``events["image_age_steps"]``), never as
a late control tick.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from vlash.contracts import DriverBase, DriverReading, RobotFeatures


class SimDriver(DriverBase):
    """Drive ``task`` (``"reach"``, ``"whack"``, ``"pick_place"``, ``"track"``) as a :class:`Driver`.

    ``auto_reset`` starts a new episode (seed + episode index) when one ends, leaving the arm where
    it is (only the task re-samples, as between episodes on a real robot); otherwise the physics
    keeps running and ``events["done"]`` stays 1 until :meth:`reset`. Extra keyword arguments go to
    the task (e.g. ``window_s`` for ``whack``).

    ``max_joint_speed`` (rad/s) is the per-tick change limit the runtime's safety filter enforces
    (``features.max_step = max_joint_speed / fps``), the sim's counterpart of LeRobot's
    ``max_relative_target``. The default (20 rad/s, 0.67 rad per tick at 30 Hz) is above anything the
    scripted experts command (at most 0.5 rad per tick at 30 Hz), so it stops policy jumps, not tasks.
    ``None`` removes it.
    """

    DEFAULT_MAX_JOINT_SPEED = 20.0

    def __init__(
        self,
        task: str,
        *,
        fps: float = 30.0,
        cameras: tuple[str, ...] = ("front", "wrist"),
        image_size: int = 128,
        seed: int = 0,
        max_steps: int | None = None,
        auto_reset: bool = False,
        max_joint_speed: float | None = DEFAULT_MAX_JOINT_SPEED,
        **task_options: Any,
    ) -> None:
        import sim
        from sim.cameras import validate_cameras

        self.task = task
        self.cameras = validate_cameras(cameras)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.auto_reset = auto_reset
        # the environment renders nothing itself: frames come from the render thread
        self.env = sim.make_task(task, fps=fps, max_steps=max_steps, **task_options).unwrapped
        env_features = self.env.features
        if max_joint_speed is not None and not max_joint_speed > 0:
            raise ValueError(f"max_joint_speed must be a positive speed in rad/s (or None), got {max_joint_speed!r}")
        max_step = None if max_joint_speed is None else (max_joint_speed / env_features.fps,) * len(env_features.action_names)
        self.features = RobotFeatures(
            joint_names=env_features.joint_names,
            action_names=env_features.action_names,
            action_low=env_features.action_low,
            action_high=env_features.action_high,
            fps=env_features.fps,
            cameras={c: (self.image_size, self.image_size) for c in self.cameras},
            action_kind="absolute",
            max_step=max_step,
            task=env_features.task,
        )
        self._lock = threading.Lock()
        self._render = None
        self._obs: dict[str, Any] | None = None
        self._info: dict[str, Any] = {}
        self._done = False
        self.episode = 0
        self.successes = 0  # episodes that ended in success (survives auto-reset, unlike info["success"])
        self.ticks = 0  # send_action calls since connect (frames are stamped with it)

    @property
    def connected(self) -> bool:
        return self._obs is not None

    @property
    def estimator_options(self) -> dict[str, Any]:
        """Options for ``make_estimator("model", **options)`` matching this robot."""
        return self.env.estimator_options

    def connect(self) -> None:
        """Reset the task and start the render thread; blocks until its first frame (or 10 s)."""
        from sim.cameras import RenderThread

        if self.connected:
            return
        self._reset(self.seed)
        if self.cameras:
            self._render = RenderThread(self.env.model, self.cameras, self.image_size, live_rgba=self.env.model.geom_rgba)
            self._render.start()
            self._render.publish(self.env.data, self.ticks)
            if not self._render.wait_first_frame(10.0):
                self._render.latest()  # raises the render thread's error, if it had one
                raise TimeoutError("the sim render thread produced no frame within 10 s")

    def reset(self, seed: int | None = None) -> None:
        """Start a new episode (``seed`` defaults to the driver's seed plus the episode index)."""
        self._require_connected()
        self._reset(self.seed + self.episode + 1 if seed is None else seed)
        self.episode += 1

    def read(self) -> DriverReading:
        """The current state, task extras, episode events and the newest rendered frames."""
        self._require_connected()
        with self._lock:
            obs, info, done, step, ticks = self._obs, self._info, self._done, self.env.step_count, self.ticks
        images: dict[str, np.ndarray] = {}
        events = {"success": float(info.get("success", False)), "done": float(done), "step": float(step),
                  "episode": float(self.episode), "successes": float(self.successes)}
        if self._render is not None:
            images, frame_step = self._render.latest()
            events["image_age_steps"] = float(ticks - frame_step)
        for key, value in info.items():  # task events: whack's pad_lit_step, intercept's ball_launch_step, ...
            if key.endswith("_step") and isinstance(value, list) and value:
                events[key] = float(value[-1])
        return DriverReading(
            state=obs["state"].copy(),
            images=dict(images),
            extras={"velocity": obs["velocity"].copy(), "task_state": obs["task_state"].copy()},
            events=events,
        )

    def send_action(self, action: np.ndarray) -> None:
        """Apply one (6,) absolute joint target and advance the physics one control period."""
        self._require_connected()
        with self._lock:
            obs, _, terminated, truncated, info = self.env.step(action)
            self._obs, self._info = obs, info
            if not self._done and info.get("success", False):
                self.successes += 1
            self._done = self._done or terminated or truncated
            self.ticks += 1
        if self._render is not None:
            self._render.publish(self.env.data, self.ticks)
        if self._done and self.auto_reset:  # like a real robot: the arm stays, only the task re-samples
            self._reset(self.seed + self.episode + 1, keep_arm=True)
            self.episode += 1

    def disconnect(self) -> None:
        """Stop the render thread and release the simulation."""
        if self._render is not None:
            self._render.stop()
            self._render = None
        self.env.close()
        self._obs = None

    @property
    def render_thread_alive(self) -> bool:
        return self._render is not None and self._render.alive

    @property
    def counters(self) -> dict[str, int]:
        """Action counters of the simulation (clipped / rejected actions, physics steps)."""
        return dict(self.env.counters)

    def _reset(self, seed: int, keep_arm: bool = False) -> None:
        with self._lock:
            self._obs, self._info = self.env.reset(seed=seed, options={"keep_arm": keep_arm})
            self._done = False
        if self._render is not None:
            self._render.publish(self.env.data, self.ticks)

    def _require_connected(self) -> None:
        if not self.connected:
            raise RuntimeError("SimDriver is not connected; call connect() first")
