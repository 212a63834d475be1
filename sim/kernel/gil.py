"""The GIL of one simulated process: at most one of its threads runs Python.

As in CPython 3.2+: a thread that wants the GIL while another holds it waits on
it (blocked, as the kernel sees a futex wait), and after the switch interval (5 ms
by default) with no switch it asks the holder to drop it; the holder drops it at
its next check (at once in the model, or when it next runs if it is not on a
CPU) and the GIL goes to the longest waiter (FORCE_SWITCHING). A thread that
blocks in a system call (sleep, a pipe read, a lock wait) releases the GIL; one
whose system call returns at once takes it straight back, except from the
thread a forced switch has just taken it from (`hot`), which waits again at
once and wins it back there (`Scheduler.syscall`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

if TYPE_CHECKING:
    from sim.kernel.scheduler import Scheduler
    from sim.kernel.tasks import Task
    from sim.kernel.waitqueue import WaitQueue


class DropGil:
    """Interrupt cause: the holder must drop the GIL (another thread asked)."""


class Gil:
    def __init__(self, scheduler: Scheduler, waiters: WaitQueue, interval_ns: int) -> None:
        self.scheduler = scheduler
        self.waiters = waiters
        self.interval_ns = interval_ns
        self.holder: Task | None = None
        self.drop_requested = False
        self._switches = 0  # counts hand-overs, to tell whether one happened meanwhile
        self._switched_at = 0  # when the last hand-over happened
        self._timer_armed = False
        # The thread the last forced switch took the GIL from, while the thread
        # it went to holds it: it waits again at once, and wins the GIL back at
        # that thread's first system call (`hand_back`).
        self.hot: Task | None = None
        # The thread `Thread.start()` has just made: it takes the GIL at the
        # starting thread's next release, before any waiter (see `release`).
        self.heir: Task | None = None

    def acquire(self, task: Task) -> Generator[simpy.Event, Any, None]:
        """Take the GIL, waiting for it if another thread holds it. On return the
        task holds it; it may have blocked meanwhile (and so not be running)."""
        while self.holder is not None and self.holder is not task:
            self._arm()
            yield from self.waiters.wait(task, "gil", self._holders)
        self.holder = task

    def try_acquire(self, task: Task) -> bool:
        """Take the GIL if nobody holds it: the common case, without a generator."""
        if self.holder is None:
            self.holder = task
            return True
        return False

    def _holders(self) -> set[Task]:
        return {self.holder} if self.holder is not None and self.holder.alive else set()

    def release(self, task: Task) -> None:
        if self.holder is not task:
            return
        forced = self.drop_requested
        self.drop_requested = False
        heir, self.heir = self.heir, None
        if heir is not None and heir.alive:
            # The new thread (made this instant: it has not asked for the GIL
            # yet) runs at once and takes it; the waiter CPython's release
            # signals finds it taken and waits again.
            self.holder = heir
            self.hot = None
            self.waiters.wake_one()
            self._switched()
            return
        self.holder = self.waiters.wake_one() if self.waiters.waiting else None
        self.hot = task if forced and self.holder is not None else None
        if self.hot is not None and self.holder is not None and task.cpu is not None:
            # CPython's dropper wakes the taker, then waits on its CPU until the
            # taker has the GIL: the kernel places the taker while that CPU is busy.
            self.holder.handed_at = self.scheduler.env.now
            self.holder.handed_cpu = task.cpu.index
        if self.holder is not None:
            self._switched()

    def _switched(self) -> None:
        self._switches += 1
        self._switched_at = self.scheduler.env.now
        if len(self.waiters):
            self._arm()

    def hand_back(self, task: Task) -> bool:
        """At a system call of `task`, which took the GIL in a forced switch: the
        thread forced off, waiting for it again, wins it back (True)."""
        hot = self.hot
        if hot is None or self.holder is not task:
            return False
        self.hot = None
        if not self.waiters.wake(hot):  # it has died meanwhile
            return False
        self.holder = hot
        self._switched()
        return True

    def _arm(self, delay: int | None = None) -> None:
        if self._timer_armed:
            return
        self._timer_armed = True
        switches = self._switches
        env = self.scheduler.env
        wait = self.interval_ns if delay is None else delay
        env.timeout(wait).callbacks.append(lambda _e: self._expired(switches))

    def _expired(self, switches: int) -> None:
        self._timer_armed = False
        if not len(self.waiters) or self.holder is None:
            return
        if switches != self._switches:
            # A switch happened meanwhile: it woke the waiters, whose timed waits
            # started again then, so the new holder has its interval from then.
            self._arm(self._switched_at + self.interval_ns - self.scheduler.env.now)
            return
        self.drop_requested = True
        holder = self.holder
        if holder.in_timer and holder.sim_process is not None:
            holder.sim_process.interrupt(DropGil())
