"""Scripted experts for the free-motion tasks: ``reach``, ``whack`` and ``track``."""

from __future__ import annotations

import numpy as np

from sim.experts.planning import ChunkExpert, leg, min_jerk, sample_legs
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
        return self.commands(sample_legs(q0, [leg(goal)], self.fps, self.chunk_size))


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
        return self.commands(sample_legs(q0, [leg(*vias, hold=5)], self.fps, self.chunk_size))


class TrackExpert(ChunkExpert):
    """Follow the predicted path, blending in from the given state.

    Row j aims at the path ``lead_steps`` beyond its own step (servo-lag compensation) and is blended
    with the given state over the first ``blend_steps`` rows, ``row_j = (1-w_j) q0 + w_j path_j``: like a
    learned policy, a chunk starts where the state says the arm is, so a stale state pulls the arm back.
    The path is evaluated from the step the state is for (see :func:`state_step_offset`).
    """

    task_name = "track"

    def __init__(self, *args, lead_steps: float = 2.0, blend_steps: int = 8, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lead_steps = float(lead_steps)
        self.blend_steps = int(blend_steps)

    def plan(self, q0: np.ndarray, task_state: np.ndarray, observation: PolicyObservation) -> np.ndarray:
        t0 = task_state[0] + state_step_offset(observation) / self.fps
        params = task_state[7:19]
        j = np.arange(self.chunk_size)
        targets = path_position(params, t0 + (j + 1 + self.lead_steps) / self.fps)
        rows = np.empty((self.chunk_size, 6))
        on_path = self.kin.ik(path_position(params, t0), q0, down=False)
        lead = self.kin.ik(path_position(params, t0 + self.lead_steps / self.fps), on_path, down=False) - on_path
        seed = on_path
        for i, target in enumerate(targets):
            seed = self.kin.ik(target, seed, down=False, iterations=8)
            rows[i, :5] = seed
        rows[:, 5] = q0[5]
        rows = self.commands(rows)
        anchor = self.commands(q0)[0]
        anchor[:5] += lead  # the command that keeps an arm at q0 moving along with the path
        w = min_jerk(np.minimum(1.0, (j + 1) / max(1, self.blend_steps)))[:, None]
        return (1.0 - w) * anchor + w * rows


def state_step_offset(observation: PolicyObservation) -> int:
    """Steps between the observation and the chunk's first row (``delay_steps`` in ``vlash`` mode, else 0)."""
    return int(observation.start_step - observation.step)
