"""Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition and Barrier of
multiprocessing (Lib/multiprocessing/synchronize.py).

Errors follow CPython: releasing an unlocked Lock or a BoundedSemaphore past its
value raises ValueError; releasing an RLock one does not own, or waiting on or
notifying a Condition one does not hold, raises AssertionError. A process
killed while holding a lock leaves it locked, as a real SIGTERM does.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from sim import program as p
from sim.kernel.clock import Steps
from sim.kernel.runtime import Runtime
from sim.kernel.tasks import ProgramError, Task
from sim.kernel.waitqueue import WaitQueue


class SimLock:
    """A counting lock: Lock and Semaphore (value), RLock (owner and depth)."""

    def __init__(self, rt: Runtime, name: str, value: int, bound: int | None, reentrant: bool):
        self.rt = rt
        self.name = name
        self.value = value
        self.bound = bound  # a release past it is an error (Lock: 1, BoundedSemaphore: value)
        self.reentrant = reentrant
        self.owner: Task | None = None  # RLock: the owner; others: the last to acquire
        self.depth = 0
        self.waiters = WaitQueue(rt.env, rt.scheduler, futex=True)

    def _holders(self) -> set[Task]:
        releasers = self.rt.able_to(("release", self.name))()
        if self.owner is not None and self.owner.alive:
            releasers.add(self.owner)
        return releasers

    def acquire(
        self, task: Task, timeout: int | None = None, reason: str | None = None
    ) -> Generator[simpy.Event, Any, bool]:
        """Take the lock (True), or give up after `timeout` ns (False)."""
        if self.reentrant and self.owner is task:
            self.depth += 1
            return True
        deadline = None if timeout is None else self.rt.env.now + timeout
        while self.value == 0:
            left = None if deadline is None else max(0, deadline - self.rt.env.now)
            woken = yield from self.waiters.wait(
                task, reason or f"{self.name}.acquire", self._holders, left
            )
            yield from self.rt.scheduler.work(task, 0)
            if not woken:
                return False
        self.value -= 1
        self.owner = task
        self.depth = 1
        task.locks_held += 1
        return True

    def release(self, task: Task) -> None:
        if self.reentrant:
            if self.owner is not task:
                raise ProgramError("AssertionError", "attempt to release recursive lock not owned")
            self.depth -= 1
            if self.depth:
                return
            self.owner = None
        elif self.bound is not None and self.value >= self.bound:
            raise ProgramError("ValueError", "semaphore or lock released too many times")
        holder = self.owner
        if holder is not None and holder.locks_held:
            holder.locks_held -= 1
        self.value += 1
        self.waiters.wake_one()

    def release_fully(self, task: Task) -> int:
        """Condition.wait: let go of every level of an RLock; returns the depth."""
        depth = self.depth
        self.depth = 1
        self.release(task)
        return depth

    def acquire_op(self, task: Task, op: p.Acquire) -> Steps:
        yield from self.rt.scheduler.work(task, 0)
        timeout = self.rt.timeout_of(task, op.timeout)
        if not (yield from self.acquire(task, timeout)):
            yield from self.rt.on_timeout(task, op.on_timeout, "Timeout")

    def release_op(self, task: Task, op: p.Release) -> Steps:
        yield from self.rt.scheduler.work(task, 0)
        self.release(task)

    def locked_op(self, task: Task, op: p.Locked) -> Steps:
        """`with lock:` — released on the way out, even through an exception or
        exit; not when the process is killed (that is an interrupt, not an
        exception of the program)."""
        yield from self.rt.scheduler.work(task, 0)
        yield from self.acquire(task)
        try:
            yield from self.rt.run_block(task, op.body)
        except simpy.Interrupt:
            raise
        except BaseException:
            self.release(task)
            raise
        yield from self.rt.scheduler.work(task, 0)
        self.release(task)


class SimEvent:
    def __init__(self, rt: Runtime, name: str) -> None:
        self.rt = rt
        self.name = name
        self.flag = False
        self.waiters = WaitQueue(rt.env, rt.scheduler, futex=True)

    def set(self, task: Task, op: p.SetEvent) -> Steps:
        yield from self.rt.scheduler.work(task, 0)
        self.flag = True
        self.waiters.wake_all()

    def clear(self, task: Task, op: p.ClearEvent) -> Steps:
        yield from self.rt.scheduler.work(task, 0)
        self.flag = False

    def wait(self, task: Task, op: p.WaitEvent) -> Steps:
        yield from self.rt.scheduler.work(task, 0)
        if self.flag:
            return
        timeout = self.rt.timeout_of(task, op.timeout)
        setters = self.rt.able_to(("set", self.name))
        woken = yield from self.waiters.wait(task, f"{self.name}.wait", setters, timeout)
        if not woken:
            yield from self.rt.on_timeout(task, op.on_timeout, "Timeout")
            return
        yield from self.rt.scheduler.work(task, 0)


class SimCondition:
    """A Condition over its own RLock."""

    def __init__(self, rt: Runtime, name: str) -> None:
        self.rt = rt
        self.name = name
        self.lock = SimLock(rt, name, 1, None, reentrant=True)
        self.waiters = WaitQueue(rt.env, rt.scheduler, futex=True)

    def _check_held(self, task: Task, what: str) -> None:
        if self.lock.owner is not task:
            raise ProgramError("AssertionError", f"{what} on {self.name} without holding it")

    def wait(self, task: Task, op: p.Wait) -> Steps:
        rt = self.rt
        yield from rt.scheduler.work(task, 0)
        self._check_held(task, "wait")
        depth = self.lock.release_fully(task)
        timeout = rt.timeout_of(task, op.timeout)
        notifiers = rt.able_to(("notify", self.name))
        woken = yield from self.waiters.wait(task, f"{self.name}.wait", notifiers, timeout)
        yield from rt.scheduler.work(task, 0)
        yield from self.lock.acquire(task, reason=f"{self.name}.acquire")
        self.lock.depth = depth
        if not woken:
            yield from rt.on_timeout(task, op.on_timeout, "Timeout")

    def notify(self, task: Task, op: p.Notify) -> Steps:
        yield from self.rt.scheduler.work(task, 0)
        self._check_held(task, "notify")
        if op.n is None:
            self.waiters.wake_all()
            return
        for _ in range(op.n):
            if self.waiters.wake_one() is None:
                break


class SimBarrier:
    def __init__(self, rt: Runtime, name: str, parties: int) -> None:
        self.rt = rt
        self.name = name
        self.parties = parties
        self.arrived = 0
        self.waiters = WaitQueue(rt.env, rt.scheduler, futex=True)

    def wait(self, task: Task, op: p.BarrierWait) -> Steps:
        yield from self.rt.scheduler.work(task, 0)
        self.arrived += 1
        if self.arrived == self.parties:
            self.arrived = 0
            self.waiters.wake_all()
            return
        others = self.rt.able_to(("barrier", self.name))
        yield from self.waiters.wait(task, f"{self.name}.wait", others)
        yield from self.rt.scheduler.work(task, 0)
