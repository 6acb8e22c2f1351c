"""Chunk planning shared by the scripted experts: joint-space paths with trapezoidal speed profiles.

Every expert plans from the state it is given (``PolicyObservation.state``), so a chunk always starts at
that state: planning from a stale state makes the first actions jump back to where the arm was, which
is exactly the artefact future-state estimation removes. A chunk also starts with the measured joint
velocity (``extras["velocity"]``, rest when absent): the speed profile begins at the current speed along
the path (:func:`start_rate`) and any velocity off the path fades out over ``BLEND_S``, so a plan that is
replaced every step keeps the arm moving instead of restarting it from rest. Servo targets carry gravity,
damping and inertia feed-forward (:meth:`ChunkExpert.commands`), so the arm follows a plan's positions
rather than lagging them, and the state one step into a plan is where the plan said. Plans are pure functions of
the observation (no hidden phase), so the same observation always gives the same chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from sim.arm import ArmKinematics, JointLimits, arm_model, dof_indices, joint_limits, qpos_indices
from vlash.contracts import PolicyFeatures, PolicyObservation

ARM_SPEED = 1.2  # cruise speed of the fastest-moving arm joint, rad/s (the servos top out near 2.8)
GRIPPER_SPEED = 3.0
ACCEL_S = 0.1  # seconds to reach cruise speed from rest
DECEL_S = 0.25  # seconds to stop from cruise speed
BLEND_S = 0.3  # seconds over which the part of the start velocity off the planned path fades out
LOOK_AHEAD_S = 0.05  # seconds-at-cruise along the path that give its direction at the start
SKIP_VIA_S = 0.04  # seconds-at-cruise: a first via closer than this to the start is dropped
JOINT_SPEEDS = np.array([ARM_SPEED] * 5 + [GRIPPER_SPEED])


def hermite_blend(t: np.ndarray, duration: float) -> np.ndarray:
    """Offset per unit start velocity that starts at 0 with slope 1 and ends at rest at ``duration``:
    ``T h(t/T)`` with the cubic Hermite tangent basis ``h(s) = s (1 - s)^2``; 0 after ``duration``."""
    s = np.clip(np.asarray(t, dtype=np.float64) / duration, 0.0, 1.0)
    return duration * s * (1.0 - s) ** 2


@dataclass(frozen=True)
class SpeedProfile:
    """Progress along a path of ``total`` seconds-at-cruise-speed, starting at ``rate0`` x cruise speed.

    Speeds up at ``1/ACCEL_S`` (cruise speeds per second) to at most cruise, slows down at ``1/DECEL_S``
    to stop at ``total``; a start too fast to stop in time at that rate slows down uniformly instead.
    Replanning from any point of a profile with its current speed gives the rest of the same profile.
    """

    total: float
    rate0: float = 0.0

    def _phases(self) -> tuple[float, float, float, float, float]:
        """(peak speed, end of speed-up, end of cruise, end, deceleration)."""
        a, d, r0, total = 1.0 / ACCEL_S, 1.0 / DECEL_S, self.rate0, self.total
        if total <= 0.0:
            return 0.0, 0.0, 0.0, 0.0, d
        if r0 * r0 / (2 * d) >= total:  # too fast to stop at the usual rate: slow down uniformly
            dec = r0 * r0 / (2 * total)
            return r0, 0.0, 0.0, r0 / dec, dec
        peak = min(1.0, float(np.sqrt((total + r0 * r0 / (2 * a)) / (1 / (2 * a) + 1 / (2 * d)))))
        peak = max(peak, r0)
        t1 = (peak - r0) / a
        cruise = total - (peak * peak - r0 * r0) / (2 * a) - peak * peak / (2 * d)
        t2 = t1 + max(0.0, cruise) / peak
        return peak, t1, t2, t2 + peak / d, d

    @property
    def duration(self) -> float:
        return self._phases()[3]

    def distance(self, t: np.ndarray) -> np.ndarray:
        peak, t1, t2, t3, dec = self._phases()
        a, r0 = 1.0 / ACCEL_S, self.rate0
        t = np.clip(np.asarray(t, dtype=np.float64), 0.0, t3)
        up = np.minimum(t, t1)
        dist = r0 * up + 0.5 * a * up**2
        dist = dist + peak * np.clip(t - t1, 0.0, t2 - t1)
        down = np.clip(t - t2, 0.0, t3 - t2)
        dist = dist + peak * down - 0.5 * dec * down**2
        return np.minimum(dist, self.total)


@dataclass(frozen=True)
class Leg:
    """Move through ``vias`` (6-vectors) with one speed profile, then hold the last one ``hold`` steps.

    ``speed`` scales the cruise joint speed; ``min_steps`` bounds the duration from below.
    """

    vias: tuple[np.ndarray, ...]
    hold: int = 0
    speed: float = 1.0
    min_steps: int = 3


def leg(*vias: np.ndarray, hold: int = 0, speed: float = 1.0, min_steps: int = 3) -> Leg:
    return Leg(tuple(np.asarray(v, dtype=np.float64) for v in vias), hold, speed, min_steps)


def cruise_time(a: np.ndarray, b: np.ndarray, speed: float = 1.0) -> np.ndarray:
    """Seconds from ``a`` to ``b`` (6-vectors, or rows of them) with the slowest joint at cruise speed."""
    return np.max(np.abs(np.asarray(b) - np.asarray(a)) / (JOINT_SPEEDS * speed), axis=-1)


def path_point(points: np.ndarray, seg: np.ndarray, cum: np.ndarray, dist: float) -> np.ndarray:
    """The point ``dist`` seconds-at-cruise along the polyline ``points`` (segment times ``seg``, ``cum``)."""
    k = min(int(np.searchsorted(cum, dist, side="right")) - 1, len(seg) - 1)
    frac = 0.0 if seg[k] <= 0 else (dist - cum[k]) / seg[k]
    return points[k] + np.clip(frac, 0.0, 1.0) * (points[k + 1] - points[k])


def start_rate(velocity: np.ndarray, direction: np.ndarray) -> float:
    """The speed (x cruise) a path of cruise velocity ``direction`` starts at, for a current ``velocity``.

    The current speed is kept through turns of up to 90 degrees (what is off the new direction fades
    out, so the arm rounds the corner instead of slowing down for it) and scaled down to zero as the
    turn grows to a reversal; both vectors are in units of each joint's cruise speed.
    """
    speed, length = float(np.linalg.norm(velocity)), float(np.linalg.norm(direction))
    if speed == 0.0 or length == 0.0:
        return 0.0
    cos = float(velocity @ direction) / (speed * length)
    return float(np.clip(speed / length * min(1.0, 1.0 + cos), 0.0, 1.0))


def sample_legs(q0: np.ndarray, legs: list[Leg], fps: float, n: int, v0: np.ndarray | None = None) -> np.ndarray:
    """(n, 6) joint positions for the steps after ``q0`` (row j is for j+1 steps later); the last is held.

    ``v0`` (rad/s) is the velocity at ``q0``: the first leg starts at the speed :func:`start_rate` keeps
    along its path, and the rest of ``v0`` fades out over ``BLEND_S``, so row 0 continues the current
    motion. A first via within ``SKIP_VIA_S`` of ``q0`` is dropped.
    """
    start = np.asarray(q0, dtype=np.float64)
    v0 = np.zeros(6) if v0 is None else np.asarray(v0, dtype=np.float64)
    rows: list[np.ndarray] = []
    start_velocity = np.zeros(6)  # the planned path's velocity at q0
    for i, lg in enumerate(legs):
        vias = list(lg.vias)
        while i == 0 and len(vias) > 1 and cruise_time(start, vias[0], lg.speed) < SKIP_VIA_S:
            vias.pop(0)  # a via next to the start is not worth a detour (nor a stall at an unreachable one)
        points = np.vstack([start, *vias])
        seg = cruise_time(points[:-1], points[1:], lg.speed)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        rate0, unit = 0.0, np.zeros(6)
        if i == 0 and cum[-1] > 0:  # the path's direction over a short look-ahead (vias near q0 are skipped)
            ahead = min(LOOK_AHEAD_S, cum[-1])
            unit = (path_point(points, seg, cum, ahead) - start) / ahead  # joint velocity at cruise speed
            rate0 = start_rate(v0 / JOINT_SPEEDS, unit / JOINT_SPEEDS)
        profile = SpeedProfile(float(seg.sum()), rate0)
        steps = profile.duration * fps
        slow = min(1.0, steps / lg.min_steps)  # a leg shorter than min_steps is slowed down to last them
        steps = max(lg.min_steps, int(np.ceil(steps - 1e-9)))
        if i == 0:
            start_velocity = rate0 * slow * unit
        for j in range(1, steps + 1):
            rows.append(path_point(points, seg, cum, float(profile.distance(np.array(j * slow / fps)))))
            if len(rows) >= n:
                break
        rows.extend([points[-1]] * lg.hold)
        start = points[-1]
        if len(rows) >= n:
            break
    rows.extend([start] * (n - len(rows)))
    path = np.asarray(rows[:n])
    t = np.arange(1, n + 1) / fps
    return path + hermite_blend(t, BLEND_S)[:, None] * (v0 - start_velocity)


def mass_matrix(kin: ArmKinematics, q: np.ndarray) -> np.ndarray:
    """(6, 6) joint-space inertia of the arm at ``q`` (armature included)."""
    model, data = kin.model, kin.data
    data.qpos[qpos_indices(model)] = q
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    mujoco.mj_crb(model, data)
    full = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, data, full)
    dofs = dof_indices(model)
    return full[np.ix_(dofs, dofs)]


class ChunkExpert:
    """Base of the scripted experts: implements the :class:`vlash.contracts.Policy` protocol.

    Subclasses implement :meth:`plan`. ``predict_chunk`` validates the observation (``state``,
    ``extras["task_state"]`` and the optional ``extras["velocity"]``), plans in float64 and returns a
    ``(chunk_size, 6)`` float32 array clipped to the joint limits.
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
        damping = self.kin.model.dof_damping[dof_indices(self.kin.model)]
        # servo offset per rad/s that keeps a joint moving at that speed: damping / kp, less the half
        # period by which a target held for one control step is ahead of the arm on average
        self.velocity_lead = damping / self.kin.kp - 0.5 / self.fps

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

    def start_velocity(self, observation: PolicyObservation) -> np.ndarray:
        """The joint velocity (rad/s) at the state to plan from; zeros when the robot sends none.

        That is the measured ``extras["velocity"]`` when the state is the one measured with it. When the
        state is an estimate for ``delay`` steps later (``vlash`` mode), the velocity there is estimated
        assuming constant acceleration in between: twice the mean velocity over the delay minus the
        measured one, kept between zero and twice the mean (so an arm that stops meanwhile is at rest).
        """
        if "velocity" not in observation.extras:
            return np.zeros(6)
        v0 = np.asarray(observation.extras["velocity"], dtype=np.float64)
        if v0.shape != (6,) or not np.all(np.isfinite(v0)):
            raise ValueError(f"extras['velocity'] must be 6 finite joint velocities, got {v0!r}")
        delay = int(observation.start_step - observation.step)
        if delay <= 0:
            return v0
        moved = np.asarray(observation.state, dtype=np.float64) - np.asarray(observation.measured_state)
        twice_mean = 2.0 * moved * self.fps / delay
        return np.clip(twice_mean - v0, np.minimum(0.0, twice_mean), np.maximum(0.0, twice_mean))

    def legs(self, q0: np.ndarray, legs: list[Leg], observation: PolicyObservation) -> np.ndarray:
        """Servo targets for ``legs`` from ``q0`` at the measured velocity (see :func:`sample_legs`)."""
        v0 = self.start_velocity(observation)
        return self.commands(sample_legs(q0, legs, self.fps, self.chunk_size, v0), start=q0)

    def commands(self, positions: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
        """Servo targets that put the arm at ``positions`` (N, 6), one control step apart.

        A position servo sags under load by ``torque / kp``; commanding that much beyond the wanted
        position cancels it (the feed-forward a demonstrator's hand or a learned policy supplies). With
        ``start`` (the position one step before the first row) the targets also carry the torque that the
        rows' velocity (damping) and acceleration (inertia) take, so the arm follows the rows instead of
        lagging them, and a plan replaced after one step leaves the arm at the speed it planned.
        """
        positions = np.atleast_2d(np.asarray(positions, dtype=np.float64))
        torque = np.array([self.kin.gravity_torque(q) for q in positions])
        lead = np.zeros_like(positions)
        if start is not None:
            velocity = np.diff(np.vstack([start, positions]), axis=0) * self.fps  # mean over each step
            if len(velocity) > 1:
                torque = torque + (np.gradient(velocity, axis=0) * self.fps) @ mass_matrix(self.kin, start).T
            lead = velocity * self.velocity_lead
        return positions + torque / self.kin.kp + lead

    def tip(self, q: np.ndarray) -> np.ndarray:
        return self.kin.tip(q)[0]

    def pose(self, target: np.ndarray, seed: np.ndarray, gripper: float, down: bool = True) -> np.ndarray:
        """A 6-vector: IK for the tip at ``target`` (seeded at ``seed``) with the gripper at ``gripper``."""
        return np.append(self.kin.ik(target, seed, down=down), gripper)
