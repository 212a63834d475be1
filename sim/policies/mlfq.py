"""Multi-level feedback queue, with the rules of Arpaci-Dusseau's OSTEP (ch. 8):

1. a task at a higher level (smaller number) runs before one at a lower level;
2. tasks at the same level run round robin with that level's quantum;
3. a new task enters the top level;
4. once a task has used its allotment at a level (one quantum of CPU time, however
   many times it gave the CPU up), it moves one level down;
5. every boost period, every task moves back to the top level.

The boost is applied when the policy is next consulted after the period ends
(the policy owns no timer), which is at the latest at the next quantum end.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from sim.policies.base import Policy, T, Why
from sim.program import PolicySettings


class Mlfq(Policy[T]):
    name = "mlfq"

    def __init__(self, settings: PolicySettings) -> None:
        super().__init__(settings)
        self._quanta = settings.mlfq_quanta_ns
        self._levels: list[deque[T]] = [deque() for _ in self._quanta]
        self._level: dict[str, int] = {}
        self._used: dict[str, int] = {}
        self._next_boost = settings.mlfq_boost_ns

    def level_of(self, task: T) -> int:
        return self._level.get(task.name, 0)

    def _boost_if_due(self, now: int) -> None:
        if self.settings.mlfq_boost_ns <= 0 or now < self._next_boost:
            return
        while self._next_boost <= now:
            self._next_boost += self.settings.mlfq_boost_ns
        waiting = [task for level in self._levels for task in level]
        for level in self._levels:
            level.clear()
        self._levels[0].extend(waiting)
        for name in self._level:
            self._level[name] = 0
            self._used[name] = 0

    def add(self, task: T, now: int, why: Why) -> None:
        self._boost_if_due(now)
        self._levels[self.level_of(task)].append(task)

    def pick(self, now: int) -> T | None:
        self._boost_if_due(now)
        for level in self._levels:
            if level:
                return level.popleft()
        return None

    def remove(self, task: T) -> None:
        self._levels[self.level_of(task)].remove(task)

    def ordered(self) -> list[T]:
        return [task for level in self._levels for task in level]

    def __len__(self) -> int:
        return sum(len(level) for level in self._levels)

    def time_slice(self, task: T, now: int) -> int | None:
        return self._quanta[self.level_of(task)] - self._used.get(task.name, 0)

    def charge(self, task: T, ran_ns: int) -> None:
        level = self.level_of(task)
        used = self._used.get(task.name, 0) + ran_ns
        if used >= self._quanta[level] and level + 1 < len(self._quanta):
            self._level[task.name] = level + 1
            used = 0
        elif used >= self._quanta[level]:
            used = 0  # the bottom level is plain round robin
        self._used[task.name] = used

    def victim(self, candidate: T, running: Sequence[T]) -> T | None:
        if not running:
            return None
        worst = max(running, key=lambda t: (self.level_of(t), t.seq))
        return worst if self.level_of(candidate) < self.level_of(worst) else None
