"""Per-task state intervals: the time a task spent in each state, from state events.

A task is in `new` from its `task` event, then in whatever state its latest
`state` event named. Every state event closes the task's current interval and
opens the next one, so the intervals of a task tile its life without gaps or
overlaps. `terminated` has no interval: the task is gone. An interval still open
when the trace ends is closed at the end record's time.

`IntervalTracker` does this one event at a time and holds one open interval per
task, so exporters can stream a trace of any length; `state_intervals` is the
whole-trace convenience for consumers with random access (the animation).
Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sim.trace import Event, StateChanged, TaskCreated, TaskState


@dataclass(frozen=True, slots=True)
class Interval:
    """The task was in `state` from `start_ns` (inclusive) to `end_ns`.
    `cpu` is set for running, `reason` for blocked; `uncertain` when the recorder
    could not see the start exactly."""

    start_ns: int
    end_ns: int
    state: TaskState
    cpu: int | None = None
    reason: str | None = None
    uncertain: bool = False

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


class IntervalTracker:
    """Turns a stream of events into closed intervals.

    `feed(event)` returns the interval the event closed (a `state` event closes
    the task's previous one), or None. `close_all(t)` closes what is still open.
    Memory holds one open interval per live task.
    """

    def __init__(self) -> None:
        self._open: dict[str, Interval] = {}

    def feed(self, event: Event) -> tuple[str, Interval] | None:
        if isinstance(event, TaskCreated):
            # A second `task` event for a live task would hide its first interval;
            # close it like a state change would so no time is lost.
            closed = self._close(event.task, event.t)
            self._open[event.task] = Interval(event.t, event.t, "new")
            return closed
        if not isinstance(event, StateChanged):
            return None
        closed = self._close(event.task, event.t)
        if event.state != "terminated":
            self._open[event.task] = Interval(
                event.t, event.t, event.state, event.cpu, event.reason, event.uncertain
            )
        return closed

    def current(self, task: str) -> Interval | None:
        """The open interval of `task` (its end not yet known), if it is alive."""
        return self._open.get(task)

    def close_all(self, t: int) -> list[tuple[str, Interval]]:
        """Close every open interval at time `t` (the end of the trace)."""
        closed = [(task, _ended(iv, t)) for task, iv in self._open.items()]
        self._open.clear()
        return closed

    def _close(self, task: str, t: int) -> tuple[str, Interval] | None:
        iv = self._open.pop(task, None)
        return None if iv is None else (task, _ended(iv, t))


def _ended(iv: Interval, t: int) -> Interval:
    return Interval(iv.start_ns, t, iv.state, iv.cpu, iv.reason, iv.uncertain)


def iter_intervals(events: Iterable[Event], end_ns: int) -> Iterator[tuple[str, Interval]]:
    """Every (task, interval) in the order the intervals close; the ones open at
    the end of the trace last, closed at `end_ns`."""
    tracker = IntervalTracker()
    for event in events:
        closed = tracker.feed(event)
        if closed is not None:
            yield closed
    yield from tracker.close_all(end_ns)


def state_intervals(events: Iterable[Event], end_ns: int) -> dict[str, list[Interval]]:
    """Each task's intervals in time order, tasks in order of first appearance.
    `events` is read once, so a reader's lazy `events()` will do."""
    out: dict[str, list[Interval]] = {}
    tracker = IntervalTracker()
    for event in events:
        if isinstance(event, TaskCreated | StateChanged):
            out.setdefault(event.task, [])
        closed = tracker.feed(event)
        if closed is not None:
            out[closed[0]].append(closed[1])
    for task, iv in tracker.close_all(end_ns):
        out[task].append(iv)
    return out
