"""End to end: `vlash launch` runs the inference and control processes on the MuJoCo SO-101."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vlash.commands.launch import launch
from vlash.experiments.launch_specs import sim_spec
from vlash.launchfile import free_port, parse_launch
from vlash.runlog import read_jsonl

REPO = Path(__file__).resolve().parents[2]


def first_ticks(folder: Path) -> dict[int, int]:
    """chunk id -> the first step it was executed at."""
    first = {}
    for t in read_jsonl(folder / "ticks.jsonl"):
        if t["chunk"] >= 0:
            first.setdefault(t["chunk"], t["step"])
    return first


def test_vlash_mode_never_stalls_and_chunks_start_at_their_start_step(tmp_path):
    spec = sim_spec("e2e_vlash", "vlash", latency=60, horizon=20)
    summary = launch(parse_launch(spec, "e2e"), tmp_path, duration=4.0, quiet=True)
    robot = summary["robots"]["arm"]
    assert robot["exit_code"] == 0
    assert robot["stall_ticks"] == 0 and robot["chunks"] >= 3
    chunks = read_jsonl(tmp_path / "arm" / "chunks.jsonl")
    first = first_ticks(tmp_path / "arm")
    switched = [c for c in chunks[1:] if c["chunk"] in first]
    assert switched, "no chunk after the first was executed"
    for c in switched:
        assert c["start_step"] == c["obs_step"] + c["delay_steps"]
        assert first[c["chunk"]] == c["start_step"]  # takes over exactly at its start step
    assert (tmp_path / "summary.json").exists() and (tmp_path / "arm" / "timeline.png").exists()
    assert not (tmp_path / "timeline.png").exists()  # drawn once, in the robot's folder
    keys = {"ticks", "stall_ticks", "missed_ticks", "lateness_ms_p99", "rtt_ms_p50", "rtt_ms_p99", "chunks", "mode"}
    assert keys <= set(json.loads((tmp_path / "summary.json").read_text()))


def test_two_robots_share_one_batching_server_over_a_private_ipc_socket(tmp_path):
    import copy
    import os
    import stat

    spec = sim_spec("e2e_two", "vlash", latency=60, horizon=20)
    spec["endpoint"] = "ipc"
    spec["inference"].update(latency_per_item_ms=5, batching=True)
    second = copy.deepcopy(spec["robots"][0])
    second["id"], second["driver"]["seed"] = "arm2", 1
    spec["robots"].append(second)
    parsed = parse_launch(spec, "e2e")
    folder = parsed.endpoint.removeprefix("ipc://").rsplit("/", 1)[0]
    assert parsed.endpoint.startswith("ipc://") and stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    summary = launch(parsed, tmp_path, duration=4.0, quiet=True)
    for robot_id in ("arm", "arm2"):
        robot = summary["robots"][robot_id]
        assert robot["exit_code"] == 0 and robot["chunks"] >= 3  # (stalls: up to the 2 shared cores, not asserted)
        chunks = read_jsonl(tmp_path / robot_id / "chunks.jsonl")
        assert all(c["start_step"] == c["obs_step"] + c["delay_steps"] for c in chunks)
    assert yaml.safe_load((tmp_path / "launch.yaml").read_text())["endpoint"] == parsed.endpoint


def test_sync_mode_records_stalls(tmp_path):
    spec = sim_spec("e2e_sync", "sync", latency=100, horizon=15, chunk_size=15)
    robot = launch(parse_launch(spec, "e2e"), tmp_path, duration=3.0, quiet=True)["robots"]["arm"]
    assert robot["chunks"] >= 2
    assert robot["stall_ticks"] >= robot["chunks"] - 1 > 0
    stalls = [t for t in read_jsonl(tmp_path / "arm" / "ticks.jsonl") if t["stall"]]
    assert len(stalls) == robot["stall_ticks"]


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def test_killed_inference_means_hold_then_resume_after_restart(tmp_path, procs):
    spec = sim_spec("e2e_kill", "vlash", latency=30, horizon=10, chunk_size=20)
    spec["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    spec["robots"][0]["request_timeout_s"] = 0.3
    launch_file = tmp_path / "launch.yaml"
    launch_file.write_text(yaml.safe_dump(spec))
    vlash = [sys.executable, "-m", "vlash.cli"]

    def serve():
        p = subprocess.Popen(vlash + ["serve", str(launch_file), "--quiet"], cwd=REPO)
        procs.append(p)
        return p

    def status_lines(proc, n, until=lambda status: True, most=60):
        """The status after ``n`` more lines, and further until ``until(status)`` (at most ``most`` lines)."""
        out = []
        while len(out) < n or not until(out[-1]):
            line = proc.stdout.readline()
            assert line, "control process ended early"
            if line.startswith("STATUS "):
                out.append(json.loads(line[7:]))
            assert len(out) <= most, f"no such status in {most} lines: {out[-1]}"
        return out[-1]

    server = serve()
    control = subprocess.Popen(vlash + ["control", str(launch_file), "--out", str(tmp_path / "run"), "--status", "json",
                                        "--duration", "30"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    procs.append(control)
    before = status_lines(control, 1, until=lambda s: s["chunks"] > 0)
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    dead = status_lines(control, 2)
    held = status_lines(control, 1)
    assert held["ticks"] > dead["ticks"] > before["ticks"]  # still ticking
    assert held["chunks"] == dead["chunks"]  # nothing new while the server is gone
    serve()
    resumed = status_lines(control, 1, until=lambda s: s["chunks"] > held["chunks"])  # fresh chunks again
    assert resumed["ticks"] > held["ticks"]
    control.send_signal(signal.SIGINT)
    out, _ = control.communicate(timeout=20)
    summary = json.loads(next(line for line in out.splitlines() if line.startswith("SUMMARY "))[8:])
    assert summary["counters"]["request_timeouts"] >= 1
    assert summary["counters"]["link_lost"] >= 1 and summary["counters"]["link_up"] >= 2  # lost once, back again
    assert len(read_jsonl(tmp_path / "run" / "ticks.jsonl")) == summary["ticks"]  # SIGINT flushed the whole log
