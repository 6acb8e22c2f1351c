"""``reach``: touch a random static target with the gripper tip."""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from sim.tasks.base import ArmTaskEnv

SUCCESS_RADIUS = 0.02  # metres between the tip and the target's centre


class ReachEnv(ArmTaskEnv):
    """A red ball (radius 2 cm) appears at a random reachable point; success when the tip is inside it.

    ``task_state`` = target xyz, tip xyz (metres, world frame). The episode terminates on success.
    """

    task_name = "reach"
    description = "Touch the red ball with the gripper tip."
    default_max_steps = 150
    task_state_names = ("target_x", "target_y", "target_z", "tip_x", "tip_y", "tip_z")

    @classmethod
    def build_scene(cls, spec: mujoco.MjSpec) -> None:
        body = spec.worldbody.add_body(name="target", mocap=True, pos=[0.25, 0.0, 0.1])
        body.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[SUCCESS_RADIUS, 0, 0], rgba=[0.9, 0.1, 0.1, 1.0],
                      contype=0, conaffinity=0)

    def _reset_task(self, rng: np.random.Generator) -> None:
        radius = rng.uniform(0.18, 0.30)
        angle = rng.uniform(-0.6, 0.6)
        self.data.mocap_pos[0] = (radius * np.cos(angle), radius * np.sin(angle), rng.uniform(0.04, 0.16))
        self._distance = np.inf

    @property
    def goal(self) -> np.ndarray:
        return self.data.mocap_pos[0].copy()

    def _update_task(self) -> None:
        self._distance = float(np.linalg.norm(self.tip_pos - self.goal))
        self.success = self.success or self._distance < SUCCESS_RADIUS

    def _task_state(self) -> np.ndarray:
        return np.concatenate([self.goal, self.tip_pos])

    def _task_info(self) -> dict[str, Any]:
        return {"distance": float(np.linalg.norm(self.tip_pos - self.goal))}
