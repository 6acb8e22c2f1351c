"""A tiny deterministic environment and policies whose actions say which step they were for."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from vlash.contracts import PolicyFeatures, PolicyObservation


class ToyArm(gym.Env):
    """A point that moves a fraction ``gain`` of the way to the commanded target each step."""

    def __init__(self, dim: int = 2, gain: float = 1.0, goal: float | None = None, tol: float = 1e-3):
        self.dim, self.gain, self.goal, self.tol = dim, gain, goal, tol
        self.observation_space = gym.spaces.Dict(
            {"state": gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)}
        )
        self.action_space = gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
        self.task_description = "toy"

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = np.zeros(self.dim, np.float32)
        return {"state": self.pos.copy()}, {}

    def step(self, action):
        self.pos = (self.pos + self.gain * (np.asarray(action, np.float32) - self.pos)).astype(np.float32)
        success = self.goal is not None and bool(np.all(np.abs(self.pos - self.goal) < self.tol))
        return {"state": self.pos.copy()}, 0.0, success, False, {"success": success}


class StampPolicy:
    """Row i of the chunk asked at step k is ``[k * 1000 + i, i]``: executed actions name their origin."""

    action_kind = "absolute"
    supports_rtc = False

    def __init__(self, chunk_size: int = 8, dim: int = 2):
        self.chunk_size, self.dim = chunk_size, dim
        self.features = PolicyFeatures(state_dim=dim, action_dim=dim)
        self.seen: list[PolicyObservation] = []

    def reset(self) -> None:
        self.seen.clear()

    def predict_chunk(self, observation: PolicyObservation) -> np.ndarray:
        self.seen.append(observation)
        i = np.arange(self.chunk_size, dtype=np.float32)
        chunk = np.zeros((self.chunk_size, self.dim), np.float32)
        chunk[:, 0], chunk[:, 1] = observation.step * 1000 + i, i
        return chunk


class PathPolicy:
    """Follows a fixed path of waypoints, open loop from the waypoint nearest the given state."""

    action_kind = "absolute"
    supports_rtc = False

    def __init__(self, path: np.ndarray, chunk_size: int = 10):
        self.path = np.asarray(path, np.float32)
        self.chunk_size = chunk_size
        self.features = PolicyFeatures(state_dim=self.path.shape[1], action_dim=self.path.shape[1])

    def reset(self) -> None:
        pass

    def predict_chunk(self, observation: PolicyObservation) -> np.ndarray:
        dist = np.linalg.norm(self.path - observation.state, axis=1)
        nearest = int(np.argmin(dist))
        start = nearest + 1 if dist[nearest] < 1e-6 else nearest
        idx = np.minimum(np.arange(start, start + self.chunk_size), len(self.path) - 1)
        return self.path[idx]
