"""The small pure parts of the window: timeline pixel runs, a task's figures
so far, events in words, and the speed ladder."""

from __future__ import annotations

import itertools

import pytest
from viz_traces import MS, pool_like, producer_consumer, shipped

from sim.metrics import metrics_of
from sim.trace import JobEvent, MessageEvent, OutputEvent, StateChanged, TaskCreated, WarningEvent
from viz.history import History
from viz.index import TaskInfo, TraceIndex
from viz.speed import auto_speed, faster, nice, slower, watch_speed
from viz.text import describe, format_speed, format_time, time_unit, token_label
from viz.timeline import timeline_rows

# --- timeline -------------------------------------------------------------------


def test_timeline_rows_tile_each_task_life() -> None:
    ix = TraceIndex(producer_consumer())
    rows = dict((info.name, runs) for info, runs in timeline_rows(ix, 0, ix.end_t, 190))
    assert list(rows) == [tr.info.name for tr in ix.order]
    # 19 ms over 190 columns: 10 columns per millisecond.
    p1 = [(r.x0, r.x1, r.state) for r in rows["p1"]]
    assert p1 == [
        (20, 40, "new"),
        (40, 50, "ready"),
        (50, 70, "running"),
        (70, 100, "blocked"),
        (100, 150, "running"),
    ]
    for runs in rows.values():
        for a, b in itertools.pairwise(runs):
            assert a.x1 <= b.x0 and a.x0 < a.x1


def test_a_column_shared_by_many_states_shows_the_most_telling() -> None:
    ix = TraceIndex(pool_like(4, 200, cpus=2))
    rows = timeline_rows(ix, 0, ix.end_t, 40)
    for _info, runs in rows:
        cols = [x for r in runs for x in range(r.x0, r.x1)]
        assert cols == sorted(set(cols))  # no column painted twice
    # Workers run briefly in almost every column: running wins those columns.
    worker_runs = [r for info, runs in rows if info.kind == "worker" for r in runs]
    running = sum(r.x1 - r.x0 for r in worker_runs if r.state == "running")
    assert running > sum(r.x1 - r.x0 for r in worker_runs) / 2


# --- history ----------------------------------------------------------------------


def test_figures_so_far_grow_to_the_final_metrics() -> None:
    trace = shipped("textbook_rr")
    ix = TraceIndex(trace)
    history = History(ix)
    final = metrics_of(trace)
    for tm in final.tasks:
        s = history.summary(tm.task, ix.end_t, len(ix.events))
        assert s is not None
        assert s.time_in["running"] == tm.time_ns["running"]
        assert s.time_in["ready"] == tm.time_ns["ready"]
        assert (s.dispatches, s.preemptions) == (tm.dispatches, tm.preemptions)


def test_figures_so_far_stop_at_the_cursor() -> None:
    ix = TraceIndex(producer_consumer())
    history = History(ix)
    # p1: new 2-4 ms, ready 4-5, running 5-7, blocked 7-10 (so far 1 ms at 8 ms).
    s = history.summary("p1", 8 * MS, ix.event_index_at(8 * MS))
    assert s is not None
    assert s.time_in == {"new": 2 * MS, "ready": MS, "running": 2 * MS, "blocked": MS}
    assert s.current is not None and s.current.reason == "q.get"
    assert (s.sent, s.received) == (0, 0)
    s = history.summary("p1", ix.end_t, len(ix.events))
    assert s is not None and s.received == 1
    assert history.summary("p2", 0, 0) is not None
    assert history.summary("nobody", 0, 0) is None


# --- words --------------------------------------------------------------------------


def test_events_in_words() -> None:
    assert describe(StateChanged(0, "p1", "blocked", reason="q.get")) == "p1 blocked on q.get"
    assert describe(StateChanged(0, "p1", "running", cpu=1)) == "p1 runs on CPU 1"
    assert (
        describe(StateChanged(0, "d", "terminated", exit_code=-15, cause="killed_as_daemon"))
        == "d terminated: killed daemon (-15)"
    )
    assert describe(TaskCreated(0, "p1", "child", "p1", parent="main")) == "p1 created by main"
    assert describe(MessageEvent(0, "p2", "put", "q", 3)) == "p2 put message 3 on q"
    assert describe(MessageEvent(0, "c2", "recv", "c2", 3)) == "c2 received message 3 from c2"
    assert describe(JobEvent(0, "main", "submit", "p", 7)) == "main submitted job 7 to p"
    assert describe(OutputEvent(0, "p1", "hi")) == 'p1 printed "hi"'
    assert describe(WarningEvent(0, "p1", "race", "two writers")) == "warning from p1: two writers"


def test_times_keep_one_unit_per_clock() -> None:
    assert time_unit(19 * MS) == (1_000_000, "ms")
    assert format_time(12_300_000, time_unit(19 * MS)) == "12.300 ms"
    assert format_time(500, time_unit(19 * MS)) == "0.001 ms"
    assert format_time(7, (1, "ns")) == "7 ns"
    assert format_speed(0.002) == "2 ms/s"
    assert format_speed(1.0) == "×1"


@pytest.mark.parametrize(
    ("name", "kind", "process", "label"),
    [
        ("p.worker12", "worker", "p.worker12", "worker12"),
        ("p2.q.feeder", "feeder", "p2", "q.feeder"),
        ("main.p.result_handler", "handler", "main", "p.results"),
        ("main.p.task_handler", "handler", "main", "p.tasks"),
        ("main", "main", "main", "main"),
        ("p1.t1", "thread", "p1", "t1"),
    ],
)
def test_token_labels_are_short(name: str, kind: str, process: str, label: str) -> None:
    assert token_label(TaskInfo(name, kind, process, None, False, 0)) == label  # type: ignore[arg-type]


# --- speed -----------------------------------------------------------------------------


def test_speeds_sit_on_a_1_2_5_ladder() -> None:
    assert nice(0.0017) == 0.002
    assert faster(0.002) == 0.005 and faster(0.005) == 0.01
    assert slower(0.01) == 0.005 and slower(0.001) == 0.0005
    assert slower(faster(0.02)) == 0.02
    # A 19 ms trace plays in about 12 s.
    assert auto_speed(19 * MS) == 0.002
    assert auto_speed(0) == 1.0


def test_the_watching_speed_follows_the_pace_of_the_events() -> None:
    # Events 1 ms apart over 10 s: a quarter second per gap gives 4 ms/s, and
    # 10 s then play in 2,500 s, so the 120 s bound wins (0.083 -> 0.1).
    times = list(range(0, 10_000 * MS, MS))
    assert watch_speed(times, 10_000 * MS) == 0.1
    # A burst of events 2 us apart inside 1.6 ms: 10 us/s, about 160 s... bounded
    # by 120 s of playback (13 us/s, rounded to 10 us/s).
    burst = [0, 600_000, *range(1_560_000, 1_616_000, 2_000)]
    assert watch_speed(burst, 1_616_000) == 0.00001
    # Events so sparse that pacing would play faster than 12 s: 12 s it is.
    assert watch_speed([0, 6 * MS, 12 * MS], 12 * MS) == 0.001
    assert watch_speed([], 0) == 1.0
