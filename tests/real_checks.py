"""Structural checks of a trace and helpers for the real-run tests.

`structure_problems` lists what is wrong with a trace, empty when it passes:
each task's events start with its creation and stop at its termination, in
time order (so its intervals tile its life); no CPU runs two tasks at once;
every get or recv has its put or send, earlier or at the same time.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import psutil

from sim.intervals import state_intervals
from sim.trace import MessageEvent, StateChanged, TaskCreated, Trace, read_trace


def structure_problems(trace: Trace) -> list[str]:
    problems: list[str] = []
    created: set[str] = set()
    ended: set[str] = set()
    last_t: dict[str, int] = {}
    for ev in trace.events:
        if isinstance(ev, TaskCreated):
            if ev.task in created:
                problems.append(f"{ev.task} created twice")
            created.add(ev.task)
            last_t[ev.task] = ev.t
        elif isinstance(ev, StateChanged):
            if ev.task not in created:
                problems.append(f"{ev.task} changes state before it is created (t={ev.t})")
            if ev.task in ended:
                problems.append(f"{ev.task} changes state after it terminated (t={ev.t})")
            if ev.t < last_t.get(ev.task, 0):
                problems.append(f"{ev.task} goes back in time at {ev.t}")
            last_t[ev.task] = ev.t
            if ev.state == "terminated":
                ended.add(ev.task)
            kernel = trace.header.notes.get("kernel_trace") == "on"
            if ev.state == "running" and kernel and ev.cpu is None:
                problems.append(f"{ev.task} runs on no CPU at {ev.t}")
    intervals = state_intervals(trace.events, trace.end.t)
    by_cpu: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    for task, ivs in intervals.items():
        for iv in ivs:
            if iv.state == "running" and iv.cpu is not None and iv.end_ns > iv.start_ns:
                by_cpu[iv.cpu].append((iv.start_ns, iv.end_ns, task))
    for cpu, runs in by_cpu.items():
        runs.sort()
        for (_s1, e1, t1), (s2, _e2, t2) in itertools.pairwise(runs):
            if s2 < e1:
                problems.append(f"CPU {cpu} runs {t1} and {t2} at once ({s2} < {e1})")
    sent: dict[int, int] = {}
    for ev in trace.events:
        if isinstance(ev, MessageEvent) and ev.op in ("put", "send"):
            sent.setdefault(ev.msg, ev.t)
    for ev in trace.events:
        if isinstance(ev, MessageEvent) and ev.op in ("get", "recv"):
            if ev.msg not in sent:
                problems.append(f"{ev.op} of message {ev.msg} by {ev.task} has no put/send")
            elif sent[ev.msg] > ev.t:
                problems.append(f"message {ev.msg} is received before it is sent")
    return problems


def load_checked(path: Path) -> Trace:
    trace = read_trace(path)
    problems = structure_problems(trace)
    assert not problems, "\n".join(problems[:20])
    return trace


def terminations(trace: Trace) -> dict[str, StateChanged]:
    return {
        ev.task: ev
        for ev in trace.events
        if isinstance(ev, StateChanged) and ev.state == "terminated"
    }


def stray_children() -> list[psutil.Process]:
    """Live (not zombie) descendants of the test process."""
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                out.append(child)
        except psutil.Error:
            continue
    return out


_KERNEL: list[str | None] = []


def kernel_missing() -> str | None:
    """Why the kernel scheduler trace cannot be recorded here (None: it can)."""
    if not _KERNEL:
        import tempfile

        from sim.real.kernel_trace import KernelRecorder, KernelTraceUnavailable

        with tempfile.TemporaryDirectory() as tmp:
            recorder = KernelRecorder(Path(tmp))
            try:
                recorder.start()
            except KernelTraceUnavailable as exc:
                _KERNEL.append(str(exc))
            else:
                _KERNEL.append(None)
            finally:
                recorder.stop()
    return _KERNEL[0]


def realtime_missing() -> str | None:
    """Why SCHED_FIFO cannot be used here (None: it can)."""
    from sim.program import Machine
    from sim.real.policy import plan

    missing = plan(Machine(cpus=1, policy="fcfs")).not_enforced
    return "; ".join(missing) or None


def running_runs(trace: Trace, tasks: set[str]) -> list[tuple[str, int, int]]:
    """(task, start, end) of the running intervals of `tasks`, in time order,
    consecutive intervals of one task merged."""
    intervals = state_intervals(trace.events, trace.end.t)
    runs = sorted(
        (iv.start_ns, iv.end_ns, task)
        for task, ivs in intervals.items()
        if task in tasks
        for iv in ivs
        if iv.state == "running" and iv.end_ns > iv.start_ns
    )
    merged: list[tuple[str, int, int]] = []
    for start, end, task in runs:
        if merged and merged[-1][0] == task:
            merged[-1] = (task, merged[-1][1], end)
        else:
            merged.append((task, start, end))
    return merged
