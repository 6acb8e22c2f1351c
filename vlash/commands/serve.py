"""``vlash serve LAUNCH.yaml``: the inference process alone (e.g. on the GPU host)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from vlash.factory import build
from vlash.heap import freeze_startup_heap
from vlash.inference import InferenceServer, ServerConfig
from vlash.launchfile import LaunchSpec, load_launch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("launch", help="launch file (YAML); its 'inference' section and endpoint are used")
    parser.add_argument("--endpoint", help="override the launch file's endpoint")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--quiet", action="store_true", help="no log lines")


def build_policy(spec: LaunchSpec):
    """The launch file's policy, wrapped in latency emulation when it asks for it."""
    inference = spec.inference
    policy = build(inference["policy"])
    if inference.get("latency") is not None:
        from policies.latency import LatencyEmulation

        policy = LatencyEmulation(policy, distribution=str(inference["latency"]))
    return policy


def server_config(spec: LaunchSpec) -> ServerConfig:
    inf = spec.inference
    return ServerConfig(
        mode=spec.mode,
        estimator=inf.get("estimator"),
        estimator_options=inf.get("estimator_options") or {},
        fps=spec.fps,
        fixed_delay_steps=inf.get("fixed_delay_steps"),
        delay_quantile=inf.get("delay_quantile", 0.95),
        delay_margin_steps=inf.get("delay_margin_steps", 1),
        max_delay_steps=inf.get("max_delay_steps"),
    )


def run(args: argparse.Namespace) -> int:
    import zmq

    from vlash.bus import KEYS_HINT, InferenceEndpoint
    from vlash.curve import InsecureEndpointError, check_endpoint
    from vlash.launchfile import server_curve

    spec = load_launch(args.launch)
    endpoint = args.endpoint or spec.endpoint
    try:  # before the (possibly slow) policy load: a refused endpoint or a bad key fails at once
        curve = server_curve(spec)
        check_endpoint(endpoint, curve)
    except ValueError as exc:  # InsecureEndpointError, unreadable or malformed key files
        print(f"vlash serve: {exc}{KEYS_HINT if isinstance(exc, InsecureEndpointError) else ''}", file=sys.stderr)
        return 2

    def log(line: str) -> None:
        if not args.quiet:
            print(f"[serve] {line}", file=sys.stderr, flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    policy = build_policy(spec)
    # require_hello: a robot the server does not know (e.g. after a restart) is told so and says
    # Hello again, so it is never served with the server's default mode and fps
    try:
        bus = InferenceEndpoint(endpoint, curve=curve, require_hello=True)
    except zmq.ZMQError as exc:  # e.g. the port is still held by another server
        print(f"vlash serve: cannot bind {endpoint}: {exc}", file=sys.stderr)
        return 2
    server = InferenceServer(bus, policy, server_config(spec), log=log)
    bus.on_hello = server.on_hello
    log(f"serving {type(policy).__name__} on {endpoint} (mode {spec.mode})")
    freeze_startup_heap()  # keeps full garbage collections (~85 ms with torch) out of the model latency
    started = time.monotonic()
    try:
        server.run(stop=stop, duration_s=args.duration)
    finally:
        bus.close()
        model = sorted(server.model_ms)
        p50 = model[len(model) // 2] if model else float("nan")
        log(
            f"stopped after {time.monotonic() - started:.1f}s: {server.counters['chunks_sent']} chunks, "
            f"model p50 {p50:.1f} ms, counters {dict(server.counters)} bus {dict(bus.counters)}"
        )
    return 0
