"""The two shells against each other: the real ControlLoop and the virtual-time runner, same arrivals.

The control loop runs on a fake clock with a fake driver; an in-process stand-in for the bus hands
every observation to the real :class:`InferenceServer` at once and delivers its chunk to the robot
at step ``obs_step + Δ`` exactly, which is what virtual time assumes. Both shells must then send
their requests at the same steps, condition the policy on the same states and execute the same
(step, chunk, row) sequence.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.core.toy import StampPolicy, ToyArm
from tests.runtime.toy_driver import ToyDriver
from vlash.control import ControlConfig, ControlLoop
from vlash.inference import InferenceServer, ServerConfig
from vlash.messages import ActionChunk, Hello, Message, Observation
from vlash.virtual_time import RunConfig, run_episode

H, STEPS, FPS = 8, 48, 30.0


class ServerSide:
    """What the server's ``bus.send(robot, msg)`` reaches: a delivery due at the answered step + Δ."""

    def __init__(self, link: LoopbackBus) -> None:
        self.link = link

    def send(self, robot_id: str, msg: Message) -> bool:
        due = msg.obs_step + self.link.delay if isinstance(msg, ActionChunk) else self.link.step
        self.link.due.append((due, msg))
        return True


class LoopbackBus:
    """The control side of the bus, in process: the real server answers at once, the robot gets it at k + Δ."""

    def __init__(self, policy: StampPolicy, mode: str, delay: int) -> None:
        self.delay, self.step = delay, 0
        self.due: list[tuple[int, Message]] = []
        self.server = InferenceServer(ServerSide(self), policy, ServerConfig(mode=mode, fixed_delay_steps=delay))
        self.counters: dict[str, int] = {}

    def send(self, msg: Message) -> bool:
        if isinstance(msg, Hello):
            self.server.bus.send(msg.robot_id, self.server.on_hello(msg))
        elif isinstance(msg, Observation):
            self.server.serve(msg, polled_at=0.0)
        return True

    def poll(self) -> list[Message]:
        ready = [m for d, m in self.due if d <= self.step]
        self.due = [(d, m) for d, m in self.due if d > self.step]
        return ready

    def maybe_heartbeat(self, now: float) -> bool:
        return False

    def seconds_since_heard(self) -> float:
        return 0.0


def stamp(action: np.ndarray) -> tuple[int, int]:
    """(obs step, chunk row) a StampPolicy action came from."""
    return int(action[0]) // 1000, int(round(action[1]))


def virtual(mode: str, delay: int, horizon: int, q: int):
    policy = StampPolicy(H)
    rec = run_episode(ToyArm(), policy, RunConfig(mode=mode, delay_steps=delay, execution_horizon=horizon,
                                                  quantization=q, max_steps=STEPS))
    executed = [(k, stamp(a) if c >= 0 else None) for k, (a, c) in enumerate(zip(rec.actions, rec.chunk_ids, strict=True))]
    return policy.seen, executed, rec.stall_steps


def real(mode: str, delay: int, horizon: int, q: int):
    policy = StampPolicy(H)
    bus = LoopbackBus(policy, mode, delay)
    config = ControlConfig(robot_id="arm", mode=mode, chunk_size=H, execution_horizon=horizon, quantization=q, fps=FPS)
    loop = ControlLoop(ToyDriver(fps=FPS), bus, config, clock=lambda: bus.step / FPS, wall_clock=lambda: 0.0)
    loop.hello()
    executed = []
    for step in range(STEPS):
        bus.step = step
        record = loop.tick(step, step / FPS)
        executed.append((step, stamp(record["action"]) if record["chunk"] >= 0 else None))
    assert loop.counters["request_timeouts"] == 0 and loop.counters["chunk_rejected_stale"] == 0
    return policy.seen, executed, loop.scheduler.stall_steps


MODES = ("sync", "naive", "vlash", "rtc")
CASES = sorted({(mode, d, k, 1) for mode in MODES for d in range(5) for k in (max(d, 1), H // 2, H)}
               | {(mode, d, k, 2) for mode in ("naive", "vlash") for d in (1, 3) for k in (4, H)},
               key=str) + [(mode, d, "auto", q) for mode in MODES for d in range(5) for q in (1, 2)]


@pytest.mark.parametrize("mode,delay,horizon,q", CASES)
def test_control_loop_and_virtual_time_request_condition_and_execute_alike(mode, delay, horizon, q):
    seen_v, executed_v, stalls_v = virtual(mode, delay, horizon, q)
    seen_r, executed_r, stalls_r = real(mode, delay, horizon, q)
    assert [o.step for o in seen_r] == [o.step for o in seen_v]  # requests at the same steps
    k = max(delay, 1) if horizon == "auto" else horizon
    assert len(seen_v) >= STEPS // (k + delay + 1)  # and the run had several of them
    assert [o.start_step for o in seen_r] == [o.start_step for o in seen_v]
    for r, v in zip(seen_r, seen_v, strict=True):  # conditioned on the same state (hold rule included)
        np.testing.assert_array_equal(r.state, v.state)
    assert executed_r == executed_v  # the same (step, chunk, row) everywhere, holds included
    assert stalls_r == stalls_v


def test_a_chunk_arriving_at_step_k_triggers_the_next_request_at_k_in_both_shells():
    """Back to back (K = Δ): each arrival step is also a request step, in either shell."""
    for shell in (virtual, real):
        seen, executed, _ = shell("naive", 3, 3, 1)
        steps = [o.step for o in seen]
        assert steps[:4] == [0, 3, 6, 9], shell.__name__


class SaggingDriver(ToyDriver):
    """Settles 1.0 below each target (like an arm under gravity), so measured state and held target differ."""

    def send_action(self, action: np.ndarray) -> None:
        super().send_action(action)
        self.state = self.state - 1.0


def test_after_a_lost_chunk_the_server_conditions_vlash_on_the_held_target_as_virtual_time_does():
    """The one hold rule: with nothing queued, ŝ is the target the robot holds, not the measured state."""
    policy = StampPolicy(H)
    bus = LoopbackBus(policy, "vlash", 2)
    config = ControlConfig(robot_id="arm", mode="vlash", chunk_size=H, execution_horizon=4, fps=FPS,
                           request_timeout_s=0.5)
    driver = SaggingDriver(fps=FPS)
    loop = ControlLoop(driver, bus, config, clock=lambda: bus.step / FPS, wall_clock=lambda: 0.0)
    loop.hello()
    lost = False
    for step in range(60):
        bus.step = step
        if not lost and len(policy.seen) == 3:  # the third answer never arrives
            bus.due = [(d, m) for d, m in bus.due if not isinstance(m, ActionChunk)]
            lost = True
        if lost and len(policy.seen) == 3:
            measured = driver.state.copy()
            local = loop.scheduler.build_request(step, measured, 2)  # the rule virtual time runs
        loop.tick(step, step / FPS)
    assert loop.counters["request_timeouts"] == 1 and len(policy.seen) > 4
    asked = policy.seen[3]  # the re-request, made with an empty plan
    assert loop.scheduler.stall_steps > 0
    np.testing.assert_array_equal(asked.state, local.state)
    np.testing.assert_array_equal(asked.state, driver.sent[asked.step - 1])  # the held target
    assert not np.array_equal(asked.state, asked.measured_state)  # which is not where the arm is


@pytest.mark.parametrize("mode", ["naive", "vlash", "rtc"])
@pytest.mark.parametrize("delay", [1, 2, 4])
def test_streaming_requests_as_soon_as_each_chunk_arrives_in_both_shells(mode, delay):
    """K = auto: every arrival step is also a request step, so the requests are Δ apart, and nothing stalls."""
    for shell in (virtual, real):
        seen, executed, stalls = shell(mode, delay, "auto", 1)
        steps = [o.step for o in seen]
        assert steps == list(range(0, steps[-1] + 1, delay)), shell.__name__
        assert stalls == 0 and all(e is not None for _, e in executed[delay:]), shell.__name__
        # each chunk runs exactly Δ steps: rows Δ..2Δ-1 in naive (its first Δ rows were stale), 0..Δ-1 in vlash
        first_row = 0 if mode == "vlash" else delay
        for k, e in executed[delay:]:
            assert e == ((k // delay - 1) * delay, first_row + k % delay), (shell.__name__, k, e)
