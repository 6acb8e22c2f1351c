"""The one control tick. The virtual-time runner and the real-time control process both run it.

Order at every control step k (and nowhere else):

1. **install** every chunk that has arrived by step k (``link.arrivals(k)``);
2. **request**: if the mode's trigger fires (:meth:`Scheduler.should_request` with the link's
   current Δ), send a request for the observation at k; an answer already usable at k (Δ = 0 in
   virtual time) is installed at once;
3. **execute** step k's action from the plan, or hold (a stall).

Installing before requesting means a chunk that arrives at step k can trigger the next request at
k itself: the back-to-back (streaming, K = Δ) regime behaves the same in both shells. Pure: no
I/O and no clock, except through the ``link`` the shell passes in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from vlash.plan import Executed, Installed
from vlash.scheduler import Scheduler


@dataclass(frozen=True)
class Arrival:
    """A chunk that reached the robot: row 0 is for ``start_step``."""

    start_step: int
    actions: np.ndarray
    chunk_id: int | None = None  # None: the scheduler numbers it
    answers_request: bool = True  # False: a late answer to a request already given up on
    delay_steps: int | None = None  # the Δ it was computed with (streaming sync runs K = max(Δ, 1) of it)
    meta: Any = None  # the shell's own record of it (the message, the request), untouched here


class Link(Protocol):
    """Where a shell's chunks come from and its requests go: the bus, or virtual time's delay line."""

    def arrivals(self, step: int) -> list[Arrival]:
        """Chunks usable at ``step`` that have not been handed out yet."""

    def delay_steps(self) -> int:
        """The current Δ (exact in virtual time, the server's estimate in real time)."""

    def send_request(self, step: int) -> bool:
        """Ask for a chunk from the observation at ``step``; False if it could not go out."""


@dataclass
class TickResult:
    step: int
    executed: Executed | None  # None between start_tick and finish_tick
    requested: bool
    installed: list[tuple[Arrival, Installed]] = field(default_factory=list)


def run_tick(scheduler: Scheduler, link: Link, step: int, state: np.ndarray) -> TickResult:
    """Run control step ``step`` from the measured ``state``: install, maybe request, execute."""
    return finish_tick(scheduler, link, start_tick(scheduler, link, step), state)


def start_tick(scheduler: Scheduler, link: Link, step: int) -> TickResult:
    """Phases 1 and 2 of step ``step``: install what arrived, send the request if the mode's trigger fires.

    A batched shell runs this for every robot, answers all requests in one policy call, then runs
    :func:`finish_tick` for each; :func:`run_tick` runs both back to back.
    """
    installed = [(a, _install(scheduler, a, step)) for a in link.arrivals(step)]
    requested = False
    if scheduler.should_request(step, link.delay_steps()) and link.send_request(step):
        requested = True
        scheduler.mark_requested(step)
    return TickResult(step, None, requested, installed)


def finish_tick(scheduler: Scheduler, link: Link, started: TickResult, state: np.ndarray) -> TickResult:
    """Phase 3: install an answer already usable at this step (Δ = 0), then execute or hold."""
    step = started.step
    installed = list(started.installed)
    if started.requested:
        installed += [(a, _install(scheduler, a, step)) for a in link.arrivals(step)]
    executed = scheduler.execute(step, state)
    return TickResult(step, executed, started.requested, installed)


def _install(scheduler: Scheduler, arrival: Arrival, step: int) -> Installed:
    return scheduler.receive(arrival.start_step, arrival.actions, step, arrival.chunk_id, arrival.answers_request,
                             arrival.delay_steps)
