"""Computed verdicts for the reports: each comparison word follows from the numbers by one rule."""

from __future__ import annotations

from typing import Any

BEATS, LOSES_TO, TIES = "beats", "loses to", "ties (overlapping 95% intervals) with"


def compare_success(a: dict[str, Any], b: dict[str, Any]) -> str:
    """``a`` beats / loses to ``b`` when the 95% intervals of their success rates do not overlap, else ties."""
    if a["success_ci95"][0] > b["success_ci95"][1]:
        return BEATS
    if a["success_ci95"][1] < b["success_ci95"][0]:
        return LOSES_TO
    return TIES


def meets(ok: bool | None) -> str:
    """The verdict column of the targets table: ``n/a`` when the figure was not measured."""
    return {None: "n/a", True: "**meets**", False: "**misses**"}[ok]


def smoother(naive: float, vlash: float, tolerance: float = 5e-4) -> str:
    """Which mode's chunk switches jump less (``equal`` within ``tolerance`` rad)."""
    if abs(naive - vlash) < tolerance:
        return "equal"
    return "vlash smoother" if vlash < naive else "naive smoother"
