"""Metrics on hand-made traces whose answers are known (textbook scheduling
examples), and invariants over random task lives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from trace_helpers import (
    MS,
    deadlock_trace,
    fcfs_trace,
    header,
    ipc_trace,
    random_trace,
    rr_trace,
    write,
)

from sim.metrics import MetricsBuilder, metrics_of
from sim.trace import End, Event, StateChanged, TaskCreated, TaskState, Trace, TraceError


def test_fcfs_textbook_figures(tmp_path: Path) -> None:
    m = metrics_of(write(tmp_path, fcfs_trace()))
    assert [m.task(p).waiting_ns for p in ("P1", "P2", "P3")] == [0, 24 * MS, 27 * MS]
    assert [m.task(p).turnaround_ns for p in ("P1", "P2", "P3")] == [24 * MS, 27 * MS, 30 * MS]
    assert [m.task(p).response_ns for p in ("P1", "P2", "P3")] == [0, 24 * MS, 27 * MS]
    assert m.averaged_over == ("P1", "P2", "P3")  # main is machinery, not a job
    assert m.avg_waiting_ns == 17 * MS
    assert m.avg_turnaround_ns == 27 * MS
    assert m.avg_response_ns == 17 * MS
    assert m.makespan_ns == 30 * MS
    assert m.throughput_per_s == pytest.approx(100.0)  # 3 jobs in 30 ms
    assert [(c.cpu, c.busy_ns, c.utilisation) for c in m.cpus] == [(0, 30 * MS, 1.0)]
    p1 = m.task("P1")
    assert p1.time_ns == {"new": 0, "ready": 0, "running": 24 * MS, "blocked": 0}
    assert (p1.dispatches, p1.preemptions, p1.exit_code, p1.cause) == (1, 0, 0, "returned")
    main = m.task("main")
    assert main.kind == "main"
    assert main.time_ns["blocked"] == 30 * MS
    assert m.status == "complete"


def test_idle_cpu_named_by_the_header_shows_up() -> None:
    trace = fcfs_trace()
    m = metrics_of(Trace(header(cpus=2), trace.events, trace.end))
    assert [(c.cpu, c.busy_ns, c.utilisation) for c in m.cpus] == [(0, 30 * MS, 1.0), (1, 0, 0.0)]


def test_rr_textbook_figures() -> None:
    m = metrics_of(rr_trace())
    assert [m.task(p).waiting_ns for p in ("P1", "P2", "P3")] == [6 * MS, 4 * MS, 7 * MS]
    assert m.avg_waiting_ns is not None
    assert m.avg_waiting_ns == pytest.approx(17 * MS / 3)
    assert f"{m.avg_waiting_ns / MS:.2f}" == "5.67"
    p1 = m.task("P1")
    assert (p1.dispatches, p1.preemptions) == (2, 1)
    assert p1.response_ns == 0
    assert m.task("P3").response_ns == 7 * MS


def test_per_cpu_busy_time() -> None:
    m = metrics_of(ipc_trace())
    assert [c.cpu for c in m.cpus] == [0, 1]
    # cpu0: main 0-1 and 8-9, p1 1-2 and 6-8; cpu1: p2 1-5, feeder 5-6.
    assert [c.busy_ns for c in m.cpus] == [5 * MS, 5 * MS]
    assert m.cpus[0].utilisation == pytest.approx(5 / 9)
    feeder = m.task("p2.q.feeder")
    assert (feeder.kind, feeder.process) == ("feeder", "p2")
    assert m.averaged_over == ("p1", "p2")  # neither main nor the feeder
    p1 = m.task("p1")
    assert p1.time_ns["blocked"] == 4 * MS
    assert p1.turnaround_ns == 7 * MS


def test_deadlock_verdict_and_open_intervals() -> None:
    m = metrics_of(deadlock_trace())
    assert m.status == "deadlock"
    assert [(b.task, b.reason) for b in m.blocked] == [("a", "ab.recv"), ("b", "ba.recv")]
    assert m.cycle == ("a", "b")
    a = m.task("a")
    assert a.time_ns["blocked"] == 4 * MS  # 1 ms to the end record at 5 ms
    assert a.turnaround_ns is None and a.exit_code is None
    assert m.avg_turnaround_ns is None  # nobody terminated
    assert m.throughput_per_s == 0.0
    data = m.to_json()
    assert data["verdict"]["blocked"] == [
        {"task": "a", "reason": "ab.recv"},
        {"task": "b", "reason": "ba.recv"},
    ]
    assert data["verdict"]["cycle"] == ["a", "b"]


def test_arrival_hold_is_not_turnaround() -> None:
    """A process blocked with reason `arrival` until 2 ms: turnaround and
    response count from the arrival, not from creation."""
    events: list[Event] = [
        TaskCreated(0, "P2", "child", "P2"),
        StateChanged(0, "P2", "blocked", reason="arrival"),
        StateChanged(2 * MS, "P2", "ready"),
        StateChanged(3 * MS, "P2", "running", cpu=0),
        StateChanged(5 * MS, "P2", "blocked", reason="sleep"),
        StateChanged(6 * MS, "P2", "ready"),
        StateChanged(6 * MS, "P2", "running", cpu=0),
        StateChanged(7 * MS, "P2", "terminated", exit_code=3, cause="exit"),
    ]
    m = metrics_of(Trace(header(), tuple(events), End(7 * MS, "complete")))
    p2 = m.task("P2")
    assert (p2.created_ns, p2.arrived_ns) == (0, 2 * MS)
    assert p2.turnaround_ns == 5 * MS
    assert p2.response_ns == 1 * MS
    assert p2.time_ns == {"new": 0, "ready": 1 * MS, "running": 3 * MS, "blocked": 3 * MS}
    assert (p2.dispatches, p2.preemptions, p2.exit_code, p2.cause) == (2, 0, 3, "exit")


def test_arrival_after_start_up_counts_from_the_arrival() -> None:
    """A process that runs its start-up first, then is held back until its
    arrival time (as a real run's child sleeps): it arrives at 4 ms."""
    events: list[Event] = [
        TaskCreated(0, "P3", "child", "P3"),
        StateChanged(0, "P3", "ready"),
        StateChanged(1 * MS, "P3", "running", cpu=0),
        StateChanged(2 * MS, "P3", "blocked", reason="arrival"),
        StateChanged(4 * MS, "P3", "ready"),
        StateChanged(5 * MS, "P3", "running", cpu=0),
        StateChanged(8 * MS, "P3", "terminated", exit_code=0, cause="returned"),
    ]
    m = metrics_of(Trace(header(), tuple(events), End(8 * MS, "complete")))
    p3 = m.task("P3")
    assert p3.arrived_ns == 4 * MS
    assert (p3.turnaround_ns, p3.response_ns) == (4 * MS, 1 * MS)
    assert p3.dispatches == 2


def test_arrival_held_in_new() -> None:
    """The simulator keeps a process with an arrival time in `new` until it
    arrives: the textbook SRTF example (arrivals 0/1/2/3 ms, bursts 8/4/9/5)
    has turnaround 17/4/24/7, average 13 ms, counted from the arrivals."""
    runs = {"P1": [(0, 1), (10, 17)], "P2": [(1, 5)], "P3": [(17, 26)], "P4": [(5, 10)]}
    arrivals = {"P1": 0, "P2": 1, "P3": 2, "P4": 3}
    timed: list[tuple[int, int, Event]] = []
    for name, arrive in arrivals.items():
        timed.append((0, 0, TaskCreated(0, name, "child", name)))
        timed.append((arrive, 1, StateChanged(arrive * MS, name, "ready")))
        spans = runs[name]
        for i, (start, stop) in enumerate(spans):
            timed.append((start, 3, StateChanged(start * MS, name, "running", cpu=0)))
            last = i == len(spans) - 1
            state: TaskState = "terminated" if last else "ready"
            timed.append(
                (stop, 2, StateChanged(stop * MS, name, state, exit_code=0 if last else None))
            )
    timed.sort(key=lambda x: (x[0], x[1]))
    trace = Trace(header(policy="srtf"), tuple(ev for *_, ev in timed), End(26 * MS, "complete"))
    m = metrics_of(trace)
    assert [m.task(p).arrived_ns for p in arrivals] == [0, 1 * MS, 2 * MS, 3 * MS]
    assert [m.task(p).turnaround_ns for p in arrivals] == [17 * MS, 4 * MS, 24 * MS, 7 * MS]
    assert [m.task(p).waiting_ns for p in arrivals] == [9 * MS, 0, 15 * MS, 2 * MS]
    assert m.avg_turnaround_ns == 13 * MS
    assert m.avg_waiting_ns == 6.5 * MS
    assert m.task("P3").time_ns["new"] == 2 * MS
    assert [m.task(p).response_ns for p in arrivals] == [0, 0, 15 * MS, 2 * MS]


def test_task_seen_only_by_its_states() -> None:
    """A real trace may start recording after a task was created: its life starts
    at its first state event and its kind is unknown."""
    events: list[Event] = [
        StateChanged(1 * MS, "x", "running", cpu=0),
        StateChanged(4 * MS, "x", "terminated", exit_code=0, cause="returned"),
    ]
    m = metrics_of(Trace(header(), tuple(events), End(4 * MS, "complete")))
    x = m.task("x")
    assert (x.kind, x.created_ns, x.turnaround_ns, x.response_ns) == ("unknown", 1 * MS, 3 * MS, 0)
    assert m.averaged_over == ("x",)  # no workload task: average over all


def test_to_json_is_json_and_keys_documented() -> None:
    data = json.loads(json.dumps(metrics_of(fcfs_trace()).to_json()))
    assert set(data) == {
        "scenario",
        "source",
        "policy",
        "cpu_count",
        "status",
        "makespan_ns",
        "throughput_per_s",
        "averages",
        "tasks",
        "cpus",
        "verdict",
        "warnings",
    }
    assert data["warnings"] == {"counts": {}, "first": []}
    assert data["tasks"]["P2"]["time_ns"] == {
        "new": 0,
        "ready": 24 * MS,
        "running": 3 * MS,
        "blocked": 0,
    }
    assert data["averages"]["waiting_ns"] == 17 * MS
    assert data["policy"] == "fcfs"


def test_builder_streams_like_the_file(tmp_path: Path) -> None:
    trace = ipc_trace()
    builder = MetricsBuilder(trace.header)
    for event in trace.events:
        builder.emit(event)
    assert builder.finish(trace.end) == metrics_of(write(tmp_path, trace))


def test_bad_file_raises_trace_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_text("not a trace\n", encoding="utf-8")
    with pytest.raises(TraceError):
        metrics_of(bad)


# --- invariants over random task lives ----------------------------------------


@settings(max_examples=200, deadline=None)
@given(trace=random_trace())
def test_state_times_cover_each_life(trace: Trace) -> None:
    m = metrics_of(trace)
    for tm in m.tasks:
        life_end = tm.terminated_ns if tm.terminated_ns is not None else m.makespan_ns
        assert sum(tm.time_ns.values()) == life_end - tm.created_ns
        assert tm.waiting_ns == tm.time_ns["ready"]
        assert tm.preemptions <= tm.dispatches
    assert sum(c.busy_ns for c in m.cpus) == sum(tm.time_ns["running"] for tm in m.tasks)
