"""Reaction latency in the streaming regime, measured with real processes (part c of ``vlash bench``).

From an event (a pad lights on ``whack_fast``, a ball is launched on ``intercept``) to the first
executed action whose chunk was planned from an observation that saw it. Sync at the paper's K=25
against naive and vlash streaming (``execution_horizon: auto``, K = max(Δ, 1)), at 30.4 ms and 100 ms
emulated models and 50 Hz, each run long enough for ``min_events`` events. Reported as p50/p90, the
ratio to sync measured in the same run (beside the paper's analytical 17.4×), the requests per second
streaming costs, and a CDF plot. Target: vlash streaming p50 ≤ model latency + 2 control periods.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vlash.experiments.launch_specs import sim_spec
from vlash.runlog import percentile, read_jsonl

EVENT_KEYS = (("pad_lit_step", "pad_hit_step"), ("ball_launch_step", "ball_hit_step"))  # (event, its success)
PAPER_RATIO = 17.4  # the paper's analytical sync/async reaction ratio (K=25, 50 Hz, 30.4 ms model)
CONFIGS = (("sync", 25), ("naive", "auto"), ("vlash", "auto"))


def reaction_from_run(folder: Path, dt: float) -> dict[str, list[float]]:
    """Per event: ms to the first executed action planned from an observation that saw it, and to its success."""
    ticks = read_jsonl(folder / "ticks.jsonl")
    obs_step_of = {c["chunk"]: c["obs_step"] for c in read_jsonl(folder / "chunks.jsonl")}
    react, done = [], []
    last_event = last_done = None
    event_tick = None
    for i, t in enumerate(ticks):
        ev = t.get("events") or {}
        key, done_key = next(((k, d) for k, d in EVENT_KEYS if k in ev), (None, None))
        if key is None:
            continue
        event = (ev.get("episode"), ev.get(key))
        if event != last_event:
            event_tick, last_event = t["step"], event
            for later in ticks[i:]:
                if later["chunk"] >= 0 and obs_step_of.get(later["chunk"], -1) >= event_tick:
                    react.append((later["step"] - event_tick) * dt * 1000.0)
                    break
        finished = (ev.get("episode"), ev.get(done_key, -1))
        if finished != last_done and finished[1] is not None and finished[1] >= 0 and event_tick is not None:
            last_done = finished
            done.append((t["step"] - event_tick) * dt * 1000.0)
    return {"reaction_ms": react, "touch_ms": done}


def latencies(quick: bool) -> tuple[float, ...]:
    """The emulated model latencies (ms) part c runs."""
    return (30.4,) if quick else (30.4, 100.0)


def median_interval(samples: list[float], level: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median: order statistics x_(l) .. x_(n-l+1), with the largest l whose
    binomial tail P(Bin(n, 1/2) <= l-1) is at most (1 - level) / 2 (the whole range when n is too small)."""
    xs = sorted(samples)
    n = len(xs)
    if n == 0:
        return (math.nan, math.nan)
    alpha, tail, rank = (1.0 - level) / 2.0, 0.0, 1
    for k in range(n // 2):  # tail = P(B <= k)
        tail += math.comb(n, k) / 2.0**n
        if tail > alpha:
            break
        rank = k + 1  # P(B <= rank - 1) <= alpha
    return (float(xs[rank - 1]), float(xs[n - rank]))


def part_reaction(out: Path, run_sim: Callable[[dict, Path, float], dict], quick: bool, task: str = "whack_fast",
                  min_events: int = 50) -> dict[str, Any]:
    """Every configuration at every model latency; one run each, until ``min_events`` events (quick: 8)."""
    fps = 50.0
    want = 8 if quick else min_events
    results: dict[str, Any] = {}
    for latency in latencies(quick):
        for mode, horizon in CONFIGS:
            name = f"{task}_{mode}_K{horizon}_{latency:g}ms"
            spec = sim_spec(name, mode, task=task, fps=fps, latency=latency, horizon=horizon)
            seconds = 2.5 * want  # whack_fast: about one pad per 1-2.4 s; extended below if short
            for _ in range(3):
                ran = seconds
                robot = run_sim(spec, out / name, ran)
                r = reaction_from_run(out / name / "arm", 1.0 / fps)
                if len(r["reaction_ms"]) >= want:
                    break
                seconds *= 1.5 * want / max(len(r["reaction_ms"]), 1)
            samples = r["reaction_ms"]
            results[name] = {
                "task": task, "mode": mode, "execution_horizon": horizon, "latency_ms": latency, "fps": fps,
                "seconds": round(ran, 1), "events": len(samples),
                "reaction_ms_p50": percentile(samples, 50), "reaction_ms_p90": percentile(samples, 90),
                "reaction_ms_max": percentile(samples, 100), "touch_ms_p50": percentile(r["touch_ms"], 50),
                "successes": robot.get("task_successes"), "stall_ticks": robot["stall_ticks"],
                "missed_ticks": robot["missed_ticks"], "requests_per_s": round(robot["chunks"] / ran, 1),
                "samples_ms": [round(x, 1) for x in samples],
            }
    return results


def verdicts(reaction: dict[str, Any]) -> list[dict[str, Any]]:
    """Per model latency: the streaming p50s against the target, and the ratio to sync in the same run."""
    rows = []
    for latency in sorted({r["latency_ms"] for r in reaction.values()}):
        same = [r for r in reaction.values() if r["latency_ms"] == latency]
        sync = next((r for r in same if r["mode"] == "sync"), None)
        for r in same:
            if r["mode"] == "sync" or r["reaction_ms_p50"] is None:
                continue
            target = latency + 2 * 1000.0 / r["fps"]
            ratio = sync["reaction_ms_p50"] / r["reaction_ms_p50"] if sync and sync["reaction_ms_p50"] else None
            rows.append({"latency_ms": latency, "mode": r["mode"], "p50_ms": r["reaction_ms_p50"], "target_ms": target,
                         "meets_target": r["reaction_ms_p50"] <= target, "ratio_to_sync": ratio,
                         "paper_ratio": PAPER_RATIO})
    return rows


def plot_cdf(reaction: dict[str, Any], path: Path) -> None:
    """One CDF panel per model latency, a line per mode with its 95 % DKW band, the target marked; each panel
    and line says how many events it is drawn from."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lats = sorted({r["latency_ms"] for r in reaction.values()})
    fig, axes = plt.subplots(1, len(lats), figsize=(6.5 * len(lats), 4.6), squeeze=False)
    colours = {"sync": "tab:red", "naive": "tab:orange", "vlash": "tab:blue"}
    for ax, latency in zip(axes[0], lats, strict=True):
        counts = []
        for r in (r for r in reaction.values() if r["latency_ms"] == latency):
            xs = np.sort(r["samples_ms"])
            counts.append(f"{r['mode']} {len(xs)}")
            if len(xs):
                cdf = np.arange(1, len(xs) + 1) / len(xs)
                band = math.sqrt(math.log(2 / 0.05) / (2 * len(xs)))  # Dvoretzky-Kiefer-Wolfowitz, 95 %
                label = f"{r['mode']} K={r['execution_horizon']} (n={len(xs)} events, p50 {r['reaction_ms_p50']:.0f} ms)"
                colour = colours.get(r["mode"])
                ax.step(xs, cdf, where="post", label=label, color=colour)
                ax.fill_between(xs, np.clip(cdf - band, 0, 1), np.clip(cdf + band, 0, 1), step="post", color=colour,
                                alpha=0.12, lw=0)
        fps = next(r["fps"] for r in reaction.values())
        ax.axvline(latency + 2000.0 / fps, color="grey", ls="--", lw=1, label="target: model + 2 periods")
        few = " (few events: a rough curve)" if min(int(c.split()[-1]) for c in counts) < 20 else ""
        ax.set_title(f"{latency:g} ms model, {fps:g} Hz: events per mode {', '.join(counts)}{few}", fontsize=10)
        ax.set_xlabel("ms from the event to the first action planned from it")
        ax.set_ylabel("fraction of events (shaded: 95 % DKW band)")
        ax.set_xlim(left=0)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Reaction latency CDF on whack_fast (real processes): pad lit → first action planned from an "
                 "observation that saw it", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(reaction: dict[str, Any]) -> list[str]:
    from vlash.experiments.markdown import table

    def ms(x: float | None) -> str:
        return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.0f}"

    lines = table(["model ms", "mode", "K", "events", "p50 ms", "p90 ms", "max ms", "to touch p50 ms", "successes",
                   "stalls", "missed", "requests/s"], (
        [f"{r['latency_ms']:g}", r["mode"], r["execution_horizon"], r["events"], ms(r["reaction_ms_p50"]),
         ms(r["reaction_ms_p90"]), ms(r["reaction_ms_max"]), ms(r["touch_ms_p50"]), r["successes"], r["stall_ticks"],
         r["missed_ticks"], r["requests_per_s"]] for r in reaction.values()))
    lines += table(["model ms", "mode", "p50 ms", "target ms", "meets target", "sync/this (measured)", "paper (analytical)"], (
        [f"{v['latency_ms']:g}", v["mode"], ms(v["p50_ms"]), ms(v["target_ms"]), "yes" if v["meets_target"] else "**no**",
         "–" if v["ratio_to_sync"] is None else f"{v['ratio_to_sync']:.1f}×", f"{v['paper_ratio']}×"]
        for v in verdicts(reaction)))
    return lines
