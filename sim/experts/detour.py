"""Scripted expert for ``detour``: around the post on one side (left, right, or drawn per episode), then to the target.

The way around is half an ellipse about the post, from the home tip's end of the post-target line to the
target, ``radius + CLEARANCE`` wide on the chosen side; it is fixed in the world for the episode. Each plan
runs through the points of it still ahead of the tip (along the post-target line) and ends at the target,
one leg, from the given state at the measured velocity, like the other experts. Plans stay pure functions
of the observation: with ``strategy="random"`` the side is drawn from a hash of the expert's ``seed`` and
the episode's fixed layout (target and post in ``task_state``), so it is the same for every plan of an
episode, reproducible from the episode seed, independent of the arm's motion (noise, delay) and of
whether anyone calls :meth:`reset`, and half left, half right over episodes.
"""

from __future__ import annotations

import hashlib

import mujoco
import numpy as np

from sim.arm import qpos_indices
from sim.experts.planning import ChunkExpert, leg
from sim.tasks.detour import COLLISION_MARGIN, HOME_TIP, Probes, lateral_frame, post_gap
from vlash.contracts import PolicyObservation

STRATEGIES = ("random", "left", "right")
SIDES = {"left": 1, "right": -1}
CLEARANCE = 0.05  # metres from the post's surface to the tip's path beside it, at least
NEEDED_GAP = COLLISION_MARGIN + 0.02  # metres every probe point keeps from the post's surface on the way
WIDEN_TRIES = 4
VIAS = 5  # points on the half ellipse between its two ends
AHEAD = 0.005  # metres along the line: a point no further ahead of the tip than this is passed
GRIPPER = 0.3  # the home opening, held throughout
SPEED = 0.75  # times the experts' cruise speed: a careful way around (about 50 steps at 30 Hz)
LAYOUT = (0, 1, 2, 6, 7, 8)  # task_state entries fixed for an episode: target xyz, post xy, post radius


def layout_side(task_state: np.ndarray, seed: int = 0) -> int:
    """+1 (left) or -1 (right), drawn from ``seed`` and the episode's layout (rounded to 0.1 mm)."""
    key = np.round(np.asarray(task_state, dtype=np.float64)[list(LAYOUT)] * 1e4).astype("<i8")
    digest = hashlib.sha256(np.concatenate([[int(seed)], key]).astype("<i8").tobytes()).digest()
    return 1 if digest[0] & 1 else -1


def detour_points(task_state: np.ndarray, side: int, clearance: float = CLEARANCE) -> tuple[np.ndarray, np.ndarray]:
    """(along, points): the ``VIAS`` world points (VIAS, 3) of the way around on ``side`` at ``clearance``
    from the post's surface, and their coordinate along the post-target line (metres from the post)."""
    target, post, radius = task_state[0:3], task_state[6:8], float(task_state[8])
    along, left = lateral_frame(post, target)
    reach_home = float(np.linalg.norm(HOME_TIP[:2] - post))
    reach_target = float(np.linalg.norm(target[:2] - post))
    theta = np.linspace(np.pi, 0.0, VIAS + 2)[1:-1]
    a = np.cos(theta) * np.where(theta > np.pi / 2, reach_home, reach_target)
    b = side * (radius + clearance) * np.sin(theta)
    frac = (1.0 - np.cos(theta)) / 2.0
    z = HOME_TIP[2] + frac * (target[2] - HOME_TIP[2])
    xy = post + a[:, None] * along + b[:, None] * left
    return a, np.column_stack([xy, z])


class DetourExpert(ChunkExpert):
    """Pass the post on the ``strategy`` side ("left", "right" or, by default, "random": drawn per episode
    from ``seed`` and the layout, see :func:`layout_side`), then touch the target; position-only IK.

    ``strategy_name`` is the side ("left"/"right") of the episode planned last (None before a plan).
    """

    task_name = "detour"
    strategies = STRATEGIES

    def __init__(self, *args, strategy: str = "random", seed: int = 0, clearance: float = CLEARANCE,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        self.strategy = strategy
        self.seed = int(seed)
        self.clearance = float(clearance)
        self.strategy_name: str | None = None
        self._probes = Probes(self.kin.model)
        self._qadr = qpos_indices(self.kin.model)

    def reset(self) -> None:
        """Forget the last episode's side (the next plan sets it again; plans never depend on it)."""
        self.strategy_name = None

    def side(self, task_state: np.ndarray) -> int:
        """+1 (left) or -1 (right) for the episode of ``task_state``."""
        if self.strategy in SIDES:
            return SIDES[self.strategy]
        return layout_side(task_state, self.seed)

    def probe_gap(self, q: np.ndarray, task_state: np.ndarray) -> float:
        """Distance (metres) between the post's surface and the arm's probe points at joint positions ``q``."""
        data = self.kin.data
        data.qpos[self._qadr] = q
        mujoco.mj_kinematics(self.kin.model, data)
        return post_gap(self._probes.points(data), task_state[6:8], float(task_state[8]))

    def clear_pose(self, point: np.ndarray, seed: np.ndarray, outward: np.ndarray, task_state: np.ndarray) -> np.ndarray:
        """IK for the tip at ``point``, moved ``outward`` (horizontal unit vector) until the arm's probe
        points clear the post by ``NEEDED_GAP`` (the gripper hangs toward the base, so passing the post on
        its far side takes more room than on its near side)."""
        point = np.asarray(point, dtype=np.float64).copy()
        for _ in range(WIDEN_TRIES):
            q = self.pose(point, seed, GRIPPER, down=False)
            gap = self.probe_gap(q, task_state)
            if gap >= NEEDED_GAP:
                break
            point[:2] += (NEEDED_GAP - gap + 0.005) * outward
        return q

    def plan(self, q0: np.ndarray, task_state: np.ndarray, observation: PolicyObservation) -> np.ndarray:
        side = self.side(task_state)
        self.strategy_name = "left" if side > 0 else "right"
        along, points = detour_points(task_state, side, self.clearance)
        post = task_state[6:8]
        unit, _ = lateral_frame(post, task_state[0:3])
        _, left = lateral_frame(post, task_state[0:3])
        tip_along = float((self.tip(q0)[:2] - post) @ unit)
        poses, seed = [], q0
        for point in points[along > tip_along + AHEAD]:
            seed = self.clear_pose(point, seed, side * left, task_state)
            poses.append(seed)
        goal = self.pose(task_state[0:3], seed, GRIPPER, down=False)
        return self.legs(q0, [leg(*poses, goal, hold=self.chunk_size, speed=SPEED)], observation)
