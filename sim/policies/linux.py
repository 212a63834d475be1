"""An approximation of Linux's fair scheduler (CFS / EEVDF) for SCHED_OTHER tasks.

What it keeps: each task has a virtual runtime that grows with the CPU time it
uses, scaled by the weight of its nice value (the kernel's table: each nice step
is about 1.25×); the ready task with the smallest virtual runtime runs next; a
task runs for a base slice (1.4 ms by default, `se.slice` measured on this machine
kind) before the scheduler looks again; a new task starts at the queue's minimum
virtual runtime; a waking task is placed no further back than half a base slice
behind that minimum (it cannot bank credit for sleeping); a waking task preempts
a running one whose virtual runtime is ahead of it by more than a base slice.

Where it departs from the kernel: the ready tasks are in one heap, from which
the scheduler takes a task only for a CPU it may run on (its last one, or any
once it has not run for the balance delay: `Scheduler._may_run_on`), with no
migration costs; the wake-up preemption margin is CFS's, not EEVDF's
eligibility, lag and deadlines (docs/model.md measures the difference); no
cgroup hierarchy; and `priority` in a scenario is read as the nice value
(-20..19). The scheduler, not this policy, notices a slice's end at the tick
for work that does not read its CPU clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence

from sim.policies.base import Policy, T, Why
from sim.program import PolicySettings

NICE_0_WEIGHT = 1024


def nice_weight(nice: int) -> float:
    """The kernel's sched_prio_to_weight, which is 1024 / 1.25**nice to within 1%."""
    return NICE_0_WEIGHT / (1.25 ** max(-20, min(19, nice)))


# Virtual runtime grows by this much per ns of CPU time, per nice value.
_VRUNTIME_RATE = {nice: NICE_0_WEIGHT / nice_weight(nice) for nice in range(-20, 20)}


class Linux(Policy[T]):
    name = "linux"

    def __init__(self, settings: PolicySettings) -> None:
        super().__init__(settings)
        self._heap: list[tuple[float, int, T]] = []
        self._counter = itertools.count()
        self._vruntime: dict[str, float] = {}
        self._min_vruntime = 0.0

    def vruntime(self, task: T) -> float:
        return self._vruntime.get(task.name, self._min_vruntime)

    def _update_min(self) -> None:
        if self._heap:
            self._min_vruntime = max(self._min_vruntime, self._heap[0][0])

    def add(self, task: T, now: int, why: Why) -> None:
        if why == "new":
            vruntime = self._min_vruntime
        elif why == "wake":
            credit = self.settings.linux_base_slice_ns / 2
            vruntime = max(self.vruntime(task), self._min_vruntime - credit)
        else:
            vruntime = self.vruntime(task)
        self._vruntime[task.name] = vruntime
        heapq.heappush(self._heap, (vruntime, next(self._counter), task))

    def pick(self, now: int) -> T | None:
        if not self._heap:
            return None
        self._update_min()
        return heapq.heappop(self._heap)[2]

    def pick_where(self, now: int, allowed: Callable[[T], bool]) -> T | None:
        # In vruntime order: the first allowed task; the ones passed go back.
        if not self._heap:
            return None
        self._update_min()
        passed = []
        chosen = None
        while self._heap:
            entry = heapq.heappop(self._heap)
            if allowed(entry[2]):
                chosen = entry[2]
                break
            passed.append(entry)
        for entry in passed:
            heapq.heappush(self._heap, entry)
        return chosen

    def remove(self, task: T) -> None:
        self._heap = [entry for entry in self._heap if entry[2] is not task]
        heapq.heapify(self._heap)

    def ordered(self) -> list[T]:
        return [entry[2] for entry in sorted(self._heap, key=lambda e: (e[0], e[1]))]

    def __len__(self) -> int:
        return len(self._heap)

    def time_slice(self, task: T, now: int) -> int | None:
        return self.settings.linux_base_slice_ns

    def charge(self, task: T, ran_ns: int) -> None:
        rate = _VRUNTIME_RATE.get(task.priority) or _VRUNTIME_RATE[max(-20, min(19, task.priority))]
        vruntimes = self._vruntime
        vruntimes[task.name] = vruntimes.get(task.name, self._min_vruntime) + ran_ns * rate

    def victim(self, candidate: T, running: Sequence[T]) -> T | None:
        # The running task furthest ahead (the later created on a tie), in one
        # pass: the scheduler asks at almost every wake while the CPUs are busy.
        vruntimes, floor = self._vruntime, self._min_vruntime
        worst: T | None = None
        worst_vruntime = 0.0
        for task in running:
            vruntime = vruntimes.get(task.name, floor)
            if (
                worst is None
                or vruntime > worst_vruntime
                or (vruntime == worst_vruntime and task.seq > worst.seq)
            ):
                worst, worst_vruntime = task, vruntime
        if worst is None:
            return None
        gap = worst_vruntime - vruntimes.get(candidate.name, floor)
        return worst if gap > self.settings.linux_base_slice_ns else None
