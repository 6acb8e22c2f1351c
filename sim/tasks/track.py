"""``track``: keep the gripper tip on a target that moves along a smooth random path.

The path is a 3-D Lissajous curve ``p(t) = centre + amp * sin(omega * t + phase)`` with random
frequencies and phases (peak speed about 0.1-0.15 m/s). Its parameters are part of ``task_state``
so a state-based planner can predict it. Success (decided at the end of the episode, which lasts
``max_steps``): the mean tip-to-target distance after the first ``SETTLE_S`` seconds is below
``SUCCESS_MEAN_ERROR``. ``info["tracking_error"]`` is that running mean (metres; the episode's figure
at its last step; ``None`` until the first error after ``SETTLE_S`` is counted) and ``info["distance"]`` the
current distance (``None`` at the reset, before the first step). None rather than NaN keeps gymnasium's
``check_env`` determinism check (NaN != NaN) passing.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from sim.tasks.base import ArmTaskEnv

CENTRE = np.array([0.23, 0.0, 0.09])
AMPLITUDE = np.array([0.04, 0.09, 0.03])
OMEGA_RANGE = (0.6, 1.3)  # rad/s
SETTLE_S = 1.0
SUCCESS_MEAN_ERROR = 0.015  # metres


def path_position(params: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Target position(s) at time(s) ``t`` (seconds) for ``params`` = centre(3), amp(3), omega(3), phase(3)."""
    centre, amp, omega, phase = params[0:3], params[3:6], params[6:9], params[9:12]
    t = np.asarray(t, dtype=np.float64)[..., None]
    return centre + amp * np.sin(omega * t + phase)


def path_velocity(params: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    centre, amp, omega, phase = params[0:3], params[3:6], params[6:9], params[9:12]
    del centre
    t = np.asarray(t, dtype=np.float64)[..., None]
    return amp * omega * np.cos(omega * t + phase)


class TrackEnv(ArmTaskEnv):
    """Follow a green ball moving along a random Lissajous path for ``max_steps`` control steps.

    ``task_state`` = time (s), target xyz, target velocity xyz, then the path parameters
    (centre xyz, amplitude xyz, omega xyz, phase xyz). At the last step ``terminated`` is True
    if the episode succeeded and ``truncated`` is True otherwise.
    """

    task_name = "track"
    description = "Keep the gripper tip on the moving green ball."
    default_max_steps = 300
    task_state_names = ("time_s", "target_x", "target_y", "target_z", "target_vx", "target_vy", "target_vz") + tuple(
        f"{p}_{a}" for p in ("centre", "amp", "omega", "phase") for a in "xyz"
    )

    @classmethod
    def build_scene(cls, spec: mujoco.MjSpec) -> None:
        body = spec.worldbody.add_body(name="target", mocap=True, pos=CENTRE.tolist())
        body.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.015, 0, 0], rgba=[0.1, 0.8, 0.2, 1.0],
                      contype=0, conaffinity=0)

    def _reset_task(self, rng: np.random.Generator) -> None:
        omega = rng.uniform(*OMEGA_RANGE, size=3)
        phase = rng.uniform(-np.pi, np.pi, size=3)
        self.path = np.concatenate([CENTRE, AMPLITUDE, omega, phase])
        self._errors: list[float] = []
        self._error = float("nan")
        self._move_target()

    @property
    def time_s(self) -> float:
        return self.step_count / self.fps

    def _move_target(self) -> None:
        self.data.mocap_pos[0] = path_position(self.path, self.time_s)

    def _before_physics(self) -> None:
        self.data.mocap_pos[0] = path_position(self.path, (self.step_count + 1) / self.fps)

    def _update_task(self) -> None:
        self._error = float(np.linalg.norm(self.tip_pos - self.data.mocap_pos[0]))
        if self.time_s > SETTLE_S:
            self._errors.append(self._error)
        self.success = self.step_count >= self.max_steps and self.mean_error < SUCCESS_MEAN_ERROR

    @property
    def mean_error(self) -> float:
        return float(np.mean(self._errors)) if self._errors else float("nan")

    def _episode_over(self) -> bool:
        return self.success

    def _task_state(self) -> np.ndarray:
        t = self.time_s
        return np.concatenate([[t], path_position(self.path, t), path_velocity(self.path, t), self.path])

    def _task_info(self) -> dict[str, Any]:
        return {"tracking_error": self.mean_error if self._errors else None,
                "distance": None if np.isnan(self._error) else self._error}
