"""``vlash launch FILE.yaml``: start the inference process and every robot's control process.

Validates the whole file first (values, factories and their keyword arguments: a bad one is a
one-line error before anything starts), then runs the processes under :mod:`vlash.supervisor`
and draws each robot's ``timeline.png`` (once, in its folder).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from vlash.commands.control import add_view_arguments, check_view_arguments
from vlash.launchfile import LaunchSpec, load_launch
from vlash.live_view import SPAWN, LiveViewUnavailable, spawn_viewer
from vlash.supervisor import LaunchFailed, supervise


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("launch", help="launch file (YAML), e.g. launch/sim_vlash.yaml")
    parser.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    parser.add_argument("--out", help="run folder (default: runs/NAME-TIMESTAMP)")
    parser.add_argument("--quiet", action="store_true", help="no live status line")
    add_view_arguments(parser)


def view_arguments(args: argparse.Namespace, spec: LaunchSpec, out: Path) -> dict[str, list[str]]:
    """Each robot's ``--display``/``--save-rrd`` options; one local viewer is spawned here for all of them.

    ``--save-rrd`` alone: ``RUN/ROBOT/recording.rrd``; with a PATH and several robots, the robot's id is
    added to the file name (``x.rrd`` -> ``x-ROBOT.rrd``).
    """
    display = args.display
    if display == SPAWN:
        display = spawn_viewer()  # before the robots start, so that they all stream to this one
    per_robot = {}
    for robot in spec.robots:
        extra = [] if display is None else ["--display", display]
        if args.save_rrd is not None:
            path = Path(args.save_rrd) if args.save_rrd else out / robot.id / "recording.rrd"
            if args.save_rrd and len(spec.robots) > 1:
                path = path.with_name(f"{path.stem}-{robot.id}{path.suffix or '.rrd'}")
            extra += ["--save-rrd", str(path)]
        per_robot[robot.id] = extra
    return per_robot


def launch(spec: LaunchSpec, out: Path, duration: float | None, quiet: bool = False,
           control_args: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Check the spec's factories, run it into ``out`` and plot each robot's timeline; the combined summary.

    Raises :class:`~vlash.launchfile.LaunchError` (a ValueError) before anything starts when a
    factory or its keyword arguments are wrong, and :class:`LaunchFailed` when a process failed
    (after writing the run folder and its plots).
    """
    from vlash.commands import control, serve

    serve.check(spec)  # factories are imported here, before any process or run folder exists
    for robot in spec.robots:
        control.check(spec, robot)
    try:
        return supervise(spec, out, duration, quiet, control_args)
    finally:
        plot_timelines(out, [r.id for r in spec.robots])


def plot_timelines(out: Path, robot_ids: list[str]) -> list[Path]:
    """Draw ``timeline.png`` once in each robot's folder (beside its ``ticks.jsonl``); the files written.

    (There is no copy at the top of the run folder: one file per robot, drawn once.)
    """
    from vlash.experiments.plots import timeline

    return [timeline(out / robot) for robot in robot_ids if (out / robot / "ticks.jsonl").exists()]


def run(args: argparse.Namespace) -> int:
    from vlash.bus import KEYS_HINT
    from vlash.curve import InsecureEndpointError, check_endpoint
    from vlash.launchfile import client_curve, server_curve

    spec = load_launch(args.launch)  # every key checked before anything starts (factories: in launch())
    try:  # and the endpoint: off-host only with CurveZMQ keys, which must load
        check_endpoint(spec.endpoint, server_curve(spec))
        client_curve(spec)
    except ValueError as exc:
        print(f"vlash launch: {exc}{KEYS_HINT if isinstance(exc, InsecureEndpointError) else ''}", file=sys.stderr)
        return 2
    problem = check_view_arguments(args, "vlash launch")
    if problem:
        print(problem, file=sys.stderr)
        return 2
    out = Path(args.out or f"runs/{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        control_args = view_arguments(args, spec, out)
    except LiveViewUnavailable as exc:
        print(f"vlash launch: {exc}", file=sys.stderr)
        return 2
    try:
        summary = launch(spec, out, args.duration, args.quiet, control_args)
    except LaunchFailed as exc:
        print(f"vlash launch: {exc}", file=sys.stderr)
        return 1
    keys = ("ticks", "stall_ticks", "missed_ticks", "lateness_ms_p99", "rtt_ms_p50", "rtt_ms_p99", "chunks", "task_successes")
    print(f"{spec.name} ({spec.mode}): " + ", ".join(f"{k}={summary.get(k)}" for k in keys))
    print(f"run folder: {out} (timelines: " + ", ".join(f"{r.id}/timeline.png" for r in spec.robots) + ")")
    if args.save_rrd is not None:
        print("recordings (open with: rerun FILE): " + ", ".join(a[-1] for a in control_args.values()))
    return 0
