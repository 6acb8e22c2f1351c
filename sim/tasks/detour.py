"""``detour``: touch a target that lies behind a post; pass the post on the left or on the right.

A multimodal task: the straight way from the arm's ready pose to the target runs through a vertical post,
and there are two equally good ways around it. The layout is drawn per seed: the target lies
``TARGET_RANGE`` from the base axis, ``TARGET_ANGLE`` radians to the left or right of straight ahead (the
side drawn too), ``TARGET_Z`` above the table; the post stands on the line from the nominal home tip
position (the tip at :data:`sim.arm.HOME_QPOS`) to the target, ``POST_FRACTION`` of the way. Passing on
the side nearer the base and on the far side differ for one layout (the gripper hangs toward the base,
so the far side takes a wider berth), but the layouts are symmetric under the arm's mirror (y -> -y),
which swaps left and right, so neither side is systematically shorter: the expert takes 52 steps on
average going left and 50 going right (seeds 0-49, sync, chunk 8, 30 Hz).

Sides are named as seen from above, looking from the home tip toward the target: ``+1`` is left,
``-1`` right. ``info["side"]`` is the side the tip is committed to: 0 until its signed lateral offset from
the post-target line has exceeded ``SIDE_MARGIN`` while alongside the post (no further from it along
the line than the farther of the home tip and the target), then the sign of the last
offset beyond the margin; ``info["side_changes"]`` counts how often that committed side flipped.

The post never blocks the physics (``contype`` 0): touching it ends the episode as a failure
(``terminated``, ``info["collided"] = True``). It counts as touched when the tip, either fingertip pad,
or the gripper or moving-jaw body origin is within the post's radius plus ``COLLISION_MARGIN`` of its
axis (horizontally) and below its top. Success: the tip within ``SUCCESS_RADIUS`` of the target.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from sim.arm import HOME_QPOS, TIP_SITE, ArmKinematics, arm_model
from sim.tasks.base import ArmTaskEnv

SUCCESS_RADIUS = 0.02  # metres between the tip and the target's centre
TARGET_RADIUS = 0.02  # the red ball's size
TARGET_RANGE = (0.27, 0.31)  # metres from the base axis to the target (horizontal)
TARGET_ANGLE = (0.6, 0.8)  # radians either side of straight ahead (+x) where the target lies
POST_FRACTION = (0.4, 0.5)  # where on the home-target line the post stands
POST_RADIUS = (0.015, 0.025)
POST_HEIGHT = 0.25  # taller than the tip can usefully go, so there is no way over it
TARGET_Z = (0.04, 0.08)
COLLISION_MARGIN = 0.01  # metres: the fingers' own thickness
SIDE_MARGIN = 0.02  # metres off the post-target line before a side counts
PROBE_BODIES = ("gripper", "moving_jaw_so101_v1")
PROBE_GEOMS = ("fixed_jaw_pad", "moving_jaw_pad")


def home_tip() -> np.ndarray:
    """World position of the tip at the nominal home pose (where the layout is drawn from)."""
    return ArmKinematics(arm_model()).tip(HOME_QPOS)[0]


HOME_TIP = home_tip()


class Probes:
    """The points of the arm checked against the post, for any ``MjData`` of a model with the SO-101's bodies."""

    def __init__(self, model: mujoco.MjModel) -> None:
        self.site = model.site(TIP_SITE).id
        self.geoms = np.array([model.geom(n).id for n in PROBE_GEOMS])
        self.bodies = np.array([model.body(n).id for n in PROBE_BODIES])

    def points(self, data: mujoco.MjData) -> np.ndarray:
        """(5, 3) world points: tip, fingertip pads, gripper and jaw body origins (kinematics must be current)."""
        return np.vstack([data.site_xpos[self.site], data.geom_xpos[self.geoms], data.xpos[self.bodies]])


def post_gap(points: np.ndarray, post_xy: np.ndarray, radius: float) -> float:
    """Smallest horizontal distance from ``points`` below the post's top to its surface (metres; inf if none)."""
    points = np.atleast_2d(points)
    low = points[:, 2] < POST_HEIGHT
    if not np.any(low):
        return float("inf")
    return float(np.min(np.linalg.norm(points[low, :2] - np.asarray(post_xy)[:2], axis=1)) - radius)


def lateral_frame(post_xy: np.ndarray, target_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (along, left) of the line from the post to the target, horizontal."""
    along = np.asarray(target_xy, dtype=np.float64)[:2] - np.asarray(post_xy, dtype=np.float64)[:2]
    along = along / np.linalg.norm(along)
    return along, np.array([-along[1], along[0]])


class DetourEnv(ArmTaskEnv):
    """Touch the red ball behind the grey post without touching the post. Terminates on success or collision.

    ``task_state`` = target xyz, tip xyz, post x, post y, post radius (metres, world frame; the post stands
    on the table, ``POST_HEIGHT`` tall).
    """

    task_name = "detour"
    description = "Touch the red ball with the gripper tip without touching the grey post."
    default_max_steps = 120
    task_state_names = ("target_x", "target_y", "target_z", "tip_x", "tip_y", "tip_z",
                        "post_x", "post_y", "post_radius")

    @classmethod
    def build_scene(cls, spec: mujoco.MjSpec) -> None:
        body = spec.worldbody.add_body(name="target", mocap=True, pos=[0.2, 0.15, 0.08])
        body.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[TARGET_RADIUS, 0, 0], rgba=[0.9, 0.1, 0.1, 1.0],
                      contype=0, conaffinity=0)
        post = spec.worldbody.add_body(name="post", mocap=True, pos=[0.2, 0.07, POST_HEIGHT / 2])
        post.add_geom(name="post", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[POST_RADIUS[1], POST_HEIGHT / 2, 0],
                      rgba=[0.45, 0.45, 0.5, 1.0], contype=0, conaffinity=0)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._target_mocap = self.model.body_mocapid[self.model.body("target").id]
        self._post_mocap = self.model.body_mocapid[self.model.body("post").id]
        self._post_geom = self.model.geom("post").id
        self._probes = Probes(self.model)
        self.post_radius = POST_RADIUS[1]
        self._reset_bookkeeping()

    def _reset_bookkeeping(self) -> None:
        self.collided = False
        self.side = 0
        self.side_changes = 0

    def _reset_task(self, rng: np.random.Generator) -> None:
        angle = rng.choice([-1.0, 1.0]) * rng.uniform(*TARGET_ANGLE)
        target_xy = rng.uniform(*TARGET_RANGE) * np.array([np.cos(angle), np.sin(angle)])
        post_xy = HOME_TIP[:2] + rng.uniform(*POST_FRACTION) * (target_xy - HOME_TIP[:2])
        self.post_radius = float(rng.uniform(*POST_RADIUS))
        self.data.mocap_pos[self._target_mocap] = (*target_xy, rng.uniform(*TARGET_Z))
        self.data.mocap_pos[self._post_mocap] = (*post_xy, POST_HEIGHT / 2)
        self.model.geom_size[self._post_geom, 0] = self.post_radius  # this env's own model copy
        self._along, self._left = lateral_frame(post_xy, target_xy)
        self._span = float(max(np.linalg.norm(target_xy - post_xy), np.linalg.norm(HOME_TIP[:2] - post_xy)))
        self._reset_bookkeeping()

    @property
    def goal(self) -> np.ndarray:
        return self.data.mocap_pos[self._target_mocap].copy()

    @property
    def post_xy(self) -> np.ndarray:
        return self.data.mocap_pos[self._post_mocap][:2].copy()

    def distance(self) -> float:
        """Metres between the tip and the target's centre."""
        return float(np.linalg.norm(self.tip_pos - self.goal))

    def probe_points(self) -> np.ndarray:
        """(5, 3) world points checked against the post (see :class:`Probes`)."""
        return self._probes.points(self.data)

    def touches_post(self) -> bool:
        """Whether any probe point is within the post's radius plus ``COLLISION_MARGIN``, below its top."""
        return post_gap(self.probe_points(), self.post_xy, self.post_radius) < COLLISION_MARGIN

    def lateral_offset(self) -> tuple[float, float]:
        """(along, left) coordinates of the tip relative to the post, in the post-target frame (metres)."""
        rel = self.tip_pos[:2] - self.post_xy
        return float(rel @ self._along), float(rel @ self._left)

    def _update_task(self) -> None:
        self.collided = self.collided or self.touches_post()
        along, left = self.lateral_offset()
        if abs(along) <= self._span and abs(left) > SIDE_MARGIN:
            side = 1 if left > 0 else -1
            if self.side and side != self.side:
                self.side_changes += 1
            self.side = side
        self.success = self.success or (not self.collided and self.distance() < SUCCESS_RADIUS)

    def _episode_over(self) -> bool:
        return self.success or self.collided

    def _task_state(self) -> np.ndarray:
        return np.concatenate([self.goal, self.tip_pos, self.post_xy, [self.post_radius]])

    def _task_info(self) -> dict[str, Any]:
        return {"distance": self.distance(), "collided": bool(self.collided), "side": int(self.side),
                "side_changes": int(self.side_changes)}
