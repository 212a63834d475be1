"""Runs the programs of a scenario's tasks on the scheduler.

Each op has a handler: a generator that uses the CPU through `Scheduler.work`
and gives it up through `Scheduler.block`. Every op needs the CPU, even for an
instant (a process must be running to call anything), so every handler starts
with a `work` call. Handlers for IPC, synchronisation and pools register
themselves from their own modules through `Interpreter.handlers`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain, repeat
from typing import Any

import simpy

from sim import program as p
from sim.kernel.clock import Clock, Steps
from sim.kernel.objects import Objects
from sim.kernel.processes import Processes
from sim.kernel.runtime import Runtime
from sim.kernel.scheduler import Scheduler
from sim.kernel.tasks import ProgramError, ProgramExit, Task
from sim.trace import OutputEvent, TraceSink

Handler = Callable[[Task, Any], Steps]


class Interpreter:
    def __init__(
        self,
        env: Clock,
        scheduler: Scheduler,
        scenario: p.Scenario,
        sink: TraceSink,
    ) -> None:
        self.env = env
        self.scheduler = scheduler
        self.scenario = scenario
        self.sink = sink
        self.processes = Processes(env, scheduler, scenario, self.run_block)
        self.runtime = Runtime(env, scheduler, self.processes, scenario, sink, self.run_block)
        self.objects = Objects(self.runtime)
        self.handlers: dict[type[p.Op], Handler] = {
            **self.objects.handlers(),
            p.Sleep: self._sleep,
            p.Print: self._print,
            p.Exit: self._exit,
            p.Raise: self._raise,
            p.Spawn: self.processes.spawn,
            p.Start: self.processes.start_op,
            p.Join: self.processes.join,
            p.Terminate: self.processes.terminate,
            p.IsAlive: self._is_alive,
            p.StartThread: self.processes.start_thread,
        }

    def start(self) -> None:
        """Start the main process."""
        self.processes.start_main(self._main_body)

    def _main_body(self, task: Task) -> Steps:
        for pool in self.objects.pools_at_start(self.scenario):
            yield from pool.create(task)
        yield from self.run_block(task, self.scenario.main)

    def run_block(self, task: Task, ops: p.Block) -> Steps:
        """Run `ops` in `task`. Repeats are unrolled into a stack of iterators
        rather than nested generators: every SimPy resume passes through each
        generator frame in the chain, so a flat chain keeps each step cheap."""
        handlers = self.handlers
        scheduler = self.scheduler
        quick_work, account = scheduler.quick_work, scheduler.account
        draw, constant, compute, repeat_op = p.draw, p.Constant, p.Compute, p.Repeat
        stack: list[Iterator[p.Op]] = [iter(ops)]
        while stack:
            for op in stack[-1]:
                kind = type(op)
                # The type checks are by identity, which mypy does not narrow on;
                # isinstance would cost a call per step on the hottest path.
                if kind is compute:
                    duration = op.duration  # type: ignore[attr-defined]
                    amount = duration.ns if type(duration) is constant else draw(duration, task.rng)
                    timeout = quick_work(task, amount, True)
                    if timeout is None:
                        yield from scheduler.work(task, amount, True)
                        continue
                    try:
                        yield timeout
                    except simpy.Interrupt as interrupt:
                        yield from scheduler.resume_work(task, interrupt)
                    else:
                        task.in_timer = False
                        account(task)
                elif kind is repeat_op:
                    body = op.body  # type: ignore[attr-defined]
                    stack.append(chain.from_iterable(repeat(body, op.times)))  # type: ignore[attr-defined]
                    break  # run the repeated body; this loop resumes after it
                else:
                    handler = handlers.get(kind)
                    if handler is None:
                        raise ProgramError(
                            "NotImplementedError", f"{kind.__name__} is not modelled"
                        )
                    try:
                        yield from handler(task, op)
                    except ProgramError as error:
                        error.loc = error.loc or op.loc
                        raise
            else:
                stack.pop()

    def _sleep(self, task: Task, op: p.Sleep) -> Steps:
        duration = p.draw(op.duration, task.rng)
        yield from self.scheduler.work(task, 0)
        yield from self.scheduler.block(task, "sleep", self.env.timeout(duration))
        if duration > 0:  # the call and its wake-up, charged once awake
            yield from self.scheduler.work(task, self.scenario.machine.costs.sleep_ns)

    def _print_ns(self, task: Task) -> int:
        costs = self.scenario.machine.costs
        return self.runtime.first_call_ns(task, "print", costs.first_print_ns) + costs.print_ns

    def _print(self, task: Task, op: p.Print) -> Steps:
        yield from self.scheduler.work(task, self._print_ns(task))
        self.sink.emit(OutputEvent(self.env.now, task.name, op.text))
        yield from self.scheduler.syscall(task)  # its write to stdout

    def _exit(self, task: Task, op: p.Exit) -> Steps:
        yield from self.scheduler.work(task, 0)
        raise ProgramExit(op.code)

    def _raise(self, task: Task, op: p.Raise) -> Steps:
        yield from self.scheduler.work(task, 0)
        raise ProgramError(op.error)

    def _is_alive(self, task: Task, op: p.IsAlive) -> Steps:
        yield from self.scheduler.work(task, self._print_ns(task))
        alive = self.processes.is_alive(op.name)
        self.sink.emit(OutputEvent(self.env.now, task.name, f"is_alive({op.name}) = {alive}"))
