"""State events become per-task intervals that tile each task's life."""

from __future__ import annotations

from itertools import pairwise

from trace_helpers import MS, deadlock_trace, ipc_trace, rr_trace

from sim.intervals import Interval, IntervalTracker, iter_intervals, state_intervals
from sim.trace import StateChanged, TaskCreated


def test_rr_intervals_of_p1() -> None:
    trace = rr_trace()
    ivs = state_intervals(trace.events, trace.end.t)
    assert ivs["P1"] == [
        Interval(0, 0, "new"),
        Interval(0, 0, "ready"),
        Interval(0, 4 * MS, "running", cpu=0),
        Interval(4 * MS, 10 * MS, "ready"),
        Interval(10 * MS, 30 * MS, "running", cpu=0),
    ]
    assert list(ivs) == ["main", "P1", "P2", "P3"]


def test_intervals_tile_each_life() -> None:
    trace = ipc_trace()
    for ivs in state_intervals(trace.events, trace.end.t).values():
        for a, b in pairwise(ivs):
            assert a.end_ns == b.start_ns
        assert all(iv.duration_ns >= 0 for iv in ivs)


def test_open_intervals_end_at_the_end_record() -> None:
    trace = deadlock_trace()
    ivs = state_intervals(iter(trace.events), trace.end.t)  # a one-shot iterator will do
    assert ivs["a"][-1] == Interval(1 * MS, 5 * MS, "blocked", reason="ab.recv")
    assert ivs["b"][-1] == Interval(2 * MS, 5 * MS, "blocked", reason="ba.recv")


def test_tracker_returns_what_each_event_closes() -> None:
    tracker = IntervalTracker()
    assert tracker.feed(TaskCreated(0, "x", "child", "x")) is None
    assert tracker.current("x") == Interval(0, 0, "new")
    closed = tracker.feed(StateChanged(5, "x", "blocked", reason="sleep", uncertain=True))
    assert closed == ("x", Interval(0, 5, "new"))
    closed = tracker.feed(StateChanged(9, "x", "terminated", exit_code=0))
    assert closed == ("x", Interval(5, 9, "blocked", reason="sleep", uncertain=True))
    assert tracker.current("x") is None
    assert tracker.close_all(20) == []


def test_iter_intervals_orders_by_closing() -> None:
    trace = deadlock_trace()
    ends = [iv.end_ns for _, iv in iter_intervals(trace.events, trace.end.t)]
    assert ends == sorted(ends)
