"""The kernel's scheduler events around a real run, and the states they imply.

`KernelRecorder` runs `perf record` on every CPU with the scheduler
tracepoints, stamped with CLOCK_MONOTONIC (the clock of `time.monotonic_ns()`,
which the probes use), started disabled and enabled through perf's control
FIFO so the run begins only once perf is really recording.

`parse_perf_script` reads `perf script` output; `timelines` turns the events
into each task's states: switched in is running on that CPU; switched out
still runnable (R, R+) is ready; switched out asleep (S, D, ...) is blocked;
woken is ready; switched out dead after its exit event is terminated.

Each CPU's chain of switches is checked: a switch must switch out the task the
previous switch on that CPU switched in. On some VMs switches into or out of
the idle task go missing; then the start of the interval the gap hides is
placed where the task's runtime events put it (its first since its last switch
counts from its switch in), or else at the earliest time the other events
allow, and marked uncertain, never invented from nothing. A runtime event
fired in a task places it running on that CPU at once, so that a wake-up of
the running task (a no-op for the kernel) is not taken for the end of a wait.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

PERF_EVENTS = (
    "sched:sched_switch",
    "sched:sched_stat_runtime",
    "sched:sched_waking",
    "sched:sched_wakeup_new",
    "sched:sched_process_exit",
    "sched:sched_process_fork",
)


class KernelTraceUnavailable(Exception):
    """Kernel tracing cannot be used here; the message says what is missing."""


class SchedEvent(NamedTuple):
    """One scheduler event. `cur` is the task running on `cpu` when it fired.
    switch: a=prev, b=next, state=prev_state; waking/new/exit: a=the task;
    fork: a=parent, b=child; runtime: a=the task, b=CPU time (ns) it used since
    it was last accounted (its switch in, or the previous runtime event)."""

    t: int
    cpu: int
    cur: int
    kind: str
    a: int
    b: int = 0
    state: str = ""


_LINE = re.compile(r"\s*(\d+)/(\d+)\s+\[(\d+)\]\s+(\d+)\.(\d{9}):\s+sched:(\w+):\s(.*)$")
_SWITCH = re.compile(
    r".* prev_pid=(\d+) prev_prio=-?\d+ prev_state=(\S+) ==> next_comm=.* next_pid=(\d+) "
    r"next_prio=-?\d+$"
)
_PID = re.compile(r".* pid=(\d+) prio=-?\d+(?: |$)")
_FORK = re.compile(r".* pid=(\d+) child_comm=.* child_pid=(\d+)$")
_RUNTIME = re.compile(r".* pid=(\d+) runtime=(\d+) \[ns\]")
_KINDS = {"sched_waking": "waking", "sched_wakeup_new": "new", "sched_process_exit": "exit"}


def parse_perf_script(lines: Iterable[str]) -> Iterator[SchedEvent]:
    """Events from `perf script --ns -F pid,tid,cpu,time,event,trace` output.
    Lines that are not scheduler events (perf's own notes) are skipped."""
    for line in lines:
        m = _LINE.match(line)
        if m is None:
            continue
        t = int(m.group(4)) * 1_000_000_000 + int(m.group(5))
        cpu, cur, name, rest = int(m.group(3)), int(m.group(2)), m.group(6), m.group(7)
        if name == "sched_switch":
            s = _SWITCH.match(rest)
            if s is not None:
                yield SchedEvent(
                    t, cpu, cur, "switch", int(s.group(1)), int(s.group(3)), s.group(2)
                )
        elif name in _KINDS:
            p = _PID.match(rest)
            if p is not None:
                yield SchedEvent(t, cpu, cur, _KINDS[name], int(p.group(1)))
        elif name == "sched_stat_runtime":
            rt = _RUNTIME.match(rest)
            if rt is not None:
                yield SchedEvent(t, cpu, cur, "runtime", int(rt.group(1)), int(rt.group(2)))
        elif name == "sched_process_fork":
            f = _FORK.match(rest)
            if f is not None:
                yield SchedEvent(t, cpu, cur, "fork", int(f.group(1)), int(f.group(2)))


# --- recording ----------------------------------------------------------------------


def perf_path() -> str | None:
    return shutil.which("perf")


class KernelRecorder:
    """`perf record` of the scheduler tracepoints on all CPUs, in `directory`.
    `keep=False` sends the events to /dev/null: tracing's cost without its file."""

    def __init__(self, directory: Path, keep: bool = True) -> None:
        self.directory = directory
        self.data = directory / "sched.data" if keep else Path(os.devnull)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = directory / "perf.log"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start perf and return once it records; KernelTraceUnavailable if it cannot."""
        perf = perf_path()
        if perf is None:
            raise KernelTraceUnavailable("perf is not installed (no `perf` on PATH)")
        ctl, ack = self.directory / "perf.ctl", self.directory / "perf.ack"
        for fifo in (ctl, ack):
            os.mkfifo(fifo)
        argv = [perf, "record", "-q", "-a", "-k", "CLOCK_MONOTONIC", "--no-buildid", "-m", "1024"]
        for event in PERF_EVENTS:
            argv += ["-e", event]
        argv += ["-o", str(self.data), "-D", "-1", "--control", f"fifo:{ctl},{ack}"]
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        # Opening the FIFOs blocks until perf opens its ends; poll so a perf that
        # fails at once is seen instead of waited for.
        deadline = time.monotonic() + timeout_s
        ctl_fd = -1
        while ctl_fd < 0:
            if self._proc.poll() is not None:
                raise KernelTraceUnavailable(self._failure())
            try:
                ctl_fd = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise KernelTraceUnavailable("perf did not start in time") from None
                time.sleep(0.01)
        ack_fd = os.open(ack, os.O_RDONLY | os.O_NONBLOCK)
        try:
            os.write(ctl_fd, b"enable\n")
            reply = b""
            while b"ack" not in reply:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise KernelTraceUnavailable(self._failure() or "perf did not enable events")
                try:
                    reply += os.read(ack_fd, 64)
                except BlockingIOError:
                    time.sleep(0.005)
        finally:
            os.close(ctl_fd)
            os.close(ack_fd)

    def _failure(self) -> str:
        text = self._log.read_text(errors="replace").strip() if self._log.exists() else ""
        lowered = text.lower()
        if "permission" in lowered or "paranoid" in lowered or "access to performance" in lowered:
            return "no permission to trace the scheduler (run as root or lower perf_event_paranoid)"
        if "tracepoint" in lowered or "tracefs" in lowered or "debugfs" in lowered:
            return "scheduler tracepoints unavailable (tracefs not mounted?): " + text[:200]
        return "perf record failed: " + (text[:300] or "no message")

    def stop(self) -> None:
        """Stop perf (SIGINT, as Ctrl-C would) and wait for it to write its file."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(2)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def events(self) -> Iterator[SchedEvent]:
        perf = perf_path()
        if perf is None or not self.data.is_file():
            return
        argv = [perf, "script", "-i", str(self.data), "--ns", "-F"]
        argv += ["pid,tid,cpu,time,event,trace"]
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, errors="replace"
        ) as proc:
            assert proc.stdout is not None
            yield from parse_perf_script(proc.stdout)


# --- states -----------------------------------------------------------------------


class KState(NamedTuple):
    t: int
    state: str  # ready, running, blocked, terminated
    cpu: int | None = None
    uncertain: bool = False


@dataclass(frozen=True)
class Gap:
    """On `cpu` between `start` and `end`, events are missing: the switch after
    `start` switched in `expected`, the one at `end` switched out `found`."""

    cpu: int
    start: int
    end: int
    expected: int
    found: int


@dataclass
class Timelines:
    states: dict[int, list[KState]] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    first: int | None = None  # time of the first and last event seen
    last: int | None = None


_UNKNOWN = -1


class _Builder:
    def __init__(self, tids: set[int], hint: Callable[[int, int, int], int | None]) -> None:
        self.tids = tids
        self.hint = hint
        self.out = Timelines()
        self.on_cpu: dict[int, tuple[int, int]] = {}  # cpu -> (task, since)
        self.seen: dict[int, tuple[int, int]] = {}  # our task -> (cpu, last time seen running)
        self.lost: dict[int, tuple[int, int]] = {}  # our task -> (cpu, earliest end) in a gap
        self.exiting: dict[int, int] = {}  # our task -> time of its exit event
        # our task -> when it was switched in, by its first runtime event since its
        # last switch (runtime counts from the switch in). Keyed by the task, not
        # the CPU: a runtime event may fire on another CPU, as when a fork there
        # updates the clock of the runqueue the task runs on.
        self.switched_in: dict[int, int] = {}

    def _set(self, tid: int, t: int, state: str, cpu: int | None = None, unc: bool = False) -> None:
        states = self.out.states.setdefault(tid, [])
        if states:
            last = states[-1]
            if last.state == "terminated":
                return
            t = max(t, last.t)
            if last.state == state and last.cpu == cpu:
                return
        states.append(KState(t, state, cpu, unc))

    def _rewind(self, tid: int, t: int) -> None:
        """Forget the ready and blocked states `tid` was given after `t`."""
        states = self.out.states.get(tid, [])
        while states and states[-1].t > t and states[-1].state in ("ready", "blocked"):
            states.pop()

    def _current(self, tid: int) -> KState | None:
        states = self.out.states.get(tid)
        return states[-1] if states else None

    def _resolve_lost(self, tid: int, next_kind: str) -> None:
        """A task lost in a gap reappears: what it did in between follows from how."""
        cpu_end = self.lost.pop(tid, None)
        if cpu_end is None:
            return
        if tid in self.exiting:  # its last switch out was lost: it ended
            self._set(tid, max(cpu_end[1], self.exiting[tid]), "terminated", None, True)
            return
        state = "blocked" if next_kind in ("waking", "none") else "ready"
        self._set(tid, cpu_end[1], state, None, True)

    def _lose(self, tid: int, cpu: int, since: int, until: int) -> int:
        """`tid` was running on `cpu` from `since`; when it stopped is hidden."""
        seen = self.seen.get(tid)
        end = since if seen is None or seen[0] != cpu else max(since, seen[1])
        hinted = self.hint(tid, end, until)
        if hinted is not None:
            end = max(end, min(hinted, until))
        self.lost[tid] = (cpu, end)
        return end

    def feed(self, ev: SchedEvent) -> None:
        out = self.out
        if out.first is None:
            out.first = ev.t
        out.last = ev.t
        tids = self.tids
        if ev.cur in tids:
            self.seen[ev.cur] = (ev.cpu, ev.t)
        if ev.kind == "switch":
            self._switch(ev)
        elif ev.kind == "runtime":
            if ev.a in tids:
                self.switched_in.setdefault(ev.a, ev.t - ev.b)
                if ev.cur == ev.a:
                    self._running_seen(ev.a, ev.cpu, ev.t)
        elif ev.a in tids:
            if ev.kind == "waking" or ev.kind == "new":
                self._resolve_lost(ev.a, "waking")
                cur = self._current(ev.a)
                if cur is None or cur.state == "blocked":
                    self._set(ev.a, ev.t, "ready")
            elif ev.kind == "exit":
                self.exiting[ev.a] = ev.t

    def _running_seen(self, tid: int, cpu: int, t: int) -> None:
        """`tid`'s runtime was accounted on `cpu` at `t`, where it is the current
        task: it runs there, whether or not its switch in was seen."""
        cur = self._current(tid)
        if cur is not None and (cur.state, cur.cpu) in (("running", cpu), ("terminated", None)):
            return
        floor = self._follow_chain(cpu, tid, t)
        start = self._hidden_start(tid, floor, t)
        self._switch_in(tid, cpu, start, True)
        self.on_cpu[cpu] = (tid, start)

    def _follow_chain(self, cpu: int, prev: int, t: int) -> int:
        """`prev` runs on `cpu` at `t`: check that the CPU's last switch seen put it
        there, and return the earliest time it can have started there."""
        expected = self.on_cpu.get(cpu)
        if expected is None:
            return t
        floor = expected[1]
        if expected[0] != prev:
            self.out.gaps.append(Gap(cpu, expected[1], t, expected[0], prev))
            x = expected[0]
            cur = self._current(x) if x in self.tids else None
            if cur is not None and cur.state == "running" and cur.cpu == cpu:
                floor = self._lose(x, cpu, expected[1], t)
        return floor

    def _hidden_start(self, tid: int, floor: int, t: int) -> int:
        """When `tid`, found running at `t`, was switched in unseen: when its
        runtime events say, or else the earliest possible time. What it was
        given since (a wake-up of the running task) did not happen."""
        switched_in = self.switched_in.get(tid)
        if switched_in is not None:
            start = max(floor, switched_in)
            self._rewind(tid, start)
        else:
            cur = self._current(tid)
            start = max(floor, cur.t if cur is not None else floor)
        return min(start, t)

    def _switch_in(self, tid: int, cpu: int, t: int, unc: bool) -> None:
        self._resolve_lost(tid, "switch_in")
        cur = self._current(tid)
        if cur is not None and cur.state == "running" and cur.cpu != cpu:
            # Still running elsewhere for us: its switch out there was lost.
            other = cur.cpu if cur.cpu is not None else cpu
            end = self._lose(tid, other, cur.t, t)
            self._resolve_lost(tid, "switch_in")
            self.on_cpu[other] = (_UNKNOWN, end)
        self._set(tid, t, "running", cpu, unc)

    def _switch(self, ev: SchedEvent) -> None:
        t, cpu, prev, nxt = ev.t, ev.cpu, ev.a, ev.b
        tids = self.tids
        floor = self._follow_chain(cpu, prev, t)
        if prev in tids:
            self._resolve_lost(prev, "switch_out")
            cur = self._current(prev)
            if cur is None or cur.state != "running" or cur.cpu != cpu:
                self._set(prev, self._hidden_start(prev, floor, t), "running", cpu, True)
            if prev in self.exiting and ev.state[:1] in ("X", "Z"):
                self._set(prev, t, "terminated")
            elif ev.state.startswith("R"):
                self._set(prev, t, "ready")
            else:
                self._set(prev, t, "blocked")
        if nxt in tids:
            self._switch_in(nxt, cpu, t, False)
        self.on_cpu[cpu] = (nxt, t)
        self.switched_in.pop(prev, None)
        self.switched_in.pop(nxt, None)

    def finish(self) -> Timelines:
        for tid in list(self.lost):
            self._resolve_lost(tid, "none")
        for tid, exit_t in self.exiting.items():
            cur = self._current(tid)
            if cur is not None and cur.state != "terminated":
                self._set(tid, exit_t, "terminated", None, True)
        return self.out


def timelines(
    events: Iterable[SchedEvent],
    tids: set[int],
    hint: Callable[[int, int, int], int | None] = lambda _tid, _lo, _hi: None,
) -> Timelines:
    """The kernel states of the tasks `tids`, from time-ordered events.

    `hint(tid, lo, hi)` may give the time in [lo, hi] at which `tid` most likely
    stopped running when a gap hides it (the probes know when a blocking call
    began); the interval that follows is still marked uncertain.
    """
    builder = _Builder(tids, hint)
    for ev in events:
        builder.feed(ev)
    return builder.finish()
