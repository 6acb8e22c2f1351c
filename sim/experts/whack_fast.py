"""Scripted expert for ``whack_fast``: the whack expert, at the task's 50 Hz."""

from __future__ import annotations

from sim.experts.motion import WhackExpert
from sim.tasks.whack import FAST_FPS


class WhackFastExpert(WhackExpert):
    """:class:`WhackExpert` planning at ``FAST_FPS`` by default (its chunks are timed in control steps)."""

    task_name = "whack_fast"

    def __init__(self, *args, fps: float = FAST_FPS, **kwargs) -> None:
        super().__init__(*args, fps=fps, **kwargs)
