"""Chunk planning shared by the scripted experts: joint-space paths with minimum-jerk timing.

Every expert plans from the state it is given (``PolicyObservation.state``), so a chunk always starts at
that state: planning from a stale state makes the first actions jump back to where the arm was, which
is exactly the artefact future-state estimation removes. Plans are pure functions of the observation
(no hidden phase), so the same observation always gives the same chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.arm import ArmKinematics, JointLimits, arm_model, joint_limits
from vlash.contracts import PolicyFeatures, PolicyObservation

ARM_SPEED = 1.2  # cruise speed of the fastest-moving arm joint, rad/s (the servos top out near 2.8)
GRIPPER_SPEED = 3.0
ACCEL_S = 0.1  # seconds to reach cruise speed: short, so a plan that is replaced every few steps still
DECEL_S = 0.25  # makes progress; the servo lag smooths the remaining velocity step


def min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk progress 10s^3 - 15s^4 + 6s^5 for s in [0, 1] (zero velocity and acceleration at ends)."""
    s = np.clip(s, 0.0, 1.0)
    return s**3 * (10.0 - 15.0 * s + 6.0 * s**2)


def trapezoid(t: np.ndarray, total: float) -> np.ndarray:
    """Distance covered at times ``t`` along a path of ``total`` seconds-at-cruise-speed, with linear
    speed ramps of ``ACCEL_S`` and ``DECEL_S`` (scaled down, triangle-like, for short paths)."""
    ta, td = ACCEL_S, DECEL_S
    if total < (ta + td) / 2:
        f = np.sqrt(2 * total / (ta + td)) if total > 0 else 0.0
        ta, td, peak = ta * f, td * f, f
    else:
        peak = 1.0
    cruise = total - peak * (ta + td) / 2
    end = ta + cruise / peak + td if peak > 0 else 0.0
    t = np.clip(t, 0.0, end)
    acc = peak * np.minimum(t, ta) ** 2 / (2 * ta) if ta > 0 else 0.0 * t
    mid = peak * np.clip(t - ta, 0.0, cruise / peak if peak > 0 else 0.0)
    tail = np.clip(t - (end - td), 0.0, td)
    dec = peak * (tail - tail**2 / (2 * td)) if td > 0 else 0.0 * t
    return np.minimum(acc + mid + dec, total)


def trapezoid_duration(total: float) -> float:
    if total < (ACCEL_S + DECEL_S) / 2:
        return float(np.sqrt(2 * total * (ACCEL_S + DECEL_S))) if total > 0 else 0.0
    return total + (ACCEL_S + DECEL_S) / 2


@dataclass(frozen=True)
class Leg:
    """Move through ``vias`` (6-vectors) with one speed profile, then hold the last one ``hold`` steps.

    ``speed`` scales the mean joint speed; ``min_steps`` bounds the duration from below.
    """

    vias: tuple[np.ndarray, ...]
    hold: int = 0
    speed: float = 1.0
    min_steps: int = 3


def leg(*vias: np.ndarray, hold: int = 0, speed: float = 1.0, min_steps: int = 3) -> Leg:
    return Leg(tuple(np.asarray(v, dtype=np.float64) for v in vias), hold, speed, min_steps)


def sample_legs(q0: np.ndarray, legs: list[Leg], fps: float, n: int) -> np.ndarray:
    """(n, 6) joint targets for the steps after ``q0`` (row j is for j+1 steps later); the last is held."""
    rows: list[np.ndarray] = []
    start = np.asarray(q0, dtype=np.float64)
    vmax = np.array([ARM_SPEED] * 5 + [GRIPPER_SPEED])
    for lg in legs:
        points = np.vstack([start, *lg.vias])
        seg = np.max(np.abs(np.diff(points, axis=0)) / (vmax * lg.speed), axis=1)  # seconds at cruise speed
        total = float(seg.sum())
        duration = trapezoid_duration(total)
        steps = max(lg.min_steps, int(np.ceil(duration * fps)))
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        for j in range(1, steps + 1):
            dist = float(trapezoid(np.array(j / steps * duration), total))
            k = min(int(np.searchsorted(cum, dist, side="right")) - 1, len(seg) - 1)
            frac = 0.0 if seg[k] <= 0 else (dist - cum[k]) / seg[k]
            rows.append(points[k] + np.clip(frac, 0.0, 1.0) * (points[k + 1] - points[k]))
            if len(rows) >= n:
                return np.asarray(rows[:n])
        rows.extend([points[-1]] * lg.hold)
        if len(rows) >= n:
            return np.asarray(rows[:n])
        start = points[-1]
    rows.extend([start] * (n - len(rows)))
    return np.asarray(rows)


class ChunkExpert:
    """Base of the scripted experts: implements the :class:`vlash.contracts.Policy` protocol.

    Subclasses implement :meth:`plan`. ``predict_chunk`` validates the observation, plans in float64
    and returns a ``(chunk_size, 6)`` float32 array clipped to the joint limits.
    """

    action_kind = "absolute"
    supports_rtc = False
    task_name = ""

    def __init__(self, chunk_size: int = 50, fps: float = 30.0, kinematics: ArmKinematics | None = None) -> None:
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.chunk_size = int(chunk_size)
        self.fps = float(fps)
        self.kin = kinematics if kinematics is not None else ArmKinematics(arm_model(self.fps))
        self.limits: JointLimits = joint_limits(self.kin.model)
        self.features = PolicyFeatures(state_dim=6, action_dim=6, extras=("task_state",))

    def reset(self) -> None:
        """Experts keep no per-episode state; nothing to forget."""

    def predict_chunk(self, observation: PolicyObservation) -> np.ndarray:
        q0 = np.asarray(observation.state, dtype=np.float64)
        if q0.shape != (6,) or not np.all(np.isfinite(q0)):
            raise ValueError(f"state must be 6 finite joint positions, got {observation.state!r}")
        if "task_state" not in observation.extras:
            raise ValueError(f"{type(self).__name__} needs extras['task_state']")
        task_state = np.asarray(observation.extras["task_state"], dtype=np.float64)
        chunk = self.plan(q0, task_state, observation)
        return np.clip(chunk, self.limits.low, self.limits.high).astype(np.float32)

    def plan(self, q0: np.ndarray, task_state: np.ndarray, observation: PolicyObservation) -> np.ndarray:
        raise NotImplementedError

    def commands(self, positions: np.ndarray) -> np.ndarray:
        """Servo targets that hold the arm at ``positions`` (N, 6): each plus its gravity torque / kp.

        A position servo sags under load by ``torque / kp``; commanding that much beyond the wanted
        position cancels it (the feed-forward a demonstrator's hand or a learned policy supplies).
        """
        positions = np.atleast_2d(np.asarray(positions, dtype=np.float64))
        return positions + np.array([self.kin.gravity_torque(q) for q in positions]) / self.kin.kp

    def tip(self, q: np.ndarray) -> np.ndarray:
        return self.kin.tip(q)[0]

    def pose(self, target: np.ndarray, seed: np.ndarray, gripper: float, down: bool = True) -> np.ndarray:
        """A 6-vector: IK for the tip at ``target`` (seeded at ``seed``) with the gripper at ``gripper``."""
        return np.append(self.kin.ik(target, seed, down=down), gripper)
