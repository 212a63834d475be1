"""A trace indexed for random access: what the window needs to answer "where is
everything at time t" without replaying the trace from its start.

Every task keeps its transitions sorted by event index, so its state after the
first k events is one bisect away; messages and Pool jobs are paired into
journeys (a put and its get, a job's submit and its start), sorted by the times
they leave and arrive. Building is one pass over the events; a query costs a
bisect per live task, whatever the length of the trace.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Literal

from sim.trace import (
    Cause,
    Event,
    JobEvent,
    MessageEvent,
    StateChanged,
    TaskCreated,
    TaskKind,
    TaskState,
    Trace,
)

JourneyKind = Literal["message", "job", "result"]


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """Who a task is. `row` is its order of appearance: its timeline row and the
    tie-break wherever tasks are listed."""

    name: str
    kind: TaskKind
    process: str
    parent: str | None
    daemon: bool
    row: int


@dataclass(frozen=True, slots=True)
class Transition:
    """The task entered `state` with the event at index `k` (time `t`)."""

    k: int
    t: int
    state: TaskState
    cpu: int | None = None
    reason: str | None = None
    exit_code: int | None = None
    cause: Cause | None = None


@dataclass(slots=True)
class TaskTrack:
    info: TaskInfo
    transitions: list[Transition] = field(default_factory=list)
    # Event indices of the transitions, for bisect.
    ks: list[int] = field(default_factory=list)

    def add(self, tr: Transition) -> None:
        self.transitions.append(tr)
        self.ks.append(tr.k)

    def current(self, k: int) -> int:
        """Index into `transitions` of the state in force after the first k
        events, or -1 before the task exists."""
        return bisect.bisect_left(self.ks, k) - 1


@dataclass(frozen=True, slots=True)
class Journey:
    """Something that travels from one task to another through a mailbox: a
    message (put→get, send→recv), a Pool job (submit→start) or its result
    (finish→callback). `dst_*` is None while nobody has taken it."""

    kind: JourneyKind
    mailbox: str
    src_task: str
    src_k: int
    src_t: int
    dst_task: str | None = None
    dst_k: int | None = None
    dst_t: int | None = None


@dataclass(slots=True)
class Mailbox:
    """Where journeys wait between leaving and arriving: a queue, a pipe, a
    pool's task or result queue. The event indices let the count inside at any
    cursor be two bisects."""

    name: str
    in_ks: list[int] = field(default_factory=list)
    out_ks: list[int] = field(default_factory=list)

    def count(self, k: int) -> int:
        return bisect.bisect_left(self.in_ks, k) - bisect.bisect_left(self.out_ks, k)


class TraceIndex:
    """A `Trace` with the lookups the window needs. Read-only once built."""

    def __init__(self, trace: Trace) -> None:
        self.header = trace.header
        self.end = trace.end
        self.events: tuple[Event, ...] = trace.events
        self.times: list[int] = [e.t for e in trace.events]
        self.end_t = max(trace.end.t, self.times[-1] if self.times else 0)
        self.tracks: dict[str, TaskTrack] = {}
        # Blocked lanes are listed in the order their reason first appears, so a
        # lane keeps its place relative to the others for the whole trace.
        self.reason_order: dict[str, int] = {}
        max_cpu = -1
        builder = _JourneyBuilder()
        for k, ev in enumerate(trace.events):
            if isinstance(ev, TaskCreated):
                self._track(ev.task, ev).add(Transition(k, ev.t, "new"))
            elif isinstance(ev, StateChanged):
                self._track(ev.task, None).add(
                    Transition(k, ev.t, ev.state, ev.cpu, ev.reason, ev.exit_code, ev.cause)
                )
                if ev.cpu is not None:
                    max_cpu = max(max_cpu, ev.cpu)
                if ev.state == "blocked":
                    self.reason_order.setdefault(ev.reason or "?", len(self.reason_order))
            elif isinstance(ev, MessageEvent):
                builder.message(k, ev)
            elif isinstance(ev, JobEvent):
                builder.job(k, ev)
        self.journeys: list[Journey] = builder.finish()
        header_cpus = trace.header.machine.get("cpus")
        self.cpu_count = max(header_cpus if isinstance(header_cpus, int) else 1, max_cpu + 1)
        self.order: list[TaskTrack] = sorted(self.tracks.values(), key=lambda tr: tr.info.row)
        self.mailboxes: dict[str, Mailbox] = {}
        for j in sorted(self.journeys, key=lambda j: j.src_k):
            mb = self.mailboxes.get(j.mailbox)
            if mb is None:
                mb = self.mailboxes[j.mailbox] = Mailbox(j.mailbox)
            mb.in_ks.append(j.src_k)
            if j.dst_k is not None:
                mb.out_ks.append(j.dst_k)
        for mb in self.mailboxes.values():
            mb.out_ks.sort()
        # Pool jobs travel through queues that a simulator or probe may record
        # as messages too; then only the messages fly and jobs are just counted.
        has_messages = any(j.kind == "message" for j in self.journeys)
        flying = [j for j in self.journeys if j.kind == "message" or not has_messages]
        self.by_src = sorted(flying, key=lambda j: j.src_k)
        self.src_times = [j.src_t for j in self.by_src]
        self.by_dst = sorted((j for j in flying if j.dst_k is not None), key=lambda j: j.dst_k or 0)
        self.dst_times = [j.dst_t or 0 for j in self.by_dst]

    def event_index_at(self, t: int) -> int:
        """How many events have happened by time t (those at t included)."""
        return bisect.bisect_right(self.times, t)

    def _track(self, name: str, created: TaskCreated | None) -> TaskTrack:
        track = self.tracks.get(name)
        if track is not None:
            return track
        row = len(self.tracks)
        if created is not None:
            info = TaskInfo(
                name, created.kind, created.process, created.parent, created.daemon, row
            )
        else:
            # A state change for a task never announced (a real trace that lost
            # its `task` event): guess from the naming convention.
            kind: TaskKind = "main" if name == "main" else "thread" if "." in name else "child"
            info = TaskInfo(name, kind, name.split(".")[0], None, False, row)
        track = self.tracks[name] = TaskTrack(info)
        return track


class _JourneyBuilder:
    """Pairs each departure with its arrival while the events stream past."""

    def __init__(self) -> None:
        self._journeys: list[Journey] = []
        self._msgs: dict[int, list[tuple[int, MessageEvent]]] = {}
        self._jobs: dict[tuple[str, int, int | None, JourneyKind], tuple[int, JobEvent]] = {}
        # A Pipe's ends have names of their own: learn which end feeds which, so
        # an unread message is still shown in its pipe's mailbox.
        self._pipe_ends: dict[str, str] = {}

    def message(self, k: int, ev: MessageEvent) -> None:
        if ev.op in ("put", "send"):
            self._msgs.setdefault(ev.msg, []).append((k, ev))
            return
        sources = self._msgs.get(ev.msg)
        if not sources:
            return  # a get whose put the recorder missed: nothing to draw
        # Prefer a source through the same object, for recorders that number
        # messages per object rather than per run.
        pick = next((s for s in sources if s[1].obj == ev.obj), sources[0])
        sources.remove(pick)
        src_k, src = pick
        if src.obj != ev.obj:
            self._pipe_ends[src.obj] = ev.obj
        self._journeys.append(
            Journey(
                "message", _mailbox_name(src.obj, ev.obj), src.task, src_k, src.t, ev.task, k, ev.t
            )
        )

    def job(self, k: int, ev: JobEvent) -> None:
        if ev.op in ("submit", "finish", "error"):
            kind: JourneyKind = "job" if ev.op == "submit" else "result"
            self._jobs[(ev.pool, ev.job, ev.chunk, kind)] = (k, ev)
            return
        kind = "job" if ev.op == "start" else "result"
        # A result may be announced twice (result, then callback): the first ends it.
        found = self._jobs.pop((ev.pool, ev.job, ev.chunk, kind), None)
        if found is None:
            return
        src_k, src = found
        self._journeys.append(
            Journey(kind, _job_mailbox(ev.pool, kind), src.task, src_k, src.t, ev.task, k, ev.t)
        )

    def finish(self) -> list[Journey]:
        """Every journey, those still waiting at the end of the trace included."""
        out = list(self._journeys)
        for sources in self._msgs.values():
            for src_k, src in sources:
                name = _mailbox_name(src.obj, self._pipe_ends.get(src.obj, src.obj))
                out.append(Journey("message", name, src.task, src_k, src.t))
        for (pool, _job, _chunk, kind), (job_k, job) in self._jobs.items():
            out.append(Journey(kind, _job_mailbox(pool, kind), job.task, job_k, job.t))
        return out


def _mailbox_name(src_obj: str, dst_obj: str) -> str:
    return src_obj if src_obj == dst_obj else f"{src_obj} / {dst_obj}"


def _job_mailbox(pool: str, kind: JourneyKind) -> str:
    return f"{pool} submitted" if kind == "job" else f"{pool} results"
