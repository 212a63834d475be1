"""Telling a deadlocked real run from a slow one, while it runs.

A run is deadlocked when every live task of the program (each process's main
thread and its user threads, not the queue feeders and pool helpers that wait
for work by design) is inside a blocking call with no timeout that is not a
sleep, no thread of the run is runnable, and nothing moves for a quiet period:
no new probe record and (almost) no CPU time used by any thread of the run.
A task waiting in a call the probes do not see (a socket, stdin) counts as
able to move, so such a run ends by its timeout instead: no false verdicts.
A scenario run makes no such call (`every_wait_seen`): there, a task blocked
with no probe span open is stuck in a pipe read the probes saw find data —
a message whose length a race garbled, whose remaining bytes never come — and
counts as stuck.
The kernel's view (/proc) is cheap and asked first; the probe records are read
only once the kernel has seen the run sit still for the quiet period, so the
watch costs the run almost nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from sim.real.records import RecordTail

_NOT_STUCK = ("sleep", "arrival")
_CPU_SLACK_NS = 2_000_000


@dataclass
class DeadlockWatch:
    probe_dir: Path
    quiet_ns: int = 500_000_000
    every_wait_seen: bool = False
    _tail: RecordTail = field(init=False)
    _user: dict[int, int] = field(default_factory=dict)  # tid -> pid, tasks of the program
    _open: dict[int, tuple[str, bool]] = field(default_factory=dict)  # tid -> (what, timed)
    _ended: set[int] = field(default_factory=set)
    _quiet_since: int | None = None
    _cpu_then: int = 0

    def __post_init__(self) -> None:
        self._tail = RecordTail(self.probe_dir)

    def _read(self) -> int:
        """Take in the new records; the time of the latest (0 if none)."""
        records = self._tail.poll()
        for r in records:
            if r.kind == "P":
                self._user[r.pid] = r.pid
            elif r.kind == "T" and r.fields[2] == "user":
                self._user[r.tid] = r.pid
            elif r.kind in ("Z", "t"):
                self._ended.add(r.tid)
            elif r.kind == "R":
                self._ended.add(int(r.fields[0]))
            elif r.kind == "B":
                self._open[r.tid] = (r.fields[0], r.fields[2] == "1")
            elif r.kind == "E":
                self._open.pop(r.tid, None)
        return records[-1].t if records else 0

    def _all_stuck(self, live: set[int]) -> bool:
        tasks = [tid for tid in self._user if tid in live and tid not in self._ended]
        if not tasks:
            return False
        for tid in tasks:
            span = self._open.get(tid)
            if span is None:
                if not self.every_wait_seen:
                    return False
            elif span[1] or span[0] in _NOT_STUCK:
                return False
        return True

    def check(self, root_pid: int, now_ns: int) -> bool:
        """True once the run has been deadlocked for the quiet period. The
        cheap kernel view is asked first; the probe records only once the
        kernel has seen nothing move for that long."""
        threads = _threads(root_pid)
        if not threads or any(state == "R" for state, _ in threads.values()):
            self._quiet_since = None
            return False
        cpu = sum(c for _, c in threads.values())
        if self._quiet_since is None or cpu - self._cpu_then > _CPU_SLACK_NS:
            self._quiet_since, self._cpu_then = now_ns, cpu
            return False
        if now_ns - self._quiet_since < self.quiet_ns:
            return False
        if self._read() > self._quiet_since:
            self._quiet_since = now_ns  # the probes saw something move meanwhile
            return False
        return self._all_stuck(set(threads))


def _tree(root_pid: int) -> list[int]:
    """The pids of the run's process tree. Linux lists each thread's children in
    /proc; reading only those costs far less than psutil's scan of every
    process on the machine, which this poll would repeat every 125 ms on the
    CPUs the run is measured on."""
    pids, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    todo += [int(child) for child in f.read().split()]
            except FileNotFoundError:
                return _tree_by_scan(root_pid)  # a kernel without the children file
            except OSError:
                continue
    return pids


def _tree_by_scan(root_pid: int) -> list[int]:
    try:
        return [root_pid, *(c.pid for c in psutil.Process(root_pid).children(recursive=True))]
    except psutil.Error:
        return []


def _threads(root_pid: int) -> dict[int, tuple[str, int]]:
    """tid -> (kernel state letter, CPU time in ns) of every thread of the run's tree."""
    pids = _tree(root_pid)
    out: dict[int, tuple[str, int]] = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for name in tids:
            base = f"/proc/{pid}/task/{name}"
            try:
                with open(f"{base}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                with open(f"{base}/schedstat") as f:
                    cpu = int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                continue
            out[int(name)] = (state, cpu)
    return out
