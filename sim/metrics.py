"""Figures computed from a trace alone: per task, per CPU and for the whole run.

`MetricsBuilder` is a `TraceSink`, so the simulator's events can feed it while
they stream to disk; `metrics_of` streams a trace file (or takes a `Trace`).
Memory grows with the number of tasks and CPUs, never with the number of events.

Definitions (all times integer nanoseconds):
- time in a state: the sum of the task's intervals in `new`, `ready`,
  `running`, `blocked` (see `sim.intervals`); an interval still open at the end
  of the trace counts up to the end record's time;
- arrival: the first time the task is ready to run, or, for a process held
  back until its arrival time in a scheduling exercise (blocked with reason
  `arrival` once started), the first time after that: the textbook's arrival
  time. A task seen running without being ready first arrived then; one that
  never ran arrived when it was created;
- turnaround: termination − arrival (None while the task has not terminated);
- waiting: total time in `ready`;
- response: first dispatch − arrival (None if never dispatched);
- dispatches: entries into `running`; preemptions: `running` → `ready`;
- CPU busy time: time some task was running on it; utilisation: busy / makespan;
- makespan: the end record's time (the last event of a complete trace);
- averages and throughput are over the *workload* tasks — child processes, pool
  workers and user threads — because the main process and multiprocessing's
  helper threads (feeders, pool handlers) are machinery, and the textbook
  figures (FCFS 24/3/3 → average wait 17 ms) count only the jobs. A trace with
  no workload task averages over every task. Throughput is workload tasks
  terminated per second of makespan.

`Metrics.to_json()` keys:
  scenario, source, policy, cpu_count, status ("complete", "deadlock", ...),
  makespan_ns, throughput_per_s (float or null),
  averages: {over: [task names], waiting_ns, turnaround_ns, response_ns}
            (floats, null when no task qualifies),
  tasks: {name: {kind, process, daemon, created_ns, arrived_ns, terminated_ns,
                 time_ns: {new, ready, running, blocked}, turnaround_ns,
                 waiting_ns, response_ns, dispatches, preemptions, exit_code, cause}},
  cpus: [{cpu, busy_ns, utilisation}],
  verdict: {blocked: [{task, reason}], cycle: [task names], detail},
  warnings: {counts: {kind: n}, first: [{t, task, kind, text}] (at most MAX_WARNINGS)}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.trace import (
    BlockedTask,
    End,
    EndStatus,
    Event,
    Header,
    StateChanged,
    TaskCreated,
    TaskState,
    Trace,
    TraceReader,
    WarningEvent,
)

# The states a task spends time in (terminated is the end of its life).
TIMED_STATES: tuple[TaskState, ...] = ("new", "ready", "running", "blocked")
WORKLOAD_KINDS: frozenset[str] = frozenset({"child", "worker", "thread"})
MAX_WARNINGS = 20


@dataclass(frozen=True, slots=True)
class TaskMetrics:
    task: str
    kind: str  # a sim.trace.TaskKind, or "unknown" for a task with no `task` event
    process: str
    daemon: bool
    created_ns: int
    arrived_ns: int
    terminated_ns: int | None
    time_ns: dict[str, int]  # new, ready, running, blocked
    turnaround_ns: int | None
    waiting_ns: int
    response_ns: int | None
    dispatches: int
    preemptions: int
    exit_code: int | None
    cause: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "process": self.process,
            "daemon": self.daemon,
            "created_ns": self.created_ns,
            "arrived_ns": self.arrived_ns,
            "terminated_ns": self.terminated_ns,
            "time_ns": dict(self.time_ns),
            "turnaround_ns": self.turnaround_ns,
            "waiting_ns": self.waiting_ns,
            "response_ns": self.response_ns,
            "dispatches": self.dispatches,
            "preemptions": self.preemptions,
            "exit_code": self.exit_code,
            "cause": self.cause,
        }


@dataclass(frozen=True, slots=True)
class CpuMetrics:
    cpu: int
    busy_ns: int
    utilisation: float  # busy / makespan, 0.0 for an empty run

    def to_json(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "busy_ns": self.busy_ns, "utilisation": self.utilisation}


@dataclass(frozen=True, slots=True)
class Metrics:
    scenario: str
    source: str
    policy: str | None
    status: EndStatus
    makespan_ns: int
    tasks: tuple[TaskMetrics, ...]
    cpus: tuple[CpuMetrics, ...]
    averaged_over: tuple[str, ...]
    avg_waiting_ns: float | None
    avg_turnaround_ns: float | None
    avg_response_ns: float | None
    throughput_per_s: float | None
    blocked: tuple[BlockedTask, ...] = ()
    cycle: tuple[str, ...] = ()
    detail: str = ""
    # Warnings of the run (races, task_done too often, exceptions): the first
    # MAX_WARNINGS as (time, task, kind, text), and how many there were per kind.
    warnings: tuple[tuple[int, str, str, str], ...] = ()
    warning_counts: dict[str, int] = field(default_factory=dict)

    def task(self, name: str) -> TaskMetrics:
        for tm in self.tasks:
            if tm.task == name:
                return tm
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "source": self.source,
            "policy": self.policy,
            "cpu_count": len(self.cpus),
            "status": self.status,
            "makespan_ns": self.makespan_ns,
            "throughput_per_s": self.throughput_per_s,
            "averages": {
                "over": list(self.averaged_over),
                "waiting_ns": self.avg_waiting_ns,
                "turnaround_ns": self.avg_turnaround_ns,
                "response_ns": self.avg_response_ns,
            },
            "tasks": {tm.task: tm.to_json() for tm in self.tasks},
            "cpus": [c.to_json() for c in self.cpus],
            "verdict": {
                "blocked": [{"task": b.task, "reason": b.reason} for b in self.blocked],
                "cycle": list(self.cycle),
                "detail": self.detail,
            },
            "warnings": {
                "counts": dict(self.warning_counts),
                "first": [
                    {"t": t, "task": task, "kind": kind, "text": text}
                    for t, task, kind, text in self.warnings
                ],
            },
        }


@dataclass(slots=True)
class _TaskAcc:
    """What the builder keeps per task while events stream by."""

    kind: str
    process: str
    daemon: bool
    created_ns: int
    state: TaskState = "new"
    since: int = 0
    cpu: int | None = None
    reason: str | None = None
    arrived_ns: int | None = None
    response_ns: int | None = None
    terminated_ns: int | None = None
    dispatches: int = 0
    preemptions: int = 0
    exit_code: int | None = None
    cause: str | None = None
    time_ns: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TIMED_STATES, 0))


class MetricsBuilder:
    """A `TraceSink` that accumulates metrics; `finish(end)` gives the figures.

    `header` supplies the scenario name, the policy and the CPU count (so an
    idle CPU still shows up with 0% utilisation); without it those come from
    the events alone.
    """

    def __init__(self, header: Header | None = None) -> None:
        self._header = header
        self._tasks: dict[str, _TaskAcc] = {}
        self._busy: dict[int, int] = {}
        self._warnings: list[tuple[int, str, str, str]] = []
        self._warning_counts: dict[str, int] = {}

    def emit(self, event: Event) -> None:
        if isinstance(event, TaskCreated):
            self._tasks[event.task] = _TaskAcc(
                kind=event.kind,
                process=event.process,
                daemon=event.daemon,
                created_ns=event.t,
                since=event.t,
            )
        elif isinstance(event, StateChanged):
            self._change(event)
        elif isinstance(event, WarningEvent):
            self._warning_counts[event.kind] = self._warning_counts.get(event.kind, 0) + 1
            if len(self._warnings) < MAX_WARNINGS:
                self._warnings.append((event.t, event.task, event.kind, event.text))

    def _change(self, ev: StateChanged) -> None:
        acc = self._tasks.get(ev.task)
        if acc is None:
            # A recorder may only see a task once it runs (a kernel trace of a
            # task created before recording began): its life starts here.
            acc = _TaskAcc("unknown", ev.task, False, ev.t, since=ev.t)
            self._tasks[ev.task] = acc
        if acc.state == "terminated":
            return
        self._leave(acc, ev.t)
        if ev.state == "blocked" and ev.reason == "arrival":
            # Started, now held back until its arrival time: it arrives after.
            acc.arrived_ns = acc.response_ns = None
        elif ev.state in ("ready", "running") and acc.arrived_ns is None:
            acc.arrived_ns = ev.t
        if ev.state == "ready" and acc.state == "running":
            acc.preemptions += 1
        elif ev.state == "running":
            acc.dispatches += 1
            if acc.response_ns is None:
                arrived = ev.t if acc.arrived_ns is None else acc.arrived_ns
                acc.response_ns = ev.t - arrived
        elif ev.state == "terminated":
            acc.terminated_ns = ev.t
            acc.exit_code = ev.exit_code
            acc.cause = ev.cause
        acc.state, acc.since, acc.cpu, acc.reason = ev.state, ev.t, ev.cpu, ev.reason

    def _leave(self, acc: _TaskAcc, t: int) -> None:
        """Account for the time spent in the state the task is leaving."""
        spent = t - acc.since
        acc.time_ns[acc.state] += spent
        if acc.state == "running" and acc.cpu is not None:
            self._busy[acc.cpu] = self._busy.get(acc.cpu, 0) + spent

    def finish(self, end: End) -> Metrics:
        """The figures, with intervals still open closed at `end.t`. The builder
        is left as it was, so it can be finished again after more events."""
        busy = dict(self._busy)
        tasks = tuple(
            self._task_metrics(name, acc, end.t, busy) for name, acc in self._tasks.items()
        )
        makespan = end.t
        cpu_ids = set(busy)
        header_cpus = self._header.machine.get("cpus") if self._header else None
        if isinstance(header_cpus, int):
            cpu_ids.update(range(header_cpus))
        cpus = tuple(
            CpuMetrics(c, busy.get(c, 0), busy.get(c, 0) / makespan if makespan > 0 else 0.0)
            for c in sorted(cpu_ids)
        )
        workload = [tm for tm in tasks if tm.kind in WORKLOAD_KINDS] or list(tasks)
        finished = sum(1 for tm in workload if tm.terminated_ns is not None)
        policy = self._header.machine.get("policy") if self._header else None
        return Metrics(
            scenario=self._header.scenario if self._header else "",
            source=self._header.source if self._header else "",
            policy=policy if isinstance(policy, str) else None,
            status=end.status,
            makespan_ns=makespan,
            tasks=tasks,
            cpus=cpus,
            averaged_over=tuple(tm.task for tm in workload),
            avg_waiting_ns=_mean([tm.waiting_ns for tm in workload]),
            avg_turnaround_ns=_mean([tm.turnaround_ns for tm in workload]),
            avg_response_ns=_mean([tm.response_ns for tm in workload]),
            throughput_per_s=finished / (makespan / 1e9) if makespan > 0 else None,
            blocked=end.blocked,
            cycle=end.cycle,
            detail=end.detail,
            warnings=tuple(self._warnings),
            warning_counts=dict(self._warning_counts),
        )

    @staticmethod
    def _task_metrics(name: str, acc: _TaskAcc, end_t: int, busy: dict[int, int]) -> TaskMetrics:
        time_ns = dict(acc.time_ns)
        arrived = acc.created_ns if acc.arrived_ns is None else acc.arrived_ns
        if acc.state != "terminated":
            spent = max(0, end_t - acc.since)
            time_ns[acc.state] += spent
            if acc.state == "running" and acc.cpu is not None:
                busy[acc.cpu] = busy.get(acc.cpu, 0) + spent
        return TaskMetrics(
            task=name,
            kind=acc.kind,
            process=acc.process,
            daemon=acc.daemon,
            created_ns=acc.created_ns,
            arrived_ns=arrived,
            terminated_ns=acc.terminated_ns,
            time_ns=time_ns,
            turnaround_ns=None if acc.terminated_ns is None else acc.terminated_ns - arrived,
            waiting_ns=time_ns["ready"],
            response_ns=acc.response_ns,
            dispatches=acc.dispatches,
            preemptions=acc.preemptions,
            exit_code=acc.exit_code,
            cause=acc.cause,
        )


def _mean(values: list[int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def metrics_of(source: str | Path | Trace) -> Metrics:
    """Metrics of a trace file (streamed, never held in memory) or of a `Trace`.
    Raises `sim.trace.TraceError` for a file that is not a valid trace."""
    if isinstance(source, Trace):
        builder = MetricsBuilder(source.header)
        for event in source.events:
            builder.emit(event)
        return builder.finish(source.end)
    reader = TraceReader(source)
    builder = MetricsBuilder(reader.header)
    for event in reader.events():
        builder.emit(event)
    return builder.finish(reader.end)
