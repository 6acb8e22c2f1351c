"""The virtual-time runner: one process, the simulator's step counter as the clock.

A chunk requested from the observation at step k becomes usable at step k+Δ, exactly; in
between, the environment keeps executing the old plan (or holds, in sync). Deterministic given
a seed, so success-vs-delay curves and CI tests are reproducible. Every step runs the same
tick (:func:`~vlash.tick.start_tick` then :func:`~vlash.tick.finish_tick`, which is
:func:`~vlash.tick.run_tick`) the real-time control process runs. Many episodes can run in lockstep
with every step's requests answered by one batched policy call (:func:`run_episodes_batched`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlash.contracts import ObservationFrame, Policy, PolicyObservation, predict_chunks
from vlash.plan import Switch
from vlash.scheduler import ChunkRequest, Scheduler, SchedulerConfig
from vlash.tick import Arrival, TickResult, finish_tick, start_tick


@dataclass
class RunConfig:
    mode: str = "vlash"
    delay_steps: int = 0
    execution_horizon: int | str | None = None  # K in fine actions, or "auto"; default: the policy's chunk size
    quantization: int = 1
    estimator: str | None = None
    estimator_options: dict = field(default_factory=dict)
    max_steps: int | None = None  # default: the environment's own time limit, else 1000
    estimator_sees_env: bool = False  # sim-only estimators (oracle) step a copy of this very environment

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


def sample_key(seed: int | None, step: int) -> int | None:
    """The sampling key of the request at ``step`` of the episode with ``seed``: same episode and step, same chunk."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(step)]).generate_state(1)[0])


class DelayLine:
    """Virtual time's :class:`~vlash.tick.Link`: the chunk asked for at step k is usable at step k + Δ.

    A request is built at once (``asked``, the policy's observation); the shell answers it with
    :meth:`answer`, one call at a time or many in one batched policy call.
    """

    def __init__(self, scheduler: Scheduler, features: Any, chunk_size: int, delay_steps: int, task: str = "",
                 seed: int | None = None) -> None:
        self.scheduler, self.delay, self.task, self.seed = scheduler, delay_steps, task, seed
        self.chunk_size, self.action_dim = chunk_size, features.action_dim
        self.pending: deque[Arrival] = deque()  # in arrival order; meta = (arrival step, request)
        self.observation: tuple[np.ndarray, dict, dict] = (np.zeros(0, np.float32), {}, {})
        self.history: deque[ObservationFrame] = deque(maxlen=max(0, int(getattr(features, "history_steps", 0))))
        self.asked: PolicyObservation | None = None
        self._request: ChunkRequest | None = None
        self._step = -1

    def observe(self, step: int, state: np.ndarray, images: dict, extras: dict) -> None:
        """The observation of the step about to run (what a request at that step sends)."""
        if self.history.maxlen and self._step >= 0:  # the previous step's observation becomes history
            previous_state, previous_images, previous_extras = self.observation
            self.history.append(ObservationFrame(self._step, previous_state, previous_images, previous_extras))
        self.observation, self._step = (state, images, extras), step

    def delay_steps(self) -> int:
        return self.delay

    def send_request(self, step: int) -> bool:
        state, images, extras = self.observation
        self._request = self.scheduler.build_request(step, state, self.delay, extras)
        self.asked = self._request.policy_observation(state, images, self.task, extras, history=tuple(self.history),
                                                      sample_key=sample_key(self.seed, step))
        return True

    def answer(self, chunk: np.ndarray) -> None:
        """The policy's chunk for the request just sent; usable Δ steps after it was asked."""
        request, self.asked, self._request = self._request, None, None
        if request is None:
            raise RuntimeError("answer() without a pending request")
        chunk = check_chunk(chunk, self.chunk_size, self.action_dim)
        self.pending.append(Arrival(request.start_step, chunk, delay_steps=self.delay,
                                    meta=(request.obs_step + self.delay, request)))

    def arrivals(self, step: int) -> list[Arrival]:
        due = []
        while self.pending and self.pending[0].meta[0] <= step:
            due.append(self.pending.popleft())
        return due


class Episode:
    """One episode in virtual time, advanced a step at a time: :meth:`begin`, answer the request, :meth:`end`.

    :func:`run_episode` drives one; :func:`run_episodes_batched` drives many in lockstep.
    """

    def __init__(self, env, policy: Policy, config: RunConfig, seed: int | None = None) -> None:
        self.env, self.seed = env, seed
        self.obs, self.info = env.reset(seed=seed)
        self.action_dim = policy.features.action_dim
        self.scheduler = Scheduler(
            SchedulerConfig(
                mode=config.mode,
                chunk_size=policy.chunk_size,
                execution_horizon=config.execution_horizon or policy.chunk_size,
                quantization=config.quantization,
                estimator=config.estimator,
                estimator_options={**config.estimator_options, "env": env.unwrapped}
                if config.estimator_sees_env else config.estimator_options,
            ),
            self.action_dim,
            policy.action_kind,
        )
        self.link = DelayLine(self.scheduler, policy.features, policy.chunk_size, config.delay_steps,
                              getattr(env.unwrapped, "task_description", ""), seed)
        spec_limit = getattr(getattr(env, "spec", None), "max_episode_steps", None)
        self.max_steps = config.max_steps or spec_limit or 1000
        self.step = 0
        self.done = False
        self.success = False
        self.switches: list[Switch] = []
        self.chunks: list[ChunkLog] = []
        self._actions: list[np.ndarray] = []
        self._states: list[np.ndarray] = []
        self._chunk_ids: list[int] = []
        self._rows: list[int] = []
        self._started: TickResult | None = None
        self._state = np.zeros(0, np.float32)

    def begin(self) -> PolicyObservation | None:
        """Install arrivals and maybe request: the observation the policy must answer now, or None."""
        self._state, images, extras = split_observation(self.obs)
        self.link.observe(self.step, self._state, images, extras)
        self._started = start_tick(self.scheduler, self.link, self.step)
        return self.link.asked if self._started.requested else None

    def answer(self, chunk: np.ndarray) -> None:
        self.link.answer(chunk)

    def end(self) -> bool:
        """Execute the step's action in the environment; True when the episode is over."""
        if self._started is None:
            raise RuntimeError("end() before begin()")
        tick = finish_tick(self.scheduler, self.link, self._started, self._state)
        self._started = None
        for arrival, done in tick.installed:
            arrival_step, request = arrival.meta
            self.chunks.append(
                ChunkLog(request.obs_step, request.start_step, arrival_step, done.first_step, done.dropped, request.state)
            )
        executed = tick.executed
        if executed.switch is not None:
            self.switches.append(executed.switch)
        self._actions.append(executed.action)
        self._chunk_ids.append(executed.chunk_id)
        self._rows.append(executed.row)
        self._states.append(self._state)
        self.obs, _, terminated, truncated, self.info = self.env.step(executed.action)
        self.success = self.success or bool(self.info.get("success", False))
        self.step += 1
        self.done = bool(terminated or truncated or self.step >= self.max_steps)
        return self.done

    def record(self) -> EpisodeRecord:
        n = len(self._actions)
        return EpisodeRecord(
            seed=self.seed,
            success=self.success,
            steps=self.step,
            stall_steps=self.scheduler.stall_steps,
            wait_steps=self.scheduler.wait_steps,
            switches=self.switches,
            chunks=self.chunks,
            actions=np.asarray(self._actions, dtype=np.float32).reshape(n, self.action_dim),
            chunk_ids=np.asarray(self._chunk_ids, dtype=np.int64),
            rows=np.asarray(self._rows, dtype=np.int64),
            states=np.asarray(self._states, dtype=np.float32),
            final_info=dict(self.info),
        )


def run_episode(env, policy: Policy, config: RunConfig, seed: int | None = None) -> EpisodeRecord:
    """Run one episode of ``policy`` on ``env`` with an exact delay of ``config.delay_steps``."""
    policy.reset()
    episode = Episode(env, policy, config, seed)
    while not episode.done:
        observation = episode.begin()
        if observation is not None:
            episode.answer(policy.predict_chunk(observation))
        episode.end()
    return episode.record()


def run_episodes_batched(
    envs: Sequence, policy: Policy, config: RunConfig, seeds: Sequence[int | None],
    done: Callable[[EpisodeRecord], None] | None = None,
) -> list[EpisodeRecord]:
    """Run ``seeds`` as episodes on ``len(envs)`` environments in lockstep, one batched policy call per step.

    Every request made at a step goes to the policy in one :func:`~vlash.contracts.predict_chunks` call; each
    environment starts its next seed when its episode ends. Records come back in ``seeds`` order and equal
    :func:`run_episode`'s for a policy whose chunks depend only on the observation (and ``sample_key``).
    The policy is reset once: a batched policy must keep no per-episode state (history comes in the
    observation). ``done`` is called with each finished record.
    """
    if not envs:
        raise ValueError("run_episodes_batched needs at least one environment")
    policy.reset()
    queue = list(enumerate(seeds))
    records: dict[int, EpisodeRecord] = {}
    running: dict[int, tuple[int, Episode]] = {}  # env slot -> (seed index, episode)

    def refill(slot: int) -> None:
        if queue:
            index, seed = queue.pop(0)
            running[slot] = (index, Episode(envs[slot], policy, config, seed))

    for slot in range(min(len(envs), len(queue))):
        refill(slot)
    while running:
        slots = sorted(running)
        asked = [(slot, running[slot][1].begin()) for slot in slots]
        asked = [(slot, obs) for slot, obs in asked if obs is not None]
        if asked:
            for (slot, _), chunk in zip(asked, predict_chunks(policy, [obs for _, obs in asked]), strict=True):
                running[slot][1].answer(chunk)
        for slot in slots:
            index, episode = running[slot]
            if episode.end():
                records[index] = episode.record()
                if done:
                    done(records[index])
                del running[slot]
                refill(slot)
    return [records[i] for i in range(len(seeds))]
