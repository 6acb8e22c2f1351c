"""The inference process: newest observation per robot in, one aligned action chunk out.

A robot is served only after its Hello passed the handshake (:meth:`InferenceServer.check_hello`:
mode, dimensions, action kind, cameras and chunk settings against the policy); a refused Hello
leaves an existing session untouched. For each robot it estimates Δ from the round trips the
robot reports (the core's :class:`RoundTripDelay`, capped below the robot's execution horizon
K, or a fixed Δ), conditions the policy by the robot's mode
(:func:`plan_request`: in ``vlash`` mode the state rolled forward through the queued actions),
calls the policy, stamps the chunk with its ``start_step`` and timings and sends it back to
that robot only. Older observations were already dropped by the bus, never queued.

Batched serving: the observations of all robots waiting at one poll are conditioned one by one
(each on its own state, Δ and mode) and answered by one ``predict_batch`` call where the policy
has one (:func:`vlash.contracts.predict_chunks`). With several robots connected, the first
observation waits at most ``ServerConfig.gather_ms`` (1 ms) for the others, so robots that ask
together are answered together instead of in alternation; a lone robot is served at once, never
held back. ``ServerConfig.batching=False`` serves them one call each.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from vlash.contracts import Policy, PolicyObservation, predict_chunks
from vlash.delay import FixedDelay, RoundTripDelay, steps_for_seconds
from vlash.future_state import FutureStateEstimator, make_estimator
from vlash.messages import ActionChunk, Config, Error, Hello, Observation
from vlash.plan import hold_action
from vlash.scheduler import AUTO, Mode, check_horizon, delay_cap, estimator_name, parse_mode, plan_request

_T = TypeVar("_T")


@dataclass
class ServerConfig:
    mode: str = "vlash"  # default for robots that do not say (their Hello wins)
    estimator: str | None = None  # default: by mode and action kind
    estimator_options: dict = field(default_factory=dict)
    fps: float = 30.0  # default for robots that do not say
    fixed_delay_steps: int | None = None  # None: estimate Δ from round trips
    delay_quantile: float = 0.95
    delay_margin_steps: int | None = None  # None: 1 step, or 0 for a streaming robot (see RobotSession.margin)
    max_delay_steps: int | None = None  # an extra bound on the estimate; it always stays below each robot's K
    batching: bool = True  # robots waiting at the same moment share one policy call (where the policy can batch)
    # With several robots connected, how long the first observation of a step may wait for the others'
    # (never for a robot alone; the wait ends as soon as every robot's observation is in)
    gather_ms: float = 1.0


@dataclass
class RobotSession:
    robot_id: str
    mode: Mode
    fps: float
    delay: FixedDelay | RoundTripDelay
    estimator: FutureStateEstimator
    max_delay_steps: int  # the cap on the Δ estimate (told to the robot in its Config)
    margin_steps: int = 1  # added to the round-trip quantile
    chunks: int = 0


@dataclass
class _Request:
    """One robot's observation, validated and conditioned, waiting for the policy's answer."""

    obs: Observation
    session: RobotSession
    start_step: int  # the step the chunk's row 0 is for
    delay_steps: int
    policy_obs: PolicyObservation
    started: float  # when the server took it up (by its clock)


class InferenceServer:
    """Serves every robot connected to one :class:`~vlash.bus.InferenceEndpoint`."""

    def __init__(
        self,
        bus,
        policy: Policy,
        config: ServerConfig | None = None,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.bus, self.policy = bus, policy
        self.config = config or ServerConfig()
        self.log = log or (lambda line: None)
        self.clock = clock
        self.sessions: dict[str, RobotSession] = {}
        self.counters: Counter[str] = Counter()
        self._chunk_id = 0
        self.model_ms: list[float] = []
        self.last_queue_ms = 0.0

    def check_hello(self, hello: Hello) -> str:
        """Why this robot cannot be served by this policy ("" if it can): the handshake is the contract."""
        try:
            parse_mode(hello.mode or self.config.mode)
        except ValueError as exc:
            return str(exc)
        feats, policy = hello.features, self.policy
        kind = feats.get("action_kind", "absolute")
        state_dim, action_dim = len(feats.get("joint_names", ())), len(feats.get("action_names", ()))
        if policy.features.state_dim and state_dim != policy.features.state_dim:
            return f"the robot has {state_dim} joints, the policy takes a {policy.features.state_dim}-dim state"
        if action_dim != policy.features.action_dim:
            return f"the robot takes {action_dim}-dim actions, the policy makes {policy.features.action_dim}"
        if kind != policy.action_kind:
            return f"the robot takes {kind} actions, the policy makes {policy.action_kind} ones"
        missing = sorted(set(policy.features.cameras) - set(feats.get("cameras", {})))
        if missing:
            return f"the policy needs camera(s) {', '.join(missing)}; the robot has {sorted(feats.get('cameras', {}))}"
        chunk = hello.chunk_settings
        if chunk.get("chunk_size", policy.chunk_size) != policy.chunk_size:
            return f"the robot expects chunk_size {chunk['chunk_size']}, the policy makes chunks of {policy.chunk_size}"
        try:
            check_horizon(chunk.get("execution_horizon", policy.chunk_size), policy.chunk_size)
        except ValueError as exc:
            return f"{exc} (the policy's chunk)"
        quantization = chunk.get("quantization", 1)
        if not isinstance(quantization, int) or quantization < 1:
            return f"quantization {quantization!r} must be an integer >= 1"
        return ""

    def on_hello(self, hello: Hello) -> Config:
        """Answer a Hello: accepted with the policy description and the Δ cap, or refused with a reason.

        A refused Hello changes nothing: an existing session for that robot keeps running as it was.
        """
        reason = self.check_hello(hello)
        if reason:
            self.counters["hellos_refused"] += 1
            self.log(f"robot {hello.robot_id}: refused: {reason}")
            return Config(hello.robot_id, 0, accepted=False, policy={}, reason=reason)
        session = self._open_session(hello)
        feats = self.policy.features
        return Config(hello.robot_id, 0, accepted=True, reason="", policy={
            "chunk_size": self.policy.chunk_size,
            "action_dim": feats.action_dim,
            "state_dim": feats.state_dim,
            "action_kind": self.policy.action_kind,
            "cameras": {k: list(v) for k, v in feats.cameras.items()},
            "supports_rtc": bool(getattr(self.policy, "supports_rtc", False)),
            "max_delay_steps": session.max_delay_steps,
            "history_steps": self.history_steps,
        })

    @property
    def history_steps(self) -> int:
        """How many past frames the policy conditions on (0 for a policy that does not say)."""
        return int(getattr(self.policy.features, "history_steps", 0) or 0)

    def _open_session(self, hello: Hello) -> RobotSession:
        """A fresh session from an accepted Hello (a repeated Hello restarts the robot's session)."""
        mode = parse_mode(hello.mode or self.config.mode)
        fps = float(hello.fps) if hello.fps > 0 else self.config.fps
        name = estimator_name(mode, self.policy.action_kind, self.config.estimator)
        chunk = hello.chunk_settings
        # Δ stays below K: a late estimate must never skip the whole horizon
        cap = delay_cap(chunk.get("execution_horizon", self.policy.chunk_size), chunk.get("quantization", 1),
                        self.policy.chunk_size)
        if self.config.max_delay_steps is not None:
            cap = min(cap, self.config.max_delay_steps)
        # A streaming robot (K = Δ) pays every step of margin in reaction time, and needs none: a chunk one
        # step late drops one stale row, while the previous chunk still covers H - Δ steps.
        margin = self.config.delay_margin_steps
        if margin is None:
            margin = 0 if chunk.get("execution_horizon") == AUTO else 1
        if self.config.fixed_delay_steps is not None:  # the user's Δ is taken as given
            cap = self.config.fixed_delay_steps
            delay: FixedDelay | RoundTripDelay = FixedDelay(cap)
        else:
            delay = RoundTripDelay(dt=1.0 / fps, quantile=self.config.delay_quantile, margin_steps=margin, max_steps=cap)
        estimator = make_estimator(name, **self.config.estimator_options)
        session = RobotSession(hello.robot_id, mode, fps, delay, estimator, cap, margin)
        self.sessions[hello.robot_id] = session
        self.log(f"robot {hello.robot_id}: mode={mode} fps={fps:g} estimator={name} Δ cap={cap}")
        return session

    def step(self, timeout_ms: int = 10) -> int:
        """Poll the bus once and answer every robot's newest observation; returns chunks sent.

        The observations waiting at this moment go to the policy together (one batched call when
        :attr:`batching` is on); with several robots connected the others get ``gather_ms`` to join,
        a robot alone is served at once.
        """
        self.bus.poll(timeout_ms)
        self._gather()
        polled_at = self.clock()
        for gone in set(self.sessions) - set(self.bus.robots()):  # silent past the timeout: forgotten
            del self.sessions[gone]
        for hello in self.bus.hellos():
            self.bus.send(hello.robot_id, self.on_hello(hello))
        ready: list[_Request] = []
        for robot_id, obs in self.bus.latest().items():
            if robot_id not in self.sessions:  # never served on defaults: it must say Hello (again)
                self.counters["unknown_robot"] += 1
                self.bus.send(robot_id, Error(robot_id=robot_id, seq=0, code="unknown_robot", message="send Hello first"))
                continue
            request = self._guarded(obs, lambda o=obs: self._prepare(o))
            if request is not None:
                ready.append(request)
        return self._answer(ready, polled_at)

    def _gather(self) -> None:
        """Give the other robots up to ``gather_ms`` to join a batch: only when batching, several robots
        are connected and some but not all have an observation waiting; a robot alone never waits."""
        if not self.batching or self.config.gather_ms <= 0 or len(self.sessions) < 2:
            return
        deadline = time.monotonic() + self.config.gather_ms / 1000.0
        while 0 < self.bus.waiting() < len(self.sessions):
            left_ms = (deadline - time.monotonic()) * 1000.0
            if left_ms <= 0:
                return
            self.bus.poll(max(1, int(left_ms)))

    @property
    def batching(self) -> bool:
        """Whether robots waiting together share one policy call: the setting, where the policy can batch."""
        return self.config.batching and callable(getattr(self.policy, "predict_batch", None))

    def serve(self, obs: Observation, polled_at: float) -> int:
        """Answer one observation with one chunk (0 if it or the policy's answer was unusable)."""
        request = self._guarded(obs, lambda: self._prepare(obs))
        return 0 if request is None else self._answer([request], polled_at)

    def _guarded(self, obs: Observation, work: Callable[[], _T]) -> _T | None:
        """``work()``, or None after telling the robot: a failing policy or estimator must not take the server down."""
        try:
            return work()
        except Exception as exc:
            self.counters["policy_errors"] += 1
            self.log(f"robot {obs.robot_id}: policy failed: {exc!r}")
            self.bus.send(obs.robot_id, Error(robot_id=obs.robot_id, seq=obs.seq, code="policy_error", message=str(exc)[:500]))
            return None

    def _prepare(self, obs: Observation) -> _Request | None:
        """Validate one observation and condition it by its robot's mode and Δ (None: refused, robot told)."""
        started = self.clock()
        session = self.sessions[obs.robot_id]
        if obs.last_rtt_ms >= 0:
            session.delay.observe(obs.last_rtt_ms / 1000.0)
        delay_steps = session.delay.delay_steps()
        kind = self.policy.action_kind
        feats = self.policy.features
        plan = obs.plan
        if len(plan) == 0:  # nothing queued; the wire default (0, 0) must not trip the estimators
            plan = np.zeros((0, feats.action_dim), np.float32)
        problem = ""
        if feats.state_dim and obs.state.shape[0] != feats.state_dim:
            problem = f"state has {obs.state.shape[0]} values, the policy takes {feats.state_dim}"
        elif plan.shape[1] != feats.action_dim:
            problem = f"plan has {plan.shape[1]} columns, the policy makes {feats.action_dim}-dim actions"
        if problem:  # a well-formed message that does not fit this policy: say so, never call it
            self.counters["invalid_observations"] += 1
            self.bus.send(obs.robot_id, Error(robot_id=obs.robot_id, seq=obs.seq, code="invalid_observation", message=problem))
            return None
        request = plan_request(
            session.mode,
            session.estimator,
            obs.step,
            obs.state,
            obs.plan_start_step,
            plan,
            delay_steps,
            obs.hold if obs.hold.shape == (feats.action_dim,) else hold_action(kind, None, obs.state),
            kind,
            obs.extras,
        )
        wanted = self.history_steps  # the robot's newest frames, never more than the policy takes
        history = obs.history[-wanted:] if wanted else ()
        policy_obs = request.policy_observation(obs.state, obs.images, obs.task, obs.extras, history=history)
        return _Request(obs, session, request.start_step, delay_steps, policy_obs, started)

    def _answer(self, ready: list[_Request], polled_at: float) -> int:
        """Ask the policy for every prepared request and send each robot its own chunk; returns chunks sent.

        Several requests go in one batched call when batching is on; if that call fails they are
        retried one at a time, so one robot's bad observation never costs the others their chunks.
        """
        if len(ready) > 1 and self.batching:
            try:
                t_model = self.clock()
                chunks = predict_chunks(self.policy, [r.policy_obs for r in ready])
                model_ms = (self.clock() - t_model) * 1000.0
                if len(chunks) != len(ready):
                    raise RuntimeError(f"{len(chunks)} chunks for a batch of {len(ready)}")
            except Exception as exc:
                self.counters["batch_failures"] += 1
                self.log(f"batched call for {len(ready)} robots failed ({exc!r}); serving them one at a time")
            else:
                self.counters["batches"] += 1
                self.counters["batched_requests"] += len(ready)
                return sum(self._send_chunk(r, chunk, model_ms, polled_at) for r, chunk in zip(ready, chunks, strict=True))
        sent = 0
        for r in ready:
            def one(r: _Request = r) -> tuple[np.ndarray, float]:
                t_model = self.clock()
                chunk = self.policy.predict_chunk(r.policy_obs)
                return chunk, (self.clock() - t_model) * 1000.0
            answer = self._guarded(r.obs, one)
            if answer is not None:
                sent += self._send_chunk(r, *answer, polled_at)
        return sent

    def _send_chunk(self, r: _Request, chunk: np.ndarray, model_ms: float, polled_at: float) -> int:
        """Stamp one robot's chunk and send it to that robot only (0 if the chunk is unusable)."""
        obs, session = r.obs, r.session
        actions = np.asarray(chunk, dtype=np.float32)
        self.model_ms.append(model_ms)
        del self.model_ms[:-1000]  # bounded: a long run must not grow memory
        if isinstance(session.delay, RoundTripDelay) and session.delay.samples == 0:
            # before any measured round trip, the model time alone is the best guess
            session.delay.initial_steps = steps_for_seconds(model_ms / 1000.0, session.fps, session.margin_steps)
        if actions.ndim != 2 or actions.shape[1] != self.policy.features.action_dim or not np.all(np.isfinite(actions)):
            self.counters["invalid_chunks"] += 1
            self.log(f"robot {obs.robot_id}: policy returned an invalid chunk {actions.shape}; not sent")
            self.bus.send(obs.robot_id, Error(robot_id=obs.robot_id, seq=obs.seq, code="invalid_chunk", message=str(actions.shape)))
            return 0
        self._chunk_id += 1
        message = ActionChunk(
            robot_id=obs.robot_id,
            seq=self._chunk_id,
            chunk_id=self._chunk_id,
            obs_seq=obs.seq,
            obs_step=obs.step,
            start_step=r.start_step,
            actions=actions,
            mode=str(session.mode),
            delay_steps=r.delay_steps,
            estimator=session.estimator.name,
            model_ms=model_ms,
            queue_ms=self._queue_ms(r.started, polled_at),
            server_ms=(self.clock() - r.started) * 1000.0,
        )
        if self.bus.send(obs.robot_id, message):
            session.chunks += 1
            self.counters["chunks_sent"] += 1
            return 1
        self.counters["chunks_unsent"] += 1
        return 0

    def report(self) -> str:
        """One line: chunks, model time and Δ per robot (logged periodically by :meth:`run`)."""
        recent = sorted(self.model_ms[-200:])
        p50 = recent[len(recent) // 2] if recent else float("nan")
        robots = ", ".join(f"{s.robot_id} Δ={s.delay.delay_steps()} chunks={s.chunks}" for s in self.sessions.values())
        batches = self.counters["batches"]
        batched = f", {batches} batches of {self.counters['batched_requests'] / batches:.1f} on average" if batches else ""
        return (f"{self.counters['chunks_sent']} chunks{batched}, model p50 {p50:.1f} ms, "
                f"last queue {self.last_queue_ms:.1f} ms; {robots}")

    def _queue_ms(self, started: float, polled_at: float) -> float:
        self.last_queue_ms = (started - polled_at) * 1000.0
        return self.last_queue_ms

    def run(self, stop=None, duration_s: float | None = None, report_every_s: float = 10.0) -> None:
        """Serve until ``stop.is_set()`` or ``duration_s`` passes, logging :meth:`report` now and then."""
        end = None if duration_s is None else time.monotonic() + duration_s
        next_report = time.monotonic() + report_every_s
        while (stop is None or not stop.is_set()) and (end is None or time.monotonic() < end):
            self.step(timeout_ms=20)
            if time.monotonic() >= next_report:
                next_report += report_every_s
                self.log(self.report())
