"""Observation history through the real-time shell: the server asks for it in its Config, the
control loop keeps the last readings and sends them with each observation, the server hands them
to the policy. Real ZeroMQ sockets on 127.0.0.1, ticked by hand (as in test_control_inference)."""

from __future__ import annotations

from types import SimpleNamespace

import msgpack
import numpy as np
import pytest

from tests.core.toy import StampPolicy
from tests.runtime.test_control_inference import Pump
from vlash.contracts import DriverBase, DriverReading, PolicyFeatures, RobotFeatures
from vlash.messages import Observation, encode


class StepDriver(DriverBase):
    """A 2-joint robot whose reading says which read it is: state ``[n, -n]``, velocity ``[10 n, 1]``
    at the n-th read (the loop reads once per tick, so n is the step when steps start at 0)."""

    def __init__(self) -> None:
        self.features = RobotFeatures(joint_names=("a", "b"), action_names=("a", "b"),
                                      action_low=(-1e9, -1e9), action_high=(1e9, 1e9), task="toy")
        self.reads = 0
        self.episode = 0
        self.episode_of: list[int] = []  # the episode of each read

    def connect(self) -> None: ...

    def read(self) -> DriverReading:
        n = self.reads
        self.reads += 1
        self.episode_of.append(self.episode)
        return DriverReading(state=np.array([n, -n], np.float32),
                             extras={"velocity": np.array([10 * n, 1], np.float32)},
                             events={"episode": float(self.episode)})

    def send_action(self, action: np.ndarray) -> None: ...

    def disconnect(self) -> None: ...


class HistoryPolicy(StampPolicy):
    """Records what it is given; conditions on ``history_steps`` past frames."""

    def __init__(self, chunk_size: int = 8, history_steps: int = 2) -> None:
        super().__init__(chunk_size)
        self.features = PolicyFeatures(state_dim=2, action_dim=2, history_steps=history_steps)


class Rig(Pump):
    """A real InferenceServer and ControlLoop on 127.0.0.1, streaming (K = Δ = 1: a request every tick)."""

    def __init__(self, policy, K="auto", delay=1) -> None:
        super().__init__("vlash", H=8, K=K, delay=delay, policy=policy, driver=StepDriver(), request_timeout_s=5.0)
        self.sent: list[Observation] = []
        send = self.bus.send
        self.bus.send = lambda msg: (self.sent.append(msg) if isinstance(msg, Observation) else None, send(msg))[1]


@pytest.fixture
def rigs():
    made = []
    yield made
    for rig in made:
        rig.close()


def stream(rig, steps) -> None:
    """Tick each of ``steps``; each observation is answered before the next tick (Δ = 1)."""
    for step in steps:
        sent = rig.loop.counters["observations_sent"]
        rig.tick(step)
        if rig.loop.counters["observations_sent"] > sent:
            rig.serve()


def frames(obs):
    """(step, state, velocity) of each history frame."""
    return [(f.step, f.state.tolist(), f.extras["velocity"].tolist()) for f in obs.history]


def reading(n):
    return (n, [float(n), float(-n)], [10.0 * n, 1.0])


def test_the_policy_gets_the_readings_of_the_two_steps_before_each_observation(rigs):
    rig = Rig(HistoryPolicy(history_steps=2))
    rigs.append(rig)
    stream(rig, range(12))
    assert rig.loop.server_policy["history_steps"] == 2 and rig.loop.history_steps == 2
    seen = rig.policy.seen
    assert [o.step for o in seen] == list(range(12))  # streaming: one request per tick
    for obs in seen:
        assert obs.measured_state.tolist() == [obs.step, -obs.step]  # the reading of its own step
        assert frames(obs) == [reading(n) for n in range(max(0, obs.step - 2), obs.step)]
        assert all(f.images == {} for f in obs.history)  # past images are not sent
    assert [len(o.history) for o in seen[:3]] == [0, 1, 2]  # the episode's first requests have fewer


def test_a_new_episode_restarts_the_history(rigs):
    rig = Rig(HistoryPolicy(history_steps=2))
    rigs.append(rig)
    stream(rig, range(6))
    rig.driver.episode = 1  # e.g. an auto-reset between the reads of steps 5 and 6
    stream(rig, range(6, 12))
    seen = {o.step: o for o in rig.policy.seen}
    assert frames(seen[5]) == [reading(3), reading(4)]
    assert frames(seen[6]) == []  # nothing of episode 0 conditions episode 1
    assert frames(seen[7]) == [reading(6)]
    assert frames(seen[8]) == [reading(6), reading(7)]
    assert all(rig.driver.episode_of[f.step] == rig.driver.episode_of[o.step] for o in seen.values() for f in o.history)


def test_only_consecutive_steps_are_sent(rigs):
    """A skipped tick (the loop overran) breaks the run: a frame is always the reading of exactly its step."""
    rig = Rig(HistoryPolicy(history_steps=2))
    rigs.append(rig)
    stream(rig, (0, 1, 2, 4, 5, 6))
    by_step = {o.step: o for o in rig.policy.seen}
    assert [f.step for f in by_step[4].history] == []  # step 3 never ran
    assert [f.step for f in by_step[5].history] == [4]
    # steps 4 and 5 were the driver's 4th and 5th reads (n = 3, 4)
    assert [(f.step, f.state[0]) for f in by_step[6].history] == [(4, 3.0), (5, 4.0)]


@pytest.mark.parametrize("features", [
    PolicyFeatures(state_dim=2, action_dim=2),  # history_steps = 0
    SimpleNamespace(state_dim=2, action_dim=2, cameras={}),  # a policy whose features predate the field
], ids=["zero", "absent"])
def test_no_history_wanted_means_none_sent_and_the_message_unchanged(rigs, features):
    policy = StampPolicy(8)
    policy.features = features
    rig = Rig(policy)
    rigs.append(rig)
    stream(rig, range(6))
    assert rig.loop.server_policy["history_steps"] == 0 and rig.loop.history_steps == 0
    assert len(policy.seen) == 6 and all(o.history == () for o in policy.seen)
    assert rig.loop._history.maxlen == 0  # nothing is even kept
    for obs in rig.sent:
        body = msgpack.unpackb(encode(obs))["body"]
        assert "history" not in body  # the wire form of an observation without history, byte for byte
        fields = {k: getattr(obs, k) for k in obs.__dataclass_fields__ if k not in ("KIND", "history")}
        assert encode(obs) == encode(Observation(**fields))


def test_observations_carry_history_on_the_wire_only_when_asked(rigs):
    rig = Rig(HistoryPolicy(history_steps=3))
    rigs.append(rig)
    stream(rig, range(6))
    assert [len(o.history) for o in rig.sent] == [0, 1, 2, 3, 3, 3]
    assert [len(o.history) for o in rig.policy.seen] == [0, 1, 2, 3, 3, 3]


def test_the_server_passes_no_more_frames_than_the_policy_takes(rigs):
    rig = Rig(HistoryPolicy(history_steps=1))
    rigs.append(rig)
    stream(rig, range(1))
    rig.loop._accept_policy({**rig.loop.server_policy, "history_steps": 3})  # a robot that sends more than asked
    stream(rig, range(1, 6))
    assert [len(o.history) for o in rig.sent] == [0, 1, 2, 3, 3, 3]
    assert [frames(o) for o in rig.policy.seen[3:]] == [[reading(n - 1)] for n in range(3, 6)]


def test_a_malformed_history_is_a_counted_rejection_and_the_server_keeps_serving(rigs):
    rig = Rig(HistoryPolicy(history_steps=2))
    rigs.append(rig)
    stream(rig, range(3))
    served = len(rig.policy.seen)
    good = msgpack.unpackb(encode(rig.sent[-1]))
    assert len(good["body"]["history"]) == 2
    bad = {**good, "body": {**good["body"], "history": good["body"]["history"][::-1]}}  # steps not increasing
    rig.bus._socket().send(msgpack.packb(bad))
    rig.server_bus.poll(10_000)
    assert rig.server.step(timeout_ms=0) == 0
    assert rig.server_bus.rejects["range"] == 1
    assert len(rig.policy.seen) == served  # never reached the policy
    stream(rig, range(3, 6))  # and the next observations are served as before
    assert len(rig.policy.seen) == served + 3
