"""Plots a person looks at instead of reading logs: the run timeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vlash.runlog import read_jsonl


def timeline(run_folder: str | Path, out_png: str | Path | None = None, max_steps: int = 600) -> Path:
    """Inference intervals vs executed chunks, stalls in red, tick lateness below.

    Shows the first ``max_steps`` steps so individual chunks stay visible.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(run_folder)
    ticks = read_jsonl(folder / "ticks.jsonl")
    chunks = read_jsonl(folder / "chunks.jsonl")
    out_png = Path(out_png or folder / "timeline.png")
    fig, (ax, ax_late) = plt.subplots(2, 1, figsize=(12, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    if ticks:
        first = ticks[0]["step"]
        ticks = [t for t in ticks if t["step"] - first < max_steps]
        steps = np.array([t["step"] for t in ticks])
        chunk_ids = np.array([t["chunk"] for t in ticks])
        stalls = np.array([bool(t["stall"]) for t in ticks])
        colors = plt.get_cmap("tab10")
        for step, cid in zip(steps, chunk_ids, strict=True):
            if cid >= 0:
                ax.barh(0, 1, left=step, height=0.6, color=colors(cid % 10), linewidth=0)
        if stalls.any():
            ax.barh(0, 1, left=steps[stalls], height=0.6, color="red", label="stall (holding)")
        late = [t["lateness_ms"] for t in ticks]
        ax_late.plot(steps, late, lw=0.8, color="black")
        ax_late.set_ylabel("lateness ms")
        last = steps[-1]
        for i, c in enumerate(c for c in chunks if c["obs_step"] <= last):
            y = 1 + (i % 4) * 0.25
            ax.plot([c["obs_step"], c["arrival_step"]], [y, y], color="gray", lw=3, solid_capstyle="butt")
            ax.plot([c["start_step"]], [y], marker="|", color="black", ms=10)
    ax.set_yticks([0, 1.4])
    ax.set_yticklabels(["executed chunk", "inference\n(obs → arrival, | = start_step)"])
    ax.set_title(f"{folder.name}: timeline")
    ax_late.set_xlabel("control step")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
