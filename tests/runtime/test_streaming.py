"""The streaming schedule (``execution_horizon: auto``) in real processes and in ``vlash eval``."""

from __future__ import annotations

import json
import subprocess

import yaml

from tests.faults.procs import ROOT, VLASH, robot, write_launch
from vlash.commands.launch import launch
from vlash.launchfile import load_launch
from vlash.runlog import read_jsonl


def test_a_streaming_robot_asks_again_at_the_step_each_chunk_arrives(tmp_path):
    path = write_launch(tmp_path, robots=[robot("arm", execution_horizon="auto", chunk_size=20)])
    spec = load_launch(path)
    assert spec.robots[0].execution_horizon == "auto"
    summary = launch(spec, tmp_path / "run", duration=3.0, quiet=True)["robots"]["arm"]
    chunks = read_jsonl(tmp_path / "run" / "arm" / "chunks.jsonl")
    assert summary["exit_code"] == 0 and len(chunks) >= 10
    # back to back: each request went out at the step the previous chunk took over (K = Δ: the step it
    # arrived, or its start step if it arrived early because the Δ estimate was above the true delay)
    follows = [b["obs_step"] == a["first_step"] for a, b in zip(chunks, chunks[1:], strict=False)]
    assert sum(follows) >= len(follows) - 1, [(c["obs_step"], c["arrival_step"], c["first_step"]) for c in chunks]
    assert all(a["first_step"] >= a["arrival_step"] for a in chunks)
    assert summary["stall_ticks"] == 0 or summary["stall_ticks"] <= summary["chunks"]


def test_eval_runs_the_streaming_schedule(tmp_path):
    out = tmp_path / "eval"
    proc = subprocess.run([*VLASH, "eval", "--tasks", "reach", "--modes", "naive,vlash", "--delays", "2",
                           "--episodes", "1", "--execution-horizon", "auto", "--workers", "1", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = json.loads((out / "results.json").read_text())
    assert {r["execution_horizon"] for r in records} == {"auto"} and {r["mode"] for r in records} == {"naive", "vlash"}
    bad = subprocess.run([*VLASH, "eval", "--execution-horizon", "soon", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "expected 'auto' or an integer" in bad.stderr


def test_a_launch_file_says_auto_or_a_number(tmp_path):
    from vlash.launchfile import LaunchError

    path = write_launch(tmp_path, robots=[robot("arm", execution_horizon="soon")])
    try:
        load_launch(path)
    except LaunchError as exc:
        assert "execution_horizon" in str(exc)
    else:
        raise AssertionError("'soon' accepted")
    data = yaml.safe_load(path.read_text())
    assert data["robots"][0]["execution_horizon"] == "soon"
