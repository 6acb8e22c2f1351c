"""Scripted expert for ``pick_place``: hover, descend, close, lift, carry over the bin, open.

The phase is read from each observation (grasp and in-bin flags from ``task_state``, the measured
gripper opening, the tip position of the state to plan from and whether the arm still moves), never
remembered, so a failed grasp is retried and the same observation always gives the same chunk. Every
phase makes progress in its first step, so the expert also works when its plans are replaced every step.
"""

from __future__ import annotations

import numpy as np

from sim.experts.planning import ChunkExpert, Leg, leg
from vlash.contracts import PolicyObservation

OPEN = 1.2
CLOSED = -0.15
GRASP_DZ = 0.008  # tip height above the cube centre when closing: the pads pinch its upper half
HOVER_DZ = 0.045
ABOVE_XY = 0.015  # close enough over the grasp point to descend straight (IK corrects the rest on the way)
CARRY_Z = 0.1  # tip height while carrying: the cube's bottom clears the bin walls
JAW_CLEARANCE = 0.006  # the pads are 40 mm apart at the grasp angle, the cube 40 mm wide: aim off-centre,
#                       toward the fixed jaw, so that it clears the cube; the wide-open moving jaw closes on it
NEAR_XY = 0.008
NEAR_Z = 0.01
SETTLED_SPEED = 0.05  # rad/s (arm joints): slower than this the arm is in place and the jaws may close


class PickPlaceExpert(ChunkExpert):
    """Chunk planner for ``pick_place`` (see the module docstring for the phases)."""

    task_name = "pick_place"

    def plan(self, q0: np.ndarray, task_state: np.ndarray, observation: PolicyObservation) -> np.ndarray:
        cube, yaw, bin_pos = task_state[0:3], float(task_state[3]), task_state[4:7]
        grasped, in_bin = task_state[7] > 0.5, task_state[8] > 0.5
        tip = self.tip(q0)
        if in_bin:  # let go, then rise
            rise = leg(self.pose([tip[0], tip[1], CARRY_Z], q0, OPEN, down=False))
            opened = float(np.asarray(observation.measured_state)[5]) > OPEN - 0.3
            legs = [rise] if opened else [leg(np.append(q0[:5], OPEN), min_steps=6), rise]
        elif grasped:
            held = cube - self.tip(np.asarray(observation.measured_state, dtype=np.float64))  # both measured now
            q0, legs = self._carry(q0, tip, held, bin_pos)
        else:
            legs = self._pick(q0, tip, cube, yaw, observation)
        return self.legs(q0, legs, observation)

    def _carry(self, q0: np.ndarray, tip: np.ndarray, held: np.ndarray,
               bin_pos: np.ndarray) -> tuple[np.ndarray, list[Leg]]:
        """(the state to plan from, the legs): release over the bin, else carry the cube there.

        ``held`` is the cube's offset from the tip, both as measured at the observation (``tip`` is
        where the state to plan from puts the tip, possibly later).
        """
        release = bin_pos[:2] - held[:2]  # steer the cube, not the tip, over the bin centre
        if np.linalg.norm(tip[:2] - release) < 0.012:
            return q0, [leg(np.append(q0[:5], OPEN), hold=10, min_steps=6)]
        # plan from the jaws closed as commanded (the cube keeps them apart), so that the plan does not
        # wait for a closing that cannot happen
        q0 = np.append(q0[:5], CLOSED)
        # position-only IK: with jaws pointing down the wrist runs out of travel at carry height, and the
        # trade-off of a soft orientation goal would move the tip (and drift under frequent replanning)
        low = tip[2] < CARRY_Z - 0.02  # lift first (a cube sagging a little below carry height is not)
        up = self.pose([tip[0], tip[1], CARRY_Z], q0, CLOSED, down=False) if low else q0
        over = self.pose([*release, CARRY_Z], up, CLOSED, down=False)
        speed = 0.5 if tip[2] < CARRY_Z - 0.03 else 0.6  # lift gently, then carry without flinging the cube
        vias = (up, over) if low else (over,)
        return q0, [leg(*vias, speed=speed), leg(np.append(over[:5], OPEN), hold=10, min_steps=6)]

    def _pick(self, q0: np.ndarray, tip: np.ndarray, cube: np.ndarray, yaw: float,
              observation: PolicyObservation) -> list[Leg]:
        grasp_at = cube + np.array([0.0, 0.0, GRASP_DZ])
        jaw = self.kin.tip(self.kin.ik_grasp(grasp_at, q0, yaw))[1][:, 2]
        jaw[2] = 0.0
        grasp_at -= JAW_CLEARANCE * jaw / max(np.linalg.norm(jaw), 1e-9)
        near = np.linalg.norm(tip[:2] - grasp_at[:2]) < NEAR_XY and abs(tip[2] - grasp_at[2]) < NEAR_Z
        gripper = float(np.asarray(observation.measured_state, dtype=np.float64)[5])
        lift = self.pose([*grasp_at[:2], CARRY_Z], q0, CLOSED, down=False)
        if near and gripper > 0.3:  # in place with the jaws still open (or closing): settle, close, lift
            grasp = np.append(self.kin.ik_grasp(grasp_at, q0, yaw), gripper)
            close = [leg(np.append(grasp[:5], CLOSED), hold=6), leg(lift, speed=0.5)]
            moving = np.linalg.norm(self.start_velocity(observation)[:5]) > SETTLED_SPEED
            return [leg(grasp, min_steps=2), *close] if moving else close
        legs = []
        seed = q0
        hover_z = grasp_at[2] + HOVER_DZ
        above = np.linalg.norm(tip[:2] - grasp_at[:2]) < ABOVE_XY and tip[2] < hover_z + 0.02
        if not above:
            vias = []
            if tip[2] < hover_z - 0.02:  # rise before moving sideways
                seed = self.pose([tip[0], tip[1], hover_z], seed, OPEN)
                vias.append(seed)
            hover = np.append(self.kin.ik_grasp([*grasp_at[:2], hover_z], seed, yaw), OPEN)
            vias.append(hover)
            legs.append(leg(*vias))
            seed = hover
        elif gripper < OPEN - 0.3:  # open the jaws before descending (nearly open, they finish on the way)
            legs.append(leg(np.append(q0[:5], OPEN), min_steps=4))
        grasp = np.append(self.kin.ik_grasp(grasp_at, seed, yaw), OPEN)
        legs += [leg(grasp, speed=0.5), leg(np.append(grasp[:5], CLOSED), hold=6), leg(lift, speed=0.5)]
        return legs
