"""The virtual-time runner: one process, the simulator's step counter as the clock.

A chunk requested from the observation at step k becomes usable at step k+Δ, exactly; in
between, the environment keeps executing the old plan (or holds, in sync). Deterministic given
a seed, so success-vs-delay curves and CI tests are reproducible. Every step runs the same
:func:`~vlash.tick.run_tick` the real-time control process runs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlash.contracts import Policy
from vlash.plan import Switch
from vlash.scheduler import Scheduler, SchedulerConfig
from vlash.tick import Arrival, run_tick


@dataclass
class RunConfig:
    mode: str = "vlash"
    delay_steps: int = 0
    execution_horizon: int | str | None = None  # K in fine actions, or "auto"; default: the policy's chunk size
    quantization: int = 1
    estimator: str | None = None
    estimator_options: dict = field(default_factory=dict)
    max_steps: int | None = None  # default: the environment's own time limit, else 1000

    def __post_init__(self) -> None:
        if self.delay_steps < 0:
            raise ValueError("delay_steps must be >= 0")


@dataclass(frozen=True)
class ChunkLog:
    obs_step: int
    start_step: int
    arrival_step: int
    first_step: int  # first step it acted on (or would have)
    dropped: int  # rows already in the past on arrival
    conditioned_state: np.ndarray


@dataclass
class EpisodeRecord:
    seed: int | None
    success: bool
    steps: int
    stall_steps: int
    wait_steps: int
    switches: list[Switch]
    chunks: list[ChunkLog]
    actions: np.ndarray  # (T, A) executed actions
    chunk_ids: np.ndarray  # (T,) which chunk each action came from; -1 where the robot held
    rows: np.ndarray  # (T,) which row of that chunk (after quantization); -1 where the robot held
    states: np.ndarray  # (T, S) states read before each action
    final_info: dict[str, Any]

    @property
    def mean_discontinuity(self) -> float:
        return float(np.mean([s.discontinuity for s in self.switches])) if self.switches else 0.0


def split_observation(obs: dict) -> tuple[np.ndarray, dict, dict]:
    """(state, images, extras) from an environment observation dict."""
    state = np.asarray(obs["state"], dtype=np.float32)
    images = dict(obs.get("images", {}))
    extras = {k: np.asarray(v, dtype=np.float32) for k, v in obs.items() if k not in ("state", "images")}
    return state, images, extras


def check_chunk(chunk: np.ndarray, chunk_size: int, action_dim: int) -> np.ndarray:
    """The policy's output as (H, A) float32, or a clear error."""
    chunk = np.asarray(chunk, dtype=np.float32)
    if chunk.ndim != 2 or chunk.shape[1] != action_dim or len(chunk) == 0:
        raise ValueError(f"policy returned shape {chunk.shape}; expected ({chunk_size}, {action_dim})")
    return chunk


class DelayLine:
    """Virtual time's :class:`~vlash.tick.Link`: the policy answers at once; the chunk is usable Δ steps later."""

    def __init__(self, scheduler: Scheduler, policy: Policy, delay_steps: int, task: str = "") -> None:
        self.scheduler, self.policy, self.delay, self.task = scheduler, policy, delay_steps, task
        self.pending: deque[Arrival] = deque()  # in arrival order; meta = (arrival step, request)
        self.observation: tuple[np.ndarray, dict, dict] = (np.zeros(0, np.float32), {}, {})

    def observe(self, state: np.ndarray, images: dict, extras: dict) -> None:
        """The observation of the step about to run (what a request at that step sends)."""
        self.observation = (state, images, extras)

    def delay_steps(self) -> int:
        return self.delay

    def send_request(self, step: int) -> bool:
        state, images, extras = self.observation
        request = self.scheduler.build_request(step, state, self.delay, extras)
        chunk = self.policy.predict_chunk(request.policy_observation(state, images, self.task, extras))
        chunk = check_chunk(chunk, self.policy.chunk_size, self.policy.features.action_dim)
        self.pending.append(Arrival(request.start_step, chunk, delay_steps=self.delay, meta=(step + self.delay, request)))
        return True

    def arrivals(self, step: int) -> list[Arrival]:
        due = []
        while self.pending and self.pending[0].meta[0] <= step:
            due.append(self.pending.popleft())
        return due


def run_episode(env, policy: Policy, config: RunConfig, seed: int | None = None) -> EpisodeRecord:
    """Run one episode of ``policy`` on ``env`` with an exact delay of ``config.delay_steps``."""
    obs, info = env.reset(seed=seed)
    policy.reset()
    action_dim = policy.features.action_dim
    sched = Scheduler(
        SchedulerConfig(
            mode=config.mode,
            chunk_size=policy.chunk_size,
            execution_horizon=config.execution_horizon or policy.chunk_size,
            quantization=config.quantization,
            estimator=config.estimator,
            estimator_options=config.estimator_options,
        ),
        action_dim,
        policy.action_kind,
    )
    link = DelayLine(sched, policy, config.delay_steps, getattr(env.unwrapped, "task_description", ""))
    spec_limit = getattr(getattr(env, "spec", None), "max_episode_steps", None)
    max_steps = config.max_steps or spec_limit or 1000
    switches: list[Switch] = []
    chunks: list[ChunkLog] = []
    actions, states, chunk_ids, rows = [], [], [], []
    success = False
    step = 0
    for step in range(max_steps):
        state, images, extras = split_observation(obs)
        link.observe(state, images, extras)
        tick = run_tick(sched, link, step, state)
        for arrival, done in tick.installed:
            arrival_step, request = arrival.meta
            chunks.append(
                ChunkLog(request.obs_step, request.start_step, arrival_step, done.first_step, done.dropped, request.state)
            )
        executed = tick.executed
        if executed.switch is not None:
            switches.append(executed.switch)
        actions.append(executed.action)
        chunk_ids.append(executed.chunk_id)
        rows.append(executed.row)
        states.append(state)
        obs, _, terminated, truncated, info = env.step(executed.action)
        success = success or bool(info.get("success", False))
        if terminated or truncated:
            break
    return EpisodeRecord(
        seed=seed,
        success=success,
        steps=step + 1,
        stall_steps=sched.stall_steps,
        wait_steps=sched.wait_steps,
        switches=switches,
        chunks=chunks,
        actions=np.asarray(actions, dtype=np.float32).reshape(len(actions), action_dim),
        chunk_ids=np.asarray(chunk_ids, dtype=np.int64),
        rows=np.asarray(rows, dtype=np.int64),
        states=np.asarray(states, dtype=np.float32),
        final_info=dict(info),
    )
