"""First come, first served: a FIFO ready queue, no preemption."""

from __future__ import annotations

from collections import deque

from sim.policies.base import Policy, T, Why
from sim.program import PolicySettings


class Fcfs(Policy[T]):
    name = "fcfs"

    def __init__(self, settings: PolicySettings) -> None:
        super().__init__(settings)
        self._queue: deque[T] = deque()

    def add(self, task: T, now: int, why: Why) -> None:
        self._queue.append(task)

    def pick(self, now: int) -> T | None:
        return self._queue.popleft() if self._queue else None

    def remove(self, task: T) -> None:
        self._queue.remove(task)

    def ordered(self) -> list[T]:
        return list(self._queue)

    def __len__(self) -> int:
        return len(self._queue)
