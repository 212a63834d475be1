"""Static priorities: the ready task with the lowest priority number runs, FIFO
among equals. Preemptive unless `preemptive: false`."""

from __future__ import annotations

from collections.abc import Sequence

from sim.policies.base import T
from sim.policies.keyed import KeyedPolicy


class Priority(KeyedPolicy[T]):
    name = "priority"

    def key(self, task: T) -> float:
        return task.priority

    def victim(self, candidate: T, running: Sequence[T]) -> T | None:
        if not self.settings.preemptive:
            return None
        return self.preempting_victim(candidate, running)
