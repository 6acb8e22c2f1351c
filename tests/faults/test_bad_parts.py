"""A policy that returns garbage and cameras that die or stall, run through ``vlash launch``.

The driver records every action it is sent: none may be non-finite, outside the joint limits or
change by more than the per-tick limit. A dead or stuck camera must not slow the loop down; the
driver's camera counters in the summary say what happened.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np

from tests.faults.parts import read_actions
from tests.faults.procs import ROOT, VLASH, check_tick_log, counters_in_log, read_lines, robot, write_launch

FPS, DURATION = 30, 3.0


def launch(launch_file, out) -> dict:
    proc = subprocess.run(
        [*VLASH, "launch", str(launch_file), "--duration", str(DURATION), "--out", str(out), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "summary.json").read_text())


def test_no_invalid_action_reaches_the_driver(tmp_path):
    actions_file = tmp_path / "actions.txt"
    driver = {"factory": "tests.faults.parts:RecordingDriver", "log_path": str(actions_file), "max_step": 0.05}
    launch_file = write_launch(
        tmp_path,
        inference={"policy": {"factory": "tests.faults.parts:BadPolicy", "chunk_size": 20}, "latency": 30},
        robots=[robot("arm", driver)],
    )
    out = tmp_path / "run"
    summary = launch(launch_file, out)["robots"]["arm"]
    actions, tags = read_actions(actions_file)
    assert len(actions) == summary["ticks"]  # one action per tick, every one recorded
    assert tags == {"float32 (2,)"}
    assert np.all(np.isfinite(actions))
    assert np.all(np.abs(actions) <= 1.0)
    assert np.all(np.abs(np.diff(actions, axis=0)) <= 0.05 + 1e-6)
    assert np.all(np.abs(actions[0]) <= 0.05 + 1e-6)  # the first step, from the resting state 0
    counters = summary["counters"]
    assert counters["safety_clipped"] > 0 and counters["safety_rate_limited"] > 0
    # NaN, inf and wrong-shape chunks never left the server; it said so and kept serving
    served, _ = counters_in_log((out / "serve.log").read_text())
    assert served["invalid_chunks"] >= 2 and served["chunks_sent"] >= 2
    assert counters.get("got_error", 0) >= 1 and counters.get("chunk_rejected_invalid", 0) == 0
    assert summary["ticks"] + summary["missed_ticks"] == int(DURATION * FPS)
    check_tick_log(read_lines(out / "arm" / "ticks.jsonl"))


def test_dead_and_stalled_cameras_do_not_stop_the_loop(tmp_path):
    driver = {"factory": "tests.faults.parts:CameraDriver", "good_frames": 5}
    launch_file = write_launch(tmp_path, robots=[robot("arm", driver)])
    out = tmp_path / "run"
    summary = launch(launch_file, out)["robots"]["arm"]
    # the loop kept its schedule: every step was ticked or counted as missed (how many are missed
    # depends on the machine's load, not on the cameras: a read that waited on the stalled camera
    # would block forever, and the stale reads below show reads returned after the stall)
    assert summary["ticks"] + summary["missed_ticks"] == int(DURATION * FPS)
    assert summary["chunks"] >= 2  # observations (with the last good frames) kept going out
    cameras = summary["driver"]["cameras"]
    assert cameras["dies"]["alive"] is False and "crashed" in cameras["dies"]["fatal"]
    assert cameras["stalls"]["alive"] is True and cameras["stalls"]["frames"] == 5
    assert cameras["dies"]["stale_reads"] > 0 and cameras["stalls"]["stale_reads"] > 0
    assert cameras["ok"]["frames"] > 5 and cameras["ok"]["fatal"] is None
    ticks = read_lines(out / "arm" / "ticks.jsonl")
    assert len(ticks) == summary["ticks"]
    check_tick_log(ticks)
    assert ticks[-1]["events"]["cameras_alive"] == 2  # the log shows the dead camera
