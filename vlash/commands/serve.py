"""``vlash serve LAUNCH.yaml``: the inference process alone (e.g. on the GPU host)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from vlash.heap import freeze_startup_heap
from vlash.inference import InferenceServer, ServerConfig
from vlash.launchfile import LaunchError, LaunchSpec, check_factories, load_launch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("launch", help="launch file (YAML); its 'inference' section and endpoint are used")
    parser.add_argument("--endpoint", help="override the launch file's endpoint")
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--quiet", action="store_true", help="no log lines")


def latency_distribution(spec: LaunchSpec):
    """The launch file's emulated model latency, parsed; None when it asks for none."""
    latency = spec.inference.latency
    if latency is None:
        return None
    from policies.latency import parse_latency

    try:
        return parse_latency(latency)
    except ValueError as exc:
        raise LaunchError(f"{spec.source}: inference.latency: {exc}") from None


def check(spec: LaunchSpec) -> None:
    """The inference side of the launch file, before anything starts: policy and estimator factories, latency."""
    check_factories(spec, robots=())
    latency_distribution(spec)


def build_policy(spec: LaunchSpec):
    """The launch file's policy, wrapped in latency emulation when it asks for it."""
    policy = spec.inference.policy.build()
    distribution = latency_distribution(spec)
    if distribution is not None:
        from policies.latency import LatencyEmulation

        policy = LatencyEmulation(policy, distribution=distribution, per_item_ms=spec.inference.latency_per_item_ms)
    return policy


def server_config(spec: LaunchSpec) -> ServerConfig:
    """The one conversion from the typed launch file to the server's settings."""
    inf = spec.inference
    return ServerConfig(
        mode=spec.mode,
        estimator=inf.estimator,
        estimator_options=dict(inf.estimator_options),
        fps=spec.fps,
        fixed_delay_steps=inf.fixed_delay_steps,
        delay_quantile=inf.delay_quantile,
        delay_margin_steps=inf.delay_margin_steps,
        max_delay_steps=inf.max_delay_steps,
        batching=inf.batching,
        gather_ms=inf.batch_gather_ms,
    )


def run(args: argparse.Namespace) -> int:
    import zmq

    from vlash.bus import KEYS_HINT, InferenceEndpoint
    from vlash.curve import InsecureEndpointError, check_endpoint
    from vlash.launchfile import server_curve

    spec = load_launch(args.launch)
    check(spec)
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

    if curve is not None and curve.allowed_client_keys is None:
        print("[serve] warning: curve keys without allowed_clients or robot_keys: any client that knows the "
              "server's public key gets in (list the robots' public keys in curve.allowed_clients)",
              file=sys.stderr, flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    policy = build_policy(spec)
    # the server answers Hellos itself; a robot it does not know (e.g. after a restart) is told
    # so and says Hello again, so it is never served with the server's default mode and fps
    try:
        bus = InferenceEndpoint(endpoint, curve=curve)
    except zmq.ZMQError as exc:  # e.g. the port is still held by another server
        print(f"vlash serve: cannot bind {endpoint}: {exc}", file=sys.stderr)
        return 2
    server = InferenceServer(bus, policy, server_config(spec), log=log)
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
