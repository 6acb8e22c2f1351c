"""Scripted experts for the free-motion tasks: ``reach``, ``whack`` and ``track``."""

from __future__ import annotations

import numpy as np

from sim.experts.planning import ChunkExpert, hermite_blend, leg
from sim.tasks.track import path_position
from sim.tasks.whack import PAD_HEIGHT, PAD_RADIUS
from vlash.contracts import PolicyObservation

HOVER_Z = 0.055  # tip height for moving between pads
PRESS_Z = PAD_HEIGHT + 0.004  # tip height aimed at when tapping a pad (the jaws touch the table first)
READY_XY = np.array([0.2, 0.0])


class ReachExpert(ChunkExpert):
    """Move the tip straight (in joint space, min-jerk timing) to the target; position-only IK."""

    task_name = "reach"

    def plan(self, q0: np.ndarray, task_state: np.ndarray, observation: PolicyObservation) -> np.ndarray:
        goal = self.pose(task_state[0:3], q0, q0[5], down=False)
        return self.legs(q0, [leg(goal)], observation)


class WhackExpert(ChunkExpert):
    """Tap the lit pad: lift off if low, fly over it, press down; with no pad lit, wait above the centre.

    Lift, transfer and press are one leg through via points, so the arm does not stop at them.
    """

    task_name = "whack"

    def plan(self, q0: np.ndarray, task_state: np.ndarray, observation: PolicyObservation) -> np.ndarray:
        lit = task_state[0] > 0.5
        gripper = 0.0
        tip = self.tip(q0)
        goal_xy = task_state[1:3] if lit else READY_XY
        over_goal = np.linalg.norm(tip[:2] - goal_xy) < 0.5 * PAD_RADIUS
        vias = []
        seed = q0
        if not over_goal and tip[2] < HOVER_Z - 0.015:  # leave the table vertically first
            seed = self.pose([tip[0], tip[1], HOVER_Z], seed, gripper)
            vias.append(seed)
        if not over_goal or not lit:
            seed = self.pose([*goal_xy, HOVER_Z], seed, gripper)
            vias.append(seed)
        if lit:
            vias.append(self.pose([*goal_xy, PRESS_Z], seed, gripper))
        return self.legs(q0, [leg(*vias, hold=5)], observation)


class TrackExpert(ChunkExpert):
    """Follow the predicted path, blending in from the given state and the measured velocity.

    Row j is the path's joint position ``j+1`` steps after the state's step plus an offset that starts
    at the state's distance (and velocity difference) to the path and fades out over ``blend_s`` seconds
    (cubic Hermite): like a learned policy, a chunk starts where the state says the arm is, so a stale
    state pulls the arm back; with the velocity it starts at the arm's speed, so replanning every step
    neither stops the arm nor lets it fall behind. The path is evaluated from the step the state is for
    (see :func:`state_step_offset`).
    """

    task_name = "track"

    def __init__(self, *args, blend_s: float = 0.3, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if blend_s <= 0:
            raise ValueError(f"blend_s must be positive, got {blend_s}")
        self.blend_s = float(blend_s)

    def plan(self, q0: np.ndarray, task_state: np.ndarray, observation: PolicyObservation) -> np.ndarray:
        t0 = task_state[0] + state_step_offset(observation) / self.fps
        params = task_state[7:19]
        steps = np.arange(self.chunk_size + 1)
        targets = path_position(params, t0 + steps / self.fps)
        path = np.empty((self.chunk_size + 1, 6))
        seed = q0
        for i, target in enumerate(targets):  # each row's IK starts from the previous row's solution
            seed = self.kin.ik(target, seed, down=False, iterations=8 if i else 40)
            path[i, :5] = seed
        path[:, 5] = q0[5]
        v0 = self.start_velocity(observation)
        t = steps[1:] / self.fps
        s = np.clip(t / self.blend_s, 0.0, 1.0)[:, None]
        fade = 1.0 - 3.0 * s**2 + 2.0 * s**3  # cubic Hermite: 1 -> 0 with zero slope at both ends
        slip = v0 - (path[1] - path[0]) * self.fps
        rows = path[1:] + fade * (q0 - path[0]) + hermite_blend(t, self.blend_s)[:, None] * slip
        return self.commands(rows, start=q0)


def state_step_offset(observation: PolicyObservation) -> int:
    """Steps between the observation and the chunk's first row (``delay_steps`` in ``vlash`` mode, else 0)."""
    return int(observation.start_step - observation.step)
