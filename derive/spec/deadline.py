"""Deadlines without alarms: an end time on a monotonic clock, read between steps.

Design: a `Deadline` is ``clock() + seconds`` taken when it is made; code that
works in steps (the parser node by node, `shorter` between cancel and factor,
the claim prover between rewrites) calls `check` or `expired` between them.
Nothing interrupts a step in progress, so a deadline works the same in any
thread, never installs an interrupt handler, and cannot fire inside someone
else's code (a gc callback, a finally block) the way the old alarm did.

A step that cannot be interrupted (one SymPy call) is bounded before it
starts instead, by a cheap measure of its input: the parser's limits on text,
tree and number size (`derive.spec.screening`), the degree and size limits of
`derive.calculus.simplify.shorter`.  We chose that over running the call in
a worker process with a timeout: a fresh process pays ~1 s to import SymPy
and pickles expressions both ways, more than the calls it would guard cost
within the limits; and a size limit gives the same answer on a loaded machine
as on an idle one, so results decided by it may be cached.

The clock is injectable (``Deadline(1.0, clock=fake)``), so tests advance
time by hand instead of racing the wall clock.
"""

from __future__ import annotations

import time
from typing import Callable

from ..errors import DeriveError

Clock = Callable[[], float]


class OutOfTime(DeriveError):
    """A deadline passed between two steps; the message names the work and the budget."""


class Deadline:
    """``seconds`` from now on ``clock``; a budget of 0 has already run out."""

    def __init__(self, seconds: float, clock: Clock = time.monotonic):
        if not seconds >= 0:  # also refuses nan
            raise ValueError(f"a deadline needs seconds >= 0, got {seconds!r}")
        self.seconds, self.clock = seconds, clock
        self.end = clock() + seconds

    def __repr__(self) -> str:
        return f"Deadline({self.seconds:g} s, {self.remaining():.3g} s left)"

    def remaining(self) -> float:
        return max(0.0, self.end - self.clock())

    def expired(self) -> bool:
        # >= so that a zero budget is out at once on any clock resolution.
        return self.clock() >= self.end

    def check(self, what: str) -> None:
        """Raise `OutOfTime` if the deadline has passed."""
        if self.expired():
            raise OutOfTime(f"{what} took over {self.seconds:g} s")

