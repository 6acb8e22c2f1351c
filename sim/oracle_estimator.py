"""The ``oracle`` future-state estimator (SIM-ONLY): step a copy of the whole simulation through the queued actions.

This is the paper's Kinetix setup: the future state comes from the simulator itself, started from the true
current state of everything in it (arm, cube, ball, post, mocap targets, solver warm start), driven by the
Δ queued actions through the task environment's own ``step`` (action checking and clipping, scripted
objects, physics substeps, task bookkeeping). The estimate is the arm's joint positions after them, the
robot's part of the observation; everything else the policy sees stays at the observation's step.

It needs the live environment, so it only works where the request is made from the simulation's current
state, which virtual-time evaluation guarantees (:func:`vlash.virtual_time.run_episode` asks at step k
before step k's action runs): ``make_estimator("oracle", env=env)``. A real robot has no oracle; use
``target`` or ``model`` there. Declared as the ``oracle`` entry point of ``vlash.estimators``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import mujoco
import numpy as np

from sim.tasks.base import ArmTaskEnv

# shared with the live env (read-only during a step), copied separately (data), or GL state the twin never needs
_NOT_COPIED = ("model", "data", "_renderer", "_front_renderer", "features", "limits", "action_space",
               "observation_space", "metadata")


class OracleEstimator:
    """SIM-ONLY: estimate ``s_{k+Δ}`` by executing the queued actions on a private copy of ``env``.

    ``env`` is a task environment (``sim.make_task(...)`` or its ``unwrapped``) whose current state is the
    state of the request; the live environment is never changed. ``state`` passed to :meth:`estimate`
    must be that environment's current joint positions (else it refuses: the request is not from now).
    """

    name = "oracle"

    def __init__(self, env: Any = None, **_unused: Any) -> None:
        if env is None:
            raise ValueError("the oracle estimator needs the simulation (make_estimator('oracle', env=<task env>)); "
                             "it is for virtual-time evaluation only")
        base = getattr(env, "unwrapped", env)
        if not isinstance(base, ArmTaskEnv):
            raise ValueError(f"the oracle estimator needs a sim task environment (sim.make_task), got {type(env).__name__}")
        self.env = base
        self._twin = copy.copy(base)
        self._twin.data = mujoco.MjData(base.model)

    def twin(self) -> ArmTaskEnv:
        """The private copy of the live environment, set to its current state: the whole ``MjData``
        (``mj_copyData``) and a deep copy of the task's Python state; only the read-only model is shared."""
        live, twin = self.env, self._twin
        if twin.model is not live.model:
            twin.model, twin.data = live.model, mujoco.MjData(live.model)
        mujoco.mj_copyData(twin.data, live.model, live.data)
        memo: dict[int, Any] = {id(live.model): live.model}
        for key, value in vars(live).items():
            if key not in _NOT_COPIED:
                setattr(twin, key, copy.deepcopy(value, memo))
        twin._renderer = twin._front_renderer = None
        twin.cameras = ()  # the twin's observations need no images
        return twin

    def estimate(
        self, state: np.ndarray, queued: np.ndarray, extras: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """The arm's joint positions (6,) after the simulation executes ``queued`` (Δ, 6) from now."""
        live = self.env
        now = live.data.qpos[live._qadr].astype(np.float32)
        state = np.asarray(state, dtype=np.float32).reshape(-1)
        if state.shape != now.shape or not np.allclose(state, now, rtol=0.0, atol=1e-6):
            raise ValueError("oracle: the state is not the simulation's current state; the oracle only works in "
                             "virtual time, asked at the step it is observed")
        queued = np.asarray(queued, dtype=np.float64).reshape(-1, now.shape[0])
        if len(queued) == 0:
            return now
        twin = self.twin()
        for row in queued:
            twin.step(row)
        return twin.data.qpos[twin._qadr].astype(np.float32)
