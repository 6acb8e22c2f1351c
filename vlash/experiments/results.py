"""``RESULTS.md`` end to end: run the public commands, then fill ``results_template.md``.

:func:`collect` runs, in order (each a public command, logged with its duration and the machine
load around it): (ii, iii, v) ``vlash bench runtime`` and ``vlash bench transport``, first so that
they see no load of ours; (i) ``vlash eval`` of the scripted experts (target and model estimators)
and the estimator accuracy; (iv) the learned-policy study (:mod:`vlash.experiments.study`).
:func:`render` fills the template with the computed tables, numbers and verdicts; every sentence
of prose lives in the template, every comparison word comes from :mod:`vlash.experiments.verdicts`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from vlash.experiments.accuracy_report import accuracy_values
from vlash.experiments.accuracy_report import plot_study as plot_accuracy
from vlash.experiments.bench_runtime import QUANTIZATION_DELAY, QUANTIZATION_HORIZON
from vlash.experiments.bench_transport import TARGET_RTT_MS_P50
from vlash.experiments.markdown import fill, percent, table
from vlash.experiments.parts import SIM_ESTIMATOR_BENCH
from vlash.experiments.study import CommandLog, StudyConfig, headline, plot_study, run_study, study_values
from vlash.experiments.verdicts import BEATS, LOSES_TO, TIES, compare_success, meets, smoother
from vlash.factory import resolve

TEMPLATE = Path(__file__).with_name("results_template.md")
TASKS = ("reach", "track", "whack", "pick_place", "whack_fast", "intercept")
DELAYS = (0, 1, 2, 4, 8)
ESTIMATOR_DELAY = 4  # Δ of the estimator-accuracy runs
ESTIMATOR_TASKS = ("track", "whack")
TARGET_LATENESS_MS_P99 = 0.5  # at 30 Hz
TARGET_ESTIMATOR_RATIO = 0.5  # model / target RMS error
SUCCESS_DROP = 0.1  # a quantization step whose success falls by more than this is short of the paper
BUSY_LOAD = 0.5  # 1-minute load average above which real-time figures count as taken under load
PAPER_TABLE2 = (("RTX 5090", 30.4), ("RTX 4090", 36.1), ("RTX 5070", 64.1))  # π0.5 inference ms
PAPER_HORIZON, PAPER_FPS = 25, 50  # the paper's Table 2: K=25 at 50 Hz
BENCH_LATENCIES_MS = (30.4, 100.0)  # the emulated model latencies of bench runtime part c


# ------------------------------------------------------------------------------------------ running
def machine_info() -> dict[str, Any]:
    """CPU, cores, memory and the versions that matter for the figures."""
    import lerobot
    import mujoco
    import numpy
    import torch
    import zmq

    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")),
               platform.processor())
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_gb, 1), "os": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__, "mujoco": mujoco.__version__,
        "lerobot": lerobot.__version__, "numpy": numpy.__version__, "pyzmq": zmq.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU only)",
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }


def load_json(path: Path) -> Any:
    """The JSON at ``path``, or None when it does not exist."""
    return json.loads(path.read_text()) if path.exists() else None


def _step(log: CommandLog, label: str, args: list[str], done: Path, reuse: bool) -> None:
    if reuse and done.exists():
        log.skipped(label, args)
    else:
        log.run(label, args)


def _estimator_accuracy(log: CommandLog, work: Path, quick: bool, reuse: bool) -> None:
    episodes = 1 if quick else 2
    call = (f"{SIM_ESTIMATOR_BENCH.replace(':', '.')}(task, delay_steps={ESTIMATOR_DELAY}, episodes={episodes}) "
            f"for {', '.join(ESTIMATOR_TASKS)}")
    if reuse and (work / "estimators.json").exists():
        log.skipped("(i) estimator accuracy", [], shown=f"python: {call}")
        return
    bench_estimators = resolve(SIM_ESTIMATOR_BENCH)
    print(f"\n>>> [(i) estimator accuracy] {call}", flush=True)
    start, load = time.monotonic(), round(os.getloadavg()[0], 2)
    est = {task: bench_estimators(task, delay_steps=ESTIMATOR_DELAY, episodes=episodes) for task in ESTIMATOR_TASKS}
    (work / "estimators.json").write_text(json.dumps(est, indent=2) + "\n")
    log.entries.append({"label": "(i) estimator accuracy", "command": f"python: {call}", "rc": 0,
                        "seconds": round(time.monotonic() - start, 1), "load_before": load,
                        "load_after": round(os.getloadavg()[0], 2)})


def collect(work: Path, log: CommandLog, *, quick: bool = False, reuse: bool = False, episodes: int = 20,
            bench: bool = True, evaluation: bool = True, study: bool = True) -> dict[str, Any]:
    """Run every part asked for (keeping finished outputs under ``work`` when ``reuse``); return the raw figures."""
    episodes = 3 if quick else episodes
    tasks, delays = (("reach", "track"), (0, 4)) if quick else (TASKS, DELAYS)
    grid = ["--tasks", ",".join(tasks), "--episodes", str(episodes), "--seed", "0"]
    # real-time benchmarks first, so that the load they see is other jobs', not the tail of our own evals
    if bench:
        runtime = ["bench", "runtime", "--out", str(work / "bench")] + (["--quick"] if quick else [])
        _step(log, "(ii, iii, v) bench runtime", runtime, work / "bench/bench.json", reuse)
        transport = ["bench", "transport", "--out", str(work / "bench")] + (["--round-trips", "300"] if quick else [])
        _step(log, "(v) bench transport", transport, work / "bench/transport.json", reuse)
    if evaluation:
        _step(log, "(i) eval experts", ["eval", *grid, "--delays", ",".join(map(str, delays)), "--out",
                                        str(work / "eval_expert")], work / "eval_expert/results.json", reuse)
        _step(log, "(i) eval experts, model estimator",
              ["eval", *grid, "--modes", "vlash", "--estimator", "model", "--delays",
               ",".join(str(d) for d in delays if d > 0), "--out", str(work / "eval_expert_model")],
              work / "eval_expert_model/results.json", reuse)
        _estimator_accuracy(log, work, quick, reuse)
    if study:
        run_study(work / "study", StudyConfig.quick() if quick else StudyConfig(), log, reuse=reuse)
    return {key: load_json(work / rel) for key, rel in (
        ("eval", "eval_expert/results.json"), ("eval_model", "eval_expert_model/results.json"),
        ("estimators", "estimators.json"), ("bench", "bench/bench.json"), ("transport", "bench/transport.json"),
        ("study", "study/study.json"))}


def copy_images(work: Path, img: Path, data: dict[str, Any]) -> dict[str, str]:
    """Copy/plot the figures into ``img``; returns name -> path relative to the document."""
    images = {}
    for name, src in (("experts", work / "eval_expert/success_vs_delay.png"), ("bench", work / "bench/bench.png"),
                      ("reaction_cdf", work / "bench/reaction_cdf.png")):
        if src.exists():
            shutil.copyfile(src, img / f"{name}.png")
            images[name] = f"img/{name}.png"
    if data.get("study"):
        plot_study(data["study"], img / "study.png")
        images["study"] = "img/study.png"
    if data.get("accuracy"):
        plot_accuracy(data["accuracy"], img / "accuracy_study.png")
        images["accuracy"] = "img/accuracy_study.png"
    return images


# ------------------------------------------------------------------------------------------ formatting
def _num(x: Any, nd: int = 2) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def _rec(records: list[dict] | None, **key: Any) -> dict | None:
    return next((r for r in records or [] if all(r.get(k) == v for k, v in key.items())), None)


def _table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(table(head, rows))


def _image(alt: str, path: str | None) -> str:
    return f"![{alt}]({path})\n" if path else ""


# ------------------------------------------------------------------------------------------ sections
def header_values(machine: dict[str, Any], entries: list[dict[str, Any]], quick: bool) -> dict[str, Any]:
    """The date, the machine table and whether the real-time figures were taken under load."""
    cores = machine["cores"] or 1
    loads = [e["load_before"] for e in entries if "bench runtime" in e["command"] and e.get("load_before") is not None]
    keys = ["cpu", "cores", "memory_gb", "gpu", "os", "python", "torch", "mujoco", "lerobot", "numpy", "pyzmq"]
    return {
        "date": machine["date"],
        "total_minutes": f"{sum(e.get('seconds') or 0 for e in entries) / 60:.0f}",
        "quick": quick,
        "machine_table": _table([k.replace("_gb", " (GiB)") for k in keys], [[str(machine[k]) for k in keys]]),
        "busy": bool(loads) and max(loads) > BUSY_LOAD,
        "bench_load": f"{max(loads):.1f}" if loads else "",
        "cores": cores,
    }


def targets_values(data: dict[str, Any]) -> dict[str, Any]:
    """The headline table: each target, the figure measured here, meets or misses."""
    bench, transport, est = data.get("bench") or {}, data.get("transport") or {}, data.get("estimators") or {}
    stalls = (bench.get("stall_ticks") or {}).get("vlash")
    late30 = next((r["lateness_ms_p99"] for r in bench.get("lateness", []) if r["fps"] == 30), None)
    rtt = transport.get("rtt_ms_p50")
    rows = [
        ["vlash stall ticks (bench b, all latencies)", "0", str(stalls), meets(None if stalls is None else stalls == 0)],
        ["tick lateness p99 at 30 Hz (bench a)", f"≤ {TARGET_LATENESS_MS_P99} ms", f"{_num(late30, 3)} ms",
         meets(None if late30 is None else late30 <= TARGET_LATENESS_MS_P99)],
        ["bus round trip p50 (bench transport)", f"≤ {TARGET_RTT_MS_P50} ms", f"{_num(rtt, 3)} ms",
         meets(None if rtt is None else rtt <= TARGET_RTT_MS_P50)],
    ]
    for task, e in est.items():
        for key, what in (("model", "plant's own servo model"), ("model_mismatched", "servo model 20-30% off")):
            ratio = e[key] / e["target"] if e.get("target") else None
            rows.append([f"`model` / `target` estimator RMS error ({task}, Δ={ESTIMATOR_DELAY}, {what})",
                         f"≤ {TARGET_ESTIMATOR_RATIO}×", f"{_num(ratio, 3)}×",
                         meets(None if ratio is None else ratio <= TARGET_ESTIMATOR_RATIO)])
    if data.get("study"):
        rows += headline(data["study"])
    return {"targets_table": _table(["figure", "target", "measured here", "verdict"], rows)}


def _expert_cell(r: dict | None, task: str) -> str:
    """Success · mean steps (track: · mean tracking error; whack: · steps from a pad lighting to its touch)."""
    if r is None:
        return "–"
    if task == "track" and r.get("tracking_error") is not None:
        return f"{percent(r['success_rate'])} · {100 * r['tracking_error']:.2f} cm"
    if task == "whack" and r.get("reaction_steps") is not None:
        return f"{percent(r['success_rate'])} · {r['reaction_steps']:.1f} to touch"
    return f"{percent(r['success_rate'])} · {_num(r['mean_steps'], 1)}"


def expert_values(data: dict[str, Any], images: dict[str, str]) -> dict[str, Any]:
    """Section (i): the expert tables, readings with vlash-vs-naive verdicts, and the estimator accuracy."""
    recs, model, est = data.get("eval") or [], data.get("eval_model") or [], data.get("estimators") or {}
    values: dict[str, Any] = {"experts": bool(recs), "estimators": bool(est), "estimator_delay": ESTIMATOR_DELAY}
    if est:
        rows = [[t, _num(e["none"], 4), _num(e["target"], 4), _num(e["model"], 4), _num(e["model_mismatched"], 4),
                 f"{_num(e['model_over_target'], 3)}×", f"{_num(e['model_mismatched'] / e['target'], 3)}×"]
                for t, e in est.items()]
        values["estimator_table"] = _table(["task", "none (current state)", "target", "model", "model (mismatched)",
                                            "model/target", "mismatched/target"], rows)
    if not recs:
        return values
    tasks = [t for t in TASKS if any(r["task"] == t for r in recs)]
    head = ["Δ", "sync", "naive", "vlash (target)", "vlash (model)", "speed-up vlash/sync", "jump naive", "jump vlash"]
    tables, readings, tally = [], [], Counter()
    for task in tasks:
        delays = sorted({r["delay"] for r in recs if r["task"] == task})
        rows = []
        for d in delays:
            cell = {m: _rec(recs, task=task, delay=d, mode=m) for m in ("sync", "naive", "vlash")}
            cell["model"] = _rec(model, task=task, delay=d)
            s, v = cell["sync"], cell["vlash"]
            speed = (_num(s["mean_steps"] / v["mean_steps"]) + "×" if task != "track" and s and v and s["mean_steps"]
                     and v["mean_steps"] else "–")
            rows.append([str(d), *(_expert_cell(cell[k], task) for k in ("sync", "naive", "vlash", "model")), speed,
                         _num(cell["naive"]["discontinuity"], 3), _num(v["discontinuity"], 3)])
            if d > 0 and cell["naive"] and v:
                tally[compare_success(v, cell["naive"])] += 1
        tables += [f"**{task}**", "", *table(head, rows)]
        for d in delays[-2:]:
            c = {m: _rec(recs, task=task, delay=d, mode=m) for m in ("sync", "naive", "vlash")}
            mo = _rec(model, task=task, delay=d)
            if not all(c.values()):
                continue
            jumps = (c["naive"]["discontinuity"], c["vlash"]["discontinuity"])
            readings.append(f"- {task}, Δ={d}: success sync/naive/vlash/vlash-model "
                            f"{'/'.join(percent(x['success_rate']) if x else '–' for x in (*c.values(), mo))}; "
                            f"vlash {compare_success(c['vlash'], c['naive'])} naive; switch jump naive {jumps[0]:.3f} "
                            f"vs vlash {jumps[1]:.3f} rad ({smoother(*jumps)}).")
    cells = sum(tally.values())
    values.update({
        "expert_chunk_size": "/".join(sorted({str(r.get("chunk_size", "–")) for r in recs})),
        "expert_horizon": "/".join(sorted({str(r["execution_horizon"]) for r in recs})),
        "expert_episodes": recs[0]["episodes"],
        "expert_tables": "\n".join(tables),
        "expert_figure": _image("success vs delay, scripted experts", images.get("experts")),
        "expert_readings": "\n".join(readings),
        "expert_vlash_vs_naive": f"Over the {cells} task/delay cells with Δ>0, vlash (`target` estimator) beats naive "
                                 f"in {tally[BEATS]}, ties in {tally[TIES]} and loses in {tally[LOSES_TO]} (95% Wilson "
                                 "intervals of the success rates).",
        "naive_keeps_up": tally[BEATS] == 0,
    })
    return values


def reaction_values(data: dict[str, Any], images: dict[str, str] | None = None) -> dict[str, Any]:
    """Section (ii): the analytical Table 2 shape, then the measured reaction latency when bench runtime ran."""
    settings = [(f"paper, {g}", x) for g, x in PAPER_TABLE2] + [(f"this bench, emulated model {x:g} ms", x)
                                                               for x in BENCH_LATENCIES_MS]
    chunk_ms = 1000.0 * PAPER_HORIZON / PAPER_FPS
    rows = [[name, f"{ms:g}", f"{chunk_ms + ms:.1f}", f"{ms:g}", f"{(chunk_ms + ms) / ms:.1f}×"] for name, ms in settings]
    analytic_best = (chunk_ms + PAPER_TABLE2[0][1]) / PAPER_TABLE2[0][1]
    values: dict[str, Any] = {
        "paper_horizon": PAPER_HORIZON, "paper_fps": PAPER_FPS,
        "reaction_analytic_table": _table(["setting", "inference ms", "sync max reaction ms", "async reaction ms",
                                           "ratio"], rows),
        "reaction_analytic_ratio": f"{analytic_best:.1f}",
    }
    reaction = (data.get("bench") or {}).get("reaction") or {}
    values["reaction"] = bool(reaction)
    if not reaction:
        return values
    from vlash.experiments.bench_reaction import verdicts

    rows = [[r["mode"], str(r["execution_horizon"]), f"{r['latency_ms']:g}", str(r["events"]),
             _num(r["reaction_ms_p50"], 0), _num(r.get("reaction_ms_p90"), 0), _num(r["reaction_ms_max"], 0),
             _num(r["touch_ms_p50"], 0), str(r.get("successes")), str(r["stall_ticks"]), str(r.get("requests_per_s"))]
            for r in reaction.values()]
    checks = verdicts(reaction)
    verdict_rows = [[f"{v['latency_ms']:g}", v["mode"], _num(v["p50_ms"], 0), _num(v["target_ms"], 0),
                     "yes" if v["meets_target"] else "**no**", "–" if v["ratio_to_sync"] is None else
                     f"{v['ratio_to_sync']:.1f}×", f"{v['paper_ratio']}×"] for v in checks]
    vlash_checks = [v for v in checks if v["mode"] == "vlash"]
    ratios = [v["ratio_to_sync"] for v in checks if v["ratio_to_sync"]]
    events = sorted(r["events"] for r in reaction.values())
    best = max(ratios) if ratios else None
    values.update({
        "reaction_table": _table(["mode", "K", "model ms", "events", "p50 ms", "p90 ms", "max ms", "to touch p50 ms",
                                  "episodes won", "stall ticks", "requests/s"], rows),
        "reaction_verdict_table": _table(["model ms", "mode", "p50 ms", "target ms (model + 2 periods)", "meets target",
                                          "sync/this, measured", "paper, analytical"], verdict_rows),
        "reaction_target_met": bool(vlash_checks) and all(v["meets_target"] for v in vlash_checks),
        "reaction_target_missed": ", ".join(f"{v['latency_ms']:g} ms ({v['p50_ms']:.0f} vs {v['target_ms']:.0f} ms)"
                                            for v in vlash_checks if not v["meets_target"]),
        "reaction_events": f"{events[0]}-{events[-1]}" if events[0] != events[-1] else str(events[0]),
        "reaction_best_ratio": _num(best, 1),
        "reaction_short": best is None or best < analytic_best,
        "reaction_cdf": _image("reaction latency CDF", images.get("reaction_cdf")) if images else "",
        "reaction_wins": "; ".join(f"{r['mode']} {r['latency_ms']:g} ms: {r.get('successes')}" for r in reaction.values()),
        "reaction_vlash_wins_less": any(
            (v.get("successes") or 0) < (n.get("successes") or 0)
            for v in reaction.values() for n in reaction.values()
            if v["mode"] == "vlash" and n["mode"] == "naive" and v["latency_ms"] == n["latency_ms"]),
    })
    return values


def quantization_values(data: dict[str, Any]) -> dict[str, Any]:
    """Section (iii): completion time per quantization q, and where success falls short of the paper."""
    rows = (data.get("bench") or {}).get("quantization") or []
    values: dict[str, Any] = {"quantization": bool(rows), "quantization_delay": QUANTIZATION_DELAY,
                              "quantization_horizon": QUANTIZATION_HORIZON}
    if not rows:
        return values
    readings, at_q, falls = [], [], False
    for r in rows:
        base = next((b for b in rows if b["task"] == r["task"] and b["q"] == 1), None)
        if r["q"] == 1 or base is None:
            continue
        drop = base["success_rate"] - r["success_rate"]
        falls = falls or drop > SUCCESS_DROP
        if r.get("speedup") is not None and r["speedup"] >= r["q"]:
            at_q.append(f"{r['task']} q={r['q']}")
        readings.append(f"- {r['task']} q={r['q']}: speed-up {r.get('speedup', '–')}×"
                        + (f", but success falls from {percent(base['success_rate'])} to {percent(r['success_rate'])}: "
                           "**short of the paper**" if drop > SUCCESS_DROP else ", success kept") + ".")
    values.update({
        "quantization_table": _table(
            ["task", "q", "success", "mean steps", "seconds @30 Hz", "speed-up vs q=1"],
            [[r["task"], str(r["q"]), percent(r["success_rate"]), _num(r["mean_steps"], 1), _num(r["seconds_at_30hz"], 3),
              f"{r['speedup']}×" if r.get("speedup") else "–"] for r in rows]),
        "quantization_readings": "\n".join(readings),
        "speedups_below_q": not at_q,
        "speedups_at_q": ", ".join(at_q),
        "quantization_success_falls": falls,
    })
    return values


def runtime_values(data: dict[str, Any], images: dict[str, str]) -> dict[str, Any]:
    """Section (v): lateness, stalls per mode and the bus round trip, with the stall verdicts."""
    bench, tr = data.get("bench") or {}, data.get("transport")
    values: dict[str, Any] = {"bench_runtime": bool(bench), "transport": bool(tr), "runtime_skipped": not bench and not tr,
                              "lateness_target_ms": TARGET_LATENESS_MS_P99, "rtt_target_ms": TARGET_RTT_MS_P50}
    if bench:
        modes = bench.get("modes", [])
        runs = {m: [r for r in modes if r["mode"] == m] for m in ("sync", "naive", "vlash")}
        stalls = {m: sum(r["stall_ticks"] or 0 for r in rs) for m, rs in runs.items()}
        sync_runs_stalled = sum(1 for r in runs["sync"] if (r["stall_ticks"] or 0) > 0)
        more = [f"{r['latency_ms']:g} ms" for r in runs["naive"]
                if (v := next((x for x in runs["vlash"] if x["latency_ms"] == r["latency_ms"]), None))
                and (r["successes_per_min"] or 0) > (v["successes_per_min"] or 0)]
        values.update({
            "seconds_per_run": bench.get("seconds_per_run"),
            "lateness_table": _table(["Hz", "ticks", "missed", "lateness p50 ms", "p99 ms", "max ms"],
                                     [[str(r["fps"]), str(r["ticks"]), str(r["missed_ticks"]),
                                       _num(r["lateness_ms_p50"], 3), _num(r["lateness_ms_p99"], 3),
                                       _num(r["lateness_ms_max"], 3)] for r in bench.get("lateness", [])]),
            "modes_table": _table(["model ms", "mode", "ticks", "stall ticks", "rtt p50 ms", "chunks", "successes/min"],
                                  [[f"{r['latency_ms']:g}", r["mode"], str(r["ticks"]), str(r["stall_ticks"]),
                                    _num(r["rtt_ms_p50"], 1), str(r["chunks"]), _num(r["successes_per_min"], 1)]
                                   for r in modes]),
            "stall_summary": f"Stall ticks over all runs: sync {stalls['sync']} (stalled in {sync_runs_stalled} of "
                             f"{len(runs['sync'])} runs), naive {stalls['naive']}, vlash {stalls['vlash']}.",
            "sync_stalls_async_never": bool(runs["sync"]) and sync_runs_stalled == len(runs["sync"])
                                       and stalls["naive"] == stalls["vlash"] == 0,
            "naive_more_successes": ", ".join(more),
            "bench_figure": _image("runtime benchmarks", images.get("bench")),
        })
    if tr:
        values["transport_table"] = _table(
            ["round trips", "payload B", "rtt p50 ms", "p90 ms", "p99 ms", "max ms", "encode p50 ms", "decode p50 ms",
             "lost"],
            [[str(tr["n"]), str(tr["payload_bytes"]), _num(tr["rtt_ms_p50"], 3), _num(tr["rtt_ms_p90"], 3),
              _num(tr["rtt_ms_p99"], 3), _num(tr["rtt_ms_max"], 3), _num(tr["encode_ms_p50"], 3),
              _num(tr["decode_ms_p50"], 3), str(tr["lost"])]])
    return values


def commands_values(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The last table: every step with its wall time and load."""
    rows = [[e["label"], f"`{e['command']}`", _num(e.get("seconds"), 0),
             f"{_num(e.get('load_before'), 1)} / {_num(e.get('load_after'), 1)}"] for e in entries]
    return {"commands_table": _table(["step", "command", "seconds", "load"], rows)}


def values(data: dict[str, Any], machine: dict[str, Any], entries: list[dict[str, Any]], images: dict[str, str],
           *, quick: bool) -> dict[str, Any]:
    """Every placeholder and flag of ``results_template.md``, computed from the raw figures."""
    study = data.get("study")
    return {
        **header_values(machine, entries, quick), **targets_values(data), **expert_values(data, images),
        **reaction_values(data, images), **quantization_values(data),
        **(study_values(study, images.get("study")) if study else {"study": False}),
        **accuracy_values(data.get("accuracy"), images.get("accuracy")),
        **runtime_values(data, images), **commands_values(entries),
    }


def render(data: dict[str, Any], machine: dict[str, Any], entries: list[dict[str, Any]], images: dict[str, str],
           *, quick: bool, template: str | None = None) -> str:
    """The whole RESULTS.md: ``template`` (default ``results_template.md``) filled with :func:`values`."""
    text = fill(TEMPLATE.read_text() if template is None else template,
                values(data, machine, entries, images, quick=quick))
    while "\n\n\n" in text:  # an empty optional part (a figure not made) leaves no gap
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip() + "\n"


ACCURACY_HEADING = "## (iv b)"


def _section(text: str, heading: str) -> tuple[int, int]:
    """Where the section starting with ``heading`` begins and ends (the next ``## `` heading) in ``text``."""
    start = text.find("\n" + heading)
    if start < 0:
        raise ValueError(f"no section {heading!r}")
    end = text.find("\n## ", start + 1)
    return start + 1, len(text) if end < 0 else end + 1


def update_accuracy_section(results_md: Path, study: dict[str, Any], img: Path) -> None:
    """Re-render only section (iv b) of an existing RESULTS.md from a study's results (and its figure), so a
    long study can be reported without re-running every other section."""
    img.mkdir(parents=True, exist_ok=True)
    plot_accuracy(study, img / "accuracy_study.png")
    template = TEMPLATE.read_text()
    a, b = _section(template, ACCURACY_HEADING)
    block = fill(template[a:b], accuracy_values(study, "img/accuracy_study.png"))
    while "\n\n\n" in block:
        block = block.replace("\n\n\n", "\n\n")
    text = results_md.read_text()
    try:
        c, d = _section(text, ACCURACY_HEADING)
    except ValueError:  # rendered before the study existed: the section goes where the template has it
        after = text.find("\n## (v)")
        c = d = len(text) if after < 0 else after + 1
    results_md.write_text(text[:c] + block.rstrip() + "\n\n" + text[d:])

