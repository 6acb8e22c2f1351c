"""RESULTS.md comes from its template: the filler's rules, and verdicts that follow the numbers they are given."""

from __future__ import annotations

from typing import Any

import pytest

from vlash.experiments.evaluation import wilson_interval
from vlash.experiments.markdown import fill
from vlash.experiments.results import render
from vlash.experiments.study import StudyConfig

MACHINE = {"cpu": "test cpu", "cores": 2, "memory_gb": 8.0, "gpu": "none", "os": "linux", "python": "3.12",
           "torch": "2", "mujoco": "3", "lerobot": "0.6", "numpy": "2", "pyzmq": "27", "date": "2026-01-01 00:00"}
N = 20  # episodes per cell


# ------------------------------------------------------------------------------------------ the filler
def test_fill_replaces_placeholders_and_chooses_nested_blocks():
    template = "a {{x}}\n<!-- if on -->\nB<!-- if deep --> {{y}}<!-- else --> none<!-- end -->\n<!-- else -->\nC\n<!-- end -->\nz\n"
    assert fill(template, {"x": 1, "on": True, "deep": True, "y": "Y"}) == "a 1\nB Y\nz\n"
    assert fill(template, {"x": 1, "on": True, "deep": False}) == "a 1\nB none\nz\n"
    assert fill(template, {"x": 1, "on": False}) == "a 1\nC\nz\n"  # names in the branch not taken are not needed


def test_fill_refuses_missing_names_and_unbalanced_blocks():
    with pytest.raises(KeyError, match="'x'"):
        fill("{{x}}", {})
    with pytest.raises(KeyError, match="'flag'"):
        fill("<!-- if flag -->a<!-- end -->", {})
    with pytest.raises(ValueError, match="no <!-- end -->"):
        fill("<!-- if a -->x", {"a": True})
    with pytest.raises(ValueError, match="without an open"):
        fill("x<!-- end -->", {})


# ------------------------------------------------------------------------------------------ fixed data
def record(successes: int, **key: Any) -> dict[str, Any]:
    low, high = wilson_interval(successes, N)
    return {"episodes": N, "success_rate": successes / N, "success_ci95": [low, high], "mean_steps": 20.0,
            "discontinuity": 0.01, "tracking_error": 0.012, "chunk_size": 50, "execution_horizon": 25, **key}


def expert_eval(vlash_wins_at_4: int, naive_wins_at_4: int) -> list[dict[str, Any]]:
    out = []
    for d in (0, 4):
        for mode in ("sync", "naive", "vlash"):
            wins = {"vlash": vlash_wins_at_4, "naive": naive_wins_at_4}.get(mode, N) if d == 4 else N
            out.append(record(wins, task="reach", mode=mode, delay=d, policy="expert"))
    return out


def study(tuned_vlash: int, plain_naive: int) -> dict[str, Any]:
    """One task, a plain and an offset-fine-tuned checkpoint, Δ ∈ {0, 4}; the two numbers set the Δ=4 comparison."""
    config = StudyConfig(tasks=("track",), checkpoints={"track": ("0", "4")}, delays=(0, 4), episodes=N)
    cells = {("Δmax=0", "naive", "none", 4): plain_naive, ("Δmax=4", "vlash", "target", 4): tuned_vlash}
    records = [record(cells.get((ck, mode, est, d), 10), task="track", checkpoint=ck, mode=mode, estimator=est, delay=d,
                      policy=ck)
               for ck in ("Δmax=0", "Δmax=4") for d in (0, 4)
               for mode, est in (("sync", "none"), ("naive", "none"), ("vlash", "target"), ("vlash", "model"))]
    training = {f"track {ck}": {"steps": 10, "seconds": 1.0, "steps_per_s": 10.0, "final_loss": 0.5}
                for ck in ("Δmax=0", "Δmax=4")}
    return {"config": {**config.__dict__, "tasks": list(config.tasks)}, "training": training, "records": records}


def bench(vlash_stalls: int) -> dict[str, Any]:
    modes = [{"mode": m, "latency_ms": 150, "ticks": 90, "stall_ticks": {"sync": 10, "naive": 0, "vlash": vlash_stalls}[m],
              "missed_ticks": 0, "rtt_ms_p50": 150.0, "chunks": 5, "task_successes": 3, "successes_per_min": 60.0}
             for m in ("sync", "naive", "vlash")]
    return {"seconds_per_run": 3.0, "modes": modes, "stall_ticks": {r["mode"]: r["stall_ticks"] for r in modes},
            "lateness": [{"fps": 30, "ticks": 90, "missed_ticks": 0, "lateness_ms_p50": 0.01, "lateness_ms_p99": 0.02,
                          "lateness_ms_max": 0.1}]}


def document(**data: Any) -> str:
    entries = [{"label": "(ii, iii, v) bench runtime", "command": "vlash bench runtime", "seconds": 60.0,
                "load_before": 0.2, "load_after": 0.3}]
    full = {"eval": None, "eval_model": None, "estimators": None, "bench": None, "transport": None, "study": None, **data}
    return render(full, MACHINE, entries, {}, quick=False)


# ------------------------------------------------------------------------------------------ the document
def test_nothing_run_renders_every_section_as_not_run():
    text = document()
    for line in ("_Not run (--skip-eval)._", "_Measured reaction latency not run (--skip-bench)._",
                 "_Not run (--skip-study)._"):
        assert line in text
    assert text.count("_Not run (--skip-bench)._") == 2  # quantization and the runtime figures
    assert "{{" not in text and "<!--" not in text and "\n\n\n" not in text
    assert "The machine is shared; when the real-time benchmarks started" in text  # load 0.2: not busy
    assert "## (ii) Reaction latency" in text and "| paper, RTX 5090 | 30.4 | 530.4 | 30.4 | 17.4× |" in text


@pytest.mark.parametrize(("tuned", "plain", "verdict", "target_verdict"), [
    (19, 5, "beats", "**meets**"),
    (5, 19, "loses to", "**misses** (VLASH significantly lower)"),
    (11, 10, "ties (overlapping 95% intervals) with", "**misses** (difference within the 95% intervals)"),
])
def test_study_verdicts_follow_the_numbers(tuned, plain, verdict, target_verdict):
    text = document(study=study(tuned, plain))
    assert f"- track, Δ=4: naive (Δmax=0) {100 * plain // N}% " in text
    assert f"VLASH Δmax=4 {100 * tuned // N}% (1.20) {verdict} it" in text
    row = next(line for line in text.splitlines() if line.startswith("| learned ACT, track, Δ=4"))
    assert row.endswith(f"| {target_verdict} |") and f"{100 * tuned // N}% vs {100 * plain // N}%" in row
    beaten = verdict == "beats"
    assert ("*VLASH beats naive async* (95% intervals apart) in: track Δmax=4 at Δ=4." in text) is beaten
    assert ("1. *Naive async is hard to beat here*" in text) is not beaten
    assert "Δ=0 success of the plain vs the fine-tuned checkpoints: track Δmax=0 50%, Δmax=4 50%" in text
    assert "*Offset fine-tuning has no consistent price at Δ=0 here*" in text  # 50% = 50%: no cost


@pytest.mark.parametrize(("vlash", "naive", "verdict"), [(20, 5, "beats"), (5, 20, "loses to"),
                                                         (18, 19, "ties (overlapping 95% intervals) with")])
def test_expert_verdicts_follow_the_numbers(vlash, naive, verdict):
    text = document(eval=expert_eval(vlash, naive))
    assert f"- reach, Δ=4: success sync/naive/vlash/vlash-model 100%/{100 * naive // N}%/{100 * vlash // N}%/–; " \
           f"vlash {verdict} naive;" in text
    tally = {"beats": (1, 0, 0), "loses to": (0, 0, 1)}.get(verdict, (0, 1, 0))
    assert (f"Over the 1 task/delay cells with Δ>0, vlash (`target` estimator) beats naive in {tally[0]}, ties in "
            f"{tally[1]} and loses in {tally[2]}") in text
    assert ("Why naive keeps up with scripted experts" in text) is (verdict != "beats")
    assert "chunk H=50, execution horizon K=25, 20 seeded episodes per cell" in text


@pytest.mark.parametrize("vlash_stalls", [0, 3])
def test_runtime_verdicts_follow_the_numbers(vlash_stalls):
    text = document(bench=bench(vlash_stalls))
    assert f"Stall ticks over all runs: sync 10 (stalled in 1 of 1 runs), naive 0, vlash {vlash_stalls}." in text
    assert ("Sync stalls during every inference; the async modes never stall." in text) is (vlash_stalls == 0)
    row = next(line for line in text.splitlines() if line.startswith("| vlash stall ticks"))
    assert row == f"| vlash stall ticks (bench b, all latencies) | 0 | {vlash_stalls} | " \
                  f"{'**meets**' if vlash_stalls == 0 else '**misses**'} |"
    assert "Naive completes more reaches per minute" not in text  # equal successes per minute
