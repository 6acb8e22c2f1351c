"""The handshake is the contract: the server checks each Hello against its policy, caps Δ below the
robot's K and says so; a refused Hello leaves an existing session as it was."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from tests.core.toy import StampPolicy
from tests.faults.procs import free_port
from tests.runtime.toy_driver import ToyDriver
from vlash.bus import ControlEndpoint, InferenceEndpoint
from vlash.contracts import PolicyFeatures
from vlash.control import ControlConfig, ControlLoop, HelloRefused
from vlash.inference import InferenceServer, ServerConfig
from vlash.messages import ActionChunk, Config, Error, Hello, Observation


class Outbox:
    """The server's side of a bus, capturing what it sends; ``step`` sees ``observations`` and ``robots``."""

    def __init__(self, observations: dict | None = None, robots: list[str] | None = None) -> None:
        self.sent: list = []
        self.observations, self.known = observations or {}, robots or []

    def send(self, robot_id, msg) -> bool:
        self.sent.append(msg)
        return True

    def poll(self, timeout_ms: int) -> int:
        return len(self.observations)

    def hellos(self) -> list:
        return []

    def latest(self) -> dict:
        return self.observations

    def robots(self) -> list[str]:
        return self.known


def hello(robot="arm", mode="vlash", joints=2, actions=2, kind="absolute", cameras=None, chunk=None, fps=30.0):
    features = {"joint_names": [f"j{i}" for i in range(joints)], "action_names": [f"j{i}" for i in range(actions)],
                "cameras": cameras or {}, "action_kind": kind}
    return Hello(robot, 0, features, fps, mode, {"chunk_size": 8, "execution_horizon": 5, "quantization": 1,
                                                 **(chunk or {})})


def server(policy=None, **config) -> InferenceServer:
    return InferenceServer(Outbox(), policy or StampPolicy(8), ServerConfig(**config))


@pytest.mark.parametrize("bad,reason", [
    (hello(mode="turbo"), "unknown mode 'turbo'"),
    (hello(joints=3), "3 joints"),
    (hello(actions=3), "3-dim actions"),
    (hello(kind="delta"), "delta actions"),
    (hello(chunk={"chunk_size": 50}), "chunk_size 50"),
    (hello(chunk={"execution_horizon": 9}), "chunk_size=8], got 9"),
    (hello(chunk={"quantization": 0}), "quantization 0"),
])
def test_a_hello_that_does_not_fit_the_policy_is_refused_and_leaves_the_session_alone(bad, reason):
    srv = server(fixed_delay_steps=2)
    assert srv.on_hello(hello(mode="naive")).accepted
    before = srv.sessions["arm"]
    answer = srv.on_hello(bad)
    assert isinstance(answer, Config) and not answer.accepted and reason in answer.reason
    assert srv.sessions["arm"] is before and str(before.mode) == "naive"
    assert srv.counters["hellos_refused"] == 1


def test_a_policy_camera_the_robot_lacks_is_refused_by_name():
    policy = StampPolicy(8)
    policy.features = PolicyFeatures(state_dim=2, action_dim=2, cameras={"front": (96, 96), "wrist": (96, 96)})
    srv = server(policy)
    answer = srv.on_hello(hello(cameras={"front": [96, 96]}))
    assert not answer.accepted and "wrist" in answer.reason and "arm" not in srv.sessions
    assert srv.on_hello(hello(cameras={"front": [96, 96], "wrist": [96, 96], "top": [64, 64]})).accepted


@pytest.mark.parametrize("horizon,q,extra_cap,cap", [(5, 1, None, 4), (8, 1, None, 7), (8, 2, None, 3),
                                                      (1, 1, None, 1), (8, 1, 2, 2)])
def test_the_delay_estimate_is_capped_below_the_robot_horizon_and_the_robot_is_told(horizon, q, extra_cap, cap):
    srv = server(max_delay_steps=extra_cap)
    answer = srv.on_hello(hello(chunk={"execution_horizon": horizon, "quantization": q}))
    assert answer.accepted and answer.policy["max_delay_steps"] == cap
    delay = srv.sessions["arm"].delay
    for _ in range(20):  # a frozen server: 3 s round trips
        delay.observe(3.0)
    assert delay.delay_steps() == cap


def test_an_observation_from_a_robot_that_never_said_hello_is_answered_with_unknown_robot():
    srv = server(fixed_delay_steps=1)
    srv.bus = Outbox(observations={"arm": Observation("arm", 1, 0, 0.0, np.zeros(2, np.float32))})
    assert srv.step(0) == 0
    assert [(type(m), m.code) for m in srv.bus.sent] == [(Error, "unknown_robot")]


def test_the_robot_prints_the_reason_it_was_refused_over_real_sockets():
    bus = InferenceEndpoint("tcp://127.0.0.1:*")
    srv = InferenceServer(bus, StampPolicy(8), ServerConfig(mode="vlash"))
    client = ControlEndpoint(bus.endpoint, "arm")
    try:
        loop = ControlLoop(ToyDriver(), client, ControlConfig(robot_id="arm", chunk_size=20, execution_horizon=10))
        loop.hello()
        assert bus._socket().poll(5000)
        srv.step(timeout_ms=0)
        with pytest.raises(HelloRefused, match="chunk_size 20, the policy makes chunks of 8"):
            loop.wait_for_server(5.0)
    finally:
        client.close()
        bus.close()


LAUNCH = """
name: model_no_sim
endpoint: {endpoint}
mode: vlash
inference:
  policy: {{factory: tests.core.toy:StampPolicy, chunk_size: 8, dim: 6}}
  estimator: model
robots:
  - id: arm
    driver: {{factory: tests.runtime.toy_driver:ToyDriver}}
    chunk_size: 8
    execution_horizon: 4
"""


def test_vlash_serve_with_the_model_estimator_serves_without_anything_importing_sim(tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    launch = tmp_path / "launch.yaml"
    launch.write_text(LAUNCH.format(endpoint=endpoint))
    proc = subprocess.Popen([sys.executable, "-m", "vlash.cli", "serve", str(launch), "--duration", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = ControlEndpoint(endpoint, "arm")
    try:
        features = {"joint_names": [f"j{i}" for i in range(6)], "action_names": [f"j{i}" for i in range(6)],
                    "cameras": {}, "action_kind": "absolute"}
        got: list = []
        deadline = time.monotonic() + 60
        while not any(isinstance(m, ActionChunk) for m in got) and time.monotonic() < deadline:
            if not any(isinstance(m, Config) for m in got):
                client.send(Hello("arm", 0, features, 30.0, "vlash", {"chunk_size": 8, "execution_horizon": 4}))
            else:
                client.send(Observation("arm", 1, 10, 0.0, np.full(6, 0.1, np.float32), plan_start_step=10,
                                        plan=np.zeros((3, 6), np.float32), hold=np.zeros(6, np.float32)))
            got += client.poll(500)
        configs = [m for m in got if isinstance(m, Config)]
        chunks = [m for m in got if isinstance(m, ActionChunk)]
        assert configs and configs[0].accepted, configs
        assert chunks and chunks[0].estimator == "model" and chunks[0].start_step == 10 + chunks[0].delay_steps
    finally:
        client.close()
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "estimator=model" in out, out


def test_sessions_of_robots_the_bus_forgot_are_dropped():
    srv = server(fixed_delay_steps=1)
    assert srv.on_hello(hello("a")).accepted and srv.on_hello(hello("b")).accepted

    srv.bus = Outbox(robots=["b"])  # "a" went silent past the heartbeat timeout
    srv.step(0)
    assert list(srv.sessions) == ["b"]
