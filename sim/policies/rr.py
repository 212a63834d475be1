"""Round robin: FIFO order, and a task whose quantum runs out goes to the tail."""

from __future__ import annotations

from sim.policies.base import T
from sim.policies.fcfs import Fcfs


class RoundRobin(Fcfs[T]):
    name = "rr"

    def time_slice(self, task: T, now: int) -> int | None:
        return self.settings.quantum_ns
