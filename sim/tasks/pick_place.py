"""``pick_place``: grasp a cube on the table and drop it into an open bin.

The cube (4 cm, 50 g) and the bin are placed at random on opposite sides of the workspace; the cube
has a random yaw. The fingertip pads collide (as in the wheel's pick-and-place task), so the jaws
hold the cube by two flat faces. Success: the cube rests inside the bin's walls, below their top,
and the gripper no longer holds it. ``task_state`` = cube xyz, cube yaw (radians, in [-pi/4, pi/4]:
the cube is symmetric), bin xyz (floor centre), grasped flag (both jaws touch the cube), in-bin flag.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from sim.tasks.base import ArmTaskEnv

CUBE_HALF = 0.02
BIN_INNER_HALF = 0.05
BIN_WALL = 0.006
BIN_HEIGHT = 0.035


class PickPlaceEnv(ArmTaskEnv):
    """Pick the red cube and drop it into the blue bin. Terminates on success."""

    task_name = "pick_place"
    description = "Put the red cube into the blue bin."
    default_max_steps = 450
    task_state_names = ("cube_x", "cube_y", "cube_z", "cube_yaw", "bin_x", "bin_y", "bin_z", "grasped", "in_bin")

    @classmethod
    def build_scene(cls, spec: mujoco.MjSpec) -> None:
        spec.option.noslip_iterations = 5
        cube = spec.worldbody.add_body(name="cube", pos=[0.22, 0.08, CUBE_HALF])
        cube.add_freejoint(name="cube")
        cube.add_geom(name="cube", type=mujoco.mjtGeom.mjGEOM_BOX, size=[CUBE_HALF] * 3, mass=0.05,
                      rgba=[0.85, 0.15, 0.1, 1.0], friction=[1.5, 0.01, 0.001])
        bin_body = spec.worldbody.add_body(name="bin", pos=[0.22, -0.12, 0.0], mocap=True)
        blue = [0.15, 0.3, 0.8, 1.0]
        box = mujoco.mjtGeom.mjGEOM_BOX
        half = BIN_INNER_HALF + BIN_WALL
        bin_body.add_geom(name="bin_floor", type=box, pos=[0, 0, 0.002], size=[half, half, 0.002], rgba=blue)
        for i, (x, y, sx, sy) in enumerate([(half - BIN_WALL, 0, BIN_WALL, half), (-half + BIN_WALL, 0, BIN_WALL, half),
                                            (0, half - BIN_WALL, half, BIN_WALL), (0, -half + BIN_WALL, half, BIN_WALL)]):
            bin_body.add_geom(name=f"bin_wall{i}", type=box, pos=[x, y, BIN_HEIGHT / 2],
                              size=[sx, sy, BIN_HEIGHT / 2], rgba=blue)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._cube_body = self.model.body("cube").id
        self._cube_geom = self.model.geom("cube").id
        self._cube_qadr = self.model.jnt_qposadr[self.model.joint("cube").id]
        self._cube_dadr = self.model.jnt_dofadr[self.model.joint("cube").id]
        self._fixed_jaw = self.model.body("gripper").id
        self._moving_jaw = self.model.body("moving_jaw_so101_v1").id

    def _reset_task(self, rng: np.random.Generator) -> None:
        side = rng.choice([-1.0, 1.0])
        cube_xy = np.array([rng.uniform(0.17, 0.26), side * rng.uniform(0.03, 0.13)])
        bin_xy = np.array([rng.uniform(0.19, 0.25), -side * rng.uniform(0.10, 0.15)])
        yaw = rng.uniform(-np.pi / 4, np.pi / 4)
        self.data.qpos[self._cube_qadr:self._cube_qadr + 3] = (*cube_xy, CUBE_HALF)
        self.data.qpos[self._cube_qadr + 3:self._cube_qadr + 7] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
        self.data.mocap_pos[0] = (*bin_xy, 0.0)
        self._grasped = False
        self._in_bin = False

    @property
    def cube_pos(self) -> np.ndarray:
        return self.data.xpos[self._cube_body].copy()

    @property
    def cube_yaw(self) -> float:
        """Yaw of the cube folded into [-pi/4, pi/4] (a cube looks the same every quarter turn)."""
        x_axis = self.data.xmat[self._cube_body].reshape(3, 3)[:, 0]
        yaw = float(np.arctan2(x_axis[1], x_axis[0]))
        return float((yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4)

    def grasped(self) -> bool:
        """Both jaws are in contact with the cube."""
        touching = set()
        for c in self.data.contact[: self.data.ncon]:
            if self._cube_geom in (c.geom1, c.geom2):
                other = c.geom2 if c.geom1 == self._cube_geom else c.geom1
                touching.add(int(self.model.geom_bodyid[other]))
        return self._fixed_jaw in touching and self._moving_jaw in touching

    def in_bin(self) -> bool:
        """The cube's centre is within the bin's walls and below their top."""
        offset = self.cube_pos - self.data.mocap_pos[0]
        inside = np.all(np.abs(offset[:2]) < BIN_INNER_HALF - 0.005)
        return bool(inside and offset[2] < BIN_HEIGHT)

    def _update_task(self) -> None:
        self._grasped = self.grasped()
        self._in_bin = self.in_bin()
        speed = np.linalg.norm(self.data.qvel[self._cube_dadr:self._cube_dadr + 3])
        self.success = self.success or (self._in_bin and not self._grasped and speed < 0.05)

    def _task_state(self) -> np.ndarray:
        return np.concatenate([self.cube_pos, [self.cube_yaw], self.data.mocap_pos[0],
                               [float(self._grasped), float(self._in_bin)]])

    def _task_info(self) -> dict[str, Any]:
        return {"grasped": self._grasped, "in_bin": self._in_bin}
