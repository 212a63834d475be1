"""Hand-made traces with known answers, shared by the trace, metrics, export and
CLI tests. Times are given in ms for readability and stored as integer ns."""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

from sim.trace import (
    BlockedTask,
    End,
    Event,
    Header,
    JobEvent,
    MessageEvent,
    OutputEvent,
    StateChanged,
    TaskCreated,
    TaskState,
    Trace,
    WarningEvent,
    write_trace,
)

MS = 1_000_000


def header(name: str = "hand-made", cpus: int = 1, policy: str = "fcfs") -> Header:
    return Header(
        scenario=name,
        source="sim",
        machine={"cpus": cpus, "policy": policy, "quantum_ns": 4 * MS},
        seed=0,
        tool_version="test",
        python_version="3.11",
        clock_origin="simulated",
    )


def _start_three() -> list[Event]:
    """`main` creates P1, P2, P3 at 0 (all ready at once) and blocks joining P1."""
    return [
        TaskCreated(0, "main", "main", "main"),
        StateChanged(0, "main", "running", cpu=0),
        TaskCreated(0, "P1", "child", "P1", parent="main"),
        TaskCreated(0, "P2", "child", "P2", parent="main"),
        TaskCreated(0, "P3", "child", "P3", parent="main"),
        StateChanged(0, "main", "blocked", reason="join P1"),
        StateChanged(0, "P1", "ready"),
        StateChanged(0, "P2", "ready"),
        StateChanged(0, "P3", "ready"),
    ]


def _main_ends(t: int) -> list[Event]:
    return [
        StateChanged(t, "main", "ready"),
        StateChanged(t, "main", "running", cpu=0),
        StateChanged(t, "main", "terminated", exit_code=0, cause="returned"),
    ]


def _done(t: int, task: str) -> StateChanged:
    return StateChanged(t, task, "terminated", exit_code=0, cause="returned")


def fcfs_trace() -> Trace:
    """The textbook FCFS example: bursts of 24, 3 and 3 ms arriving together on one
    CPU. Waiting 0/24/27 (average 17), turnaround 24/27/30 (average 27)."""
    events = [
        *_start_three(),
        StateChanged(0, "P1", "running", cpu=0),
        _done(24 * MS, "P1"),
        StateChanged(24 * MS, "P2", "running", cpu=0),
        _done(27 * MS, "P2"),
        StateChanged(27 * MS, "P3", "running", cpu=0),
        _done(30 * MS, "P3"),
        *_main_ends(30 * MS),
    ]
    return Trace(header("fcfs-24-3-3"), tuple(events), End(30 * MS, "complete"))


def rr_trace() -> Trace:
    """The same workload under RR with a 4 ms quantum: P1 0-4, P2 4-7, P3 7-10,
    P1 10-30. Waiting 6/4/7 (average 17/3 ≈ 5.667 ms); P1 is preempted once."""
    events = [
        *_start_three(),
        StateChanged(0, "P1", "running", cpu=0),
        StateChanged(4 * MS, "P1", "ready"),
        StateChanged(4 * MS, "P2", "running", cpu=0),
        _done(7 * MS, "P2"),
        StateChanged(7 * MS, "P3", "running", cpu=0),
        _done(10 * MS, "P3"),
        StateChanged(10 * MS, "P1", "running", cpu=0),
        _done(30 * MS, "P1"),
        *_main_ends(30 * MS),
    ]
    return Trace(header("rr-24-3-3", policy="rr"), tuple(events), End(30 * MS, "complete"))


def ipc_trace() -> Trace:
    """Two processes on two CPUs exchanging a message through a queue and one
    through a pipe (sent on end c1, received on c2), a print, a warning, a Pool
    job event, and a message never received.
    The consumer blocks on q.get until the producer's put reaches it."""
    t = MS
    events: list[Event] = [
        TaskCreated(0, "main", "main", "main"),
        StateChanged(0, "main", "running", cpu=0),
        OutputEvent(0, "main", "main"),
        TaskCreated(1 * t, "p1", "child", "p1", parent="main"),
        TaskCreated(1 * t, "p2", "child", "p2", parent="main"),
        StateChanged(1 * t, "main", "blocked", reason="join p1"),
        StateChanged(1 * t, "p1", "ready"),
        StateChanged(1 * t, "p2", "ready"),
        StateChanged(1 * t, "p1", "running", cpu=0),
        StateChanged(1 * t, "p2", "running", cpu=1),
        StateChanged(2 * t, "p1", "blocked", reason="q.get"),
        TaskCreated(3 * t, "p2.q.feeder", "feeder", "p2", parent="p2"),
        MessageEvent(3 * t, "p2", "put", "q", msg=1, size=64),
        StateChanged(3 * t, "p2.q.feeder", "ready"),
        MessageEvent(4 * t, "p2", "send", "c1", msg=2, size=16),
        MessageEvent(4 * t, "p2", "put", "q", msg=3, size=64),
        WarningEvent(4 * t, "p2", "pipe-race", "two writers on c1 — ünïcødé"),
        JobEvent(4 * t, "p2", "submit", "pool", job=7, chunk=0),
        StateChanged(5 * t, "p2", "terminated", exit_code=0, cause="returned"),
        StateChanged(5 * t, "p2.q.feeder", "running", cpu=1),
        StateChanged(6 * t, "p2.q.feeder", "terminated", exit_code=0, cause="returned"),
        StateChanged(6 * t, "p1", "ready"),
        StateChanged(6 * t, "p1", "running", cpu=0),
        MessageEvent(6 * t, "p1", "get", "q", msg=1, size=64),
        OutputEvent(7 * t, "p1", "consumer 2333"),
        MessageEvent(7 * t, "p1", "recv", "c2", msg=2, size=16),
        StateChanged(8 * t, "p1", "terminated", exit_code=0, cause="returned"),
        StateChanged(8 * t, "main", "ready"),
        StateChanged(8 * t, "main", "running", cpu=0),
        StateChanged(9 * t, "main", "terminated", exit_code=0, cause="returned"),
    ]
    return Trace(header("ipc", cpus=2, policy="rr"), tuple(events), End(9 * t, "complete"))


def deadlock_trace() -> Trace:
    """Two processes each waiting to receive from the other: a deadlock verdict
    naming both and the cycle; their blocked intervals run to the end record."""
    t = MS
    events: list[Event] = [
        TaskCreated(0, "a", "child", "a"),
        TaskCreated(0, "b", "child", "b"),
        StateChanged(0, "a", "ready"),
        StateChanged(0, "b", "ready"),
        StateChanged(0, "a", "running", cpu=0),
        StateChanged(1 * t, "a", "blocked", reason="ab.recv"),
        StateChanged(1 * t, "b", "running", cpu=0),
        StateChanged(2 * t, "b", "blocked", reason="ba.recv"),
    ]
    end = End(
        5 * t,
        "deadlock",
        blocked=(BlockedTask("a", "ab.recv"), BlockedTask("b", "ba.recv")),
        cycle=("a", "b"),
        detail="nothing else can happen",
    )
    return Trace(header("deadlock"), tuple(events), end)


NEXT: dict[TaskState, list[TaskState]] = {
    "new": ["ready", "blocked", "terminated"],
    "ready": ["running", "blocked", "terminated"],
    "running": ["ready", "blocked", "terminated"],
    "blocked": ["ready", "terminated"],
}


@st.composite
def random_trace(draw: st.DrawFn) -> Trace:
    """Tasks with random legal lives on random CPUs; CPU overlap is allowed here
    (the metrics must not care), times are merged into one ordered stream."""
    timed: list[tuple[int, int, Event]] = []
    for i in range(draw(st.integers(1, 5))):
        name = f"t{i}"
        t = draw(st.integers(0, 50))
        timed.append((t, len(timed), TaskCreated(t, name, "child", name)))
        state: TaskState = "new"
        for _ in range(draw(st.integers(0, 8))):
            state = draw(st.sampled_from(NEXT[state]))
            t += draw(st.integers(0, 20))
            cpu = draw(st.integers(0, 1)) if state == "running" else None
            reason = "sleep" if state == "blocked" else None
            timed.append((t, len(timed), StateChanged(t, name, state, cpu=cpu, reason=reason)))
            if state == "terminated":
                break
    timed.sort(key=lambda x: (x[0], x[1]))
    end_t = max(t for t, _, _ in timed) + draw(st.integers(0, 10))
    return Trace(header(cpus=2), tuple(ev for _, _, ev in timed), End(end_t, "complete"))


def write(tmp_path: Path, trace: Trace, name: str = "t.jsonl") -> Path:
    return write_trace(tmp_path / name, trace)
