"""Hand-made simulated and real traces for the comparator's tests.

Each builder returns a consistent trace of a small program on one CPU under
FCFS; `as_real` turns it into what a real run of it would record (its times
stretched by a factor), and the tests then break one rule at a time. Times are
given in units of 10 ms, so the timing tolerances' absolute parts (a few ms)
cannot hide a 30% difference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sim.trace import (
    End,
    Event,
    Header,
    JobEvent,
    MessageEvent,
    OutputEvent,
    StateChanged,
    TaskCreated,
    Trace,
)

U = 10_000_000  # one time unit: 10 ms


def header(source: str = "sim", cpus: int = 1, policy: str = "fcfs") -> Header:
    machine: dict[str, object] = {"cpus": cpus, "policy": policy}
    notes: dict[str, object] = {}
    if source == "real":
        machine["enforced"] = {"affinity": list(range(cpus)), "scheduler": "SCHED_FIFO"}
        notes = {"kernel_trace": "on", "not_enforced": []}
    return Header(
        scenario="synthetic",
        source="sim" if source == "sim" else "real",
        machine=machine,
        seed=0,
        tool_version="test",
        python_version="3.11",
        clock_origin="simulated" if source == "sim" else "CLOCK_MONOTONIC 0 ns",
        notes=notes,
    )


def run(t: float, task: str) -> StateChanged:
    return StateChanged(round(t * U), task, "running", cpu=0)


def ready(t: float, task: str) -> StateChanged:
    return StateChanged(round(t * U), task, "ready")


def blocked(t: float, task: str, reason: str) -> StateChanged:
    return StateChanged(round(t * U), task, "blocked", reason=reason)


def ended(t: float, task: str, code: int | None = 0, cause: str = "returned") -> StateChanged:
    return StateChanged(round(t * U), task, "terminated", exit_code=code, cause=cause)  # type: ignore[arg-type]


def created(t: float, task: str, kind: str = "child", daemon: bool = False) -> TaskCreated:
    process = task if kind in ("main", "child", "worker") else task.split(".")[0]
    parent = None if task == "main" else "main"
    return TaskCreated(round(t * U), task, kind, process, parent=parent, daemon=daemon)  # type: ignore[arg-type]


def queue_trace() -> Trace:
    """main starts a producer P and a consumer C; P puts message 1 on q, C gets it."""
    events: list[Event] = [
        created(0, "main", "main"),
        run(0, "main"),
        created(1, "P"),
        created(2, "C"),
        ready(2.5, "P"),
        ready(2.6, "C"),
        blocked(3, "main", "join P"),
        run(3, "P"),
        blocked(4, "P", "sleep"),
        run(4, "C"),
        blocked(5, "C", "q.get"),
        ready(6, "P"),
        run(6, "P"),
        MessageEvent(round(7 * U), "P", "put", "q", 1, 64),
        ready(7, "C"),
        OutputEvent(round(7 * U), "P", "put done"),
        ended(8, "P"),
        ready(8, "main"),
        run(8, "C"),
        MessageEvent(round(9 * U), "C", "get", "q", 1, 64),
        OutputEvent(round(9 * U), "C", "got"),
        ended(10, "C"),
        run(10, "main"),
        ended(11, "main"),
    ]
    return Trace(header(), tuple(events), End(round(11 * U), "complete"))


def daemon_trace() -> Trace:
    """main starts daemon D and child K, prints, and ends its code at 2; D is
    killed as a daemon at 3, K ends at 10, main at 11."""
    events: list[Event] = [
        created(0, "main", "main"),
        run(0, "main"),
        created(1, "D", daemon=True),
        created(1.5, "K"),
        OutputEvent(round(2 * U), "main", "main code done"),
        ready(2, "D"),
        ready(2, "K"),
        blocked(2.5, "main", "join K"),
        run(2.5, "D"),
        ended(3, "D", -15, "killed_as_daemon"),
        run(3, "K"),
        blocked(3.5, "K", "sleep"),
        ready(9.5, "K"),
        run(9.5, "K"),
        ended(10, "K"),
        ready(10, "main"),
        run(10, "main"),
        ended(11, "main"),
    ]
    return Trace(header(), tuple(events), End(round(11 * U), "complete"))


def pool_trace() -> Trace:
    """main submits job 1 to pool p with a callback; worker p.worker1 runs it and
    the result handler runs the callback; main closes and joins the pool."""
    events: list[Event] = [
        created(0, "main", "main"),
        run(0, "main"),
        created(1, "p.worker1", "worker", daemon=True),
        created(1, "main.p.result_handler", "handler", daemon=True),
        ready(1, "main.p.result_handler"),
        JobEvent(round(2 * U), "main", "submit", "p", 1),
        blocked(2, "main", "p.join"),
        run(2, "main.p.result_handler"),
        blocked(2.2, "main.p.result_handler", "p.outqueue"),
        ready(2.2, "p.worker1"),
        run(2.2, "p.worker1"),
        JobEvent(round(3 * U), "p.worker1", "start", "p", 1),
        JobEvent(round(5 * U), "p.worker1", "finish", "p", 1),
        ended(6, "p.worker1"),
        ready(6, "main.p.result_handler"),
        run(6, "main.p.result_handler"),
        OutputEvent(round(6.5 * U), "main.p.result_handler", "callback"),
        JobEvent(round(7 * U), "main.p.result_handler", "callback", "p", 1),
        ended(7.5, "main.p.result_handler", None),
        ready(7.5, "main"),
        run(7.5, "main"),
        ended(8, "main"),
    ]
    return Trace(header(), tuple(events), End(round(8 * U), "complete"))


def as_real(trace: Trace, stretch: float = 1.0) -> Trace:
    """The trace as a real run would record it, every time × `stretch`."""
    events = tuple(dataclasses.replace(e, t=round(e.t * stretch)) for e in trace.events)
    end = dataclasses.replace(trace.end, t=round(trace.end.t * stretch))
    machine = trace.header.machine
    return Trace(header("real", machine["cpus"], machine["policy"]), events, end)


def edit(trace: Trace, change: Callable[[list[Event]], list[Event]]) -> Trace:
    """The trace with its events changed (then put back in time order)."""
    events = sorted(change(list(trace.events)), key=lambda e: e.t)
    last = max((e.t for e in events), default=0)
    return Trace(trace.header, tuple(events), dataclasses.replace(trace.end, t=max(last, 0)))


def without(kind: type[Event], **match: object) -> Callable[[list[Event]], list[Event]]:
    """An edit dropping the events of `kind` whose fields equal `match`."""

    def change(events: list[Event]) -> list[Event]:
        return [
            e
            for e in events
            if not (isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items()))
        ]

    return change


def replacing(
    kind: type[Event], match: dict[str, object], **fields: object
) -> Callable[[list[Event]], list[Event]]:
    """An edit changing fields of the events of `kind` that match."""

    def change(events: list[Event]) -> list[Event]:
        return [
            dataclasses.replace(e, **fields)  # type: ignore[arg-type]
            if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items())
            else e
            for e in events
        ]

    return change
