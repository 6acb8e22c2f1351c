"""``vlash control LAUNCH.yaml --robot ID``: one robot's control process (on the robot host)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

from vlash.control import ControlConfig, ControlLoop
from vlash.factory import build
from vlash.heap import freeze_startup_heap
from vlash.launchfile import load_launch
from vlash.runlog import RunLog


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("launch", help="launch file (YAML)")
    parser.add_argument("--robot", help="robot id (default: the first robot in the file)")
    parser.add_argument("--endpoint", help="override the launch file's endpoint")
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--out", default="runs/control", help="run folder (ticks, chunks, summary)")
    parser.add_argument("--status", choices=["line", "json", "none"], default="line", help="live status format")
    parser.add_argument("--connect-timeout", type=float, default=60.0, help="seconds to wait for the server's Config")


def print_status(status: dict, fmt: str) -> None:
    if fmt == "json":
        print("STATUS " + json.dumps(status), flush=True)
    elif fmt == "line":
        line = (
            f"{status['robot']}: tick {status['ticks']}  stalls {status['stall_ticks']}  missed {status['missed_ticks']}"
            f"  Δ {status['delay_steps']}  rtt {status['rtt_ms']} ms  chunks {status['chunks']}"
        )
        print("\r" + line.ljust(100), end="", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from vlash.bus import KEYS_HINT, ControlEndpoint
    from vlash.curve import InsecureEndpointError, check_endpoint
    from vlash.launchfile import client_curve

    spec = load_launch(args.launch)
    robot = spec.robot(args.robot) if args.robot else spec.robots[0]
    endpoint = args.endpoint or spec.endpoint
    try:  # before the robot is connected: a refused endpoint or a bad key must not leave it powered
        curve = client_curve(spec)
        check_endpoint(endpoint, curve)
    except ValueError as exc:  # InsecureEndpointError, unreadable or malformed key files
        print(f"vlash control: {exc}{KEYS_HINT if isinstance(exc, InsecureEndpointError) else ''}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    driver = build(robot.driver)
    driver.connect()
    try:
        bus = ControlEndpoint(endpoint, robot.id, curve=curve)
    except BaseException:
        driver.disconnect()
        raise
    out = Path(args.out)
    config = ControlConfig(
        robot_id=robot.id,
        mode=robot.mode,
        chunk_size=robot.chunk_size,
        execution_horizon=robot.execution_horizon,
        quantization=robot.quantization,
        fps=spec.fps,
        max_step=robot.max_step,
        request_timeout_s=robot.request_timeout_s,
        link_timeout_s=robot.link_timeout_s,
    )
    loop = ControlLoop(driver, bus, config, RunLog(out), on_status=lambda s: print_status(s, args.status))
    try:
        connected = loop.wait_for_server(args.connect_timeout, stop)
        if not connected and not stop.is_set():
            print(f"[control] no answer from {endpoint} after {args.connect_timeout:.0f}s; starting anyway "
                  "(the robot holds until chunks arrive)", file=sys.stderr, flush=True)
        freeze_startup_heap()  # a full garbage collection would cost a whole control period
        started = time.monotonic()
        summary = loop.run(duration_s=args.duration, stop=stop)
        summary["wall_s"] = round(time.monotonic() - started, 3)
    finally:
        bus.close()
        driver.disconnect()
    if args.status == "line":
        print(file=sys.stderr)
    print("SUMMARY " + json.dumps(summary), flush=True)
    return 0
