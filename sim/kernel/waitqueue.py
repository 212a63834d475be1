"""Tasks blocked on one condition of an object, woken in FIFO order."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import simpy

if TYPE_CHECKING:
    from sim.kernel.clock import Clock
    from sim.kernel.scheduler import Scheduler
    from sim.kernel.tasks import Task


TIMED_OUT = object()


class WaitQueue:
    def __init__(self, env: Clock, scheduler: Scheduler, futex: bool = False) -> None:
        self.env = env
        self.scheduler = scheduler
        # A futex wait (a lock, a condition, the GIL): the kernel places a
        # woken task at once, while its waker runs (a pipe's wake-up is a sync
        # one instead, which may take the waker's CPU as it leaves).
        self.futex = futex
        # Read by hot paths to skip a wake when nobody waits (`if q.waiting:`);
        # changed only here.
        self.waiting: deque[tuple[Task, simpy.Event]] = deque()

    def __len__(self) -> int:
        return len(self.waiting)

    def tasks(self) -> list[Task]:
        return [task for task, _ in self.waiting]

    def wait(
        self,
        task: Task,
        reason: str,
        waits_for: Callable[[], set[Task]] | None = None,
        timeout: int | None = None,
    ) -> Generator[simpy.Event, Any, bool]:
        """Block until woken (True) or until `timeout` ns have passed (False)."""
        event = simpy.Event(self.env)
        entry = (task, event)
        self.waiting.append(entry)

        def cancel() -> None:
            if entry in self.waiting:
                self.waiting.remove(entry)

        if timeout is not None:

            def expire(_event: simpy.Event) -> None:
                if not event.triggered:
                    cancel()
                    event.succeed(TIMED_OUT)

            self.env.timeout(timeout).callbacks.append(expire)
        value = yield from self.scheduler.block(task, reason, event, waits_for, cancel)
        return value is not TIMED_OUT

    def wake_one(self) -> Task | None:
        while self.waiting:
            task, event = self.waiting.popleft()
            # A task killed this instant is still queued until its interrupt is
            # handled: it must not be handed what it waited for (a GIL, a lock).
            if task.alive and self.env.fire(event, True):
                if self.futex:
                    self._placed_now(task)
                return task
        return None

    def wake(self, task: Task) -> bool:
        """Wake `task` if it waits here (out of turn)."""
        for entry in self.waiting:
            if entry[0] is task:
                self.waiting.remove(entry)
                if self.futex:
                    self._placed_now(task)
                return task.alive and self.env.fire(entry[1], True)
        return False

    def _placed_now(self, task: Task) -> None:
        task.futex_woken_at = self.env.now
        task.futex_waker = self.env.active_process

    def wake_all(self) -> None:
        while self.wake_one() is not None:
            pass
