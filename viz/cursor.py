"""The playhead: one clock shared by every trace on screen.

A position is a time and, per trace, how many of its events have been applied.
Playing and seeking apply every event up to the time; stepping applies or
undoes exactly one event (of whichever trace has the nearest one), so events
that share a timestamp can still be watched one at a time.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from viz.index import TraceIndex


@dataclass(frozen=True, slots=True)
class Cursor:
    t: int
    ks: tuple[int, ...]


def at_time(indexes: Sequence[TraceIndex], t: int) -> Cursor:
    """Every event at or before t applied."""
    t = max(0, min(t, end_time(indexes)))
    return Cursor(t, tuple(ix.event_index_at(t) for ix in indexes))


def start(indexes: Sequence[TraceIndex]) -> Cursor:
    """Before the first event: an empty stage."""
    return Cursor(0, tuple(0 for _ in indexes))


def finish(indexes: Sequence[TraceIndex]) -> Cursor:
    return Cursor(end_time(indexes), tuple(len(ix.events) for ix in indexes))


def end_time(indexes: Sequence[TraceIndex]) -> int:
    return max((ix.end_t for ix in indexes), default=0)


def step_forward(indexes: Sequence[TraceIndex], cur: Cursor) -> Cursor:
    """Apply the next event: the earliest unapplied one (the first trace wins a tie)."""
    best: int | None = None
    for i, ix in enumerate(indexes):
        k = cur.ks[i]
        if k < len(ix.events) and (best is None or ix.times[k] < indexes[best].times[cur.ks[best]]):
            best = i
    if best is None:
        return cur
    ks = list(cur.ks)
    t = indexes[best].times[ks[best]]
    ks[best] += 1
    return Cursor(max(t, cur.t), tuple(ks))


def step_back(indexes: Sequence[TraceIndex], cur: Cursor) -> Cursor:
    """Undo the latest applied event (the last trace wins a tie); the clock goes
    back to the event before it."""
    best: int | None = None
    for i, ix in enumerate(indexes):
        k = cur.ks[i]
        if k > 0 and (best is None or ix.times[k - 1] >= indexes[best].times[cur.ks[best] - 1]):
            best = i
    if best is None:
        return start(indexes)
    ks = list(cur.ks)
    ks[best] -= 1
    t = max((ix.times[ks[i] - 1] for i, ix in enumerate(indexes) if ks[i] > 0), default=0)
    return Cursor(t, tuple(ks))


def next_event_time(index: TraceIndex, t: int) -> int | None:
    """The time of the first event after t, if any."""
    k = bisect.bisect_right(index.times, t)
    return index.times[k] if k < len(index.times) else None
