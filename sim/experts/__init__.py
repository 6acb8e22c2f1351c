"""Scripted experts: one chunk planner per task, each implementing :class:`vlash.contracts.Policy`.

``make_expert("reach" | "whack" | "pick_place" | "track" | "whack_fast" | "intercept" | "detour", chunk_size=50,
fps=...)`` builds one; ``fps`` defaults to the task's own rate (30 Hz, 50 Hz for ``whack_fast`` and ``intercept``).
Experts read ``observation.state`` (the state to plan from), ``observation.extras["task_state"]``
(the environment's privileged task information) and, when present, ``observation.extras["velocity"]``
(the measured joint velocity: a plan continues the arm's motion instead of starting from rest), and
are deterministic. An expert with several good ways of doing its task lists them in ``strategies``
and takes ``strategy=`` (``detour``: "random", the default, drawn per episode, or "left"/"right"); it
reports the one the current episode uses as ``strategy_name``.
"""

from __future__ import annotations

from sim.experts.detour import DetourExpert
from sim.experts.intercept import InterceptExpert
from sim.experts.motion import ReachExpert, TrackExpert, WhackExpert
from sim.experts.pick_place import PickPlaceExpert
from sim.experts.planning import ChunkExpert
from sim.experts.whack_fast import WhackFastExpert

EXPERTS: dict[str, type[ChunkExpert]] = {
    "reach": ReachExpert,
    "whack": WhackExpert,
    "pick_place": PickPlaceExpert,
    "track": TrackExpert,
    "whack_fast": WhackFastExpert,
    "intercept": InterceptExpert,
    "detour": DetourExpert,
}


def make_expert(task: str, chunk_size: int = 50, **kwargs) -> ChunkExpert:
    """The scripted expert of ``task``; kwargs: ``fps`` and expert-specific settings."""
    if task not in EXPERTS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(EXPERTS)}")
    return EXPERTS[task](chunk_size=chunk_size, **kwargs)


__all__ = ["EXPERTS", "ChunkExpert", "DetourExpert", "InterceptExpert", "PickPlaceExpert", "ReachExpert", "TrackExpert", "WhackExpert",
           "WhackFastExpert", "make_expert"]
