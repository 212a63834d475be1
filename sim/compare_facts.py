"""What the comparison reads from one trace, gathered in one pass.

Every check of `sim.compare` works on these facts rather than on raw events, so
a trace is walked once however many checks read it. Times are integer ns.

`span_ns` is the time the comparison measures a run by: the last moment any
task other than the main process's main thread did something (changed state,
printed, sent, submitted), or the main task's own last program action. It
leaves out the main task's final stretch of running once everything else has
ended — for a real run that is the interpreter shutting down (freeing modules,
collecting garbage), which depends on what the root process imported and which
the model does not simulate — and is the end record's time for a trace whose
main task does not terminate.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from sim.intervals import Interval, state_intervals
from sim.trace import (
    End,
    Header,
    JobEvent,
    MessageEvent,
    OutputEvent,
    StateChanged,
    TaskCreated,
    Trace,
)

MAIN = "main"
PROCESS_KINDS = frozenset({"main", "child", "worker"})


@dataclass(frozen=True)
class Termination:
    t: int
    exit_code: int | None
    cause: str | None


@dataclass(frozen=True)
class Facts:
    header: Header
    end: End
    label: str  # how reports name this trace: "sim", "real 1", ...
    tasks: dict[str, TaskCreated]  # in order of creation
    terminated: dict[str, Termination]
    intervals: dict[str, list[Interval]]  # per task, in time order, closed at end.t
    # Per task: the states in order, blocked ones with their reason ("blocked q.get").
    sequences: dict[str, list[str]]
    first_run: dict[str, int]  # first time each task was ready or running
    outputs: dict[str, Counter[str]]  # per task, the lines printed
    messages: list[MessageEvent]
    jobs: list[JobEvent]
    span_ns: int
    main_code_end_ns: int  # the main task's last program action (spawn, print, IPC, job)
    states_seen_before_task: tuple[str, ...] = ()  # tasks whose state came before their `task`

    @property
    def source(self) -> str:
        return self.header.source


def facts_of(trace: Trace, label: str) -> Facts:
    tasks: dict[str, TaskCreated] = {}
    terminated: dict[str, Termination] = {}
    sequences: dict[str, list[str]] = defaultdict(list)
    first_run: dict[str, int] = {}
    outputs: dict[str, Counter[str]] = defaultdict(Counter)
    messages: list[MessageEvent] = []
    jobs: list[JobEvent] = []
    early: list[str] = []
    last_other = 0  # the last event of a task other than main
    main_action = 0
    for event in trace.events:
        if event.task != MAIN:
            last_other = max(last_other, event.t)
        if isinstance(event, TaskCreated):
            tasks.setdefault(event.task, event)
            if event.parent == MAIN:
                main_action = event.t
        elif isinstance(event, StateChanged):
            if event.task not in tasks:
                early.append(event.task)
            name = event.state if event.state != "blocked" else f"blocked {event.reason or '?'}"
            seq = sequences[event.task]
            if not seq or seq[-1] != name:
                seq.append(name)
            if event.state in ("ready", "running"):
                first_run.setdefault(event.task, event.t)
            elif event.state == "terminated":
                terminated[event.task] = Termination(event.t, event.exit_code, event.cause)
        elif isinstance(event, OutputEvent):
            outputs[event.task][event.text] += 1
        elif isinstance(event, MessageEvent):
            messages.append(event)
        elif isinstance(event, JobEvent):
            jobs.append(event)
        if event.task == MAIN and not isinstance(event, StateChanged | TaskCreated):
            main_action = event.t
    main_end = terminated.get(MAIN)
    span = trace.end.t if main_end is None else max(last_other, main_action)
    return Facts(
        header=trace.header,
        end=trace.end,
        label=label,
        tasks=tasks,
        terminated=terminated,
        intervals=state_intervals(trace.events, trace.end.t),
        sequences=dict(sequences),
        first_run=first_run,
        outputs=dict(outputs),
        messages=messages,
        jobs=jobs,
        span_ns=span,
        main_code_end_ns=main_action,
        states_seen_before_task=tuple(dict.fromkeys(early)),
    )


def time_in_states(facts: Facts, task: str, until: int) -> dict[str, int]:
    """The task's time in each state up to `until` (the comparison's span)."""
    out = {"new": 0, "ready": 0, "running": 0, "blocked": 0}
    for iv in facts.intervals.get(task, ()):
        end = min(iv.end_ns, until)
        if end > iv.start_ns:
            out[iv.state] += end - iv.start_ns
    return out
