"""A real LeRobot ACT checkpoint behind the real inference server, several robots over loopback: one batched
call, each robot's chunk is what the checkpoint answers for that robot's own observation, and the read-only
arrays the wire decodes raise no warning anywhere on the way."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from policies.lerobot_adapter import load_policy
from vlash.bus import ControlEndpoint, InferenceEndpoint
from vlash.contracts import PolicyObservation
from vlash.inference import InferenceServer, ServerConfig
from vlash.messages import ActionChunk, Config, Hello, Observation

JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


def test_three_robots_one_batched_act_call_each_its_own_chunk(tiny_act_camera_checkpoint: Path) -> None:
    policy = load_policy(tiny_act_camera_checkpoint)
    calls: list[int] = []
    real_batch = policy.predict_batch
    policy.predict_batch = lambda observations: calls.append(len(observations)) or real_batch(observations)
    rng = np.random.default_rng(3)
    with InferenceEndpoint("tcp://127.0.0.1:*") as bus:
        server = InferenceServer(bus, policy, ServerConfig(mode="sync"))
        robots = {f"arm{i}": ControlEndpoint(bus.endpoint, f"arm{i}") for i in range(3)}
        try:
            features = {"joint_names": JOINTS, "action_names": JOINTS, "action_kind": "absolute",
                        "cameras": {"front": [32, 32]}}
            for rid, robot in robots.items():
                robot.send(Hello(rid, 0, features, 30.0, "sync", {"chunk_size": 8, "execution_horizon": 4}))
            accepted: set[str] = set()
            deadline = time.monotonic() + 20
            while len(accepted) < 3 and time.monotonic() < deadline:
                server.step(timeout_ms=10)
                accepted |= {rid for rid, r in robots.items() if any(isinstance(m, Config) for m in r.poll(5))}
            assert accepted == set(robots)
            sent = {}
            for i, (rid, robot) in enumerate(robots.items()):
                sent[rid] = Observation(
                    rid, 7, 40 + i, time.time(), rng.normal(0, 0.3, 6).astype(np.float32),
                    {"front": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)}, "", 40 + i,
                    np.zeros((0, 6), np.float32), extras={"task_state": rng.normal(0, 0.3, 3).astype(np.float32)})
                assert robot.send(sent[rid])
            while bus.waiting() < 3 and time.monotonic() < deadline:
                bus.poll(10)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # e.g. torch's "The given NumPy array is not writable"
                assert server.step(timeout_ms=0) == 3
            assert calls == [3]
            for rid, robot in robots.items():
                chunks: list = []
                while not chunks and time.monotonic() < deadline:
                    chunks = [m for m in robot.poll(20) if isinstance(m, ActionChunk)]
                (chunk,) = chunks
                obs = sent[rid]
                alone = policy.predict_chunk(PolicyObservation(
                    step=obs.step, state=obs.state.copy(), measured_state=obs.state.copy(),
                    images={"front": obs.images["front"].copy()}, extras={"task_state": obs.extras["task_state"].copy()}))
                assert chunk.robot_id == rid and chunk.obs_seq == 7 and chunk.start_step == obs.step
                np.testing.assert_allclose(chunk.actions, alone, atol=1e-4)
        finally:
            for robot in robots.values():
                robot.close()
