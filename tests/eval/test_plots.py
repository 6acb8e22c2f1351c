"""The figures a person reads: the run timeline's data (from real logs), and what each figure states."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vlash.commands.launch import launch
from vlash.experiments import bench_reaction, bench_runtime
from vlash.experiments.bench_reaction import median_interval
from vlash.experiments.evaluation import plot_success, success_curves, wilson_interval
from vlash.experiments.launch_specs import sim_spec
from vlash.experiments.plots import CHUNK_COLOURS, STALL_COLOUR, timeline, timeline_data
from vlash.launchfile import parse_launch
from vlash.runlog import RunLog, read_jsonl

PNG = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[2]


def synthetic_ticks() -> list[dict]:
    """20 ticks at 10 Hz: chunk 0, a 3-tick stall, chunk 1, chunk 2; episode 1 starts at step 12 after a success."""
    rng = np.random.default_rng(0)
    chunk = [0] * 6 + [-1] * 3 + [1] * 5 + [2] * 6
    ticks = []
    for i, cid in enumerate(chunk):
        step = 100 + i
        ticks.append({
            "step": step, "t": 5.0 + i * 0.1, "lateness_ms": 0.1 * i,
            "state": rng.normal(size=3).round(6).tolist(), "action": rng.normal(size=3).round(6).tolist(),
            "chunk": cid, "row": -1, "stall": cid < 0, "delay_steps": 2,
            "events": {"episode": float(i >= 12), "successes": float(i >= 11), "success": float(i == 11)},
        })
    return ticks


def write_run(folder, ticks, chunks, fps=10.0):
    """The logs as the control process writes them (RunLog), with its summary."""
    log = RunLog(folder)
    for t in ticks:
        log.ticks.write(t)
    for c in chunks:
        log.chunks.write(c)
    log.close({"fps": fps, "mode": "vlash"})


CHUNKS = [{"chunk": k, "obs_step": 100 + 5 * k, "arrival_step": 102 + 5 * k, "start_step": 103 + 5 * k} for k in range(3)]


def test_timeline_data_is_the_logged_traces_with_switches_stalls_episodes_and_successes(tmp_path):
    write_run(tmp_path, synthetic_ticks(), CHUNKS)
    ticks, chunks = read_jsonl(tmp_path / "ticks.jsonl"), read_jsonl(tmp_path / "chunks.jsonl")
    data = timeline_data(ticks, chunks, fps=10.0)
    np.testing.assert_array_equal(data.state, [t["state"] for t in ticks])
    np.testing.assert_array_equal(data.action, [t["action"] for t in ticks])
    np.testing.assert_allclose(data.seconds, [t["step"] / 10.0 for t in ticks])
    # chunk 0 -> (stall) -> chunk 1 at tick 9, chunk 1 -> chunk 2 at tick 14; the stall is not a chunk
    assert data.switch_index.tolist() == [9, 14]
    for i, jump, joint in zip(data.switch_index, data.switch_jump, data.switch_joint, strict=True):
        delta = np.abs(np.array(ticks[i]["action"]) - np.array(ticks[i - 1]["action"]))
        assert jump == pytest.approx(delta.max()) and joint == delta.argmax()
    np.testing.assert_allclose(data.switch_seconds, [10.9, 11.4])
    assert data.stall_spans() == [pytest.approx((10.6, 10.9))]
    np.testing.assert_allclose(data.episode_starts, [10.0, 11.2])
    np.testing.assert_allclose(data.successes, [11.1])
    np.testing.assert_allclose(data.inference, np.array([[c["obs_step"], c["arrival_step"], c["start_step"]]
                                                         for c in CHUNKS]) / 10.0)
    short = timeline_data(ticks, chunks, fps=10.0, max_seconds=1.0)
    assert len(short.steps) == 10 and short.switch_index.tolist() == [9]
    with pytest.raises(ValueError, match="fps"):
        timeline_data(ticks, chunks, fps=0)


def test_stall_shading_is_a_colour_no_chunk_uses():
    assert STALL_COLOUR.lower() not in {c.lower() for c in CHUNK_COLOURS}


def test_timeline_png_is_written_from_a_run_folder(tmp_path):
    write_run(tmp_path, synthetic_ticks(), CHUNKS)
    path = timeline(tmp_path)
    assert path == tmp_path / "timeline.png" and path.read_bytes()[:8] == PNG
    write_run(tmp_path / "failed", [], [])  # a process that failed before its first tick still gets its plot
    assert timeline(tmp_path / "failed").read_bytes()[:8] == PNG
    assert timeline_data([], [], fps=30.0).state.shape == (0, 0)


def test_a_launch_draws_each_robots_timeline_once_from_logs_that_match_it(tmp_path):
    """A real 2.5 s sync run (it stalls): one timeline.png, in the robot's folder; its data are the logs."""
    spec = sim_spec("timeline", "sync", latency=100, horizon=15, chunk_size=15)
    robot = launch(parse_launch(spec, "test"), tmp_path, duration=2.5, quiet=True)["robots"]["arm"]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")) == ["arm/timeline.png"]
    ticks = read_jsonl(tmp_path / "arm" / "ticks.jsonl")
    data = timeline_data(ticks, read_jsonl(tmp_path / "arm" / "chunks.jsonl"), fps=30.0)
    assert len(data.steps) == robot["ticks"] and int(data.stall.sum()) == robot["stall_ticks"] > 0
    np.testing.assert_allclose(data.state, [t["state"] for t in ticks])
    np.testing.assert_allclose(data.action, [t["action"] for t in ticks])
    np.testing.assert_allclose(data.seconds, [t["step"] / 30.0 for t in ticks])
    # the switches are the ticks the control loop logged as switches, their jump the change of the sent target
    assert data.switch_index.tolist() == [i for i, t in enumerate(ticks) if "switch" in t]
    assert len(data.switch_index) >= 1
    action = np.array([t["action"] for t in ticks])
    np.testing.assert_allclose(data.switch_jump, np.abs(action[data.switch_index] - action[data.switch_index - 1]).max(1))
    assert len(data.episode_starts) >= 1 and data.episode_starts[0] == data.seconds[0]


# ------------------------------------------------------------------------------------------ success vs delay
def cell(mode: str, delay: int, successes: int, n: int = 20, policy: str = "expert") -> dict:
    low, high = wilson_interval(successes, n)
    return {"task": "reach", "mode": mode, "delay": delay, "policy": policy, "episodes": n, "successes": successes,
            "success_rate": successes / n, "success_ci95": [round(low, 4), round(high, 4)]}


def test_success_curves_state_n_offset_equal_curves_and_name_repeats(tmp_path):
    records = [cell(m, d, s) for m, outcome in (("sync", (20, 12)), ("naive", (20, 12)), ("vlash", (20, 19)))
               for d, s in zip((0, 4), outcome, strict=True)]
    records.append(cell("vlash", 0, 5, n=8, policy="runs/act_reach"))
    curves = success_curves(records)["reach"]
    by = {c["label"].split(" (n=")[0]: c for c in curves}
    assert set(by) == {"sync", "naive", "vlash", "vlash (act_reach)"}
    assert "n=20 per point" in by["sync"]["label"] and "n=8 per point" in by["vlash (act_reach)"]["label"]
    assert by["naive"]["same_as"] == "sync" and "same as sync" in by["naive"]["label"]
    assert by["sync"]["same_as"] is None and by["vlash"]["same_as"] is None
    firsts = [c["x"][0] for c in curves]  # every curve's Δ=0 point at its own x, near 0 (delays 0 and 4 apart)
    assert len(set(firsts)) == len(curves) and all(abs(x) <= 0.15 * 4 + 1e-9 for x in firsts)
    assert all(c["delays"] == [0, 4] for c in curves[:3])
    assert by["sync"]["y"] == [100.0, 60.0]
    assert by["sync"]["low"] == pytest.approx([100 * wilson_interval(20, 20)[0], 100 * wilson_interval(12, 20)[0]], abs=0.01)
    assert by["sync"]["high"] == pytest.approx([100.0, 100 * wilson_interval(12, 20)[1]], abs=0.01)
    plot_success(records, tmp_path / "success_vs_delay.png")
    assert (tmp_path / "success_vs_delay.png").read_bytes()[:8] == PNG


# ------------------------------------------------------------------------------------------ bench figures
def test_median_interval_is_the_order_statistic_interval():
    assert median_interval(list(range(1, 11))) == (2.0, 9.0)  # n=10: x(2)..x(9), coverage 97.9 %
    assert median_interval(list(range(100))) == (39.0, 60.0)  # n=100: x(40)..x(61)
    assert median_interval([3.0, 1.0, 2.0]) == (1.0, 3.0)  # too few for 95 %: the whole range
    lo, hi = median_interval([])
    assert lo != lo and hi != hi  # NaN: nothing to bound


def test_bench_runtime_reports_overall_progress_and_counts(tmp_path):
    """The virtual-time part of `vlash bench runtime --quick`: a progress line per cell on stderr, n in bench.json."""
    proc = subprocess.run([sys.executable, "-m", "vlash.cli", "bench", "runtime", "--quick", "--parts", "quantization",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=240, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    found = [re.match(r"\[bench (\d+)/(\d+), \d+ s\] (.*)", line) for line in proc.stderr.splitlines()]
    progress = [(int(m[1]), int(m[2]), m[3]) for m in found if m]
    assert [(i, n) for i, n, _ in progress] == [(1, 3), (2, 3), (3, 3)]  # not a terminal: one line per cell
    assert [label.split(" (")[0] for *_, label in progress] == ["reach q=1", "reach q=2", "reach q=3"]
    rows = json.loads((tmp_path / "bench.json").read_text())["quantization"]
    assert [(r["q"], r["episodes"]) for r in rows] == [(1, 4), (2, 4), (3, 4)]
    assert (tmp_path / "bench.png").read_bytes()[:8] == PNG


def test_bench_figures_draw_from_a_result_with_every_part(tmp_path):
    samples = [40.0, 60.0, 60.0, 80.0, 40.0, 60.0, 100.0]
    reaction = {f"whack_fast_{m}": {"task": "whack_fast", "mode": m, "execution_horizon": k, "latency_ms": 30.4, "fps": 50.0,
                                    "events": len(samples), "reaction_ms_p50": 60.0, "samples_ms": samples}
                for m, k in (("sync", 25), ("naive", "auto"), ("vlash", "auto"))}
    result = {"quick": True, "seconds_per_run": 3.0, "reaction": reaction,
              "lateness": [{"fps": 30, "ticks": 90, "missed_ticks": 0, "lateness_ms_p50": 0.003, "lateness_ms_p99": 0.01,
                            "lateness_ms_max": 0.5}],
              "modes": [{"mode": m, "latency_ms": 150, "ticks": 90, "stall_ticks": s} for m, s in
                        (("sync", 20), ("naive", 0), ("vlash", 0))],
              "quantization": [{"task": "reach", "q": 1, "episodes": 4, "successes": 4, "success_rate": 1.0,
                                "mean_steps": 15.0, "seconds_at_30hz": 0.5}]}
    bench_runtime.plot(result, tmp_path / "bench.png")
    bench_reaction.plot_cdf(reaction, tmp_path / "reaction_cdf.png")
    assert all((tmp_path / f).read_bytes()[:8] == PNG for f in ("bench.png", "reaction_cdf.png"))
