"""A SimPy environment whose clock is integer nanoseconds, and which can run
callbacks at the end of an instant.

Its hot paths (the event loop, CPU timeouts, firing a wake) use SimPy 4's
internals directly: the heap of (time, priority, id, event) and the events'
`callbacks`, `_ok` and `_value`; pyproject pins simpy below 5."""

from __future__ import annotations

from collections.abc import Callable, Generator
from heapq import heappop, heappush
from typing import Any, NoReturn, TypeAlias

import simpy
from simpy.events import NORMAL, PENDING, Timeout

# What a simulated activity is: a generator of SimPy events (`yield from` it).
Steps: TypeAlias = Generator[simpy.Event, Any, Any]


class Clock(simpy.Environment):
    """Every delay procsim schedules is an integer number of nanoseconds, so the
    clock stays an int."""

    # A plain attribute rather than SimPy's property: the model reads the time at
    # almost every step, and a property costs a function call each time. Events
    # are processed only by `step` and `run_to_end`, which keep it equal to
    # SimPy's own `_now`.
    now: int = 0

    def __init__(self) -> None:
        super().__init__()
        self._end_of_instant: list[Callable[[], None]] = []

    def at_end_of_instant(self, callback: Callable[[], None]) -> None:
        """Call `callback` once every event of the current instant has been
        processed, including those scheduled meanwhile, before time moves on.
        Cheaper than an event of the lowest priority: the scheduler asks for one
        at almost every state change."""
        self._end_of_instant.append(callback)

    def cpu_timeout(self, delay: int) -> Timeout:
        """`Timeout(self, delay)`, built with one call instead of three: the model
        makes one for every stretch of CPU time."""
        timeout = object.__new__(Timeout)  # SimPy's __init__ and schedule, inlined
        timeout.env = self
        timeout.callbacks = []
        timeout._value = None
        timeout._delay = delay
        timeout._ok = True
        heappush(self._queue, (self.now + delay, NORMAL, next(self._eid), timeout))
        return timeout

    def fire(self, event: simpy.Event, value: Any = None) -> bool:
        """`event.succeed(value)` unless it has been triggered already (False),
        in one call instead of three: every wake of a task goes through here."""
        if event._value is not PENDING:
            return False
        event._ok = True
        event._value = value
        heappush(self._queue, (self.now, NORMAL, next(self._eid), event))
        return True

    def step(self) -> None:
        """SimPy's step (process the next event), keeping `now` up to date."""
        try:
            now, _, _, event = heappop(self._queue)
        except IndexError:
            raise simpy.core.EmptySchedule from None
        self._now = now
        self.now = now  # type: ignore[assignment]  # every delay is an int
        callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
        for callback in callbacks:
            callback(event)
        if not event._ok and not hasattr(event, "_defused"):
            _crash(event)

    def run_to_end(self) -> None:
        """Process events until none is left, running the end-of-instant
        callbacks each time the clock is about to move on (or stop)."""
        queue = self._queue  # SimPy's heap of (time, priority, id, event)
        while True:
            if self._end_of_instant and (not queue or queue[0][0] > self.now):
                callbacks, self._end_of_instant = self._end_of_instant, []
                for callback in callbacks:
                    callback()
            elif queue:
                # `step`, inlined: this runs once per event of the simulation.
                now, _, _, event = heappop(queue)
                self._now = now
                self.now = now  # type: ignore[assignment]
                handlers, event.callbacks = event.callbacks, None  # type: ignore[assignment]
                for handler in handlers:
                    handler(event)
                if not event._ok and not hasattr(event, "_defused"):
                    _crash(event)
            else:
                return


def _crash(event: simpy.Event) -> NoReturn:
    """An event failed and nothing handled it: raise as SimPy does, a copy of the
    exception, so that the event's own traceback stays intact."""
    failure = event._value
    error = type(failure)(*failure.args)
    error.__cause__ = failure
    raise error
