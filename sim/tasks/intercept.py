"""``intercept``: a ball is launched across the table toward the robot; touch it before it gets past.

The ping-pong analogue of the timing tasks. After a random pause the ball, resting at the far edge of the
workspace, rolls toward the base in a straight line at constant speed (a scripted, mocap-driven ball: its
path is exactly ``position + velocity * t``). The gripper must touch it before the ball comes within
``GOAL_RADIUS`` of the base (or runs past the workspace), which at the default speeds leaves well under a
second for reacting and moving: a late reaction misses.

Events, as whack's pads: ``info["ball_launch_step"]`` is ``[step]`` once the ball was launched (the first
observation that shows it moving is that step's) and ``info["ball_hit_step"]`` is ``[step]`` of the
touch, ``[-1]`` when it got past. ``info["miss_distance"]`` is the closest gripper-ball distance so far
(metres, below ``TOUCH_DISTANCE`` on a touch; finite from the reset on) and ``info["distance"]`` the current one.

The ball's speed range (0.35-0.5 m/s) was chosen as the fastest of a small sweep (40 seeds per cell, the
expert at 50 Hz) whose sync success at Δ = 0 and K = 25 (a launch seen up to 0.5 s late) stays >= 95 %,
so that a reaction much later than that misses. Success, speeds -> sync K=25 at Δ 0, 2, 5:
0.25-0.4 m/s: 100, 98, 90 %;  0.3-0.45: 100, 98, 78 %;  0.35-0.5: 98, 88, 65 %;  0.45-0.7: 78, 65, 45 %.
With one plan made a fixed time after the launch (20 seeds), up to 0.3 s late always hits; 0.4, 0.5 and
0.6 s late miss 25, 50 and 75 % of the balls.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from sim.tasks.base import ArmTaskEnv

FPS = 50.0  # the default control rate (the regime of the paper's reaction results)
BALL_RADIUS = 0.02
BALL_RGBA = (1.0, 0.55, 0.05, 1.0)
LAUNCH_RADIUS = 0.46  # metres from the base, where the ball waits
LAUNCH_ANGLES = (-0.35, 0.35)  # radians around the base where it may wait
GUARD_RADIUS = 0.22  # every path crosses this circle (the expert blocks there) ...
GUARD_ANGLES = (-0.5, 0.5)  # ... at an angle drawn from this range
GOAL_RADIUS = 0.14  # the ball got past once it is this close to the base
TABLE_HALF = 0.6  # |x| and |y| of the ball beyond which it left the table
TOUCH_DISTANCE = 0.002  # a gripper-ball distance below this counts as a touch (metres)
GRIPPER_BODIES = ("gripper", "moving_jaw_so101_v1")


def ball_path_crossing(position: np.ndarray, velocity: np.ndarray, radius: float) -> np.ndarray | None:
    """Where the straight path ``position + velocity * t`` (t >= 0) enters the circle of ``radius`` about
    the base (horizontal xy, z kept); None if it never does or is inside already."""
    p, v = np.asarray(position, dtype=np.float64), np.asarray(velocity, dtype=np.float64)
    a = float(v[:2] @ v[:2])
    b = 2.0 * float(p[:2] @ v[:2])
    c = float(p[:2] @ p[:2]) - radius**2
    disc = b * b - 4 * a * c
    if a <= 0 or c < 0 or disc < 0:
        return None
    t = (-b - np.sqrt(disc)) / (2 * a)
    return p + v * t if t >= 0 else None


class InterceptEnv(ArmTaskEnv):
    """An orange ball (radius 2 cm) waits ``LAUNCH_RADIUS`` from the base; after ``pause_s`` it rolls toward
    the base at a speed drawn from ``speed_range`` (m/s), crossing ``GUARD_RADIUS`` at a random angle.

    Success: the gripper touched the ball (terminates). The episode also terminates, unsuccessfully, when
    the ball comes within ``GOAL_RADIUS`` of the base or leaves the table. Runs at ``FPS`` (50 Hz) by
    default. ``task_state`` = launched flag, ball xyz, ball velocity xyz
    (m/s; zero before the launch), seconds since the launch.
    """

    task_name = "intercept"
    description = "Touch the rolling orange ball with the gripper before it gets past."
    task_state_names = ("launched", "ball_x", "ball_y", "ball_z", "ball_vx", "ball_vy", "ball_vz", "launch_age_s")

    def __init__(self, *args, fps: float = FPS, speed_range: tuple[float, float] = (0.35, 0.5),
                 pause_s: tuple[float, float] = (0.4, 1.0), **kwargs) -> None:
        if not 0 < speed_range[0] <= speed_range[1] or not 0 <= pause_s[0] <= pause_s[1]:
            raise ValueError(f"bad intercept settings speed_range={speed_range} pause_s={pause_s}")
        self.speed_range = (float(speed_range[0]), float(speed_range[1]))
        self.pause_s = (float(pause_s[0]), float(pause_s[1]))
        travel_s = (LAUNCH_RADIUS + TABLE_HALF) / self.speed_range[0]  # longer than any path on the table
        self.default_max_steps = int(np.ceil((self.pause_s[1] + travel_s) * fps)) + 1
        super().__init__(*args, fps=fps, **kwargs)
        self._ball_geom = self.model.geom("ball").id
        bodies = {self.model.body(name).id for name in GRIPPER_BODIES}
        self._gripper_geoms = [g for g in range(self.model.ngeom) if self.model.geom_bodyid[g] in bodies
                               and (self.model.geom_contype[g] or self.model.geom_conaffinity[g])]

    @classmethod
    def build_scene(cls, spec: mujoco.MjSpec) -> None:
        body = spec.worldbody.add_body(name="ball", mocap=True, pos=[LAUNCH_RADIUS, 0.0, BALL_RADIUS])
        body.add_geom(name="ball", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[BALL_RADIUS, 0, 0],
                      rgba=list(BALL_RGBA), contype=0, conaffinity=0)

    def _reset_task(self, rng: np.random.Generator) -> None:
        start_angle = rng.uniform(*LAUNCH_ANGLES)
        guard_angle = rng.uniform(*GUARD_ANGLES)
        self.start = np.array([LAUNCH_RADIUS * np.cos(start_angle), LAUNCH_RADIUS * np.sin(start_angle), BALL_RADIUS])
        through = np.array([GUARD_RADIUS * np.cos(guard_angle), GUARD_RADIUS * np.sin(guard_angle), BALL_RADIUS])
        heading = (through - self.start) / np.linalg.norm(through - self.start)
        self.launch_velocity = rng.uniform(*self.speed_range) * heading
        self.launch_step = max(1, int(round(rng.uniform(*self.pause_s) * self.fps)))
        self.launched = False
        self.hit_step = -1
        self.got_past = False
        self.data.mocap_pos[0] = self.start
        mujoco.mj_kinematics(self.model, self.data)
        self._distance = self.miss_distance = self.gripper_ball_distance()

    def ball_position(self, step: int) -> np.ndarray:
        """Where the ball is after ``step`` control steps."""
        return self.start + self.launch_velocity * max(0, step - self.launch_step) / self.fps

    @property
    def ball_velocity(self) -> np.ndarray:
        return self.launch_velocity.copy() if self.launched else np.zeros(3)

    def gripper_ball_distance(self) -> float:
        """Smallest distance between the ball and the gripper's collision geoms (metres, >= 0)."""
        gaps = [mujoco.mj_geomDistance(self.model, self.data, g, self._ball_geom, 1.0, None)
                for g in self._gripper_geoms]
        return max(0.0, float(min(gaps)))

    def _before_physics(self) -> None:
        self.data.mocap_pos[0] = self.ball_position(self.step_count + 1)

    def _update_task(self) -> None:
        step = self.step_count
        self.launched = self.launched or step >= self.launch_step
        self._distance = self.gripper_ball_distance()
        self.miss_distance = min(self.miss_distance, self._distance)
        if self.hit_step < 0 and not self.got_past:
            if self._distance < TOUCH_DISTANCE:
                self.hit_step = step
            else:
                ball = self.data.mocap_pos[0]
                self.got_past = bool(np.linalg.norm(ball[:2]) < GOAL_RADIUS or np.any(np.abs(ball[:2]) > TABLE_HALF))
        self.success = self.hit_step >= 0

    def _episode_over(self) -> bool:
        return self.success or self.got_past

    def _task_state(self) -> np.ndarray:
        age = (self.step_count - self.launch_step) / self.fps if self.launched else 0.0
        return np.concatenate([[float(self.launched)], self.ball_position(self.step_count), self.ball_velocity, [age]])

    def _task_info(self) -> dict[str, Any]:
        over = self.success or self.got_past
        return {
            "miss_distance": float(self.miss_distance),
            "distance": float(self._distance),
            "ball_launch_step": [self.launch_step] if self.launched else [],
            "ball_hit_step": [self.hit_step] if over else [],
        }
