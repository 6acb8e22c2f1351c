"""``vlash bench transport``: round-trip latency of the bus between two real processes.

A control-side process (this one) sends an :class:`Observation` (two 224x224x3 images and a
6-dim state) through a :class:`ControlEndpoint`; an inference-side process (spawned) answers
each one through an :class:`InferenceEndpoint` with a 50x6 :class:`ActionChunk`. The round trip
is timed from just before the observation is encoded to just after its chunk is decoded, so it
includes both encodes, both decodes and ZeroMQ over loopback TCP. Encode and decode times of
the observation alone are timed separately in this process. Both processes wait in
``zmq_poll`` (no spinning), as the runtime does.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

TARGET_RTT_MS_P50 = 0.5
IMAGE_SHAPE = (224, 224, 3)
STATE_DIM, CHUNK_LEN = 6, 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--round-trips", type=int, default=2000, help="timed round trips (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed round trips first (default 200)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder for transport.json")
    parser.add_argument(
        "--jpeg", type=int, default=None, metavar="Q", help="send images as JPEG of quality Q, 1..100 (default: raw pixels)"
    )


def run(args: argparse.Namespace) -> int:
    if args.round_trips < 1 or args.warmup < 0:
        print("vlash bench transport: --round-trips must be >= 1 and --warmup >= 0", file=sys.stderr)
        return 2
    if args.jpeg is not None and not 1 <= args.jpeg <= 100:
        print("vlash bench transport: --jpeg must be in 1..100", file=sys.stderr)
        return 2
    result = measure(args.round_trips, args.warmup, args.jpeg)
    print(format_table(result))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "transport.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


def test_images() -> dict[str, np.ndarray]:
    """Two deterministic camera-like frames: smooth gradients with a little noise."""
    rng = np.random.default_rng(0)
    h, w, _ = IMAGE_SHAPE
    yy, xx = np.mgrid[0:h, 0:w]
    images = {}
    for i, name in enumerate(("front", "wrist")):
        base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy + 60 * i) % 256], axis=-1)
        noisy = base + rng.normal(0, 4, IMAGE_SHAPE)
        images[name] = np.clip(noisy, 0, 255).astype(np.uint8)
    return images


def _observation(seq: int, images: dict[str, np.ndarray], state: np.ndarray):
    from vlash.messages import Observation

    return Observation(
        robot_id="bench",
        seq=seq,
        step=seq,
        wall_time=time.time(),
        state=state,
        images=images,
        task="pick up the cube",
        plan_start_step=seq,
        plan=np.zeros((0, STATE_DIM), np.float32),
    )


def _serve(conn: Any, endpoint: str = "tcp://127.0.0.1:*") -> None:
    """Inference side: accept every Hello, answer every observation with a chunk until told to stop (or idle 60 s)."""
    from vlash.bus import InferenceEndpoint
    from vlash.messages import ActionChunk, Config

    actions = np.linspace(-1, 1, CHUNK_LEN * STATE_DIM, dtype=np.float32).reshape(CHUNK_LEN, STATE_DIM)
    with InferenceEndpoint(endpoint, heartbeat_timeout_s=60.0) as bus:
        conn.send(bus.endpoint)
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 60.0:
            if not bus.poll(timeout_ms=50):
                if conn.poll():
                    break
                continue
            idle_since = time.monotonic()
            for hello in bus.hellos():
                bus.send(hello.robot_id, Config(hello.robot_id, 0, True, {"chunk_size": CHUNK_LEN}))
            for robot, obs in bus.latest().items():
                bus.send(
                    robot, ActionChunk(robot, obs.seq, obs.seq, obs.seq, obs.step, obs.step + 1, actions)
                )
        conn.send(bus.counters)


def measure(round_trips: int, warmup: int = 200, jpeg_quality: int | None = None, gap_s: float = 0.0,
            endpoint: str = "tcp://127.0.0.1:*") -> dict[str, Any]:
    """Run the benchmark and return the figures written to ``transport.json``.

    ``gap_s`` idles both processes between round trips (as a model call does): on a virtual machine an
    idle CPU is slow to wake, so a round trip after a gap costs more than back-to-back ones.
    """
    from vlash.bus import ControlEndpoint
    from vlash.messages import ActionChunk, Config, Hello, decode, encode

    images = test_images()
    state = np.linspace(-0.5, 0.5, STATE_DIM, dtype=np.float32)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child, endpoint), name="vlash-bench-server", daemon=True)
    server.start()
    rtt_ms: list[float] = []
    lost = 0
    server_counters: dict[str, int] = {}
    try:
        if not parent.poll(60):
            raise RuntimeError("benchmark server did not start")
        endpoint = parent.recv()
        with ControlEndpoint(endpoint, "bench", jpeg_quality=jpeg_quality, heartbeat_timeout_s=60.0) as bus:
            if not _handshake(bus, Hello("bench", 0, fps=30.0), Config):
                raise RuntimeError("benchmark server did not answer the Hello")
            for seq in range(warmup + round_trips):
                obs = _observation(seq, images, state)
                t0 = time.perf_counter()
                chunk = _round_trip(bus, obs, ActionChunk)
                t1 = time.perf_counter()
                if chunk is None:
                    lost += 1
                elif seq >= warmup:
                    rtt_ms.append((t1 - t0) * 1000.0)
                if gap_s > 0:
                    time.sleep(gap_s)
            client_counters = bus.counters
        parent.send("stop")
        if parent.poll(10):
            server_counters = parent.recv()
    finally:
        server.join(5)
        if server.is_alive():
            server.terminate()
            server.join(5)
        if server.is_alive():
            server.kill()
            server.join()

    obs = _observation(0, images, state)
    payload = encode(obs, jpeg_quality=jpeg_quality)
    chunk_payload = encode(
        ActionChunk(
            "bench", 0, 0, 0, 0, 1, np.zeros((CHUNK_LEN, STATE_DIM), np.float32), "vlash", 1, "target"
        )
    )
    encode_ms = _time_ms(lambda: encode(obs, jpeg_quality=jpeg_quality), round_trips)
    decode_ms = _time_ms(lambda: decode(payload), round_trips)
    if not rtt_ms:
        raise RuntimeError(f"no round trip completed ({lost} lost)")
    p50 = float(np.percentile(rtt_ms, 50))
    return {
        "rtt_ms_p50": p50,
        "rtt_ms_p90": float(np.percentile(rtt_ms, 90)),
        "rtt_ms_p99": float(np.percentile(rtt_ms, 99)),
        "rtt_ms_max": float(np.max(rtt_ms)),
        "rtt_ms_mean": float(np.mean(rtt_ms)),
        "encode_ms_p50": float(np.percentile(encode_ms, 50)),
        "decode_ms_p50": float(np.percentile(decode_ms, 50)),
        "payload_bytes": len(payload),
        "chunk_bytes": len(chunk_payload),
        "n": len(rtt_ms),
        "warmup": warmup,
        "lost": lost,
        "jpeg_quality": jpeg_quality,
        "target_rtt_ms_p50": TARGET_RTT_MS_P50,
        "meets_target": p50 <= TARGET_RTT_MS_P50,
        "client_counters": client_counters,
        "server_counters": server_counters,
        "machine": _machine(),
    }


def _handshake(bus: Any, hello: Any, config_type: type, timeout_s: float = 10.0) -> bool:
    """Send ``hello`` (the bus routes only robots that said Hello) and wait for its Config."""
    deadline = time.monotonic() + timeout_s
    bus.send(hello)
    while time.monotonic() < deadline:
        if any(isinstance(msg, config_type) for msg in bus.poll(timeout_ms=100)):
            return True
    return False


def _round_trip(bus: Any, obs: Any, chunk_type: type) -> Any:
    """Send ``obs`` and wait (in zmq_poll) for the chunk answering it; None after 5 s."""
    deadline = time.monotonic() + 5.0
    while not bus.send(obs):  # only before the connection is up
        if time.monotonic() > deadline:
            return None
        time.sleep(0.001)
    while time.monotonic() < deadline:
        for msg in bus.poll(timeout_ms=100):
            if isinstance(msg, chunk_type) and msg.obs_seq == obs.seq:
                return msg
    return None


def _time_ms(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(max(n, 1)):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def _machine() -> dict[str, Any]:
    import msgpack
    import zmq

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "msgpack": ".".join(map(str, msgpack.version)),
    }


def format_table(r: dict[str, Any]) -> str:
    """A small human-readable summary of :func:`measure`'s result."""
    codec = f"JPEG q{r['jpeg_quality']}" if r["jpeg_quality"] else "raw"
    verdict = "meets" if r["meets_target"] else "misses"
    rows = [
        ("round trips", f"{r['n']} (+{r['warmup']} warm-up, {r['lost']} lost)"),
        (
            "observation",
            f"2x{IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]}x3 {codec} + {STATE_DIM}-dim state: {r['payload_bytes']} B",
        ),
        ("chunk", f"{CHUNK_LEN}x{STATE_DIM} float32: {r['chunk_bytes']} B"),
        ("rtt p50 / p90 / p99", f"{r['rtt_ms_p50']:.3f} / {r['rtt_ms_p90']:.3f} / {r['rtt_ms_p99']:.3f} ms"),
        ("rtt mean / max", f"{r['rtt_ms_mean']:.3f} / {r['rtt_ms_max']:.3f} ms"),
        ("encode / decode p50", f"{r['encode_ms_p50']:.3f} / {r['decode_ms_p50']:.3f} ms (observation)"),
        ("target", f"rtt p50 <= {r['target_rtt_ms_p50']} ms: {verdict}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
