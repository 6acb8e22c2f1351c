"""Live-abuse phases for ``vlash bench fuzz``: a legitimate robot served while strangers attack.

A real ``vlash serve`` (a stamping policy behind an emulated model latency) and a real ``vlash
control`` (a hardware-free arm) run on loopback without keys, the weakest setting. One phase at a
time, the bench (another process) attacks for ``phase_s`` seconds: forged observations for the
robot's id, Hellos swapping its mode, decode-cost bombs, and a flood of garbage and fresh ids.
Per phase it reports, for the legitimate robot: missed ticks, stall ticks, executed actions that
did not come from its own requests, and the server's CPU time per message. Targets: 0 missed
ticks, 0 unrequested actions, stall ticks at most one model latency.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from vlash.contracts import DriverBase, DriverReading, PolicyFeatures, RobotFeatures
from vlash.messages import Hello, Observation, encode
from vlash.supervisor import interrupt

PHASES = ("baseline", "forged_ids", "hello_swaps", "decode_bombs", "garbage_flood")
FORGED_STEP = 10_000_000  # forged observations claim steps the robot never reaches


class StampingPolicy:
    """Row i of the chunk for observation step k is ``[k * 1000 + i, i]``: each action names its request."""

    action_kind = "absolute"
    supports_rtc = False

    def __init__(self, chunk_size: int = 20) -> None:
        self.chunk_size = chunk_size
        self.features = PolicyFeatures(state_dim=2, action_dim=2)

    def reset(self) -> None:
        pass

    def predict_chunk(self, observation) -> np.ndarray:
        rows = np.arange(self.chunk_size, dtype=np.float32)
        return np.stack([observation.step * 1000.0 + rows, rows], axis=1)


class EchoArm(DriverBase):
    """A hardware-free 2-joint arm that reaches each target at once."""

    def __init__(self, fps: float = 30.0) -> None:
        self.features = RobotFeatures(("a", "b"), ("a", "b"), (-1e12, -1e12), (1e12, 1e12), fps=fps, task="abuse")
        self.state = np.zeros(2, np.float32)

    def connect(self) -> None:
        pass

    def read(self) -> DriverReading:
        return DriverReading(state=self.state.copy())

    def send_action(self, action: np.ndarray) -> None:
        self.state = np.asarray(action, np.float32).copy()

    def disconnect(self) -> None:
        pass


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bomb() -> bytes:
    """A progressive JPEG whose last scan repeats: small, honest about its size, costly to decode."""
    import cv2

    ok, buf = cv2.imencode(".jpg", np.zeros((256, 256, 3), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    data = buf.tobytes()
    scan = data[data.rindex(b"\xff\xda") : -2]
    return data[:-2] + scan * 2000 + b"\xff\xd9"


def _attack_messages(phase: str, robot_id: str, i: int, bomb: bytes) -> list[bytes]:
    state = np.full(2, 7.0, np.float32)
    if phase == "forged_ids":
        return [encode(Observation(robot_id, i + 1, FORGED_STEP + i, 0.0, state, plan_start_step=FORGED_STEP))]
    if phase == "hello_swaps":
        feats = {"joint_names": ["a", "b"], "action_names": ["a", "b"], "action_kind": "absolute"}
        return [encode(Hello(robot_id, 0, feats, 30.0, ("sync", "naive", "rtc")[i % 3]))]
    if phase == "decode_bombs":
        tree = msgpack.unpackb(encode(Observation(robot_id, i + 1, FORGED_STEP + i, 0.0, state)))
        tree["body"]["images"] = {"front": {"codec": "jpeg", "dtype": "uint8", "shape": [256, 256, 3], "data": bomb}}
        return [msgpack.packb(tree)]
    if phase == "garbage_flood":
        return [os.urandom(64), encode(Observation(f"ghost{i % 500}", i + 1, i, 0.0, state))]
    return []


def _attack(endpoint: str, phase: str, robot_id: str, seconds: float) -> int:
    """Send ``phase``'s messages from a new connection for ``seconds``; returns how many went out."""
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 1000)
    sock.connect(endpoint)
    bomb = _bomb() if phase == "decode_bombs" else b""
    sent, i = 0, 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            for data in _attack_messages(phase, robot_id, i, bomb):
                try:
                    sock.send(data, zmq.NOBLOCK)
                    sent += 1
                except zmq.Again:
                    time.sleep(0.001)
            while sock.poll(0):
                sock.recv()  # the server's refusals (id_taken, unknown_robot): read and drop
            i += 1
            if phase == "baseline":
                time.sleep(0.01)
    finally:
        sock.close()
        ctx.term()
    return sent


def _phase_report(ticks: list[dict], taken: set[int], window: tuple[float, float], latency_ms: float, fps: float) -> dict:
    rows = [t for t in ticks if window[0] <= t["t"] < window[1]]
    steps = [t["step"] for t in rows]
    missed = sum(b - a - 1 for a, b in zip(steps, steps[1:], strict=False))
    unrequested = sum(1 for t in rows if t["chunk"] >= 0 and int(t["action"][0]) // 1000 not in taken)
    return {
        "ticks": len(rows),
        "missed_ticks": missed,
        "stall_ticks": sum(1 for t in rows if t["stall"]),
        "stall_target": math.ceil(latency_ms / 1000.0 * fps),
        "unrequested_actions": unrequested,
    }


def run_abuse(folder: Path, phase_s: float = 5.0, latency_ms: float = 30.0, fps: float = 30.0) -> dict[str, Any]:
    """Run every phase against a live server and robot; per-phase figures and whether targets held."""
    import yaml

    from vlash.launchfile import free_port

    folder.mkdir(parents=True, exist_ok=True)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    launch = folder / "abuse.yaml"
    here = "vlash.experiments.bench_abuse"
    launch.write_text(yaml.safe_dump({
        "name": "abuse", "fps": fps, "mode": "vlash", "endpoint": endpoint,
        "inference": {"policy": {"factory": f"{here}:StampingPolicy", "chunk_size": 20}, "latency": latency_ms},
        "robots": [{"id": "arm", "driver": {"factory": f"{here}:EchoArm", "fps": fps}, "chunk_size": 20,
                    "execution_horizon": 10, "request_timeout_s": 0.5}],
    }, sort_keys=False))  # fmt: skip
    vlash = [sys.executable, "-m", "vlash.cli"]
    server_log = open(folder / "serve.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen([*vlash, "serve", str(launch)], stdout=subprocess.DEVNULL, stderr=server_log)
    control = subprocess.Popen([*vlash, "control", str(launch), "--out", str(folder / "arm"), "--status", "json"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    status: dict[str, Any] = {}
    reader = threading.Thread(target=lambda: [status.update(json.loads(line[7:])) for line in control.stdout
                                              if line.startswith("STATUS ")], daemon=True)
    reader.start()
    phases: dict[str, dict[str, Any]] = {}
    try:
        end = time.monotonic() + 120
        while status.get("chunks", 0) < 3:
            if time.monotonic() > end or control.poll() is not None or server.poll() is not None:
                raise RuntimeError(f"the robot was never served; see {folder}")
            time.sleep(0.1)
        for phase in PHASES:
            cpu0, t0 = _cpu_s(server.pid), time.time()
            sent = _attack(endpoint, phase, "arm", phase_s)
            t1, cpu1 = time.time(), _cpu_s(server.pid)
            phases[phase] = {"window": (t0, t1), "attack_messages": sent,
                             "server_cpu_ms": round((cpu1 - cpu0) * 1000, 1),
                             "server_cpu_us_per_message": round((cpu1 - cpu0) * 1e6 / sent, 1) if sent else None}
            print(f"[abuse] {phase}: {sent} messages in {t1 - t0:.1f} s", file=sys.stderr, flush=True)
    finally:
        for proc in (control, server):  # the robot first, so its log ends while the server still answers
            interrupt(proc, 20)
        server_log.close()
    ticks = [json.loads(line) for line in (folder / "arm" / "ticks.jsonl").read_text().splitlines()]
    taken = {json.loads(line)["obs_step"] for line in (folder / "arm" / "chunks.jsonl").read_text().splitlines()}
    for row in phases.values():
        row.update(_phase_report(ticks, taken, row.pop("window"), latency_ms, fps))
        row["ok"] = row["missed_ticks"] == 0 and row["unrequested_actions"] == 0 and row["stall_ticks"] <= row["stall_target"]
    return {"phase_s": phase_s, "latency_ms": latency_ms, "fps": fps, "phases": phases,
            "ok": all(row["ok"] for row in phases.values()), "control_exit_code": control.returncode,
            "server_exit_code": server.returncode}
