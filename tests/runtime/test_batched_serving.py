"""Batched serving: robots waiting together share one policy call, each gets its own chunk, conditioned on
its own state, Δ and mode; a robot alone is served at once. Real sockets on 127.0.0.1."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from vlash.bus import ControlEndpoint, InferenceEndpoint
from vlash.contracts import PolicyFeatures, PolicyObservation
from vlash.inference import InferenceServer, ServerConfig
from vlash.messages import ActionChunk, Config, Error, Hello, Observation

H = 8


class EchoPolicy:
    """Row i of a chunk is the conditioning state plus i: a chunk says which state it was planned from."""

    action_kind = "absolute"
    supports_rtc = False

    def __init__(self, fail_batches: bool = False) -> None:
        self.features = PolicyFeatures(state_dim=2, action_dim=2)
        self.chunk_size = H
        self.calls: list[list[PolicyObservation]] = []  # every call, with the observations it got
        self.fail_batches = fail_batches

    def reset(self) -> None:
        pass

    def predict_chunk(self, observation: PolicyObservation) -> np.ndarray:
        self.calls.append([observation])
        return self._chunk(observation)

    def predict_batch(self, observations: list[PolicyObservation]) -> list[np.ndarray]:
        self.calls.append(list(observations))
        if self.fail_batches:
            raise RuntimeError("this model cannot batch today")
        return [self._chunk(o) for o in observations]

    def _chunk(self, observation: PolicyObservation) -> np.ndarray:
        return observation.state[None, :] + np.arange(H, dtype=np.float32)[:, None]


class Rig:
    """A real inference endpoint and server, and robots that say Hello to it over loopback TCP."""

    def __init__(self, policy: EchoPolicy, **config) -> None:
        self.bus = InferenceEndpoint("tcp://127.0.0.1:*")
        self.policy = policy
        self.server = InferenceServer(self.bus, policy, ServerConfig(**config))
        self.robots: dict[str, ControlEndpoint] = {}

    def join(self, robot_id: str, mode: str = "vlash") -> ControlEndpoint:
        robot = ControlEndpoint(self.bus.endpoint, robot_id)
        self.robots[robot_id] = robot
        features = {"joint_names": ["a", "b"], "action_names": ["a", "b"], "action_kind": "absolute", "cameras": {}}
        robot.send(Hello(robot_id, 0, features, 30.0, mode, {"chunk_size": H, "execution_horizon": 5}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.server.step(timeout_ms=10)
            if any(isinstance(m, Config) and m.accepted for m in robot.poll(timeout_ms=10)):
                return robot
        raise AssertionError(f"{robot_id} was not accepted")

    def observe(self, robot_id: str, seq: int, step: int, state, plan_value: float) -> Observation:
        plan = np.full((H, 2), plan_value, np.float32) + np.arange(H, dtype=np.float32)[:, None] / 100
        obs = Observation(robot_id, seq, step, time.time(), np.asarray(state, np.float32), {}, "", step, plan)
        assert self.robots[robot_id].send(obs)
        return obs

    def arrive(self, count: int) -> None:
        """Wait until ``count`` robots have an observation waiting at the server (not yet served)."""
        deadline = time.monotonic() + 10
        while self.bus.waiting() < count:
            assert time.monotonic() < deadline, f"only {self.bus.waiting()} of {count} observations arrived"
            self.bus.poll(10)

    def chunks(self, robot_id: str, want: int = 1, wait_s: float = 10.0) -> list:
        """The chunks and errors ``robot_id`` has received (waiting up to ``wait_s`` for ``want`` of them)."""
        got: list = []
        deadline = time.monotonic() + wait_s
        while len([m for m in got if isinstance(m, ActionChunk | Error)]) < want and time.monotonic() < deadline:
            got += self.robots[robot_id].poll(timeout_ms=20)
        return [m for m in got if isinstance(m, ActionChunk | Error)]

    def close(self) -> None:
        for robot in self.robots.values():
            robot.close()
        self.bus.close()


@pytest.fixture
def rigs():
    made: list[Rig] = []
    yield lambda policy, **config: made.append(Rig(policy, **config)) or made[-1]
    for rig in made:
        rig.close()


def test_robots_waiting_together_share_one_call_and_each_gets_its_own_chunk(rigs):
    rig = rigs(EchoPolicy(), fixed_delay_steps=2)
    rig.join("arm0", "vlash")
    rig.join("arm1", "vlash")
    rig.join("arm2", "sync")
    sent = {rid: rig.observe(rid, seq=10 + i, step=100 * (i + 1), state=[i, -i], plan_value=10.0 * (i + 1))
            for i, rid in enumerate(("arm0", "arm1", "arm2"))}
    rig.arrive(3)
    rig.policy.calls.clear()
    assert rig.server.step(timeout_ms=0) == 3
    assert [len(call) for call in rig.policy.calls] == [3]  # one batched call for all three
    assert rig.server.counters["batches"] == 1 and rig.server.counters["batched_requests"] == 3
    for i, rid in enumerate(("arm0", "arm1", "arm2")):
        (chunk,) = rig.chunks(rid)
        obs = sent[rid]
        assert isinstance(chunk, ActionChunk) and chunk.robot_id == rid and chunk.obs_seq == obs.seq
        if rid == "arm2":  # sync: planned from its own measured state, for its own step
            expected, start = np.array([i, -i], np.float32), obs.step
        else:  # vlash, target estimator, Δ = 2: its own plan's row for step k+1 is the state at k+2
            expected, start = obs.plan[1], obs.step + 2
        assert chunk.start_step == start and chunk.delay_steps == 2
        np.testing.assert_allclose(chunk.actions[0], expected, atol=1e-6)
        np.testing.assert_allclose(chunk.actions[3], expected + 3, atol=1e-6)
        assert chunk.mode == ("sync" if rid == "arm2" else "vlash")
    # nothing more arrives (everything was sent before step returned): no robot got anyone else's chunk
    assert all(rig.chunks(rid, wait_s=0.3) == [] for rid in ("arm0", "arm1", "arm2"))


def test_a_robot_alone_is_served_in_the_same_step_without_waiting(rigs):
    rig = rigs(EchoPolicy(), fixed_delay_steps=1)
    rig.join("solo")
    polls = []
    real_poll = rig.bus.poll
    rig.bus.poll = lambda timeout_ms=0: polls.append(timeout_ms) or real_poll(timeout_ms)
    rig.observe("solo", seq=1, step=5, state=[0.5, 0.5], plan_value=1.0)
    rig.arrive(1)
    polls.clear()
    rig.policy.calls.clear()
    assert rig.server.step(timeout_ms=0) == 1
    assert polls == [0]  # the step's own poll only: no gathering wait for a robot alone
    assert [len(call) for call in rig.policy.calls] == [1]
    (chunk,) = rig.chunks("solo")
    assert chunk.obs_seq == 1 and chunk.start_step == 6


def test_with_two_robots_the_one_that_asks_is_served_and_the_other_gets_nothing(rigs):
    rig = rigs(EchoPolicy(), fixed_delay_steps=1)
    rig.join("a")
    rig.join("b")
    rig.observe("a", seq=3, step=30, state=[1, 2], plan_value=5.0)
    rig.arrive(1)
    rig.policy.calls.clear()
    assert rig.server.step(timeout_ms=0) == 1  # "b" never asked: "a" is answered after at most gather_ms
    assert [len(call) for call in rig.policy.calls] == [1]
    assert [c.obs_seq for c in rig.chunks("a")] == [3]
    assert rig.chunks("b", wait_s=0.3) == []


def test_a_failed_batch_is_retried_one_robot_at_a_time(rigs):
    rig = rigs(EchoPolicy(fail_batches=True), fixed_delay_steps=1)
    for rid in ("a", "b"):
        rig.join(rid, "sync")
    rig.observe("a", 1, 10, [1, 1], 0.0)
    rig.observe("b", 1, 20, [2, 2], 0.0)
    rig.arrive(2)
    rig.policy.calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rig.server.step(timeout_ms=0) == 2
    assert [len(call) for call in rig.policy.calls] == [2, 1, 1]
    assert rig.server.counters["batch_failures"] == 1 and rig.server.counters["policy_errors"] == 0
    for rid, state in (("a", 1.0), ("b", 2.0)):
        (chunk,) = rig.chunks(rid)
        np.testing.assert_allclose(chunk.actions[0], [state, state])


def test_batching_off_serves_one_call_per_robot(rigs):
    rig = rigs(EchoPolicy(), fixed_delay_steps=1, batching=False)
    for rid in ("a", "b", "c"):
        rig.join(rid, "sync")
    for i, rid in enumerate(("a", "b", "c")):
        rig.observe(rid, 1, 10, [i, i], 0.0)
    rig.arrive(3)
    rig.policy.calls.clear()
    assert rig.server.step(timeout_ms=0) == 3
    assert [len(call) for call in rig.policy.calls] == [1, 1, 1]
    assert rig.server.counters["batches"] == 0
    for i, rid in enumerate(("a", "b", "c")):
        np.testing.assert_allclose(rig.chunks(rid)[0].actions[0], [i, i])


def test_an_observation_that_does_not_fit_is_refused_and_the_rest_of_the_batch_is_served(rigs):
    rig = rigs(EchoPolicy(), fixed_delay_steps=1)
    for rid in ("good", "bad", "also"):
        rig.join(rid, "sync")
    rig.observe("good", 1, 10, [1, 1], 0.0)
    rig.observe("bad", 1, 10, [1, 1, 1], 0.0)  # three values for a 2-joint policy
    rig.observe("also", 1, 10, [3, 3], 0.0)
    rig.arrive(3)
    rig.policy.calls.clear()
    assert rig.server.step(timeout_ms=0) == 2
    assert [len(call) for call in rig.policy.calls] == [2]
    (refusal,) = rig.chunks("bad")
    assert isinstance(refusal, Error) and refusal.code == "invalid_observation"
    assert [type(m) for m in rig.chunks("good") + rig.chunks("also")] == [ActionChunk, ActionChunk]
