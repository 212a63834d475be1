"""Simulated tasks (a process's main thread, or a thread) and processes."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sim.trace import Cause, TaskKind, TaskState

if TYPE_CHECKING:
    import simpy

    from sim.kernel.gil import Gil
    from sim.kernel.scheduler import Cpu


class Preempted:
    """Interrupt cause: the scheduler took the CPU away; the task is ready again."""


@dataclass(frozen=True)
class Killed:
    """Interrupt cause: the task's process was killed (SIGTERM); unwind at once.
    `teardown`: the task is its process's main thread, which the kernel's
    teardown of the process still runs in (`Costs.kill_exit_ns`) before it ends."""

    cause: Cause
    exit_code: int
    teardown: bool = False


class ProgramExit(Exception):
    """sys.exit(code) in the simulated program."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class ProgramError(Exception):
    """An exception raised in the simulated program (a `raise` step, a misuse such
    as joining a process never started, a timeout with no `on_timeout`)."""

    def __init__(self, error: str, message: str = "") -> None:
        super().__init__(f"{error}: {message}" if message else error)
        self.error = error
        self.loc = ""  # file:line:column of the scenario step that raised it


class Task:
    """What the scheduler schedules. Attributes read by policies: name, seq,
    priority, burst_ns (see sim.policies.base.Schedulable)."""

    __slots__ = (
        "blocked_reason",
        "burst_ns",
        "charged_at",
        "cpu",
        "daemon",
        "ended",
        "futex_waker",
        "futex_woken_at",
        "handed_at",
        "handed_cpu",
        "in_timer",
        "kind",
        "last_call_ns",
        "last_cpu",
        "left_at",
        "locks_held",
        "name",
        "priority",
        "process",
        "program",
        "queued_at",
        "reads_clock",
        "remaining",
        "rng",
        "seq",
        "sim_process",
        "slice_left",
        "state",
        "waits_for",
        "wake",
    )

    def __init__(
        self,
        name: str,
        kind: TaskKind,
        process: SimProcess,
        seq: int,
        priority: int,
        rng: random.Random,
        ended: simpy.Event,
        daemon: bool = False,
        program: str = "",
    ) -> None:
        self.name = name
        self.program = program  # the function it runs, for sim.kernel.usage
        self.kind: TaskKind = kind
        self.process = process
        self.seq = seq
        self.priority = priority
        self.rng = rng
        self.daemon = daemon
        self.state: TaskState = "new"
        self.cpu: Cpu | None = None
        # The CPU it ran on last and when it left it (the linux policy: while
        # ready, it waits in that CPU's queue until it has not run for the
        # balance delay), and when it last woke up (or was new) and was queued.
        self.last_cpu: int | None = None
        self.left_at = 0
        self.queued_at = 0
        # When a forced GIL switch handed it the GIL, and the CPU of the thread
        # it took it from, which was still on that CPU as it woke this one.
        self.handed_at = -1
        self.handed_cpu: int | None = None
        # When a futex wake (a lock, the GIL) made it ready, and by which
        # program: the kernel placed it then, while its waker still ran, so the
        # CPU its waker leaves at that instant was not idle for it (see
        # Scheduler._may_run_on).
        self.futex_woken_at = -1
        self.futex_waker: simpy.Process | None = None
        self.wake: simpy.Event | None = None
        self.sim_process: simpy.Process | None = None
        self.ended = ended  # succeeds when the task has terminated
        self.remaining = 0  # CPU time left of the current piece of work
        self.slice_left: int | None = None  # None: may run until it blocks
        self.charged_at = 0  # when the CPU time it used was last accounted
        self.in_timer = False  # inside the timeout of a piece of work (interruptible)
        # Its work reads its CPU clock (a compute step): the kernel then notices at
        # once that its slice ran out (see Scheduler._slice_limit).
        self.reads_clock = False
        self.locks_held = 0  # locks and semaphores held, for the pipe race check
        self.last_call_ns = 0  # when its last Queue or Pipe call returned (cold calls)
        self.burst_ns = 0
        self.blocked_reason: str | None = None
        # While blocked: the tasks that could end the wait (for the deadlock verdict).
        self.waits_for: Callable[[], set[Task]] | None = None

    @property
    def alive(self) -> bool:
        return self.state != "terminated"

    def __repr__(self) -> str:
        return f"Task({self.name}, {self.state})"


@dataclass(eq=False)
class SimProcess:
    """A simulated OS process: its tasks, its children, its exit status."""

    name: str
    parent: SimProcess | None
    daemon: bool
    priority: int
    target: str | None  # the function its main thread runs; None for the main process
    ended: simpy.Event  # succeeds when the process has exited (join returns)
    started: bool = False
    main_task: Task | None = None
    threads: list[Task] = field(default_factory=list)
    children: list[SimProcess] = field(default_factory=list)
    exit_code: int | None = None
    gil: Gil | None = None
    # Whether its interpreter has imported the start method's Popen module (a
    # forked child inherits the import of the parent that started it).
    popen_imported: bool = False
    # The kinds of call (get, put, send, recv, print, thread_start) it has made:
    # the first costs more.
    calls_made: set[str] = field(default_factory=set)

    @property
    def alive(self) -> bool:
        return self.started and self.exit_code is None

    def first_call(self, kind: str) -> bool:
        """Whether this is the process's first call of `kind` (and note that it was)."""
        if kind in self.calls_made:
            return False
        self.calls_made.add(kind)
        return True

    def live_tasks(self) -> list[Task]:
        tasks = [self.main_task] if self.main_task is not None else []
        return [t for t in tasks + self.threads if t.alive]
