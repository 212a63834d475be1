"""Probe records and kernel scheduler events → the events of one trace.

The probes say which tasks exist (process and thread, pid and tid), what they
are called, why each blocking call waited and what moved between them; the
kernel says exactly when each task ran, waited for a CPU or slept. Merging
takes states from the kernel and reasons from the probes: a blocked interval's
reason is the blocking call the probes saw around its start. Without a kernel
trace the probes alone give the states: inside a blocking call is blocked,
anywhere else is running (ready and running are not told apart).

Names follow the simulator's conventions (docs/architecture.md): `main`,
processes by name (pool workers `<pool>.worker<N>`), threads `<process>.<thread>`,
feeders `<process>.<queue>.feeder`, pool helpers `<process>.<pool>.<role>`; a
second task of the same name gets `#2`. Message ids link each put to its get
and each send to its recv: a queue's puts are paired in order with its feeder's
writes in the same process, and writes with reads of the same pipe by the
checksum of the bytes and their order (a pipe is FIFO, so the k-th read of
some bytes is the k-th write of them).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sim.real.kernel_trace import Gap, KState, SchedEvent, timelines
from sim.real.records import Record
from sim.trace import (
    BlockedTask,
    Cause,
    End,
    EndStatus,
    Event,
    JobEvent,
    JobOp,
    MessageEvent,
    MessageOp,
    OutputEvent,
    StateChanged,
    TaskCreated,
    TaskKind,
    TaskState,
    WarningEvent,
)

PIPE_BUF = 4096
# A blocked interval the probes cannot explain, starting while another thread
# of the same process runs (or within this long before it does), is taken for
# a wait on the GIL.
_GIL_WINDOW_NS = 50_000
_HANDLER_ROLES = ("worker_handler", "task_handler", "result_handler")
_SCHEDSTAT_MIN_NS = 5_000_000


@dataclass(frozen=True)
class RunFacts:
    """What the runner saw of the run, in monotonic nanoseconds."""

    root_pid: int
    t0: int
    end_t: int
    status: EndStatus
    root_exit: int | None  # None when the run was stopped before main exited
    root_exit_t: int | None
    detail: str = ""
    # Pool workers named `<pool>.worker<N>` as the simulator names them (scenario
    # runs), or by their process names, `ForkPoolWorker-3` (traced programs).
    pool_worker_names: bool = True


@dataclass
class MergeStats:
    tasks: int = 0
    kernel_tasks: int = 0
    uncertain: int = 0
    gaps: int = 0
    garbled: int = 0
    start_methods: set[str] = field(default_factory=set)
    schedstat: dict[str, Any] = field(default_factory=dict)


@dataclass
class Merged:
    events: list[Event]
    end: End
    stats: MergeStats


@dataclass
class _Span:
    start: int
    end: int | None
    what: str
    key: str


@dataclass
class _Task:
    pid: int
    tid: int
    kind: TaskKind
    created: int
    raw_name: str = ""
    daemon: bool = False
    parent: tuple[int, int] | None = None
    begin: int | None = None
    end: int | None = None
    end_uncertain: bool = False
    exit_code: int | None = None
    cause: Cause | None = None
    role: str = "user"
    key: str = ""
    name: str = ""
    spans: list[_Span] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # span starts, for bisect
    jobs: list[list[int]] = field(default_factory=list)  # a worker's [start, finish] of each job


@dataclass(frozen=True)
class _St:
    t: int
    state: TaskState
    cpu: int | None = None
    reason: str | None = None
    uncertain: bool = False


class _Merger:
    def __init__(self, records: list[Record], facts: RunFacts) -> None:
        self.facts = facts
        self.records = [r for r in records if r.t <= facts.end_t]
        self.procs: dict[int, _Task] = {}
        self.threads: dict[int, _Task] = {}
        self.worker_of: dict[int, tuple[str, int]] = {}
        self.reaped: dict[int, int] = {}
        self.reaped_t: dict[int, int] = {}
        self.killed: dict[int, tuple[str, int]] = {}
        self.root_exception = False
        self.names: dict[str, str] = {}
        self.queue_of: dict[str, str] = {}  # reader or writer key -> queue key
        self.queue_locks: dict[str, tuple[str, str]] = {}  # lock key -> (queue key, role)
        self.peer: dict[str, str] = {}  # socket end -> other end
        self.pipe_ends: set[str] = set()
        self.pools: set[str] = set()
        self.pool_parts: dict[str, tuple[str, str, str]] = {}  # lock key -> (pool, part, role)
        self.schedstat: list[tuple[int, int, int]] = []  # (tid, t, cpu_ns)
        self.out: list[tuple[int, int, int, Event]] = []
        self.stats = MergeStats()

    # --- reading the records ---------------------------------------------------

    def _proc(self, pid: int, t: int) -> _Task:
        task = self.procs.get(pid)
        if task is None:
            task = self.procs[pid] = _Task(pid, pid, "child", t)
        return task

    def _task_of(self, pid: int, tid: int) -> _Task:
        if tid != pid and tid in self.threads:
            return self.threads[tid]
        return self._proc(pid, self.facts.t0)

    def read(self) -> None:
        root = self.facts.root_pid
        for r in self.records:
            kind = r.kind
            if kind == "P":
                task = self._proc(r.pid, r.t)
                task.begin = r.t
                if r.pid == root:
                    task.kind, task.raw_name = "main", "main"
                    task.created = task.begin = max(r.t, self.facts.t0)
                else:
                    task.raw_name = task.raw_name or r.text(3)
                    task.daemon = r.fields[4] == "1"
                    if len(r.fields) > 6 and r.fields[5]:  # its start() call, in its parent
                        task.created = r.int(5)
                        task.parent = (r.int(1), r.int(6))
            elif kind == "S":
                child = self._proc(r.int(0), r.t)
                child.created = r.t
                child.parent = (r.pid, r.int(4) if len(r.fields) > 4 else r.tid)
                child.raw_name = r.text(1)
                child.daemon = r.fields[2] == "1"
                if len(r.fields) > 3 and r.fields[3]:
                    self.stats.start_methods.add(r.fields[3])
            elif kind == "W":
                self.worker_of[r.int(1)] = (r.fields[0], r.int(2))
            elif kind == "U":
                tid = r.int(0)
                thread = self.threads.setdefault(tid, _Task(r.pid, tid, "thread", r.t))
                thread.created, thread.parent = r.t, (r.pid, r.tid)
                thread.raw_name, thread.daemon = r.text(1), r.fields[2] == "1"
            elif kind == "T":
                thread = self.threads.setdefault(r.tid, _Task(r.pid, r.tid, "thread", r.t))
                thread.begin = r.t
                thread.raw_name = thread.raw_name or r.text(0)
                thread.daemon = r.fields[1] == "1"
                thread.role, thread.key = r.fields[2], r.fields[3]
                if thread.role == "feeder":
                    thread.kind = "feeder"
                elif thread.role in _HANDLER_ROLES:
                    thread.kind = "handler"
            elif kind == "t":
                ended = self.threads.get(r.tid)
                if ended is not None:
                    ended.end, ended.cause = r.t, _cause(r.fields[0])
            elif kind == "B":
                task = self._task_of(r.pid, r.tid)
                task.spans.append(_Span(r.t, None, r.fields[0], r.fields[1]))
            elif kind == "E":
                task = self._task_of(r.pid, r.tid)
                if task.spans and task.spans[-1].end is None:
                    task.spans[-1].end = r.t
            elif kind == "J" and r.fields[0] in ("start", "finish", "error"):
                worker = self._task_of(r.pid, r.tid)
                if r.fields[0] == "start":
                    worker.jobs.append([r.t, 1 << 62])  # until it finishes, if it does
                elif worker.jobs:
                    worker.jobs[-1][1] = r.t
            elif kind == "Z":
                task = self._proc(r.pid, r.t)
                task.end, task.exit_code, task.cause = r.t, r.int(0), _cause(r.fields[1])
            elif kind == "R":
                self.reaped[r.int(0)] = r.int(1)
                self.reaped_t[r.int(0)] = r.t
            elif kind == "K":
                self.killed.setdefault(r.int(0), (r.fields[2], r.t))
            elif kind == "C":
                self.schedstat.append((r.tid, r.t, r.int(0)))
            elif kind == "O":
                self._object(r)
            elif kind == "N":
                self.names[r.fields[0]] = r.text(1)
            elif kind == "A" and r.fields[0] == "exception" and r.pid == root and r.tid == root:
                self.root_exception = True

    def _object(self, r: Record) -> None:
        what = r.fields[0]
        if what == "queue":
            rkey, wkey = r.fields[1], r.fields[2]
            self.names.setdefault(rkey, r.text(3))
            self.queue_of[rkey] = self.queue_of[wkey] = rkey
            self.queue_locks[r.fields[6]] = (rkey, "rlock")
            self.queue_locks[r.fields[7]] = (rkey, "wlock")
        elif what == "pipe":
            a, b = r.fields[1], r.fields[2]
            self.names.setdefault(a, r.text(3))
            self.names.setdefault(b, r.text(4))
            self.pipe_ends.update((a, b))
            self.peer[a], self.peer[b] = b, a
        elif what == "pool":
            self.names.setdefault(r.fields[1], r.text(2))
            self.pools.add(r.fields[1])
        elif what == "poolpart":
            pool, part = r.fields[1], r.fields[2]
            self.pool_parts[r.fields[3]] = (pool, part, "rlock")
            self.pool_parts[r.fields[4]] = (pool, part, "wlock")
        else:  # lock, event, cond, barrier
            self.names.setdefault(r.fields[1], r.text(2))

    # --- names -----------------------------------------------------------------

    def name_tasks(self) -> None:
        used: set[str] = set()

        def unique(name: str) -> str:
            candidate, n = name, 1
            while candidate in used:
                n += 1
                candidate = f"{name}#{n}"
            used.add(candidate)
            return candidate

        root = self.facts.root_pid
        for task in sorted(self.procs.values(), key=lambda t: (t.pid != root, t.created)):
            if task.pid in self.worker_of:
                pool, index = self.worker_of[task.pid]
                task.kind = "worker"
                if self.facts.pool_worker_names:
                    task.name = unique(f"{self.names.get(pool, 'pool')}.worker{index}")
                else:
                    task.name = unique(task.raw_name or f"{self.names.get(pool, 'pool')}.worker")
            else:
                task.name = unique(task.raw_name or f"process{task.pid}")
        for thread in sorted(self.threads.values(), key=lambda t: t.created):
            owner = self.procs.get(thread.pid)
            prefix = owner.name if owner is not None else f"process{thread.pid}"
            if thread.role == "feeder":
                base = f"{prefix}.{self._obj(thread.key, 'queue')}.feeder"
            elif thread.role in _HANDLER_ROLES:
                base = f"{prefix}.{self._obj(thread.key, 'pool')}.{thread.role}"
            else:
                base = f"{prefix}.{thread.raw_name or thread.tid}"
            thread.name = unique(base)

    def _obj(self, key: str, fallback: str) -> str:
        return self.names.get(key, fallback)

    def _pid_name(self, pid: int) -> str:
        task = self.procs.get(pid)
        return task.name if task is not None else f"process{pid}"

    def _tid_name(self, tid: int) -> str:
        task = self.threads.get(tid) or self.procs.get(tid)
        return task.name if task is not None else f"thread{tid}"

    def reason(self, task: _Task, span: _Span) -> str:
        what, key = span.what, span.key
        if what in ("sleep", "arrival"):
            return what
        if what == "join":
            return f"join {self._pid_name(int(key))}" if key.isdigit() else "join"
        if what == "tjoin":
            return f"join {self._tid_name(int(key))}" if key.isdigit() else "join"
        if what in ("get", "put", "qjoin", "qwrite", "feed"):
            queue = self._obj(self.queue_of.get(key, key), "queue")
            suffix = {"qjoin": "join", "qwrite": "write", "feed": "feeder"}.get(what, what)
            return f"{queue}.{suffix}"
        if what in ("send", "recv"):
            return f"{self._obj(key, 'pipe')}.{what}"
        if what == "acquire":
            if key in self.queue_locks:
                queue, role = self.queue_locks[key]
                return f"{self._obj(queue, 'queue')}.{'get' if role == 'rlock' else 'wlock'}"
            if key in self.pool_parts:
                pool, part, role = self.pool_parts[key]
                if (part, role) == ("inqueue", "rlock"):
                    return f"{self._obj(pool, 'pool')}.task"  # an idle worker's wait
                return f"{self._obj(pool, 'pool')}.{part}.{'get' if role == 'rlock' else 'wlock'}"
            return f"{self._obj(key, 'lock')}.acquire"
        if what in ("ewait", "cwait", "bwait"):
            return f"{self._obj(key, 'object')}.wait"
        pool_suffix = {
            "result": "result", "pjoin": "join", "task": "task",
        }  # fmt: skip
        if what in pool_suffix:
            pool = key
            if what == "task" and task.pid in self.worker_of:
                pool = self.worker_of[task.pid][0]
            return f"{self._obj(pool, 'pool')}.{pool_suffix[what]}"
        return what

    # --- ends of life --------------------------------------------------------------

    def settle_ends(self) -> None:
        facts = self.facts
        for task in self.procs.values():
            if task.pid == facts.root_pid:
                if facts.root_exit is not None:
                    task.end = facts.root_exit_t
                    task.exit_code = facts.root_exit
                    task.cause = _root_cause(facts.root_exit, self.root_exception)
                continue
            code = self.reaped.get(task.pid, task.exit_code)
            killed = self.killed.get(task.pid)
            if code is not None and code < 0:
                task.exit_code = code
                if killed is not None:
                    task.cause = "killed_as_daemon" if killed[0] == "daemon" else "terminated"
                    task.end = killed[1] if task.end is None else task.end
                else:
                    task.cause = "crashed"
                if task.end is None:
                    task.end, task.end_uncertain = self.reaped_t.get(task.pid), True
            elif code is not None:
                task.exit_code = code
                if task.cause is None:
                    task.cause = "exit" if code else "returned"
                if task.end is None:
                    task.end, task.end_uncertain = self.reaped_t.get(task.pid), True
        for thread in self.threads.values():
            owner = self.procs.get(thread.pid)
            if thread.end is None and owner is not None and owner.end is not None:
                # Threads still running die with their process: daemon threads at
                # its normal exit, every thread when it is killed.
                was_killed = owner.cause in ("terminated", "killed_as_daemon", "crashed")
                thread.end = owner.end
                thread.cause = owner.cause if was_killed else "killed_as_daemon"
            if thread.end is not None and thread.cause is None:
                thread.cause = "returned"

    # --- states ------------------------------------------------------------------

    def tasks(self) -> list[_Task]:
        return [*self.procs.values(), *self.threads.values()]

    def idle_reason(self, task: _Task, t: int) -> str | None:
        """What a helper thread or pool worker waits for at `t` when it waits
        outside a recorded call: its work. Their waits for work (about one per
        task) are not recorded: that would cost the program more than it tells."""
        if task.role == "feeder":
            return f"{self._obj(task.key, 'queue')}.feeder"
        suffix = {
            "worker_handler": "workers", "task_handler": "taskqueue", "result_handler": "outqueue",
        }.get(task.role)  # fmt: skip
        if suffix is not None:
            return f"{self._obj(task.key, 'pool')}.{suffix}"
        if task.pid in self.worker_of and task.tid == task.pid and not _in_job(task, t):
            return f"{self._obj(self.worker_of[task.pid][0], 'pool')}.task"
        return None

    def probe_states(self, task: _Task) -> list[_St]:
        """States from the probes alone: inside a recorded blocking call is
        blocked; otherwise running, except that a helper thread or a pool worker
        outside its work waits for work."""
        out: list[_St] = []
        if task.begin is not None:
            points = {task.begin}
            points.update(s.start for s in task.spans)
            points.update(s.end for s in task.spans if s.end is not None)
            points.update(t for job in task.jobs for t in job if t < 1 << 62)
            for t in sorted(p for p in points if p >= task.begin):
                i = bisect.bisect_right(task.starts, t) - 1
                span = task.spans[i] if i >= 0 else None
                if span is not None and span.end is not None and span.end <= t:
                    span = None
                if span is not None:
                    out.append(_St(t, "blocked", reason=self.reason(task, span)))
                elif (idle := self.idle_reason(task, t)) is not None:
                    out.append(_St(t, "blocked", reason=idle))
                else:
                    out.append(_St(t, "running"))
        if task.end is not None:
            out.append(_St(task.end, "terminated", uncertain=task.end_uncertain))
        return out

    def span_at(self, task: _Task, t: int) -> _Span | None:
        i = bisect.bisect_right(task.starts, t) - 1
        if i >= 0:
            span = task.spans[i]
            if span.end is None or span.end >= t:
                return span
        return None

    def kernel_states(self, task: _Task, kstates: list[KState]) -> list[_St]:
        out: list[_St] = []
        before: KState | None = None
        for ks in kstates:
            if ks.t < task.created:
                before = ks
                continue
            if before is not None:
                if before.state != "terminated":
                    out.append(_St(task.created, _state(before.state), before.cpu))
                before = None
            reason = None
            if ks.state == "blocked":
                span = self.span_at(task, ks.t)
                if span is not None:
                    reason = self.reason(task, span)
                else:
                    reason = self.idle_reason(task, ks.t)
            out.append(_St(ks.t, _state(ks.state), ks.cpu, reason, ks.uncertain))
        if before is not None and before.state != "terminated":
            out.append(_St(task.created, _state(before.state), before.cpu))
        if task.end is not None and not any(s.state == "terminated" for s in out):
            last = out[-1].t if out else task.created
            out.append(_St(max(task.end, last), "terminated", uncertain=True))
        return out

    def gil_reasons(self, states: dict[int, list[_St]], tasks: list[_Task]) -> None:
        """Name `gil` the unexplained blocks of a thread while a sibling runs."""
        by_pid: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        for task in tasks:
            seq = states[id(task)]
            for i, st in enumerate(seq):
                if st.state == "running":
                    stop = seq[i + 1].t if i + 1 < len(seq) else self.facts.end_t
                    by_pid[task.pid].append((st.t, stop, task.tid))
        for runs in by_pid.values():
            runs.sort()
        for task in tasks:
            runs = by_pid.get(task.pid, [])
            if not runs:
                continue
            seq = states[id(task)]
            for i, st in enumerate(seq):
                if st.state != "blocked" or st.reason is not None:
                    continue
                hi = bisect.bisect_right(runs, (st.t + _GIL_WINDOW_NS, 1 << 62, 0))
                lo = max(0, hi - 64)  # runs are short; a sibling's run overlapping t is near
                if any(s <= st.t + _GIL_WINDOW_NS and e > st.t and tid != task.tid
                       for s, e, tid in runs[lo:hi]):  # fmt: skip
                    seq[i] = _St(st.t, "blocked", None, "gil", st.uncertain)

    def emit(self, t: int, event: Event) -> None:
        rank = 0 if isinstance(event, TaskCreated) else 1 if isinstance(event, StateChanged) else 2
        self.out.append((t, rank, len(self.out), event))

    def emit_states(self, kernel: Iterable[SchedEvent] | None) -> dict[str, _St]:
        facts = self.facts
        tasks = [t for t in self.tasks() if t.name]
        for task in tasks:
            task.starts = [s.start for s in task.spans]
        kt = None
        if kernel is not None:
            tids = {t.tid for t in tasks}
            kt = timelines(kernel, tids, self._hint)
            self.stats.gaps = len(kt.gaps)
        states: dict[int, list[_St]] = {}
        for task in tasks:
            kstates = kt.states.get(task.tid) if kt is not None else None
            if kstates:
                self.stats.kernel_tasks += 1
                states[id(task)] = self.kernel_states(task, kstates)
            else:
                states[id(task)] = self.probe_states(task)
        if kt is not None:
            self.gil_reasons(states, tasks)
        last: dict[str, _St] = {}
        for task in sorted(tasks, key=lambda t: t.created):
            created = min(max(task.created, facts.t0), facts.end_t)
            parent = self._parent_name(task)
            process = self.procs[task.pid].name if task.pid in self.procs else task.name
            self.emit(
                created,
                TaskCreated(created - facts.t0, task.name, task.kind, process, parent,
                            task.daemon, task.pid, task.tid),
            )  # fmt: skip
            prev_t = created
            prev: _St | None = None
            for st in states[id(task)]:
                if st.t > facts.end_t:
                    break
                t = max(st.t, prev_t)
                if prev is not None and (prev.state, prev.cpu, prev.reason) == (
                    st.state,
                    st.cpu,
                    st.reason,
                ):
                    continue
                if st.uncertain:
                    self.stats.uncertain += 1
                terminated = st.state == "terminated"
                is_process = task.kind in ("main", "child", "worker")
                self.emit(
                    t,
                    StateChanged(
                        t - facts.t0,
                        task.name,
                        st.state,
                        st.cpu if st.state == "running" else None,
                        st.reason if st.state == "blocked" else None,
                        task.exit_code if terminated and is_process else None,
                        task.cause if terminated else None,
                        st.uncertain,
                    ),
                )
                prev_t, prev = t, st
                if terminated:
                    break
            if prev is not None:
                last[task.name] = prev
        self.stats.tasks = len(tasks)
        if kt is not None:
            self._check_schedstat(tasks, kt.states)
        return last

    def _hint(self, tid: int, lo: int, hi: int) -> int | None:
        """When a task hidden by a kernel-trace gap most likely stopped running:
        the start of a blocking call the probes saw in that window."""
        task = self.threads.get(tid) or self.procs.get(tid)
        if task is None:
            return None
        i = bisect.bisect_right(task.starts, hi) - 1
        return task.starts[i] if i >= 0 and task.starts[i] >= lo else None

    def _parent_name(self, task: _Task) -> str | None:
        if task.parent is None:
            if task.kind in ("thread", "feeder", "handler"):
                owner = self.procs.get(task.pid)
                return owner.name if owner is not None else None
            return None
        pid, tid = task.parent
        parent = self.threads.get(tid) if tid != pid else self.procs.get(pid)
        return parent.name if parent is not None else None

    def _check_schedstat(self, tasks: list[_Task], kstates: dict[int, list[KState]]) -> None:
        """The kernel trace's running time of a task against the CPU time the
        kernel itself counted (/proc schedstat, read by the task near its end).
        Tasks with little CPU time are left out: a few gaps weigh too much.
        Over all of them, the running time their CPU clocks did not count
        (`running_beyond_cpu_ns`): on a virtual machine, mostly what the host
        took while they ran (Linux leaves steal out of a task's CPU time), to
        the nanosecond where /proc/stat counts 10 ms ticks."""
        diffs: list[tuple[float, int]] = []
        beyond = counted = 0
        for tid, t, cpu_ns in self.schedstat:
            seq = kstates.get(tid)
            if not seq or cpu_ns < _SCHEDSTAT_MIN_NS or seq[0].state not in ("ready", "running"):
                continue  # a trace that began after the task has not seen all its CPU time
            ran = 0
            for i, ks in enumerate(seq):
                if ks.t >= t:
                    break
                if ks.state == "running":
                    stop = seq[i + 1].t if i + 1 < len(seq) else t
                    ran += min(stop, t) - ks.t
            diffs.append((abs(ran - cpu_ns) / cpu_ns, abs(ran - cpu_ns)))
            beyond += ran - cpu_ns
            counted += cpu_ns
        if diffs:
            diffs.sort()
            self.stats.schedstat = {
                "tasks": len(diffs),
                "median_rel_diff": round(diffs[len(diffs) // 2][0], 4),
                "max_rel_diff": round(diffs[-1][0], 4),
                "max_abs_diff_ns": max(d[1] for d in diffs),
                "cpu_ns": counted,
                "running_beyond_cpu_ns": beyond,
            }

    # --- messages, jobs, outputs, warnings ------------------------------------------

    def emit_messages(self) -> None:
        t0 = self.facts.t0
        tasks = {(t.pid, t.tid): t for t in self.tasks()}
        puts: dict[tuple[int, str], list[Record]] = defaultdict(list)
        feeder_writes: dict[tuple[int, str], list[Record]] = defaultdict(list)
        writes: dict[str, list[Record]] = defaultdict(list)  # channel (read key) -> writes
        reads: dict[str, list[Record]] = defaultdict(list)
        for r in self.records:
            if r.kind != "M":
                continue
            what, key = r.fields[0], r.fields[1]
            if what == "put":
                puts[(r.pid, key)].append(r)
            elif what == "w":
                channel = self._channel(key)
                if channel is None:
                    continue
                writes[channel].append(r)
                writer = tasks.get((r.pid, r.tid))
                if writer is not None and writer.role == "feeder":
                    feeder_writes[(r.pid, channel)].append(r)
            elif what == "r" and (key in self.queue_of or key in self.pipe_ends):
                reads[key].append(r)
        # A queue's put happens in the caller; its bytes are written later by the
        # feeder of the same process, in put order.
        put_of: dict[int, Record] = {}
        for (pid, channel), writes_of in feeder_writes.items():
            for put, write in zip(puts.get((pid, channel), []), writes_of, strict=False):
                put_of[id(write)] = put
        sends: list[tuple[int, Record, Record]] = []  # (time, first record, write)
        for ws in writes.values():
            for w in ws:
                paired = put_of.get(id(w))
                sends.append((paired.t, paired, w) if paired is not None else (w.t, w, w))
        sends.sort(key=lambda s: s[0])
        msg_id: dict[int, int] = {}
        for number, (t, first, w) in enumerate(sends, start=1):
            msg_id[id(w)] = number
            channel = self._channel(w.fields[1])
            assert channel is not None
            is_queue = channel in self.queue_of
            sender = tasks.get((first.pid, first.tid))
            if sender is None or not sender.name:
                continue
            sent: MessageOp = "put" if is_queue else "send"
            obj = self._obj(channel, "queue") if is_queue else self._obj(w.fields[1], "pipe")
            self.emit(t, MessageEvent(t - t0, sender.name, sent, obj, number, int(w.fields[3])))
        for channel, rs in reads.items():
            matched = _match(writes.get(channel, []), rs)
            is_queue = channel in self.queue_of
            obj = self._obj(channel, "queue" if is_queue else "pipe")
            for r in rs:
                reader = tasks.get((r.pid, r.tid))
                if reader is None or not reader.name:
                    continue
                source = matched.get(id(r))
                if source is None:
                    self.stats.garbled += 1
                    text = (
                        f"{reader.name} received {r.fields[3]} bytes on {obj} that match no "
                        "message sent: messages written at once on a shared end interleaved"
                    )
                    self.emit(r.t, WarningEvent(r.t - t0, reader.name, "garbled", text))
                    continue
                got: MessageOp = "get" if is_queue else "recv"
                size = int(r.fields[3])
                self.emit(
                    r.t, MessageEvent(r.t - t0, reader.name, got, obj, msg_id[id(source)], size)
                )

    def _channel(self, key: str) -> str | None:
        """The read end a write on `key` arrives at."""
        if key in self.queue_of:
            return self.queue_of[key]
        if key in self.peer:
            peer = self.peer[key]
            if key.startswith("p"):  # a one-way pipe: both ends share the inode
                return key[:-1] + "r"
            return peer
        return None

    def emit_jobs(self) -> None:
        t0 = self.facts.t0
        tasks = {(t.pid, t.tid): t for t in self.tasks()}
        numbers: dict[tuple[str, str], int] = {}
        counts: dict[str, int] = defaultdict(int)
        kinds: dict[tuple[str, str], str] = {}
        for r in self.records:
            if r.kind != "J":
                continue
            op, pool, job, chunk = r.fields[0], r.fields[1], r.fields[2], r.fields[3]
            if op in ("start", "finish", "error") and r.pid in self.worker_of:
                pool = self.worker_of[r.pid][0]
            if op == "submit":
                counts[pool] += 1
                numbers[(pool, job)] = counts[pool]
                kinds[(pool, job)] = r.fields[4]
            number = numbers.get((pool, job))
            task = tasks.get((r.pid, r.tid))
            if number is None or task is None or not task.name:
                continue
            index = int(chunk) if chunk and kinds.get((pool, job)) == "map" else None
            job_op: JobOp = op  # type: ignore[assignment]
            self.emit(
                r.t, JobEvent(r.t - t0, task.name, job_op, self._obj(pool, "pool"), number, index)
            )

    def emit_outputs_and_warnings(self) -> None:
        t0 = self.facts.t0
        tasks = {(t.pid, t.tid): t for t in self.tasks()}
        for r in self.records:
            if r.kind not in ("X", "A"):
                continue
            task = tasks.get((r.pid, r.tid)) or self.procs.get(r.pid)
            if task is None or not task.name or r.t < t0:
                continue
            if r.kind == "X":
                self.emit(r.t, OutputEvent(r.t - t0, task.name, r.text(0)))
            elif r.fields[0] == "task_done":
                queue = self._obj(self.queue_of.get(r.fields[1], r.fields[1]), "queue")
                text = f"task_done() on {queue} called more times than items were put"
                self.emit(r.t, WarningEvent(r.t - t0, task.name, "task_done", text))
            else:
                self.emit(r.t, WarningEvent(r.t - t0, task.name, r.fields[0], r.text(2)))
        self._pipe_races()

    def _pipe_races(self) -> None:
        """Two tasks using one pipe end at once (overlapping sends or receives)."""
        t0 = self.facts.t0
        tasks = {(t.pid, t.tid): t for t in self.tasks()}
        busy: dict[tuple[str, str], list[tuple[int, int, str, int]]] = defaultdict(list)
        for task in self.tasks():
            for span in task.spans:
                if span.what in ("send", "recv") and span.key in self.pipe_ends:
                    stop = span.end if span.end is not None else self.facts.end_t
                    busy[(span.what, span.key)].append((span.start, stop, task.name, 0))
        for r in self.records:
            if r.kind == "M" and r.fields[0] == "w" and r.fields[1] in self.pipe_ends:
                sender = tasks.get((r.pid, r.tid))
                if sender is not None:
                    busy[("send", r.fields[1])].append((r.t, r.t, sender.name, int(r.fields[3])))
        warned: set[tuple[str, str, frozenset[str]]] = set()
        for (op, key), spans in busy.items():
            spans.sort()
            for i, (_start, stop, name, size) in enumerate(spans):
                for other_start, _stop, other, other_size in spans[i + 1 :]:
                    if other_start > stop:
                        break
                    pair = (op, key, frozenset((name, other)))
                    if other == name or pair in warned:
                        continue
                    warned.add(pair)
                    end = self._obj(key, "pipe")
                    if op == "recv":
                        risk = "which of them gets each message is not defined"
                    elif max(size, other_size) > PIPE_BUF:
                        risk = "messages over 4,096 bytes can interleave and corrupt the stream"
                    else:
                        risk = (
                            "these writes are atomic (4,096 bytes or less), "
                            "but share the end unsafely"
                        )
                    text = f"{name} and {other} {op} on {end} at once without a lock: {risk}"
                    t = max(other_start, self.facts.t0)
                    self.emit(t, WarningEvent(t - t0, other, "race", text))


def _in_job(task: _Task, t: int) -> bool:
    """Whether a worker runs a job at `t` (from its start to its finish)."""
    i = bisect.bisect_right(task.jobs, [t, 1 << 63]) - 1
    return i >= 0 and task.jobs[i][0] <= t < task.jobs[i][1]


def _match(writes: list[Record], reads: list[Record]) -> dict[int, Record]:
    """Read → write: the k-th read of some bytes is the k-th write of them.
    A read whose bytes no write sent (writes on a shared end interleaved) has
    no entry: it received no message, only pieces of several."""
    by_crc: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for w in writes:
        by_crc[(w.fields[2], w.fields[3])].append(w)
    taken: dict[tuple[str, str], int] = defaultdict(int)
    out: dict[int, Record] = {}
    for r in reads:
        key = (r.fields[2], r.fields[3])
        candidates = by_crc.get(key)
        if candidates and taken[key] < len(candidates):
            out[id(r)] = candidates[taken[key]]
            taken[key] += 1
    return out


def _cause(text: str) -> Cause | None:
    causes: dict[str, Cause] = {
        "returned": "returned", "exception": "exception", "exit": "exit",
        "killed_as_daemon": "killed_as_daemon",
    }  # fmt: skip
    return causes.get(text)


def _root_cause(code: int, raised: bool) -> Cause:
    if code < 0:
        return "crashed"
    if code == 1 and raised:
        return "exception"
    return "returned" if code == 0 else "exit"


def _state(kernel_state: str) -> TaskState:
    states: dict[str, TaskState] = {
        "ready": "ready", "running": "running", "blocked": "blocked", "terminated": "terminated",
    }  # fmt: skip
    return states[kernel_state]


def merge(records: list[Record], facts: RunFacts, kernel: Iterable[SchedEvent] | None) -> Merged:
    """The trace events of a run (in time order) and its end record."""
    m = _Merger(records, facts)
    m.read()
    m.name_tasks()
    m.settle_ends()
    last = m.emit_states(kernel)
    m.emit_messages()
    m.emit_jobs()
    m.emit_outputs_and_warnings()
    m.out.sort(key=lambda e: (e[0], e[1], e[2]))
    blocked: tuple[BlockedTask, ...] = ()
    detail = facts.detail
    if facts.status != "complete":
        blocked = tuple(
            BlockedTask(name, st.reason or "?")
            for name, st in last.items()
            if st.state == "blocked"
        )
        detail = "\n".join([detail, *(f"  {b.task} is blocked on {b.reason}" for b in blocked)])
    # A run that ended by itself (or stuck) ends with its last change; a stopped
    # one when it was stopped.
    end_t = facts.end_t
    if facts.status in ("complete", "deadlock") and m.out:
        end_t = m.out[-1][0]
    end = End(end_t - facts.t0, facts.status, blocked, (), detail)
    return Merged([e[3] for e in m.out], end, m.stats)


__all__ = ["Gap", "MergeStats", "Merged", "RunFacts", "merge"]
