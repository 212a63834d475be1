"""A SimPy environment whose clock is integer nanoseconds."""

from __future__ import annotations

import simpy
from simpy.events import EventPriority


class Clock(simpy.Environment):
    """Every delay procsim schedules is an integer number of nanoseconds, so the
    clock stays an int; this says so to the type checker."""

    @property
    def now(self) -> int:
        return self._now  # type: ignore[return-value]


_END_OF_INSTANT = EventPriority(2)  # SimPy runs 0 (urgent) then 1 (normal) first


class EndOfInstant(simpy.Event):
    """An event that fires after every other event of the current instant,
    including those scheduled while it waits (SimPy orders by time, then priority)."""

    def __init__(self, env: Clock) -> None:
        # Triggered at creation like simpy.Timeout, whose initialisation this follows.
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, _END_OF_INSTANT)
