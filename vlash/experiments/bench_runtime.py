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
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    parser.add_argument("--out", default="runs/bench", help="folder for bench.json, bench.md, the plots and runs/")
    parser.add_argument("--parts", default="lateness,modes,reaction,quantization",
                        help="comma-separated parts to run, of lateness, modes, reaction, quantization")


class RunProgress:
    """Overall progress over a benchmark's runs: a bar on a terminal (refreshed every second, so the elapsed
    time moves during a run), else one line per run on stderr; the current run is named either way."""

    def __init__(self, total: int, desc: str = "bench") -> None:
        from tqdm import tqdm

        self.total, self.done, self.started = total, 0, time.monotonic()
        self.bar = tqdm(total=total, desc=desc, unit="run", disable=None, dynamic_ncols=True, file=sys.stderr)
        self._stop = threading.Event()
        if not self.bar.disable:
            threading.Thread(target=self._refresh, daemon=True, name="bench-progress").start()

    def _refresh(self) -> None:
        while not self._stop.wait(1.0):
            self.bar.refresh()

    @contextmanager
    def run(self, label: str) -> Iterator[None]:
        """One run (or cell) of the benchmark; more runs than planned (a run repeated, longer) extend the total."""
        if self.done >= self.total:
            self.total += 1
            self.bar.total = self.total
        if self.bar.disable:
            print(f"[bench {self.done + 1}/{self.total}, {time.monotonic() - self.started:.0f} s] {label}",
                  file=sys.stderr, flush=True)
        self.bar.set_postfix_str(label, refresh=True)
        try:
            yield
        finally:
            self.done += 1
            self.bar.update(1)

    def write(self, line: str) -> None:
        """A result line on stdout that does not break the bar."""
        self.bar.write(line, file=sys.stdout)
        sys.stdout.flush()

    def close(self) -> None:
        self._stop.set()
        self.bar.close()


def run_sim(spec: dict, out: Path, seconds: float, progress: RunProgress | None = None) -> dict[str, Any]:
    """One real launch of ``spec`` for ``seconds`` into ``out``; the robot's summary (plus successes per minute)."""
    with progress.run(f"{spec['name']} ({seconds:g} s)") if progress else _nothing():
        summary = supervise(parse_launch(spec, spec["name"]), out, seconds, quiet=True)
    robot = summary["robots"]["arm"]
    robot["successes_per_min"] = round(60.0 * (robot.get("task_successes") or 0) / max(seconds, 1e-9), 2)
    line = (f"  {spec['name']:<28} ticks {robot['ticks']:>5}  stalls {robot['stall_ticks']:>4}  missed "
            f"{robot['missed_ticks']:>3}  lateness p99 {robot['lateness_ms_p99']} ms  rtt p50 {robot['rtt_ms_p50']} ms"
            f"  successes {robot.get('task_successes')}")
    progress.write(line) if progress else print(line, flush=True)
    return robot


@contextmanager
def _nothing() -> Iterator[None]:
    yield


LATENESS_RATES = {True: (30, 100), False: (30, 50, 100, 200)}  # Hz, by quick
MODE_LATENCIES = {True: (150,), False: (50, 150, 300)}  # ms, by quick
MODES = ("sync", "naive", "vlash")
QUANTIZATION_TASKS = {True: ("reach",), False: ("reach", "pick_place")}


def planned_runs(parts: list[str], quick: bool) -> int:
    """How many runs (and virtual-time cells) ``parts`` take: the progress bar's total."""
    counts = {"lateness": len(LATENESS_RATES[quick]), "modes": len(MODE_LATENCIES[quick]) * len(MODES),
              "reaction": len(bench_reaction.latencies(quick)) * len(bench_reaction.CONFIGS),
              "quantization": len(QUANTIZATION_TASKS[quick]) * 3}
    return sum(counts.get(p, 0) for p in parts)


Runner = Callable[[dict, Path, float], dict]


def part_lateness(out: Path, seconds: float, quick: bool, run: Runner = run_sim) -> list[dict]:
    rows = []
    for fps in LATENESS_RATES[quick]:
        robot = run(sim_spec(f"lateness_{fps}hz", "vlash", fps=fps, cameras=["front"]), out / f"lateness_{fps}hz", seconds)
        rows.append({"fps": fps, **{k: robot[k] for k in ("ticks", "missed_ticks", "lateness_ms_p50", "lateness_ms_p99",
                                                        "lateness_ms_max")}})
    return rows


def part_modes(out: Path, seconds: float, quick: bool, run: Runner = run_sim) -> list[dict]:
    rows = []
    for latency in MODE_LATENCIES[quick]:
        for mode in MODES:
            name = f"{mode}_{latency}ms"
            robot = run(sim_spec(name, mode, latency=latency), out / name, seconds)
            rows.append({"mode": mode, "latency_ms": latency, **{k: robot.get(k) for k in (
                "ticks", "stall_ticks", "missed_ticks", "rtt_ms_p50", "chunks", "task_successes", "successes_per_min")}})
    return rows


QUANTIZATION_DELAY, QUANTIZATION_HORIZON = 3, 24  # part d: vlash at Δ=3, K=24 (a multiple of q = 1, 2, 3)


def part_quantization(quick: bool, progress: RunProgress | None = None) -> list[dict]:
    from vlash.experiments.evaluation import Cell, run_cell

    episodes = 4 if quick else 20
    rows = []
    for task in QUANTIZATION_TASKS[quick]:
        for q in (1, 2, 3):
            cell = Cell(task, "vlash", QUANTIZATION_DELAY, "expert", tuple(range(episodes)), 50, QUANTIZATION_HORIZON, q)
            with progress.run(f"{task} q={q} ({episodes} episodes, virtual time)") if progress else _nothing():
                rec = run_cell(cell)
            rows.append({"task": task, "q": q, "episodes": rec["episodes"], "successes": rec["successes"],
                         "success_rate": rec["success_rate"], "mean_steps": rec["mean_steps"],
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
    """``bench.png``: the four parts, each panel with labelled axes (units), its counts and, where the runs
    give samples, intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    ax = axes[0][0]
    rows = result.get("lateness", [])
    xs = np.arange(len(rows))
    p99 = [r["lateness_ms_p99"] or 0 for r in rows]
    bars = ax.bar(xs, p99, color="tab:blue", label="p99")
    ax.plot(xs, [r["lateness_ms_p50"] or 0 for r in rows], "o", color="black", label="p50")
    ax.plot(xs, [r["lateness_ms_max"] or 0 for r in rows], "v", color="tab:red", label="max")
    ax.bar_label(bars, [f"n={r['ticks']} ticks" for r in rows], fontsize=8, padding=2)
    ax.set_xticks(xs, [f"{r['fps']:g}" for r in rows])
    ax.set_xlabel("control rate (Hz)")
    ax.set_ylabel("tick lateness (ms)")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylim(0, 3 * max([r["lateness_ms_max"] or 0 for r in rows] + p99 + [0.01]))
    ax.set_title("(a) tick lateness per run (inference and camera busy)")
    ax.legend(fontsize=8)
    ax = axes[0][1]
    modes = result.get("modes", [])
    lats = sorted({r["latency_ms"] for r in modes})
    for i, mode in enumerate(MODES):
        found = [next((r for r in modes if r["mode"] == mode and r["latency_ms"] == lat), None) for lat in lats]
        bars = ax.bar(np.arange(len(lats)) + 0.27 * i, [(r or {}).get("stall_ticks") or 0 for r in found], width=0.27,
                      label=mode)
        ax.bar_label(bars, [f"{r['stall_ticks']}/{r['ticks']}" if r else "–" for r in found], fontsize=7, padding=1)
    ax.set_xticks(np.arange(len(lats)) + 0.27, [f"{lat:g}" for lat in lats])
    ax.set_xlabel("emulated model latency (ms)")
    ax.set_ylabel("stall ticks per run (count)")
    ax.set_title("(b) stall ticks per run (labels: stalls / ticks of the run)")
    ax.legend(fontsize=8)
    ax = axes[1][0]
    reaction = result.get("reaction", {})
    entries = sorted(reaction.values(), key=lambda r: (r["latency_ms"], MODES.index(r["mode"])))
    colours = {"sync": "tab:red", "naive": "tab:orange", "vlash": "tab:blue"}
    for i, r in enumerate(entries):
        p50 = r["reaction_ms_p50"]
        if p50 is None:
            continue
        low, high = bench_reaction.median_interval(r["samples_ms"])
        ax.bar(i, p50, color=colours.get(r["mode"]), yerr=[[p50 - low], [high - p50]], capsize=4)
        if r["mode"] != "sync":
            ax.plot([i - 0.4, i + 0.4], [r["latency_ms"] + 2000.0 / r["fps"]] * 2, "k-", lw=1.5)
    ax.set_xticks(range(len(entries)), [f"{r['mode']} K={r['execution_horizon']}\n{r['latency_ms']:g} ms model\n"
                                        f"n={r['events']} events" for r in entries], fontsize=8)
    ax.set_ylabel("reaction p50 (ms)\nevent → first action planned from it")
    ax.set_title("(c) reaction on whack_fast; bars: 95 % interval of the median;\n"
                 "dash: target = model + 2 periods; n = events (CDF in reaction_cdf.png)", fontsize=10)
    ax = axes[1][1]
    rows = [r for r in result.get("quantization", []) if r["mean_steps"]]
    bars = ax.bar(range(len(rows)), [r["seconds_at_30hz"] for r in rows], color="tab:green")
    ax.bar_label(bars, [f"n={r['successes']}/{r['episodes']}" if "episodes" in r else "" for r in rows], fontsize=8,
                 padding=2)
    ax.set_xticks(range(len(rows)), [f"{r['task']}\nq={r['q']}" for r in rows], fontsize=8)
    ax.set_ylabel("mean completion time (s at 30 Hz)")
    ax.set_title(f"(d) action quantization q, vlash Δ={QUANTIZATION_DELAY} (virtual time);\n"
                 "n = successful / all episodes (the mean is over the successful ones)", fontsize=10)
    quick = ", quick" if result.get("quick") else ""
    fig.suptitle(f"vlash bench runtime: MuJoCo SO-101 with the scripted expert behind an emulated model, real "
                 f"processes and ZeroMQ ({result.get('seconds_per_run', '?')} s per run{quick})", fontsize=11)
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
    progress = RunProgress(planned_runs(parts, args.quick), desc="bench runtime")
    run_one: Runner = lambda spec, folder, s: run_sim(spec, folder, s, progress)  # noqa: E731
    try:
        if "lateness" in parts:
            progress.write("(a) loop lateness while inference and rendering are busy")
            result["lateness"] = part_lateness(runs, seconds, args.quick, run_one)
        if "modes" in parts:
            progress.write("(b) stalls and throughput per mode and model latency")
            result["modes"] = part_modes(runs, seconds, args.quick, run_one)
        if "reaction" in parts:
            progress.write("(c) reaction latency in the streaming regime (whack_fast, 50 Hz)")
            result["reaction"] = bench_reaction.part_reaction(runs, run_one, args.quick)
        if "quantization" in parts:
            progress.write("(d) action quantization (virtual time)")
            result["quantization"] = part_quantization(args.quick, progress)
    finally:
        progress.close()
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
