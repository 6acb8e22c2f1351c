"""``vlash control LAUNCH.yaml --robot ID``: one robot's control process (on the robot host)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from vlash.control import ControlConfig, ControlLoop
from vlash.heap import freeze_startup_heap
from vlash.launchfile import LaunchSpec, RobotSpec, check_factories, load_launch
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


def check(spec: LaunchSpec, robot: RobotSpec) -> None:
    """This robot's side of the launch file, before anything starts: its driver factory and keywords."""
    check_factories(spec, inference=False, robots=[robot.id])


def control_config(spec: LaunchSpec, robot: RobotSpec) -> ControlConfig:
    """The one conversion from the typed launch file to one robot's control settings."""
    return ControlConfig(
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


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event that SIGINT and SIGTERM set while the block runs; the previous handlers come back after."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace) -> int:
    import zmq

    from vlash.bus import KEYS_HINT, ControlEndpoint
    from vlash.curve import InsecureEndpointError, check_endpoint
    from vlash.launchfile import client_curve

    # everything that can be checked is, before the robot is built or connected
    spec = load_launch(args.launch)
    robot = spec.robot(args.robot) if args.robot else spec.robots[0]
    check(spec, robot)
    config = control_config(spec, robot)
    endpoint = args.endpoint or spec.endpoint
    try:  # a refused endpoint or a bad key must not leave the robot powered
        curve = client_curve(spec)
        check_endpoint(endpoint, curve)
    except ValueError as exc:  # InsecureEndpointError, unreadable or malformed key files
        print(f"vlash control: {exc}{KEYS_HINT if isinstance(exc, InsecureEndpointError) else ''}", file=sys.stderr)
        return 2
    run_log = RunLog(Path(args.out))  # an unusable run folder, too, fails before the robot moves
    with stop_on_signals() as stop, ExitStack() as cleanup:
        driver = robot.driver.build()
        try:
            bus = ControlEndpoint(endpoint, robot.id, curve=curve)
        except zmq.ZMQError as exc:  # e.g. tcp://127.0.0.1:notaport
            print(f"vlash control: cannot connect to {endpoint}: {exc}", file=sys.stderr)
            return 2
        cleanup.callback(bus.close)
        cleanup.enter_context(driver)  # connects; disconnects on every way out of this block
        loop = ControlLoop(driver, bus, config, run_log, on_status=lambda s: print_status(s, args.status))
        connected = loop.wait_for_server(args.connect_timeout, stop)
        if not connected and not stop.is_set():
            print(f"[control] no answer from {endpoint} after {args.connect_timeout:.0f}s; starting anyway "
                  "(the robot holds until chunks arrive)", file=sys.stderr, flush=True)
        freeze_startup_heap()  # a full garbage collection would cost a whole control period
        started = time.monotonic()
        summary = loop.run(duration_s=args.duration, stop=stop)
        summary["wall_s"] = round(time.monotonic() - started, 3)
    if args.status == "line":
        print(file=sys.stderr)
    print("SUMMARY " + json.dumps(summary), flush=True)
    return 0
