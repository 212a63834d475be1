"""Shortest job first: the ready task with the shortest next CPU burst runs; no
preemption. The burst is known exactly to the simulator (an oracle), as in the
textbook exercises; for a random duration it is the distribution's mean."""

from __future__ import annotations

from sim.policies.base import T
from sim.policies.keyed import KeyedPolicy


class Sjf(KeyedPolicy[T]):
    name = "sjf"

    def key(self, task: T) -> float:
        return task.burst_ns
