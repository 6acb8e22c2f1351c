"""Plots a person looks at instead of reading logs: the run timeline of one robot.

:func:`timeline_data` turns a run folder's ``ticks.jsonl`` / ``chunks.jsonl`` records into arrays
(pure: no files, no matplotlib); :func:`timeline` draws them into ``timeline.png``: every joint's
measured position against its commanded target, the executed chunks and the inference requests,
chunk switches with their jump size, stalls, episode starts and successes, and tick lateness,
all against seconds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlash.runlog import read_jsonl

# chunk bands take cool colours only, so the stall colour (red) is never a chunk's
CHUNK_COLOURS = ("#1f77b4", "#aec7e8", "#2ca02c", "#98df8a", "#9467bd", "#c5b0d5", "#17becf", "#9edae5")
STALL_COLOUR = "#d62728"
SUCCESS_COLOUR = "#2ca02c"
MAX_JOINT_PANELS = 6  # more action dimensions than this: the ones that move most


@dataclass(frozen=True)
class TimelineData:
    """A robot's run as arrays, one row per logged tick (``seconds = step / fps``)."""

    fps: float
    steps: np.ndarray  # (T,) int control steps
    seconds: np.ndarray  # (T,) steps / fps
    state: np.ndarray  # (T, S) measured state read at each tick
    action: np.ndarray  # (T, A) commanded target sent at each tick (after the safety layer)
    chunk: np.ndarray  # (T,) executed chunk id, -1 while holding
    stall: np.ndarray  # (T,) bool: the robot held because the plan was empty
    lateness_ms: np.ndarray  # (T,)
    switch_index: np.ndarray  # (W,) tick indices where execution passed to another chunk
    switch_jump: np.ndarray  # (W,) max over joints of |action[i] - action[i-1]| at those ticks
    switch_joint: np.ndarray  # (W,) the joint with that largest jump
    episode_starts: np.ndarray  # (E,) seconds at which each episode's first tick ran
    successes: np.ndarray  # (N,) seconds at which a success was reported
    inference: np.ndarray  # (C, 3) per received chunk: observation, arrival and start, in seconds

    @property
    def switch_seconds(self) -> np.ndarray:
        """Seconds of the chunk switches."""
        return self.seconds[self.switch_index]

    def stall_spans(self) -> list[tuple[float, float]]:
        """Contiguous runs of stalled ticks as (start, end) seconds, end exclusive (one period after the last)."""
        spans: list[tuple[float, float]] = []
        start = None
        for i, stalled in enumerate(self.stall):
            if stalled and start is None:
                start = i
            ended = start is not None and (not stalled or i == len(self.stall) - 1
                                           or self.steps[i + 1] != self.steps[i] + 1)
            if ended:
                last = i if stalled else i - 1
                spans.append((float(self.seconds[start]), float(self.seconds[last]) + 1.0 / self.fps))
                start = None
        return spans


def _switch_ticks(chunk: np.ndarray) -> list[int]:
    """Ticks where a chunk starts executing after another chunk did (holds in between do not count as chunks)."""
    out, last = [], -1
    for i, cid in enumerate(chunk):
        if cid >= 0:
            if last >= 0 and cid != last:
                out.append(i)
            last = int(cid)
    return out


def _success_ticks(events: list[dict[str, float]]) -> list[int]:
    """Ticks where the driver's success count rose (or, without a count, ``success`` went 0 -> 1 in an episode)."""
    out = []
    for i in range(1, len(events)):
        now, before = events[i], events[i - 1]
        if "successes" in now and "successes" in before:
            if now["successes"] > before["successes"]:
                out.append(i)
        elif now.get("success", 0) and not before.get("success", 0) and now.get("episode") == before.get("episode"):
            out.append(i)
    if events and "successes" not in events[0] and events[0].get("success", 0):
        out.insert(0, 0)
    return out


def timeline_data(ticks: Sequence[dict[str, Any]], chunks: Sequence[dict[str, Any]], fps: float,
                  max_seconds: float | None = None) -> TimelineData:
    """The arrays the timeline draws, from the records of ``ticks.jsonl`` and ``chunks.jsonl``.

    ``max_seconds`` keeps the ticks of the first that many seconds after the first tick (all when None).
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    ticks = list(ticks)
    if ticks and max_seconds is not None:
        first = ticks[0]["step"]
        ticks = [t for t in ticks if (t["step"] - first) / fps < max_seconds]
    steps = np.array([int(t["step"]) for t in ticks], dtype=np.int64)
    seconds = steps / fps
    state = np.array([t["state"] for t in ticks], dtype=np.float64).reshape(len(ticks), -1 if ticks else 0)
    action = np.array([t["action"] for t in ticks], dtype=np.float64).reshape(len(ticks), -1 if ticks else 0)
    chunk = np.array([int(t["chunk"]) for t in ticks], dtype=np.int64)
    switches = np.array(_switch_ticks(chunk), dtype=np.int64)
    jumps = np.abs(action[switches] - action[switches - 1]) if len(switches) else np.zeros((0, action.shape[1]))
    events = [t.get("events") or {} for t in ticks]
    episode_starts = [i for i in range(len(ticks)) if i == 0 or events[i].get("episode") != events[i - 1].get("episode")]
    last_step = steps[-1] if len(steps) else -1
    inference = np.array([[c["obs_step"], c["arrival_step"], c["start_step"]] for c in chunks
                          if c["obs_step"] <= last_step], dtype=np.float64).reshape(-1, 3) / fps
    return TimelineData(
        fps=float(fps),
        steps=steps,
        seconds=seconds,
        state=state,
        action=action,
        chunk=chunk,
        stall=np.array([bool(t["stall"]) for t in ticks], dtype=bool),
        lateness_ms=np.array([t.get("lateness_ms") or 0.0 for t in ticks], dtype=np.float64),
        switch_index=switches,
        switch_jump=jumps.max(axis=1) if len(switches) else np.zeros(0),
        switch_joint=jumps.argmax(axis=1) if len(switches) else np.zeros(0, dtype=np.int64),
        episode_starts=seconds[episode_starts] if len(ticks) else np.zeros(0),
        successes=seconds[_success_ticks(events)] if len(ticks) else np.zeros(0),
        inference=inference,
    )


def run_fps(folder: Path, ticks: Sequence[dict[str, Any]]) -> float:
    """The control rate of a robot's run: its ``summary.json``, else the median tick period of the log."""
    summary = folder / "summary.json"
    if summary.exists():
        try:
            fps = json.loads(summary.read_text()).get("fps")
            if fps:
                return float(fps)
        except (json.JSONDecodeError, AttributeError):
            pass
    pairs = [(b["t"] - a["t"]) / (b["step"] - a["step"]) for a, b in zip(ticks, ticks[1:], strict=False)
             if b["step"] > a["step"] and "t" in a and "t" in b]
    period = float(np.median(pairs)) if pairs else 0.0
    return 1.0 / period if period > 0 else 30.0


def chosen_joints(data: TimelineData, most: int = MAX_JOINT_PANELS) -> list[int]:
    """Every joint when there are at most ``most``, else the ``most`` whose targets span the widest range."""
    dims = data.action.shape[1]
    if dims <= most:
        return list(range(dims))
    spread = np.ptp(data.action, axis=0) if len(data.action) else np.zeros(dims)
    return sorted(np.argsort(-spread, kind="stable")[:most].tolist())


def _summary(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def x_offsets(count: int, xs: Sequence[float], spread: float = 0.3) -> np.ndarray:
    """Small x shifts, one per curve, centred on 0 and spanning ``spread`` of the smallest gap between ``xs``,
    so that curves through the same points stay visible side by side."""
    if count <= 1:
        return np.zeros(max(count, 0))
    gaps = np.diff(sorted(set(xs)))
    unit = float(gaps.min()) if len(gaps) else 1.0
    return (np.arange(count) - (count - 1) / 2) * unit * spread / (count - 1)


def timeline(run_folder: str | Path, out_png: str | Path | None = None, max_seconds: float = 20.0,
             joints: Sequence[int] | None = None) -> Path:
    """Draw a robot's run folder (``ticks.jsonl``, ``chunks.jsonl``) into ``timeline.png``; its path.

    Panels, sharing one axis in seconds over the first ``max_seconds``: executed chunks and inference
    requests; one per joint (``joints``, default :func:`chosen_joints`), measured position against the
    commanded target; the jump at each chunk switch; tick lateness. Stalls are shaded red on every
    panel, episode starts are dashed lines and successes green lines.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    folder = Path(run_folder)
    records = read_jsonl(folder / "ticks.jsonl")
    data = timeline_data(records, read_jsonl(folder / "chunks.jsonl"), run_fps(folder, records), max_seconds)
    summary = _summary(folder)
    out_png = Path(out_png or folder / "timeline.png")
    picked = list(joints) if joints is not None else chosen_joints(data)
    ratios = [1.4] + [1.0] * len(picked) + [0.8, 0.7]
    fig, axes = plt.subplots(len(ratios), 1, figsize=(13, 1.9 + 1.15 * sum(ratios)), sharex=True,
                             gridspec_kw={"height_ratios": ratios})
    ax_chunks, ax_joints, ax_jump, ax_late = axes[0], axes[1:-2], axes[-2], axes[-1]
    t, period = data.seconds, 1.0 / data.fps
    for ax in axes:
        for start, end in data.stall_spans():
            ax.axvspan(start, end, color=STALL_COLOUR, alpha=0.18, lw=0)
        for s in data.episode_starts[1:]:
            ax.axvline(s, color="dimgrey", ls="--", lw=0.9)
        ax.grid(alpha=0.25)
    ax_chunks.vlines(data.successes, 1.8, 2.2, color=SUCCESS_COLOUR, lw=1.6)
    ax_chunks.plot(data.successes, np.full(len(data.successes), 2.0), "*", color=SUCCESS_COLOUR, ms=11)
    # executed chunks (one band per tick, coloured by chunk) and inference requests above
    executing = data.chunk >= 0
    colours = [CHUNK_COLOURS[c % len(CHUNK_COLOURS)] for c in data.chunk[executing]]
    ax_chunks.bar(t[executing], 0.6, width=period, bottom=-0.3, align="edge", color=colours, lw=0)
    stalled = data.stall
    ax_chunks.bar(t[stalled], 0.6, width=period, bottom=-0.3, align="edge", color=STALL_COLOUR, lw=0)
    for i, (obs, arrival, start) in enumerate(data.inference):
        y = 0.8 + (i % 3) * 0.3
        ax_chunks.plot([obs, arrival], [y, y], color="grey", lw=3, solid_capstyle="butt")
        ax_chunks.plot([start], [y], marker="|", color="black", ms=9)
    if not len(t):
        ax_chunks.text(0.5, 0.5, "no ticks were logged", transform=ax_chunks.transAxes, ha="center", fontsize=12)
    ax_chunks.set_yticks([0, 1.1, 2.0], ["executed\nchunk", "inference\nobs → arrival\n| = start", "success"])
    ax_chunks.set_ylim(-0.5, 2.35)
    for ax, j in zip(ax_joints, picked, strict=True):
        ax.plot(t, data.action[:, j], color="tab:orange", lw=1.4, ls="--", drawstyle="steps-post")
        ax.plot(t, data.state[:, j], color="black", lw=1.0)
        on_joint = data.switch_joint == j
        ax.plot(data.switch_seconds[on_joint], data.action[data.switch_index[on_joint], j], "v", color="tab:purple", ms=5)
        ax.set_ylabel(f"joint {j}\n(rad)", fontsize=9)
    ax_jump.vlines(data.switch_seconds, 0, data.switch_jump, color="tab:purple", lw=1.5)
    ax_jump.plot(data.switch_seconds, data.switch_jump, "o", color="tab:purple", ms=4)
    for s, jump, j in zip(data.switch_seconds, data.switch_jump, data.switch_joint, strict=True):
        ax_jump.annotate(f"{jump:.2f}\nj{j}", (s, jump), textcoords="offset points", xytext=(0, 3), ha="center",
                         fontsize=6)
    ax_jump.set_ylabel("switch jump\nmax|Δa| (rad)", fontsize=9)
    ax_jump.set_ylim(0, max(0.05, 1.35 * float(data.switch_jump.max(initial=0.0))))
    ax_late.plot(t, data.lateness_ms, lw=0.8, color="black")
    ax_late.set_ylabel("tick lateness\n(ms)", fontsize=9)
    ax_late.set_xlabel(f"time (s) = control step / {data.fps:g} Hz")
    ax_late.set_xlim(t[0] if len(t) else 0, (t[-1] + period) if len(t) else 1)
    handles = [
        Line2D([], [], color="black", lw=1.0, label="measured position"),
        Line2D([], [], color="tab:orange", lw=1.4, ls="--", label="commanded target"),
        Line2D([], [], color="tab:purple", marker="v", ls="", label="chunk switch (on the joint that jumps most)"),
        Patch(color=STALL_COLOUR, alpha=0.4, label="stall (holding)"),
        Line2D([], [], color="dimgrey", ls="--", lw=0.9, label="episode start"),
        Line2D([], [], color=SUCCESS_COLOUR, marker="*", ms=10, ls="", label="success"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=6, fontsize=9, bbox_to_anchor=(0.5, 0.0), frameon=False)
    mode = summary.get("mode") or "?"
    shown = f"{t[-1] - t[0] + period:.1f}" if len(t) else "0"
    fig.suptitle(
        f"{folder.parent.name}/{folder.name} ({mode} mode): joint positions vs commanded targets, "
        f"chunk switches, stalls and episodes — first {shown} s at {data.fps:g} Hz\n"
        f"{len(data.switch_index)} switches (median jump "
        f"{_median(data.switch_jump)} rad), {int(data.stall.sum())} stalled ticks, "
        f"{max(len(data.episode_starts), 0)} episodes, {len(data.successes)} successes",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.025, 1, 1))
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def _median(values: np.ndarray) -> str:
    return f"{float(np.median(values)):.3f}" if len(values) and not math.isnan(float(np.median(values))) else "–"
