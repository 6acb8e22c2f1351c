"""The shared gymnasium environment of the SO-101 tasks: physics, action checking, observations, cameras.

A task subclass adds its objects to the scene (:meth:`ArmTaskEnv.build_scene`), samples them on reset, and
updates its success signal after each control step. Everything else (servo physics, action validation,
the observation layout, camera rendering, counters) lives here so the four tasks behave alike.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from sim.arm import (
    ARM_XML,
    HOME_QPOS,
    JOINT_NAMES,
    TIP_SITE,
    compile_spec,
    control_substeps,
    dof_indices,
    joint_limits,
    load_arm_spec,
    qpos_indices,
)
from sim.cameras import CameraRenderer, add_cameras, validate_cameras
from vlash.contracts import RobotFeatures

TABLE_RGBA = [0.55, 0.55, 0.52, 1.0]


@functools.lru_cache(maxsize=16)
def _scene_model(env_cls: type[ArmTaskEnv], fps: float) -> mujoco.MjModel:
    spec = load_arm_spec(fps)
    spec.add_texture(name="grid", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
                     width=64, height=64, rgb1=[0.62, 0.62, 0.58], rgb2=[0.5, 0.5, 0.47])
    spec.add_material(name="grid", textures=["", "grid"], texrepeat=[8, 8], texuniform=True)
    spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[1.0, 1.0, 0.01],
                            material="grid", rgba=TABLE_RGBA)
    add_cameras(spec)
    env_cls.build_scene(spec)
    return compile_spec(spec)


class ArmTaskEnv(gym.Env):
    """One SO-101 task at a fixed control rate; actions are absolute joint-position targets (radians).

    Observation: ``state`` (6,) joint positions, ``velocity`` (6,) joint velocities, ``task_state`` (N,)
    privileged task information (layout in ``task_state_names``) and, when cameras were requested,
    ``images`` {name: (size, size, 3) uint8}. An action is clipped to the joint limits (counted in
    ``counters["actions_clipped"]``); one with the wrong shape or a NaN/inf is rejected and the previous
    target is held (``counters["actions_rejected"]``). Neither ever reaches ``mj_step``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 30}
    task_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    default_max_steps: ClassVar[int] = 300
    task_state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        cameras: tuple[str, ...] = (),
        image_size: int = 128,
        fps: float = 30.0,
        max_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.cameras = validate_cameras(cameras)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        if int(image_size) != image_size or not 8 <= image_size <= 1024:
            raise ValueError(f"image_size must be an integer in [8, 1024], got {image_size}")
        self.image_size = int(image_size)
        self.n_substeps, _ = control_substeps(fps)
        self.fps = float(fps)
        self.max_steps = int(max_steps) if max_steps is not None else self.default_max_steps
        if self.max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        self.model = copy.deepcopy(_scene_model(type(self), self.fps))
        self.data = mujoco.MjData(self.model)
        self.limits = joint_limits(self.model)
        self._qadr = qpos_indices(self.model)
        self._dadr = dof_indices(self.model)
        self._act = np.array([self.model.actuator(n).id for n in JOINT_NAMES])
        self._tip = self.model.site(TIP_SITE).id
        self.metadata = {**self.metadata, "render_fps": self.fps}
        self.features = RobotFeatures(
            joint_names=JOINT_NAMES, action_names=JOINT_NAMES,
            action_low=tuple(float(x) for x in self.limits.low),
            action_high=tuple(float(x) for x in self.limits.high),
            fps=self.fps, cameras={c: (self.image_size, self.image_size) for c in self.cameras},
            action_kind="absolute", task=self.description,
        )
        self.counters = {"actions_clipped": 0, "actions_rejected": 0, "physics_steps": 0}
        self.action_space = spaces.Box(self.limits.low.astype(np.float32), self.limits.high.astype(np.float32),
                                       dtype=np.float32)
        vec = functools.partial(spaces.Box, -np.inf, np.inf, dtype=np.float32)
        obs_spaces: dict[str, spaces.Space] = {
            "state": vec(shape=(6,)), "velocity": vec(shape=(6,)),
            "task_state": vec(shape=(len(self.task_state_names),)),
        }
        if self.cameras:
            image = spaces.Box(0, 255, (self.image_size, self.image_size, 3), dtype=np.uint8)
            obs_spaces["images"] = spaces.Dict({c: image for c in self.cameras})
        self.observation_space = spaces.Dict(obs_spaces)
        self._renderer: CameraRenderer | None = None
        self._front_renderer: CameraRenderer | None = None
        self._target = HOME_QPOS.copy()
        self.step_count = 0
        self.success = False

    # ----------------------------------------------------------------------------------- task hooks
    @classmethod
    def build_scene(cls, spec: mujoco.MjSpec) -> None:
        """Add the task's bodies, geoms and mocap targets to the arm's spec (called once per model)."""

    def _reset_task(self, rng: np.random.Generator) -> None:
        """Sample the task's objects for a new episode (physics positions are set here)."""

    def _before_physics(self) -> None:
        """Move scripted objects (mocap bodies) to where they are at the step about to be simulated."""

    def _update_task(self) -> None:
        """Update success and task bookkeeping after one control step (kinematics are current)."""

    def _task_state(self) -> np.ndarray:
        return np.zeros(len(self.task_state_names), dtype=np.float32)

    def _task_info(self) -> dict[str, Any]:
        return {}

    def _episode_over(self) -> bool:
        """Whether the episode ended for a task reason (success, or a task-defined failure)."""
        return self.success

    # ------------------------------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """A new episode. ``options={"keep_arm": True}`` leaves the arm where it is (joint positions,
        velocities and target) and re-samples only the task, as on a real robot between episodes."""
        super().reset(seed=seed)
        keep = bool((options or {}).get("keep_arm")) and self.step_count > 0
        qpos, qvel, target = self.data.qpos[self._qadr].copy(), self.data.qvel[self._dadr].copy(), self._target.copy()
        mujoco.mj_resetData(self.model, self.data)
        if not keep:
            qpos = self.limits.clip(HOME_QPOS + self.np_random.uniform(-0.05, 0.05, size=6))
            qvel, target = np.zeros(6), qpos.copy()
        self.data.qpos[self._qadr] = qpos
        self.data.qvel[self._dadr] = qvel
        self.data.ctrl[self._act] = target
        self._target = target.copy()
        self.step_count = 0
        self.success = False
        self._reset_task(self.np_random)
        mujoco.mj_forward(self.model, self.data)
        for _ in range(0 if keep else int(0.2 / self.model.opt.timestep)):  # let the servos take the arm's weight
            mujoco.mj_step(self.model, self.data)
        self.data.time = 0.0
        self._refresh_kinematics()
        return self._observation(), self._info()

    def step(self, action):
        target = self._check_action(action)
        self._target = target
        self.data.ctrl[self._act] = target
        self._before_physics()
        for _ in range(self.n_substeps):
            mujoco.mj_step(self.model, self.data)
        self.counters["physics_steps"] += self.n_substeps
        self.step_count += 1
        self._refresh_kinematics()
        self._update_task()
        terminated = bool(self._episode_over())
        truncated = bool(not terminated and self.step_count >= self.max_steps)
        return self._observation(), float(self.success), terminated, truncated, self._info()

    def render(self) -> np.ndarray | None:
        """The front camera at ``image_size`` when ``render_mode='rgb_array'``."""
        if self.render_mode != "rgb_array":
            return None
        if self._front_renderer is None:
            self._front_renderer = CameraRenderer(self.model, ("front",), self.image_size)
        return self._front_renderer.render(self.data)["front"]

    def close(self) -> None:
        for renderer in (self._renderer, self._front_renderer):
            if renderer is not None:
                renderer.close()
        self._renderer = self._front_renderer = None

    # --------------------------------------------------------------------------------- properties
    @property
    def task_description(self) -> str:
        return self.description

    @property
    def arm_model_path(self) -> str:
        """The arm's MJCF (the ``model`` estimator loads it with the same servo settings)."""
        return str(ARM_XML)

    @property
    def estimator_options(self) -> dict[str, Any]:
        """Options for ``make_estimator("model", **options)`` matching this environment's physics."""
        return {"fps": self.fps, "arm_model_path": self.arm_model_path}

    @property
    def tip_pos(self) -> np.ndarray:
        """World position of the gripper tip (midpoint between the fingertip pads)."""
        return self.data.site_xpos[self._tip].copy()

    @property
    def target(self) -> np.ndarray:
        """The joint targets the servos are currently tracking."""
        return self._target.copy()

    # ---------------------------------------------------------------------------------- internals
    def _check_action(self, action) -> np.ndarray:
        try:
            arr = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.shape != (6,) or not np.all(np.isfinite(arr)):
            self.counters["actions_rejected"] += 1
            return self._target.copy()
        clipped = self.limits.clip(arr)
        if not np.array_equal(clipped, arr):
            self.counters["actions_clipped"] += 1
        return clipped

    def _refresh_kinematics(self) -> None:
        """Positions of bodies, sites and cameras for the current ``qpos`` (``mj_step`` leaves them one
        substep old) so task checks and images show exactly the state that is observed."""
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)

    def _observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = {
            "state": self.data.qpos[self._qadr].astype(np.float32),
            "velocity": self.data.qvel[self._dadr].astype(np.float32),
            "task_state": self._task_state().astype(np.float32),
        }
        if self.cameras:
            if self._renderer is None:
                self._renderer = CameraRenderer(self.model, self.cameras, self.image_size)
            obs["images"] = self._renderer.render(self.data)
        return obs

    def _info(self) -> dict[str, Any]:
        return {"success": bool(self.success), "step": self.step_count, **self._task_info()}
