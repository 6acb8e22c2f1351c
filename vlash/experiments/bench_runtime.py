"""``vlash bench [runtime]``: real-time figures, sync vs naive vs vlash, measured in one run.

Every run is a real launch (inference and control processes, ZeroMQ on loopback) of the MuJoCo
SO-101 with the scripted expert behind an emulated model latency:

(a) loop lateness at several control rates while the model and the camera renderer are busy;
(b) stall ticks and task throughput per mode over a range of model latencies;
(c) reaction latency on ``whack_fast`` in the streaming regime (:mod:`vlash.experiments.bench_reaction`):
    sync at the paper's K=25 against naive and vlash with K = max(Δ, 1), at 50 Hz;
(d) completion time with action quantization q=1,2,3 (virtual time, exact delay).

Writes ``bench.json``, ``bench.md``, ``bench.png`` and ``reaction_cdf.png``; every run folder is kept under ``runs/``.
Figures are reported, never asserted, and compared as ratios within the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from vlash.experiments import bench_reaction
from vlash.experiments.launch_specs import sim_spec
from vlash.experiments.markdown import table
from vlash.launchfile import parse_launch
from vlash.runlog import percentile, write_json
from vlash.supervisor import supervise


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="short runs, fewer points (about a minute)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per run (default 12, quick 3)")
    parser.add_argument("--out", default="runs/bench")
    parser.add_argument("--parts", default="lateness,modes,reaction,quantization", help="which parts to run")


def run_sim(spec: dict, out: Path, seconds: float) -> dict[str, Any]:
    summary = supervise(parse_launch(spec, spec["name"]), out, seconds, quiet=True)
    robot = summary["robots"]["arm"]
    robot["successes_per_min"] = round(60.0 * (robot.get("task_successes") or 0) / max(seconds, 1e-9), 2)
    print(f"  {spec['name']:<28} ticks {robot['ticks']:>5}  stalls {robot['stall_ticks']:>4}  missed "
          f"{robot['missed_ticks']:>3}  lateness p99 {robot['lateness_ms_p99']} ms  rtt p50 {robot['rtt_ms_p50']} ms"
          f"  successes {robot.get('task_successes')}", flush=True)
    return robot


def part_lateness(out: Path, seconds: float, quick: bool) -> list[dict]:
    rates = [30, 100] if quick else [30, 50, 100, 200]
    rows = []
    for fps in rates:
        robot = run_sim(sim_spec(f"lateness_{fps}hz", "vlash", fps=fps, cameras=["front"]), out / f"lateness_{fps}hz", seconds)
        rows.append({"fps": fps, **{k: robot[k] for k in ("ticks", "missed_ticks", "lateness_ms_p50", "lateness_ms_p99",
                                                        "lateness_ms_max")}})
    return rows


def part_modes(out: Path, seconds: float, quick: bool) -> list[dict]:
    latencies = [150] if quick else [50, 150, 300]
    rows = []
    for latency in latencies:
        for mode in ("sync", "naive", "vlash"):
            name = f"{mode}_{latency}ms"
            robot = run_sim(sim_spec(name, mode, latency=latency), out / name, seconds)
            rows.append({"mode": mode, "latency_ms": latency, **{k: robot.get(k) for k in (
                "ticks", "stall_ticks", "missed_ticks", "rtt_ms_p50", "chunks", "task_successes", "successes_per_min")}})
    return rows


QUANTIZATION_DELAY, QUANTIZATION_HORIZON = 3, 24  # part d: vlash at Δ=3, K=24 (a multiple of q = 1, 2, 3)


def part_quantization(quick: bool) -> list[dict]:
    from vlash.experiments.evaluation import Cell, run_cell

    episodes = 4 if quick else 20
    rows = []
    for task in (["reach"] if quick else ["reach", "pick_place"]):
        for q in (1, 2, 3):
            rec = run_cell(Cell(task, "vlash", QUANTIZATION_DELAY, "expert", tuple(range(episodes)), 50,
                                QUANTIZATION_HORIZON, q))
            rows.append({"task": task, "q": q, "success_rate": rec["success_rate"], "mean_steps": rec["mean_steps"],
                         "seconds_at_30hz": None if rec["mean_steps"] is None else round(rec["mean_steps"] / 30, 3)})
    for row in rows:
        base = next(r for r in rows if r["task"] == row["task"] and r["q"] == 1)
        if base["mean_steps"] and row["mean_steps"]:
            row["speedup"] = round(base["mean_steps"] / row["mean_steps"], 2)
    return rows


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The keys a reader (and a test) looks for first."""
    modes = result.get("modes", [])
    reaction = result.get("reaction", {})
    stall = {}
    for row in modes:
        stall[row["mode"]] = stall.get(row["mode"], 0) + (row["stall_ticks"] or 0)
    by_mode: dict[str, list[float]] = {}
    for entry in reaction.values():
        by_mode.setdefault(entry["mode"], []).extend(entry["samples_ms"])
    late = [r["lateness_ms_p99"] for r in result.get("lateness", []) if r["lateness_ms_p99"] is not None]
    return {
        "lateness_ms_p99": max(late) if late else None,
        "stall_ticks": stall,
        "reaction_ms_p50": {m: percentile(v, 50) for m, v in by_mode.items()},
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    ax = axes[0][0]
    for row in result.get("lateness", []):
        ax.bar(str(row["fps"]), row["lateness_ms_p99"] or 0, color="tab:blue")
    ax.set_title("(a) tick lateness p99 (ms) vs control rate")
    ax.set_xlabel("Hz")
    ax = axes[0][1]
    modes = result.get("modes", [])
    lats = sorted({r["latency_ms"] for r in modes})
    for i, mode in enumerate(("sync", "naive", "vlash")):
        vals = [next((r["stall_ticks"] for r in modes if r["mode"] == mode and r["latency_ms"] == lat), 0) for lat in lats]
        bars = ax.bar(np.arange(len(lats)) + 0.27 * i, vals, width=0.27, label=mode)
        ax.bar_label(bars, fontsize=8)  # a 0 must be visible as a 0
    ax.set_xticks(np.arange(len(lats)) + 0.27, [f"{lat:g} ms" for lat in lats])
    ax.set_title("(b) stall ticks per run vs model latency")
    ax.legend()
    ax = axes[1][0]
    for row in bench_reaction.verdicts(result.get("reaction", {})):
        ax.bar(f"{row['mode']} {row['latency_ms']:g} ms", row["p50_ms"], color="tab:blue")
        ax.plot(f"{row['mode']} {row['latency_ms']:g} ms", row["target_ms"], "k_", markersize=30)
    ax.set_title("(c) streaming reaction p50 (ms; dash: target = model + 2 periods; CDF in reaction_cdf.png)")
    ax = axes[1][1]
    for row in result.get("quantization", []):
        if row["mean_steps"]:
            ax.bar(f"{row['task']} q={row['q']}", row["seconds_at_30hz"], color="tab:green")
    ax.set_title("(d) completion time (s) with action quantization")
    ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(result: dict[str, Any]) -> str:
    lines = ["## (a) Loop lateness", ""]
    lines += table(["Hz", "ticks", "missed", "lateness p50 ms", "p99 ms", "max ms"], (
        [r["fps"], r["ticks"], r["missed_ticks"], r["lateness_ms_p50"], r["lateness_ms_p99"], r["lateness_ms_max"]]
        for r in result.get("lateness", [])))
    lines += ["## (b) Stalls and throughput (reach, 30 Hz, H=50, K=25)", ""]
    lines += table(["model ms", "mode", "ticks", "stall ticks", "rtt p50 ms", "chunks", "successes/min"], (
        [r["latency_ms"], r["mode"], r["ticks"], r["stall_ticks"], r["rtt_ms_p50"], r["chunks"], r["successes_per_min"]]
        for r in result.get("modes", [])))
    lines += ["## (c) Reaction latency (whack_fast, 50 Hz, H=50; sync K=25, naive/vlash streaming)", ""]
    lines += bench_reaction.markdown(result.get("reaction", {}))
    lines += [f"## (d) Action quantization (virtual time, vlash, Δ={QUANTIZATION_DELAY}, K={QUANTIZATION_HORIZON})", ""]
    lines += table(["task", "q", "success", "mean steps", "seconds @30 Hz", "speed-up"], (
        [r["task"], r["q"], f"{100 * r['success_rate']:.0f}%", r["mean_steps"], r["seconds_at_30hz"], r.get("speedup", "–")]
        for r in result.get("quantization", [])))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seconds = args.seconds or (3.0 if args.quick else 12.0)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    started = time.monotonic()
    result: dict[str, Any] = {"quick": args.quick, "seconds_per_run": seconds}
    runs = out / "runs"
    if "lateness" in parts:
        print("(a) loop lateness while inference and rendering are busy")
        result["lateness"] = part_lateness(runs, seconds, args.quick)
    if "modes" in parts:
        print("(b) stalls and throughput per mode and model latency")
        result["modes"] = part_modes(runs, seconds, args.quick)
    if "reaction" in parts:
        print("(c) reaction latency in the streaming regime (whack_fast, 50 Hz)")
        result["reaction"] = bench_reaction.part_reaction(runs, run_sim, args.quick)
    if "quantization" in parts:
        print("(d) action quantization (virtual time)")
        result["quantization"] = part_quantization(args.quick)
    result.update(headline(result))
    result["wall_s"] = round(time.monotonic() - started, 1)
    write_json(out / "bench.json", result)
    (out / "bench.md").write_text(markdown(result))
    plot(result, out / "bench.png")
    if result.get("reaction"):
        bench_reaction.plot_cdf(result["reaction"], out / "reaction_cdf.png")
    print(markdown(result))
    print(json.dumps({k: result[k] for k in ("lateness_ms_p99", "stall_ticks", "reaction_ms_p50")}))
    print(f"wrote {out}/bench.json, bench.md, bench.png in {result['wall_s']}s")
    return 0
