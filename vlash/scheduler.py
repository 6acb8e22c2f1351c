"""The execution modes: when to ask for a chunk, which state to condition it on, where it starts.

=========  ===============================  ============================  ================
mode       requests the next chunk          conditions the policy on      chunk row 0 is
=========  ===============================  ============================  ================
sync       when the horizon is used up      the measured state s_k        the arrival step
naive      Δ steps before the horizon ends  the measured state s_k        the obs step k
vlash      Δ steps before the horizon ends  the estimate ŝ_{k+Δ}          step k+Δ
rtc        Δ steps before the horizon ends  s_k + queued prefix and Δ     the obs step k
=========  ===============================  ============================  ================

The *execution horizon* K: a chunk is expected to run K (coarse) steps from the step it first
acts on; the next request goes out Δ steps before that. ``execution_horizon="auto"`` is the
streaming (back-to-back) schedule: K = max(Δ, 1) for the current Δ, so in the async modes the next
request goes out as soon as a chunk arrives (the regime of the paper's reaction results), so with an exact delay every boundary
executes ``prev[:Δ] + new[Δ:K]`` (naive; the Kinetix RTC evaluation protocol). Async modes keep
the rest of the chunk queued, so a late answer never stalls the robot.

:func:`plan_request` is the pure rule the inference process runs on an ``Observation``;
:class:`Scheduler` is the per-robot state both the virtual-time runner and the real-time control
process drive. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np

from vlash.contracts import ActionKind, ObservationFrame, PolicyObservation
from vlash.future_state import FutureStateEstimator, make_estimator
from vlash.plan import Executed, Installed, Plan, hold_action, queued_window
from vlash.quantize import coarse_steps, quantize


class Mode(StrEnum):
    SYNC = "sync"
    NAIVE = "naive"
    VLASH = "vlash"
    RTC = "rtc"

    @property
    def is_async(self) -> bool:
        return self is not Mode.SYNC


def parse_mode(name: str) -> Mode:
    try:
        return Mode(name)
    except ValueError:
        raise ValueError(f"unknown mode {name!r}; known: {', '.join(m.value for m in Mode)}") from None


def default_estimator(mode: Mode, kind: ActionKind) -> str:
    """``target`` (absolute) or ``integrate`` (delta) for vlash; ``none`` for the other modes."""
    if mode is not Mode.VLASH:
        return "none"
    return "target" if kind == "absolute" else "integrate"


def estimator_name(mode: Mode, kind: ActionKind, configured: str | None = None) -> str:
    """The one rule for which estimator a robot gets: the configured one in ``vlash`` mode, else the default.

    Only ``vlash`` mode conditions on an estimate, so a configured estimator means nothing elsewhere.
    """
    if mode is Mode.VLASH and configured:
        return configured
    return default_estimator(mode, kind)


@dataclass
class ChunkRequest:
    """What the policy is asked, and where its answer goes."""

    obs_step: int
    start_step: int  # the step the chunk's row 0 is for
    state: np.ndarray  # the state to condition the policy on
    delay_steps: int
    prefix: np.ndarray | None = None  # rtc only: actions queued from obs_step on

    def policy_observation(
        self,
        measured_state: np.ndarray,
        images: Mapping[str, np.ndarray] | None = None,
        task: str = "",
        extras: Mapping[str, np.ndarray] | None = None,
        history: Sequence[ObservationFrame] = (),
        sample_key: int | None = None,
    ) -> PolicyObservation:
        """What the policy sees: this request's state, the current images and task, the measured past frames."""
        return PolicyObservation(
            step=self.obs_step,
            state=self.state,
            measured_state=np.asarray(measured_state, dtype=np.float32),
            images=dict(images or {}),
            task=task,
            extras=dict(extras or {}),
            prefix=self.prefix,
            delay_steps=self.delay_steps,
            start_step=self.start_step,
            history=tuple(history),
            sample_key=sample_key,
        )


def plan_request(
    mode: Mode,
    estimator: FutureStateEstimator,
    obs_step: int,
    state: np.ndarray,
    plan_start: int,
    plan: np.ndarray,
    delay_steps: int,
    hold: np.ndarray,
    kind: ActionKind = "absolute",
    extras: Mapping[str, np.ndarray] | None = None,
) -> ChunkRequest:
    """The one rule for conditioning and aligning a chunk, from an observation at ``obs_step``.

    ``plan_start``/``plan`` are the robot's queued actions; ``hold`` is what it executes where
    nothing is queued.
    """
    state = np.asarray(state, dtype=np.float32)
    if mode is Mode.VLASH:
        queued = queued_window(plan_start, plan, obs_step, delay_steps, hold, kind)
        future = estimator.estimate(state, queued, extras or {})
        return ChunkRequest(obs_step, obs_step + delay_steps, np.asarray(future, np.float32), delay_steps)
    prefix = None
    if mode is Mode.RTC:
        prefix = queued_window(plan_start, plan, obs_step, max(plan_start + len(plan) - obs_step, 0), hold, kind)
    return ChunkRequest(obs_step, obs_step, state.copy(), delay_steps, prefix)


AUTO = "auto"  # execution_horizon for the streaming schedule: K = max(Δ, 1)
Horizon = int | Literal["auto"]


def check_horizon(horizon: object, chunk_size: int) -> Horizon:
    """``horizon`` as an execution horizon for ``chunk_size``-action chunks, or ValueError saying why."""
    if horizon == AUTO:
        return AUTO
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= chunk_size:
        raise ValueError(f"execution_horizon must be 'auto' or an integer in [1, chunk_size={chunk_size}], "
                         f"got {horizon!r}")
    return horizon


def delay_cap(horizon: Horizon, quantization: int, chunk_size: int) -> int:
    """The largest Δ a robot with this horizon can use: below K (coarse steps), and at least 1.

    Streaming (K = Δ) only needs a chunk to outlast its own delay: Δ < H (coarse).
    """
    steps = coarse_steps(chunk_size if horizon == AUTO else horizon, quantization)
    return max(1, steps - 1)


@dataclass
class SchedulerConfig:
    mode: Mode = Mode.VLASH
    chunk_size: int = 50
    execution_horizon: Horizon | None = None  # K in fine actions or "auto"; default: the chunk size
    quantization: int = 1
    estimator: str | None = None  # default: by mode and action kind
    estimator_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mode = parse_mode(self.mode) if isinstance(self.mode, str) else self.mode
        if self.execution_horizon is None:
            self.execution_horizon = self.chunk_size
        self.execution_horizon = check_horizon(self.execution_horizon, self.chunk_size)
        if self.quantization < 1:
            raise ValueError("quantization must be >= 1")


class Scheduler:
    """One robot's plan and request state, driven tick by tick.

    Both shells drive it through :func:`vlash.tick.run_tick` (install → request → execute).
    """

    def __init__(self, config: SchedulerConfig, action_dim: int, action_kind: ActionKind = "absolute"):
        self.config = config
        self.mode: Mode = config.mode
        self.action_kind: ActionKind = action_kind
        self.plan = Plan(action_dim, action_kind)
        name = estimator_name(self.mode, action_kind, config.estimator)
        self.estimator = make_estimator(name, **config.estimator_options)
        self.streaming = config.execution_horizon == AUTO
        self.horizon_steps = 0 if self.streaming else coarse_steps(config.execution_horizon, config.quantization)
        self.chunk_start: int | None = None  # the first step the current chunk acts on
        self.delay_steps = 0  # the Δ of the latest should_request (streaming: K = max(Δ, 1))
        self.in_flight: int | None = None  # obs step of the outstanding request
        self.started = False  # a chunk has been executed (before that, holding is waiting, not stalling)
        self.stall_steps = 0  # steps held for lack of an action after the first chunk
        self.wait_steps = 0  # steps held before the first chunk arrived
        self._next_chunk_id = 0

    def should_request(self, step: int, delay_steps: int) -> bool:
        """True when a request must go out at ``step`` (never while one is in flight)."""
        self.delay_steps = delay_steps
        if self.in_flight is not None:
            return False
        if self.chunk_start is None:
            return True
        lead = delay_steps if self.mode.is_async else 0
        return step + lead >= self.chunk_start + self.horizon()

    def horizon(self) -> int:
        """K in coarse steps: fixed, or max(Δ, 1) for the latest Δ when streaming."""
        return max(self.delay_steps, 1) if self.streaming else self.horizon_steps

    def build_request(
        self, step: int, state: np.ndarray, delay_steps: int, extras: Mapping[str, np.ndarray] | None = None
    ) -> ChunkRequest:
        """The request for an observation at ``step``, built locally (virtual time) by the server's rule."""
        plan_start, plan = self.plan.remainder(state)
        return plan_request(
            self.mode, self.estimator, step, state, plan_start, plan, delay_steps,
            self.hold(state), self.action_kind, extras,
        )

    def mark_requested(self, step: int) -> None:
        """A request for the observation at ``step`` went out; no other goes until it is answered."""
        self.in_flight = step

    def cancel_request(self) -> None:
        """Forget the outstanding request (its answer is lost); the next tick may ask again."""
        self.in_flight = None

    def hold(self, state: np.ndarray) -> np.ndarray:
        """What the robot executes where nothing is queued: its last target (absolute) or zero (delta).

        The control process sends this row with every observation, so the server conditions on the
        same hold the virtual-time runner uses.
        """
        return hold_action(self.action_kind, self.plan.last_action, state)

    def receive(
        self,
        start_step: int,
        actions: np.ndarray,
        step: int,
        chunk_id: int | None = None,
        answers_request: bool = True,
        delay_steps: int | None = None,
    ) -> Installed:
        """Install a chunk that arrived before executing ``step``.

        Sync chunks start at the arrival step (the robot held meanwhile) and run K steps only.
        A chunk that does not answer the outstanding request (a late answer to a request that
        timed out) leaves that request outstanding.
        """
        coarse = quantize(actions, self.config.quantization, self.action_kind)
        if delay_steps is not None:  # the chunk's own Δ is the newest estimate
            self.delay_steps = delay_steps
        if self.mode is Mode.SYNC:
            start_step = step
            coarse = coarse[: self.horizon()]
        if chunk_id is None:
            chunk_id = self._next_chunk_id
        self._next_chunk_id = max(self._next_chunk_id, chunk_id) + 1
        installed = self.plan.install(start_step, coarse, chunk_id)
        self.chunk_start = installed.first_step
        if answers_request:
            self.in_flight = None
        return installed

    def execute(self, step: int, state: np.ndarray) -> Executed:
        """Take ``step``'s action (or hold), counting stalls."""
        executed = self.plan.execute(step, state)
        if not executed.stalled:
            self.started = True
        elif self.started:
            self.stall_steps += 1
        else:
            self.wait_steps += 1
        return executed

    def remainder(self, state: np.ndarray) -> tuple[int, np.ndarray]:
        return self.plan.remainder(state)
