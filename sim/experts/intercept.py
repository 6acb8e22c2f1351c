"""Scripted expert for ``intercept``: a goalkeeper that blocks the ball where its path crosses a guard circle."""

from __future__ import annotations

import numpy as np

from sim.experts.planning import ChunkExpert, leg
from sim.tasks.intercept import BALL_RADIUS, FPS, GOAL_RADIUS, GUARD_RADIUS, ball_path_crossing
from vlash.contracts import PolicyObservation

READY_ANGLE = 0.0  # where the gripper waits before the launch: on the guard circle, straight ahead
BLOCK_Z = BALL_RADIUS  # tip height: the closed jaws stand in the ball's way
GRIPPER = -0.1  # jaws closed, so the ball meets the pads (not the gap between them)
BLOCK_SPEED = 1.5  # times the experts' cruise speed: a goalkeeper moves fast (the pan servo has the torque)


class InterceptExpert(ChunkExpert):
    """Wait on the guard circle; once the ball rolls, move (as fast as the profile allows) to the point
    where its straight path crosses that circle and hold there until it arrives.

    The block point depends only on the ball's path, not on the arm or the time, so replanning from any
    state or delay aims at the same point. If the ball is already inside the guard circle, the expert
    aims at where it will cross the goal circle instead (the last chance). Plans at the task's ``FPS`` by default.
    """

    task_name = "intercept"

    def __init__(self, *args, fps: float = FPS, **kwargs) -> None:
        super().__init__(*args, fps=fps, **kwargs)

    def block_point(self, task_state: np.ndarray) -> np.ndarray:
        """Where the tip should wait: the path's guard-circle crossing (or the ready point before a launch)."""
        ball, velocity = task_state[1:4], task_state[4:7]
        if task_state[0] > 0.5:
            for radius in (GUARD_RADIUS, GOAL_RADIUS + BALL_RADIUS):
                point = ball_path_crossing(ball, velocity, radius)
                if point is not None:
                    return np.array([point[0], point[1], BLOCK_Z])
            return np.array([ball[0], ball[1], BLOCK_Z])
        return np.array([GUARD_RADIUS * np.cos(READY_ANGLE), GUARD_RADIUS * np.sin(READY_ANGLE), BLOCK_Z])

    def plan(self, q0: np.ndarray, task_state: np.ndarray, observation: PolicyObservation) -> np.ndarray:
        goal = self.pose(self.block_point(task_state), q0, GRIPPER)
        return self.legs(q0, [leg(goal, hold=self.chunk_size, speed=BLOCK_SPEED)], observation)
