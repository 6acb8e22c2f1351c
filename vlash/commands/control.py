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
from vlash.live_view import (
    SPAWN,
    VIEWER_PORT,
    LiveView,
    LiveViewUnavailable,
    check_screen,
    parse_display,
    require_rerun,
)
from vlash.runlog import RunLog


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("launch", help="launch file (YAML)")
    parser.add_argument("--robot", help="robot id (default: the first robot in the file)")
    parser.add_argument("--endpoint", help="override the launch file's endpoint")
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--out", default="runs/control", help="run folder (ticks, chunks, summary)")
    parser.add_argument("--status", choices=["line", "json", "none"], default="line", help="live status format")
    parser.add_argument("--connect-timeout", type=float, default=60.0, help="seconds to wait for the server's Config")
    add_view_arguments(parser)


def add_view_arguments(parser: argparse.ArgumentParser) -> None:
    """``--display`` and ``--save-rrd``: the live view (rerun), for ``vlash control`` and ``vlash launch``."""
    parser.add_argument("--display", nargs="?", const=SPAWN, default=None, metavar="VIEWER",
                        help="stream cameras, joints vs targets, the queued plan, chunk switches, stalls, Δ and round "
                             "trips to rerun: 'spawn' (the default when given alone) opens a local viewer, or a viewer "
                             f"URL like rerun+http://HOST:{VIEWER_PORT}/proxy (needs rerun-sdk: the viz extra)")
    parser.add_argument("--save-rrd", nargs="?", const="", default=None, metavar="PATH",
                        help="save the same data as a rerun recording (.rrd); alone: recording.rrd in the robot's "
                             "run folder; default: none (needs rerun-sdk: the viz extra)")


def check_view_arguments(args: argparse.Namespace, prog: str) -> str | None:
    """One line saying why ``--display``/``--save-rrd`` cannot be used (bad viewer, rerun missing), or None."""
    if args.display is None and args.save_rrd is None:
        return None
    try:
        if args.display is not None:
            parse_display(args.display)
        require_rerun()
        if args.display == SPAWN:
            check_screen()
    except (ValueError, LiveViewUnavailable) as exc:
        return f"{prog}: {exc}"
    return None


def open_view(args: argparse.Namespace, spec: LaunchSpec, robot: RobotSpec, driver, fps: float):
    """The live view for this robot (None without --display/--save-rrd); saves into the run folder by default."""
    if args.display is None and args.save_rrd is None:
        return None
    save = None if args.save_rrd is None else Path(args.save_rrd or Path(args.out) / "recording.rrd")
    feats = driver.features
    return LiveView(robot.id, feats.joint_names, list(feats.cameras), fps, feats.action_kind, display=args.display,
                    save_path=save, recording_id=f"{spec.name}:{Path(spec.source).resolve()}")


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
    problem = check_view_arguments(args, "vlash control")
    if problem:
        print(problem, file=sys.stderr)
        return 2
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
        try:
            view = open_view(args, spec, robot, driver, config.fps or driver.features.fps)
        except LiveViewUnavailable as exc:  # e.g. no screen for a local viewer
            print(f"vlash control: {exc}", file=sys.stderr)
            return 2
        if view is not None:
            cleanup.callback(lambda: summary.setdefault("live_view", view.close()))
        summary: dict = {}
        loop = ControlLoop(driver, bus, config, run_log, on_status=lambda s: print_status(s, args.status), view=view)
        connected = loop.wait_for_server(args.connect_timeout, stop)
        if not connected and not stop.is_set():
            print(f"[control] no answer from {endpoint} after {args.connect_timeout:.0f}s; starting anyway "
                  "(the robot holds until chunks arrive)", file=sys.stderr, flush=True)
        freeze_startup_heap()  # a full garbage collection would cost a whole control period
        started = time.monotonic()
        summary.update(loop.run(duration_s=args.duration, stop=stop))
        summary["wall_s"] = round(time.monotonic() - started, 3)
    if args.status == "line":
        print(file=sys.stderr)
    print("SUMMARY " + json.dumps(summary), flush=True)
    return 0
