"""A ready queue ordered by a key, FIFO among equal keys: the shared part of the
policies that pick by burst length or priority."""

from __future__ import annotations

import heapq
import itertools
from abc import abstractmethod
from collections.abc import Sequence

from sim.policies.base import Policy, T, Why
from sim.program import PolicySettings


class KeyedPolicy(Policy[T]):
    def __init__(self, settings: PolicySettings) -> None:
        super().__init__(settings)
        self._heap: list[tuple[float, int, T]] = []
        self._counter = itertools.count()

    @abstractmethod
    def key(self, task: T) -> float:
        """Smaller runs first."""

    def add(self, task: T, now: int, why: Why) -> None:
        heapq.heappush(self._heap, (self.key(task), next(self._counter), task))

    def pick(self, now: int) -> T | None:
        return heapq.heappop(self._heap)[2] if self._heap else None

    def remove(self, task: T) -> None:
        self._heap = [entry for entry in self._heap if entry[2] is not task]
        heapq.heapify(self._heap)

    def ordered(self) -> list[T]:
        return [entry[2] for entry in sorted(self._heap, key=lambda e: (e[0], e[1]))]

    def __len__(self) -> int:
        return len(self._heap)

    def preempting_victim(self, candidate: T, running: Sequence[T]) -> T | None:
        """The running task with the largest key, if the candidate's key is smaller."""
        if not running:
            return None
        worst = max(running, key=lambda t: (self.key(t), t.seq))
        return worst if self.key(candidate) < self.key(worst) else None
