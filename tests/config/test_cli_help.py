"""Every option of every vlash command (and of every benchmark) says what it does, its default and its choices."""

from __future__ import annotations

import argparse
import io
from contextlib import redirect_stdout

import pytest

from vlash.cli import COMMANDS, command_parser, help_text, main, shown
from vlash.commands.bench import BENCHMARKS, benchmark_parser


def parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """``(prog, parser)`` of every command with ``add_arguments`` and of every ``vlash bench NAME``."""
    import importlib

    out = [(f"vlash {n}", command_parser(n)) for n, (m, _) in COMMANDS.items()
           if hasattr(importlib.import_module(m), "add_arguments")]
    return out + [(f"vlash bench {n}", benchmark_parser(n)) for n in BENCHMARKS]


def options() -> list[tuple[str, argparse.Action]]:
    return [(f"{prog} {'/'.join(a.option_strings) or a.dest}", a) for prog, parser in parsers() for a in parser._actions
            if not isinstance(a, argparse._HelpAction | argparse._VersionAction)]


def test_every_command_and_benchmark_is_walked():
    progs = {prog for prog, _ in parsers()}
    assert {f"vlash {n}" for n in COMMANDS if n != "bench"} <= progs  # bench parses NAME itself: its benchmarks are
    assert {f"vlash bench {n}" for n in BENCHMARKS} <= progs
    assert len(options()) > 80


@pytest.mark.parametrize("name, action", options(), ids=[name for name, _ in options()])
def test_option_has_help_showing_its_default_and_choices(name: str, action: argparse.Action):
    assert (action.help or "").strip(), f"{name} has no help text"
    shown_help = help_text(action) % {**vars(action), "default": shown(action.default), "prog": "vlash"}
    if action.option_strings and action.nargs != 0 and not action.required:
        if action.default in (None, "", [], ()):  # nothing to print: the text must say what happens without it
            assert "default" in shown_help.lower() or "override" in shown_help.lower(), \
                f"{name}: say what happens when it is not given: {shown_help!r}"
        else:
            assert shown(action.default) in shown_help or "default" in (action.help or "").lower(), (name, shown_help)
    for choice in action.choices or ():
        assert str(choice) in shown_help or action.metavar is None, f"{name}: choice {choice} not shown"


def test_help_output_shows_defaults_and_choices():
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(out.getvalue().split())
    assert "(default: reach,track,whack,pick_place)" in text and "(default: sync,naive,vlash)" in text
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(out.getvalue().split())
    assert "--state-source {action,state}" in text and "--preset {small,lerobot}" in text


def test_record_without_video_prints_only_its_own_lines(tmp_path):
    """No codec or OpenGL lines from LeRobot's writer or the renderer: stdout is the summary, stderr the bar."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "vlash.cli", "record", "--task", "reach", "--episodes", "1",
                           "--cameras", "front", "--image-size", "32", "--out", str(tmp_path / "ds")],
                          capture_output=True, text=True, timeout=240, env=env, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1 and proc.stdout.startswith("wrote 1 episodes, "), proc.stdout
    for noise in ("codec", "OpenGL", "EGL", "GLFW", "Traceback"):
        assert noise.lower() not in (proc.stdout + proc.stderr).lower(), (noise, proc.stderr)
