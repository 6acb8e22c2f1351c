"""The control process: a fixed-rate loop that never waits for the model.

Each tick: read the robot → the one tick of :mod:`vlash.tick` (install arrived chunks → send an
observation when the mode's trigger fires → take this step's action from the plan or hold, a
stall) → safety filter → driver → record. Deadlines are absolute (``t0 + k·dt``) on the monotonic clock; a tick that is more
than a period late is skipped and counted, never accumulated into drift. The bus is polled
with zero timeout and sends never block. The loop is the real-time :class:`~vlash.tick.Link`:
arrivals come from the bus, requests go out as observations. A live view (:mod:`vlash.live_view`),
when given, is handed copies of each tick, observation and chunk; it never makes the loop wait.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlash.contracts import Driver, DriverReading, ObservationFrame
from vlash.live_view import LiveView
from vlash.messages import DEFAULT_LIMITS, ActionChunk, Config, Error, Heartbeat, Hello, Observation
from vlash.runlog import RunLog, percentile, plain
from vlash.safety import SafetyFilter
from vlash.scheduler import Scheduler, SchedulerConfig
from vlash.tick import Arrival, run_tick

log = logging.getLogger(__name__)


@dataclass
class ControlConfig:
    robot_id: str = "robot0"
    mode: str = "vlash"
    chunk_size: int = 50
    execution_horizon: int | str | None = None  # K in fine actions, or "auto" (streaming); default: chunk size
    quantization: int = 1
    fps: float | None = None  # default: the driver's
    request_timeout_s: float = 1.0  # an unanswered observation is re-sent after this
    link_timeout_s: float = 1.0  # no chunk or heartbeat for this long: the link is down
    heartbeat_every_s: float = 0.25
    spin_s: float = 0.0008  # sleep until this close to the deadline, then spin
    max_step: list[float] | None = None  # per-tick change limit; default: the driver's
    status_every_s: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


ANSWER_FAILED = ("policy_error", "invalid_chunk", "invalid_observation")  # Errors that answer an observation


def chunk_problem(
    chunk: ActionChunk, robot_id: str, sent_step: int | None, newest_obs_step: int,
    max_delay_steps: int, chunk_size: int, action_dim: int,
) -> str:
    """Why the robot must not execute ``chunk`` ("" if it may): the one acceptance rule, pure.

    A chunk is executed only if it answers an observation this control process sent
    (``sent_step``: the step that observation was for, None if it sent no such ``obs_seq``),
    starts within ``[obs_step, obs_step + Δmax]``, has 1..H rows of ``action_dim`` finite values
    and is not older than a chunk already taken. Any integer, float or size is handled.
    """
    if chunk.robot_id != robot_id:
        return "robot"
    if sent_step is None or chunk.obs_step != sent_step:
        return "unrequested"
    if chunk.obs_step < newest_obs_step:
        return "stale"
    if not 0 <= chunk.start_step - chunk.obs_step <= max_delay_steps or not 0 <= chunk.delay_steps <= max_delay_steps:
        return "start_step"
    actions = chunk.actions
    if actions.ndim != 2 or not 1 <= actions.shape[0] <= chunk_size or actions.shape[1] != action_dim:
        return "shape"
    if not np.all(np.isfinite(actions)):
        return "invalid"
    return ""


def _extras(reading: DriverReading) -> dict[str, np.ndarray]:
    """A reading's extras as the wire carries them: flat float32 arrays."""
    return {k: np.asarray(v, np.float32).ravel() for k, v in reading.extras.items()}


class HelloRefused(ValueError):
    """The inference server refused this robot at the handshake (the reason is in the message)."""


class Ring:
    """The newest ``size`` floats in a float32 array allocated (and touched) up front."""

    def __init__(self, size: int) -> None:
        self._data = np.full(size, np.nan, np.float32)
        self._n = 0

    def append(self, value: float) -> None:
        self._data[self._n % len(self._data)] = value
        self._n += 1

    def values(self) -> list[float]:
        """The stored values, in storage order (not time order once wrapped: percentiles do not care)."""
        return self._data[: min(self._n, len(self._data))].tolist()


class ControlLoop:
    """Drives one robot from chunks arriving over a :class:`~vlash.bus.ControlEndpoint`."""

    def __init__(
        self,
        driver: Driver,
        bus,
        config: ControlConfig,
        run_log: RunLog | None = None,
        on_status: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        view: LiveView | None = None,
    ):
        self.driver, self.bus, self.config, self.run_log = driver, bus, config, run_log
        self.view = view  # the live view (rerun): handed copies, never waited for
        self.on_status = on_status
        self.clock, self.wall_clock = clock, wall_clock
        feats = driver.features
        self.fps = float(config.fps or feats.fps)
        self.dt = 1.0 / self.fps
        self.scheduler = Scheduler(
            SchedulerConfig(
                mode=config.mode,
                chunk_size=config.chunk_size,
                execution_horizon=config.execution_horizon,
                quantization=config.quantization,
            ),
            feats.action_dim,
            feats.action_kind,
        )
        max_step = config.max_step if config.max_step is not None else feats.max_step
        self.safety = SafetyFilter(feats.action_low, feats.action_high, max_step, feats.action_kind)
        self.counters: Counter[str] = Counter()
        self.server_delay_steps = 0  # the server's latest Δ estimate (from its chunks)
        self._seq = 0
        self._sent: dict[int, tuple[float, int]] = {}  # obs seq -> (monotonic send time, step)
        self._in_flight_seq: int | None = None
        self._newest_obs_step = -1
        self._last_rtt_ms = -1.0
        self._last_sent: np.ndarray | None = None
        self._now = 0.0  # this tick's monotonic time, and what it read (for the Link calls)
        self._reading: DriverReading | None = None
        # the newest tick latenesses and round trips, in preallocated rings: memory stays flat
        # however long the run (a deque of Python floats grew ~6 MB over an hour at 50 Hz)
        self._lateness_ms = Ring(200_000)
        self._rtt_ms = Ring(20_000)
        self._success_prev = False
        self.ticks = 0
        self.successes = 0
        self.chunks = 0
        self._last_status = 0.0
        self._last_hello = float("-inf")
        self.server_policy: dict[str, Any] = {}
        self.link_up = False
        # the last readings, for a policy with observation history (sized by the server's Config)
        self._history: deque[ObservationFrame] = deque(maxlen=0)
        self._episode: float | None = None

    # --- one tick -------------------------------------------------------------------------
    def tick(self, step: int, now: float, lateness_s: float = 0.0) -> dict[str, Any]:
        """Run control step ``step`` at monotonic time ``now``. Never blocks."""
        reading = self.driver.read()
        state = np.asarray(reading.state, dtype=np.float32)
        if self._last_sent is None:
            self._last_sent = state.copy() if self.driver.features.action_kind == "absolute" else np.zeros_like(state)
        self._now, self._reading = now, reading
        self._new_episode_check(reading)
        result = run_tick(self.scheduler, self, step, state)
        for arrival, installed in result.installed:
            self._log_chunk(arrival, installed, step, state)
        executed = result.executed
        action = self.safety.apply(executed.action, self._last_sent)
        self.driver.send_action(action)
        self._last_sent = action
        self._remember(step, state, reading)
        self.ticks += 1
        self._lateness_ms.append(lateness_s * 1000.0)
        if "successes" in reading.events:  # the driver counts episodes itself (it may auto-reset)
            self.successes = int(reading.events["successes"])
        else:
            success = bool(reading.events.get("success", 0))
            self.successes += int(success and not self._success_prev)
            self._success_prev = success
        record = {
            "step": step,
            "t": self.wall_clock(),
            "lateness_ms": lateness_s * 1000.0,
            "state": state,
            "action": action,
            "chunk": executed.chunk_id,
            "row": executed.row,
            "stall": executed.stalled and self.scheduler.started,
            "delay_steps": self.server_delay_steps,
        }
        if reading.events:
            record["events"] = {k: float(v) for k, v in reading.events.items()}
        if executed.switch is not None:
            record["switch"] = executed.switch.discontinuity
        if self.run_log is not None:
            self.run_log.ticks.write(record)
        if self.view is not None:
            self.view.tick(record, reading.images, executed.switch, now)
        self.bus.maybe_heartbeat(now)
        return record

    # --- the Link the tick runs on -----------------------------------------------------------
    def arrivals(self, step: int) -> list[Arrival]:
        """Everything the bus has (zero-timeout poll): chunks become arrivals, the rest is handled here."""
        arrived: list[Arrival] = []
        for message in self.bus.poll():
            arrival = self._on_message(message, step, self._now)
            if arrival is not None:
                arrived.append(arrival)
        self._watchdog(self._now)
        self._link_watchdog()
        return arrived

    def delay_steps(self) -> int:
        return self.server_delay_steps

    def send_request(self, step: int) -> bool:
        """Send the observation of ``step`` (with the plan remainder and the hold row)."""
        reading = self._reading
        state = np.asarray(reading.state, dtype=np.float32)
        now = self._now
        plan_start, plan = self.scheduler.remainder(state)
        self._seq += 1
        obs = Observation(
            robot_id=self.config.robot_id,
            seq=self._seq,
            step=step,
            wall_time=self.wall_clock(),
            state=state,
            images=dict(reading.images),
            task=self.driver.features.task,
            plan_start_step=plan_start,
            plan=plan,
            hold=self.scheduler.hold(state),
            extras=_extras(reading),
            last_rtt_ms=self._last_rtt_ms,
            history=self._history_before(step),
        )
        if not self.bus.send(obs):
            self.counters["observations_dropped"] += 1
            return False
        self._sent[self._seq] = (now, step)
        self._in_flight_seq = self._seq
        if self.view is not None:
            self.view.sent(obs)
        self.counters["observations_sent"] += 1
        if len(self._sent) > 64:
            for old in sorted(self._sent)[:-32]:
                del self._sent[old]
        return True

    def _on_message(self, message, step: int, now: float) -> Arrival | None:
        if isinstance(message, ActionChunk):
            return self._on_chunk(message, now)
        if isinstance(message, Heartbeat):
            self.counters["heartbeats"] += 1
        else:
            self.counters[f"got_{type(message).__name__.lower()}"] += 1
            if isinstance(message, Config):
                self._on_config(message)
            elif isinstance(message, Error) and message.code == "unknown_robot":
                self._introduce_again(now)
            elif isinstance(message, Error) and message.code == "wrong_key":
                self._report_refused_key(message.robot_id)
            elif isinstance(message, Error) and message.code in ANSWER_FAILED and message.seq == self._in_flight_seq:
                self._in_flight_seq = None  # no chunk will come for it: ask again at the next tick
                self.scheduler.cancel_request()
        return None

    # --- observation history ---------------------------------------------------------------
    @property
    def history_steps(self) -> int:
        """Past frames the server's policy wants with each observation (its Config; 0 if it does not say)."""
        told = self.server_policy.get("history_steps")
        if type(told) is int and told > 0:
            return min(told, DEFAULT_LIMITS.max_history)
        return 0

    def _accept_policy(self, policy: dict[str, Any]) -> None:
        """Take the server's policy description; the history ring is resized to what it asks for."""
        self.server_policy = dict(policy)
        if self._history.maxlen != self.history_steps:
            self._history = deque(self._history, maxlen=self.history_steps)

    def _new_episode_check(self, reading: DriverReading) -> None:
        """A new episode (the driver's ``episode`` event changed, e.g. an auto-reset) restarts the
        history, so no frame of the last episode conditions the policy in the new one."""
        episode = reading.events.get("episode")
        if episode != self._episode:
            self._episode = episode
            self._history.clear()

    def _remember(self, step: int, state: np.ndarray, reading: DriverReading) -> None:
        """Keep this step's measured reading for later observations. Images are left out: they are
        large to copy and resend every step, and the policy reuses the current images for past frames."""
        if self._history.maxlen:
            extras = {k: v.copy() for k, v in _extras(reading).items()}  # the driver may reuse its arrays
            self._history.append(ObservationFrame(step, state.copy(), extras=extras))

    def _history_before(self, step: int) -> tuple[ObservationFrame, ...]:
        """The kept readings of the consecutive steps just before ``step``, oldest first (a missed
        tick ends the run: a frame is only ever the reading of exactly its step)."""
        frames: list[ObservationFrame] = []
        for frame in reversed(self._history):
            if frame.step != step - 1 - len(frames):
                break
            frames.append(frame)
        return tuple(reversed(frames))

    def _on_config(self, config: Config) -> None:
        """The server's answer to a (re-sent) Hello: its policy and Δ cap, or why it refuses this robot."""
        if config.accepted:
            self._accept_policy(config.policy)
            return
        self.counters["hello_refused"] += 1
        if self.counters["hello_refused"] == 1:
            log.error("the inference server refuses robot %r: %s (the robot holds still meanwhile)",
                      self.config.robot_id, config.reason)

    def _report_refused_key(self, robot_id: str) -> None:
        """Say once (not per refused message) that the server will not take this robot's key."""
        self.counters["refused_key"] += 1
        if self.counters["refused_key"] == 1:
            log.error("the inference server refuses this robot's key for robot id %r: check curve.robot_keys "
                      "in the launch file (the robot holds still meanwhile)", robot_id)

    def _introduce_again(self, now: float) -> None:
        """The server does not know this robot (it restarted): say Hello, then re-ask at once.

        Without this a restarted server would serve the robot with its default mode and fps.
        """
        if now - self._last_hello < 0.1:  # one Hello answers every rejection of the same burst
            return
        self._last_hello = now
        self.counters["hello_resent"] += 1
        self.hello()
        if self._in_flight_seq is not None:  # that observation was rejected: no answer will come
            self._in_flight_seq = None
            self.scheduler.cancel_request()

    @property
    def max_delay_steps(self) -> int:
        """Δmax: the cap the server stated in its Config (else the chunk size), the latest start a chunk may have."""
        told = self.server_policy.get("max_delay_steps")
        if type(told) is int and 0 <= told <= self.config.chunk_size:
            return told
        return self.config.chunk_size

    def _on_chunk(self, chunk: ActionChunk, now: float) -> Arrival | None:
        """An arrival if ``chunk`` answers an observation this process sent; otherwise counted and dropped."""
        sent = self._sent.get(chunk.obs_seq)
        problem = chunk_problem(chunk, self.config.robot_id, None if sent is None else sent[1], self._newest_obs_step,
                                self.max_delay_steps, self.config.chunk_size, self.driver.features.action_dim)
        if problem:
            self.counters[f"chunk_rejected_{problem}"] += 1
            if self.counters[f"chunk_rejected_{problem}"] == 1:  # once per reason, never per message
                log.warning("robot %s: dropped a chunk (%s); further ones are only counted", self.config.robot_id, problem)
            return None
        del self._sent[chunk.obs_seq]  # answered: a replay of it is unrequested
        self._newest_obs_step = chunk.obs_step
        rtt_ms = (now - sent[0]) * 1000.0
        self._last_rtt_ms = rtt_ms
        self._rtt_ms.append(rtt_ms)
        answers = chunk.obs_seq == self._in_flight_seq
        if answers:
            self._in_flight_seq = None
        self.server_delay_steps = int(chunk.delay_steps)
        actions = np.asarray(chunk.actions, dtype=np.float32)
        return Arrival(chunk.start_step, actions, None, answers, self.server_delay_steps, meta=(chunk, rtt_ms))

    def _log_chunk(self, arrival: Arrival, installed, step: int, state: np.ndarray) -> None:
        chunk, rtt_ms = arrival.meta
        self.chunks += 1
        if self.view is not None:
            self.view.chunk(chunk, installed, step, rtt_ms, self.scheduler.remainder(state))
        if self.run_log is not None:
            self.run_log.chunks.write(
                {
                    "chunk": installed.chunk_id,
                    "server_chunk": chunk.chunk_id,
                    "obs_step": chunk.obs_step,
                    "start_step": chunk.start_step,
                    "arrival_step": step,
                    "first_step": installed.first_step,
                    "dropped": installed.dropped,
                    "delay_steps": chunk.delay_steps,
                    "rtt_ms": rtt_ms,
                    "model_ms": chunk.model_ms,
                    "queue_ms": chunk.queue_ms,
                    "server_ms": chunk.server_ms,
                    "mode": chunk.mode,
                    "estimator": chunk.estimator,
                }
            )

    def _link_watchdog(self) -> None:
        """Track whether the server is heard from (chunks or heartbeats). While it is not, the plan
        runs out and the robot holds; nothing else changes, so execution resumes by itself."""
        up = self.bus.seconds_since_heard() <= self.config.link_timeout_s
        if up != self.link_up and (up or self.counters["link_up"] > 0):
            self.counters["link_up" if up else "link_lost"] += 1
        self.link_up = up

    def _watchdog(self, now: float) -> None:
        """Re-ask when an observation went unanswered (the server may have died or restarted)."""
        if self._in_flight_seq is None:
            return
        sent = self._sent.get(self._in_flight_seq)
        if sent is None or now - sent[0] > self.config.request_timeout_s:
            self.counters["request_timeouts"] += 1
            self._in_flight_seq = None
            self.scheduler.cancel_request()

    # --- the loop --------------------------------------------------------------------------
    def hello(self) -> None:
        feats = self.driver.features
        self.bus.send(
            Hello(
                robot_id=self.config.robot_id,
                seq=0,
                features={
                    "joint_names": list(feats.joint_names),
                    "action_names": list(feats.action_names),
                    "cameras": {k: list(v) for k, v in feats.cameras.items()},
                    "action_kind": feats.action_kind,
                    "action_low": list(feats.action_low),
                    "action_high": list(feats.action_high),
                },
                fps=self.fps,
                mode=str(self.scheduler.mode),
                chunk_settings={
                    "chunk_size": self.config.chunk_size,
                    "execution_horizon": self.scheduler.config.execution_horizon,
                    "quantization": self.config.quantization,
                },
            )
        )

    def wait_for_server(self, timeout_s: float, stop=None) -> bool:
        """Say Hello until the server answers with a Config (before the clock starts)."""
        end = self.clock() + timeout_s
        next_hello = 0.0
        while self.clock() < end and not (stop is not None and stop.is_set()):
            if self.clock() >= next_hello:
                self.hello()
                next_hello = self.clock() + 0.5
            for message in self.bus.poll():
                if isinstance(message, Config):
                    if not message.accepted:
                        raise HelloRefused(f"the inference server refused robot {self.config.robot_id!r}: {message.reason}")
                    self._accept_policy(message.policy)
                    return True
            time.sleep(0.01)
        return False

    def run(self, duration_s: float | None = None, max_ticks: int | None = None, stop=None) -> dict[str, Any]:
        """Tick at ``fps`` until ``duration_s``, ``max_ticks`` or ``stop.is_set()``; return the summary."""
        self.hello()
        t0 = self.clock() + self.dt
        step = 0
        try:
            while True:
                if stop is not None and stop.is_set():
                    break
                if max_ticks is not None and self.ticks >= max_ticks:
                    break
                deadline = t0 + step * self.dt
                if duration_s is not None and deadline - t0 >= duration_s:
                    break
                self._sleep_until(deadline)
                now = self.clock()
                late = now - deadline
                if late >= self.dt:  # overran by whole periods: skip them, keep the schedule
                    missed = int(late // self.dt)
                    self.counters["missed_ticks"] += missed
                    step += missed
                    deadline = t0 + step * self.dt
                    late = now - deadline
                self.tick(step, now, late)
                step += 1
                if self.on_status is not None and now - self._last_status >= self.config.status_every_s:
                    self._last_status = now
                    self.on_status(self.status())
        finally:
            summary = self.summary()
            if self.run_log is not None:
                self.run_log.close(summary)
        return summary

    def _sleep_until(self, deadline: float) -> None:
        remaining = deadline - self.clock()
        if remaining > self.config.spin_s:
            time.sleep(remaining - self.config.spin_s)
        while self.clock() < deadline:
            pass

    # --- reporting -------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {
            "robot": self.config.robot_id,
            "ticks": self.ticks,
            "stall_ticks": self.scheduler.stall_steps,
            "missed_ticks": self.counters["missed_ticks"],
            "delay_steps": self.server_delay_steps,
            "rtt_ms": round(self._last_rtt_ms, 1),
            "chunks": self.chunks,
            "successes": self.successes,
            "link": "up" if self.link_up else "down",
        }

    def summary(self) -> dict[str, Any]:
        counters = dict(self.counters)
        counters.update({f"safety_{k}": v for k, v in self.safety.counters.items()})
        counters.update({f"bus_{k}": v for k, v in getattr(self.bus, "counters", {}).items()})
        driver_stats = getattr(self.driver, "stats", None)  # e.g. camera health, motor errors
        driver: dict[str, Any] = {}
        if callable(driver_stats):
            try:
                driver = plain(driver_stats())
            except Exception as exc:  # a broken stats() must not cost the summary
                driver = {"stats_error": repr(exc)[:200]}
        return {
            "robot_id": self.config.robot_id,
            "mode": str(self.scheduler.mode),
            "fps": self.fps,
            "ticks": self.ticks,
            "stall_ticks": self.scheduler.stall_steps,
            "wait_ticks": self.scheduler.wait_steps,
            "missed_ticks": self.counters["missed_ticks"],
            "lateness_ms_p50": percentile(self._lateness_ms.values(), 50),
            "lateness_ms_p99": percentile(self._lateness_ms.values(), 99),
            "lateness_ms_max": percentile(self._lateness_ms.values(), 100),
            "rtt_ms_p50": percentile(self._rtt_ms.values(), 50),
            "rtt_ms_p99": percentile(self._rtt_ms.values(), 99),
            "chunks": self.chunks,
            "task_successes": self.successes,
            "counters": counters,
            "driver": driver,
        }
