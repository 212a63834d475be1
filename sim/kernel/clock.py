"""A SimPy environment whose clock is integer nanoseconds, and which can run
callbacks at the end of an instant."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeAlias

import simpy

# What a simulated activity is: a generator of SimPy events (`yield from` it).
Steps: TypeAlias = Generator[simpy.Event, Any, Any]


class Clock(simpy.Environment):
    """Every delay procsim schedules is an integer number of nanoseconds, so the
    clock stays an int; this says so to the type checker."""

    def __init__(self) -> None:
        super().__init__()
        self._end_of_instant: list[Callable[[], None]] = []

    @property
    def now(self) -> int:
        return self._now  # type: ignore[return-value]

    def at_end_of_instant(self, callback: Callable[[], None]) -> None:
        """Call `callback` once every event of the current instant has been
        processed, including those scheduled meanwhile, before time moves on.
        Cheaper than an event of the lowest priority: the scheduler asks for one
        at almost every state change."""
        self._end_of_instant.append(callback)

    def run_to_end(self) -> None:
        """Process events until none is left, running the end-of-instant
        callbacks each time the clock is about to move on (or stop)."""
        queue = self._queue  # SimPy's heap of (time, priority, id, event)
        step = self.step
        while True:
            if self._end_of_instant and (not queue or queue[0][0] > self._now):
                callbacks, self._end_of_instant = self._end_of_instant, []
                for callback in callbacks:
                    callback()
            elif queue:
                step()
            else:
                return
