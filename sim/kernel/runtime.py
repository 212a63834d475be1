"""What the models of multiprocessing's objects share: the clock, the scheduler,
the processes, the trace, and who can act on what."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from sim import program as p
from sim.kernel.clock import Clock, Steps
from sim.kernel.processes import Processes
from sim.kernel.scheduler import Scheduler
from sim.kernel.tasks import ProgramError, Task
from sim.kernel.usage import Action, Usage
from sim.trace import TraceSink


class Runtime:
    def __init__(
        self,
        env: Clock,
        scheduler: Scheduler,
        processes: Processes,
        scenario: p.Scenario,
        sink: TraceSink,
        run_block: Callable[[Task, p.Block], Steps],
    ) -> None:
        self.env = env
        self.scheduler = scheduler
        self.processes = processes
        self.scenario = scenario
        self.costs = scenario.machine.costs
        self.sink = sink
        self.run_block = run_block
        self.usage = Usage(scenario)
        self._message_ids = itertools.count(1)

    def next_message_id(self) -> int:
        return next(self._message_ids)

    def pickle_ns(self, size: int) -> int:
        """CPU time to pickle or unpickle (and copy) `size` bytes."""
        return round(size * self.costs.per_byte_ns)

    def first_call_ns(self, task: Task, kind: str, first_ns: int) -> int:
        """`first_ns` if this is the first `kind` call of the task's process, else 0."""
        return first_ns if task.process.first_call(kind) else 0

    def call_ns(self, task: Task, kind: str, first_ns: int, warm_ns: int, cold_ns: int) -> int:
        """The CPU time of a Queue or Pipe call of `kind` starting now: its
        process's first pays `first_ns` more (its measure holds the first
        touches), a later one runs cold if the task made none for a while."""
        if task.process.first_call(kind):
            return first_ns + warm_ns
        return cold_ns if self.runs_cold(task) else warm_ns

    def runs_cold(self, task: Task) -> bool:
        """Whether the task's Queue or Pipe call now runs cold (Costs.*_cold_ns)."""
        return self.env.now - task.last_call_ns >= p.CALL_COLD_AFTER_NS

    def call_done(self, task: Task) -> None:
        task.last_call_ns = self.env.now

    def able_to(self, *actions: Action) -> Callable[[], set[Task]]:
        """Who could end a wait: the live tasks whose programs do one of `actions`."""

        def tasks() -> set[Task]:
            return {
                t
                for t in self.scheduler.tasks
                if t.alive and not self.usage.of(t.program).isdisjoint(actions)
            }

        return tasks

    def on_timeout(self, task: Task, block: p.Block | None, error: str) -> Steps:
        """A blocking call timed out: run the scenario's `on_timeout` steps, or
        raise the exception CPython raises (the task exits with 1)."""
        yield from self.scheduler.work(task, 0)
        if block is None:
            raise ProgramError(error, "timed out")
        yield from self.run_block(task, block)

    def timeout_of(self, task: Task, duration: p.Duration | None) -> int | None:
        return None if duration is None else p.draw(duration, task.rng)
