"""Action quantization: execute a chunk ``q`` times faster at the unchanged control rate.

Absolute targets keep every q-th action (the end of each group of q, so the path's end point
is kept); delta actions are summed per group. A chunk of H fine actions becomes ceil(H/q)
coarse ones, one per control step, so Δ and the trigger, counted in control steps, cover q
times as many fine actions.
"""

from __future__ import annotations

import math

import numpy as np

from vlash.contracts import ActionKind


def quantize(actions: np.ndarray, q: int, kind: ActionKind = "absolute") -> np.ndarray:
    """Return the (ceil(H/q), A) coarse chunk for a (H, A) fine chunk."""
    if q < 1 or int(q) != q:
        raise ValueError(f"quantization ratio must be an integer >= 1, got {q}")
    actions = np.asarray(actions, dtype=np.float32)
    if q == 1:
        return actions
    n = len(actions)
    if kind == "absolute":
        idx = np.minimum(np.arange(q - 1, q * math.ceil(n / q), q), n - 1)
        return actions[idx]
    pad = (-n) % q
    padded = np.concatenate([actions, np.zeros((pad, actions.shape[1]), np.float32)])
    return padded.reshape(-1, q, actions.shape[1]).sum(axis=1)


def coarse_steps(fine_steps: int, q: int) -> int:
    """Control steps needed to execute ``fine_steps`` fine actions at ratio ``q``."""
    return math.ceil(fine_steps / q)
