"""The control loop and the inference server over real ZeroMQ sockets, ticked by hand.

The test decides when the server answers, so the delay in ticks is exact and nothing depends
on wall-clock timing.
"""

import numpy as np
import pytest

from tests.core.toy import StampPolicy
from tests.runtime.toy_driver import ToyDriver
from vlash.bus import ControlEndpoint, InferenceEndpoint
from vlash.control import ControlConfig, ControlLoop
from vlash.inference import InferenceServer, ServerConfig


class Pump:
    """One robot and one server; ``tick`` runs a control step, ``serve`` answers what is waiting."""

    def __init__(self, mode, H=8, K=5, delay=2, policy=None, endpoint="tcp://127.0.0.1:*", low=-1e6, high=1e6,
                 driver=None, request_timeout_s=0.5):
        self.policy = policy or StampPolicy(H)
        self.server_bus = InferenceEndpoint(endpoint)
        self.endpoint = self.server_bus.endpoint
        self.server = InferenceServer(self.server_bus, self.policy, ServerConfig(mode=mode, fixed_delay_steps=delay))
        self.bus = ControlEndpoint(self.endpoint, "arm")
        self.driver = driver or ToyDriver(low, high)
        self.loop = ControlLoop(
            self.driver, self.bus, ControlConfig(robot_id="arm", mode=mode, chunk_size=H, execution_horizon=K,
                                                 request_timeout_s=request_timeout_s)
        )
        self.loop.hello()
        assert self.server_bus._socket().poll(10_000)  # the Hello
        self.server.step(timeout_ms=0)  # answered with a Config
        assert self.bus._socket().poll(10_000)  # waiting for the loop's first tick (bus.poll would consume it)
        self.now = 0.0

    def tick(self, step):
        self.now = step / 30.0
        return self.loop.tick(step, self.now)

    def serve(self):
        """Answer the waiting observation and make sure the chunk is at the robot before the next tick."""
        assert self.server_bus.poll(10_000) >= 1
        assert self.server.step(timeout_ms=0) == 1
        wait_for_mail(self.bus)

    def close(self):
        self.bus.close()
        self.server_bus.close()


def wait_for_mail(bus, timeout_ms=10_000):
    sock = bus._socket()
    assert sock.poll(timeout_ms), "no chunk arrived"


def run_pump(pump, steps, delay):
    """Tick ``steps`` times; each observation is answered so its chunk arrives ``delay`` ticks later."""
    due = {}
    records = []
    sent = pump.loop.counters["observations_sent"]
    for step in range(steps):
        rec = pump.tick(step)
        records.append(rec)
        if pump.loop.counters["observations_sent"] > sent:
            sent = pump.loop.counters["observations_sent"]
            due[step + delay - 1] = True  # answer just before tick step + delay
        if due.pop(step, False):
            pump.serve()
    return records


@pytest.fixture
def pumps():
    made = []
    yield made
    for p in made:
        p.close()


def origin(action):
    return int(action[0]) // 1000, int(round(action[1]))


def test_vlash_chunks_switch_at_start_step_without_stalls(pumps):
    pump = Pump("vlash", H=8, K=5, delay=2)
    pumps.append(pump)
    records = run_pump(pump, 40, delay=2)
    chunks = pump.policy.seen
    assert len(chunks) >= 6
    assert pump.loop.scheduler.stall_steps == 0
    by_step = {r["step"]: r for r in records}
    for obs in chunks:
        start = obs.step + 2
        if start in by_step:
            assert origin(by_step[start]["action"]) == (obs.step, 0)  # row 0 runs at its start step
    for obs in chunks[1:]:  # conditioned on the last target queued before the switch
        np.testing.assert_array_equal(obs.state, by_step[obs.step + 1]["action"])


def test_sync_mode_records_stalls(pumps):
    pump = Pump("sync", H=5, K=5, delay=3)
    pumps.append(pump)
    run_pump(pump, 40, delay=3)
    assert pump.loop.scheduler.stall_steps >= 3 * (pump.loop.chunks - 1) > 0


def test_invalid_policy_output_never_reaches_the_driver(pumps):
    class NaNPolicy(StampPolicy):
        def predict_chunk(self, observation):
            chunk = super().predict_chunk(observation)
            if len(self.seen) % 2 == 0:
                chunk[3, 0] = np.nan
            else:
                chunk[:, 1] = 1e9  # far outside the joint limits
            return chunk

    pump = Pump("vlash", H=8, K=5, delay=2, policy=NaNPolicy(8), low=-10.0, high=10.0)
    pumps.append(pump)
    sent = 0
    for step in range(60):
        pump.tick(step)
        if pump.loop.counters["observations_sent"] > sent:
            sent = pump.loop.counters["observations_sent"]
            assert pump.server_bus.poll(10_000) >= 1
            if pump.server.step(0):
                wait_for_mail(pump.bus)
    assert pump.server.counters["invalid_chunks"] >= 1
    sent = np.array(pump.driver.sent)
    assert np.all(np.isfinite(sent)) and np.all(np.abs(sent) <= 10.0)
    assert pump.loop.safety.counters["clipped"] > 0


def test_dead_server_means_hold_then_resume_on_restart(pumps):
    pump = Pump("vlash", H=8, K=5, delay=1)
    pumps.append(pump)
    run_pump(pump, 10, delay=1)
    endpoint = pump.endpoint
    pump.server_bus.close()  # the inference process dies
    held = []
    for step in range(10, 40):
        pump.tick(step)
        held.append(pump.driver.sent[-1].copy())
    assert pump.loop.counters["request_timeouts"] >= 1
    assert np.all(held[-1] == held[-5])  # plan finished, now holding still
    assert len(pump.driver.sent) == 40  # the loop kept ticking
    # a new inference process on the same port: execution resumes
    restarted = InferenceEndpoint(endpoint)
    pump.server_bus = restarted
    pump.server = InferenceServer(restarted, pump.policy, ServerConfig(mode="vlash", fixed_delay_steps=1))
    chunks_before = pump.loop.chunks
    step = 40
    while pump.loop.chunks <= chunks_before + 2:  # ZeroMQ reconnects on its own; no deadline in ticks
        assert step < 1000, "no fresh chunks after the restart"
        pump.now = step / 30.0 + 2.0
        pump.loop.tick(step, pump.now)
        if restarted.poll(50):
            pump.server.step(0)
            wait_for_mail(pump.bus)
        step += 1
    assert origin(pump.driver.sent[-1])[0] >= 40  # acting on fresh chunks again


def test_after_a_policy_error_the_robot_asks_again_at_the_next_tick(pumps):
    class FailsOnce(StampPolicy):
        def predict_chunk(self, observation):
            if not self.seen:
                self.seen.append(observation)
                raise RuntimeError("CUDA out of memory")
            return super().predict_chunk(observation)

    pump = Pump("vlash", H=8, K=5, delay=2, policy=FailsOnce(8))
    pumps.append(pump)
    pump.tick(0)
    assert pump.loop.counters["observations_sent"] == 1
    assert pump.server_bus.poll(10_000) >= 1
    assert pump.server.step(timeout_ms=0) == 0  # the policy fails: that observation gets a policy_error
    wait_for_mail(pump.bus)
    pump.tick(1)  # the Error arrives: the request is given up at once (not after request_timeout_s)
    assert pump.loop.counters["got_error"] == 1 and pump.loop.counters["observations_sent"] == 2
    assert pump.loop.counters["request_timeouts"] == 0
    pump.serve()
    pump.tick(2)
    assert pump.loop.chunks == 1 and pump.server.counters["policy_errors"] == 1
