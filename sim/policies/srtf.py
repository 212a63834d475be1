"""Shortest remaining time first: SJF that preempts when a task with a shorter
burst than what the running task has left becomes ready."""

from __future__ import annotations

from collections.abc import Sequence

from sim.policies.base import T
from sim.policies.keyed import KeyedPolicy


class Srtf(KeyedPolicy[T]):
    name = "srtf"

    def key(self, task: T) -> float:
        return task.burst_ns

    def victim(self, candidate: T, running: Sequence[T]) -> T | None:
        return self.preempting_victim(candidate, running)
