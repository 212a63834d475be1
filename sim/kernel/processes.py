"""Processes and threads: start, join, terminate, and CPython's exit sequence.

The order of a process's exit is CPython's (Lib/multiprocessing/process.py and
util.py). The main process: its code ends; its non-daemon threads are joined
(interpreter shutdown); then multiprocessing's exit function runs finalizers of
priority >= 0 (a Pool never closed is terminated), SIGTERMs every live daemon
child (exit code -15), joins every child, and runs the negative-priority
finalizers (queue feeder threads are joined, so unflushed data holds it up). A
child process runs the same exit function right after its target returns, and
joins its non-daemon threads after that.
"""

from __future__ import annotations

from collections.abc import Callable

import simpy

from sim import program as p
from sim.kernel.clock import Clock, Steps
from sim.kernel.gil import Gil
from sim.kernel.scheduler import Scheduler
from sim.kernel.tasks import Killed, ProgramError, ProgramExit, SimProcess, Task
from sim.kernel.usage import MAIN
from sim.kernel.waitqueue import WaitQueue
from sim.trace import Cause, TaskKind, WarningEvent

Body = Callable[[Task], Steps]
RunBlock = Callable[[Task, p.Block], Steps]
Finalizer = Callable[[Task], Steps]


class Processes:
    def __init__(
        self,
        env: Clock,
        scheduler: Scheduler,
        scenario: p.Scenario,
        run_block: RunBlock,
    ) -> None:
        self.env = env
        self.scheduler = scheduler
        self.scenario = scenario
        self.run_block = run_block
        self.by_name: dict[str, SimProcess] = {}
        self.threads: dict[str, Task] = {}
        self._task_names: set[str] = set()
        self._seq = 0
        # Finalizers per process, run at exit by priority as CPython's util.Finalize.
        self.finalizers: dict[int, list[tuple[int, Finalizer]]] = {}

    # --- creating -------------------------------------------------------------

    def _unique(self, name: str) -> str:
        """Task names are unique in a trace; a second process of the same name
        (a spawn inside a repeat) gets `#2`, `#3`, ..."""
        candidate, n = name, 1
        while candidate in self._task_names:
            n += 1
            candidate = f"{name}#{n}"
        self._task_names.add(candidate)
        return candidate

    def _new_process(
        self, name: str, parent: SimProcess | None, daemon: bool, priority: int, target: str | None
    ) -> SimProcess:
        proc = SimProcess(name, parent, daemon, priority, target, self.env.event())
        interval = self.scenario.machine.costs.gil_switch_interval_ns
        proc.gil = Gil(self.scheduler, WaitQueue(self.env, self.scheduler, futex=True), interval)
        return proc

    def _new_task(
        self,
        name: str,
        kind: TaskKind,
        proc: SimProcess,
        priority: int,
        program: str,
        daemon: bool = False,
    ) -> Task:
        self._seq += 1
        return Task(
            name,
            kind,
            proc,
            self._seq,
            priority,
            p.task_rng(self.scenario.seed, name),
            self.env.event(),
            daemon,
            program,
        )

    def start_main(self, body: Body) -> SimProcess:
        proc = self._new_process("main", None, False, 0, None)
        proc.started = True
        self.by_name["main"] = proc
        task = self._new_task(self._unique("main"), "main", proc, 0, MAIN)
        proc.main_task = task
        self.scheduler.announce(task, None)
        task.sim_process = self.env.process(self._task_main(task, body))
        return proc

    def create(
        self, name: str, parent: SimProcess, daemon: bool, priority: int, target: str | None
    ) -> SimProcess:
        proc = self._new_process(name, parent, daemon, priority, target)
        self.by_name[name] = proc
        return proc

    def start(
        self,
        parent: Task,
        proc: SimProcess,
        body: Body,
        kind: TaskKind = "child",
        arrive_at: int | None = None,
        program: str = "",
    ) -> Steps:
        """Process.start() called by `parent`: the parent pays the call, in which
        the child comes to exist (the fork) `start_return` before the call ends;
        the child runs its start-up (a CPU cost of the start method) before its
        target; `arrive_at` holds the target back until then (a scheduling exercise)."""
        if proc.started:
            yield from self.scheduler.work(parent, 0)
            raise ProgramError("AssertionError", "cannot start a process twice")
        if parent.process.daemon:
            yield from self.scheduler.work(parent, 0)
            raise ProgramError(
                "AssertionError", "daemonic processes are not allowed to have children"
            )
        costs = self.scenario.machine.costs
        first = 0 if parent.process.popen_imported else costs.first_start_ns
        after_fork = min(costs.start_return_ns, costs.start_call_ns)
        yield from self.scheduler.work(parent, costs.start_call_ns - after_fork + first)
        parent.process.popen_imported = True
        proc.popen_imported = self.scenario.machine.start_method == "fork"
        proc.started = True
        parent.process.children.append(proc)
        task = self._new_task(self._unique(proc.name), kind, proc, proc.priority, program)
        proc.main_task = task
        self.scheduler.announce(task, parent.name)
        self.scheduler.place_fork(task, parent)
        task.sim_process = self.env.process(self._task_main(task, body, arrive_at))
        yield from self.scheduler.work(parent, after_fork)

    def new_thread(
        self,
        proc: SimProcess,
        name: str,
        kind: TaskKind,
        body: Body,
        daemon: bool,
        parent: str,
        program: str,
    ) -> Task:
        """A thread of `proc`, ready at once."""
        full_name = self._unique(f"{proc.name}.{name}")
        task = self._new_task(full_name, kind, proc, proc.priority, program, daemon)
        proc.threads.append(task)
        self.scheduler.announce(task, parent)
        task.sim_process = self.env.process(self._task_main(task, body))
        return task

    def at_exit(self, proc: SimProcess, priority: int, finalizer: Finalizer) -> None:
        """Run `finalizer` (in the exiting task) when `proc` exits; higher priority first."""
        self.finalizers.setdefault(id(proc), []).append((priority, finalizer))

    # --- running --------------------------------------------------------------

    def _task_main(self, task: Task, body: Body, arrive_at: int | None = None) -> Steps:
        """The life of a task: a child process's start-up, its target, then, for a
        process's main thread, CPython's exit sequence and a child's exit. One
        generator for processes and threads, so each resume passes through as few
        frames as possible (see Interpreter.run_block)."""
        proc = task.process
        is_process = task is proc.main_task
        is_child = is_process and proc.parent is not None
        method = self.scenario.machine.start_method
        costs = self.scenario.machine.costs
        try:
            if is_child:
                yield from self._start_up(task, costs.start_cpu_ns[method], arrive_at)
            code: int = 0
            cause: Cause = "returned"
            try:
                yield from body(task)
            except ProgramExit as exit_:
                code, cause = exit_.code, "exit"
            except ProgramError as error:
                where = f" at {error.loc}" if error.loc else ""
                ending = "exit code 1" if is_process else "the thread ends"
                text = f"{error}{where} ({ending})"
                self.scheduler.sink.emit(WarningEvent(self.env.now, task.name, "exception", text))
                code, cause = 1, "exception"
            exit_cpu = costs.exit_cpu_ns[method] if is_child else 0
            if is_process and proc.parent is None:
                between = min(costs.exit_function_ns, costs.shutdown_ns)
                yield from self.scheduler.work(task, costs.shutdown_ns - between)
                yield from self._join_threads(task)
                yield from self._exit_function(task, between)
            elif is_process:
                between = min(costs.exit_function_ns, exit_cpu)
                exit_cpu -= between
                yield from self._exit_function(task, between)
                yield from self._join_threads(task)
            yield from self.scheduler.work(task, exit_cpu)
        except simpy.Interrupt as interrupt:
            killed = interrupt.cause
            if not isinstance(killed, Killed):
                raise
            if killed.teardown:  # the kernel tears the process down, then it is gone
                yield from self.scheduler.work(task, costs.kill_exit_ns)
                self.scheduler.terminate(task, killed.exit_code, killed.cause)
                proc.ended.succeed()
            return  # otherwise whoever killed it recorded its end
        if is_process:
            self._finish(proc, code, cause)
        else:
            # A thread has no exit code; an exception ends only the thread.
            self.scheduler.terminate(task, None, cause)

    def _start_up(self, task: Task, cpu_ns: int, arrive_at: int | None) -> Steps:
        """A new process runs `cpu_ns` before its target; held back until
        `arrive_at`, it sleeps (blocked `arrival`) once started, or stays `new`
        if starting costs nothing."""
        if cpu_ns > 0:
            yield from self.scheduler.work(task, cpu_ns)
        wait = 0 if arrive_at is None else arrive_at - self.env.now
        if wait > 0 and cpu_ns > 0:
            yield from self.scheduler.block(task, "arrival", self.env.timeout(wait))
        elif wait > 0:
            yield self.env.timeout(wait)

    def _join_threads(self, task: Task) -> Steps:
        wait_cost = self.scenario.machine.costs.thread_join_wait_ns
        for thread in task.process.threads:
            if thread.alive and not thread.daemon:
                yield from self._join_one(
                    task, thread.name, thread.ended, {thread}, None, wait_cost
                )

    def _exit_function(self, task: Task, between_ns: int) -> Steps:
        """multiprocessing's exit function: the finalizers of priority 0 and up
        (a Queue's close, which wakes its feeder), `between_ns` of its own work
        (`active_children()`), daemon children killed and the others joined,
        then the other finalizers (the join of a Queue's feeder). A feeder woken
        while its process still runs finds no CPU free as often as not."""
        proc = task.process
        finalizers = sorted(self.finalizers.pop(id(proc), []), key=lambda f: -f[0])
        for priority, finalizer in finalizers:
            if priority >= 0:
                yield from finalizer(task)
        if between_ns:
            yield from self.scheduler.work(task, between_ns)
        for child in proc.children:
            if child.alive and child.daemon:
                yield from self.scheduler.work(task, 0)
                self.kill_process(child, "killed_as_daemon")
        wait_cost = self.scenario.machine.costs.join_wait_ns
        for child in proc.children:
            if child.started and not child.ended.triggered:  # a daemon may be dying still
                yield from self._join_one(
                    task, child.name, child.ended, set(child.live_tasks()), None, wait_cost
                )
        for priority, finalizer in finalizers:
            if priority < 0:
                yield from finalizer(task)

    def _finish(self, proc: SimProcess, code: int, cause: Cause) -> None:
        """The process's main task exits: daemon threads die with it."""
        for thread in proc.threads:
            if thread.alive:
                self.scheduler.kill(thread, None, "killed_as_daemon")
        proc.exit_code = code
        assert proc.main_task is not None
        self.scheduler.terminate(proc.main_task, code, cause)
        proc.ended.succeed()

    def kill_process(self, proc: SimProcess, cause: Cause, exit_code: int = -15) -> None:
        """SIGTERM: the process's code stops at once and no exit sequence runs (so
        its own children are orphaned and go on, as on Linux); its threads end,
        and its main thread runs the kernel's teardown of the process
        (`kill_exit`) before the process has exited."""
        if not proc.alive:
            return
        proc.exit_code = exit_code
        self.finalizers.pop(id(proc), None)
        for thread in proc.threads:
            self.scheduler.kill(thread, None, cause)
        main = proc.main_task
        torn_down = self.scenario.machine.costs.kill_exit_ns > 0
        if main is not None and torn_down and self.scheduler.doom(main, exit_code, cause):
            return  # it ends, and `ended` succeeds, once torn down
        if main is not None:
            self.scheduler.kill(main, exit_code, cause)
        proc.ended.succeed()

    def _wait_for(
        self,
        task: Task,
        reason: str,
        event: simpy.Event,
        waits_for: set[Task],
        timeout: int | None = None,
    ) -> Steps:
        if event.triggered:
            return
        yield from self.scheduler.work(task, 0)
        until = event if timeout is None else self.env.any_of([event, self.env.timeout(timeout)])
        yield from self.scheduler.block(
            task, reason, until, lambda: {t for t in waits_for if t.alive}
        )

    # --- the ops ----------------------------------------------------------------

    def spawn(self, task: Task, op: p.Spawn) -> Steps:
        proc = self.create(op.name, task.process, op.daemon, op.priority, op.target)
        if op.start:
            body = self._target_body(op.target)
            yield from self.start(task, proc, body, arrive_at=op.arrive_at, program=op.target)
        else:
            yield from self.scheduler.work(task, 0)

    def _target_body(self, target: str) -> Body:
        body = self.scenario.functions[target].body
        return lambda t: self.run_block(t, body)

    def start_op(self, task: Task, op: p.Start) -> Steps:
        proc = self.by_name[op.name]
        assert proc.target is not None
        yield from self.start(task, proc, self._target_body(proc.target), program=proc.target)

    def join(self, task: Task, op: p.Join) -> Steps:
        timeout = p.draw(op.timeout, task.rng) if op.timeout is not None else None
        costs = self.scenario.machine.costs
        for name in op.names:
            thread = self.threads.get(name)
            if thread is not None:
                yield from self._join_one(
                    task, name, thread.ended, {thread}, timeout, costs.thread_join_wait_ns
                )
                continue
            proc = self.by_name.get(name)
            if proc is None or not proc.started:
                yield from self.scheduler.work(task, 0)
                raise ProgramError("AssertionError", f"can only join a started process ({name})")
            if proc is task.process:
                yield from self.scheduler.work(task, 0)
                raise ProgramError("AssertionError", "can only join a child process")
            yield from self._join_one(
                task, name, proc.ended, set(proc.live_tasks()), timeout, costs.join_wait_ns
            )
        yield from self.scheduler.work(task, 0)

    def _join_one(
        self,
        task: Task,
        name: str,
        ended: simpy.Event,
        waits_for: set[Task],
        timeout: int | None,
        wait_cost_ns: int,
    ) -> Steps:
        """One join (a `join` step's, or one the exit sequence makes): a join
        that waited CALL_COLD_AFTER_NS or more runs `wait_cost_ns` once it
        returns (`Costs.join_wait_ns`)."""
        since = self.env.now
        yield from self._wait_for(task, f"join {name}", ended, waits_for, timeout)
        if self.env.now - since >= p.CALL_COLD_AFTER_NS:
            yield from self.scheduler.work(task, wait_cost_ns)

    def terminate(self, task: Task, op: p.Terminate) -> Steps:
        yield from self.scheduler.work(task, 0)
        proc = self.by_name.get(op.name)
        if proc is None or not proc.started:
            raise ProgramError(
                "AttributeError", f"terminate() of {op.name}, which was never started"
            )
        if proc is task.process:
            raise ProgramError("RuntimeError", "a process terminating itself is not modelled")
        self.kill_process(proc, "terminated")

    def start_thread(self, task: Task, op: p.StartThread) -> Steps:
        """CPython's `Thread.start()`: the new thread is made, then the starting
        thread waits for it to say it has started, which releases the GIL. The
        new thread, runnable at that instant, takes the GIL and runs on into its
        target holding it; the starting thread, woken, waits for the GIL like
        any thread (a switch interval, if the new thread computes)."""
        yield from self.scheduler.work(task, 0)
        body = self._target_body(op.target)
        yield from self.scheduler.work(task, self.thread_start_ns(task))
        started = self.env.event()

        def run(thread: Task) -> Steps:
            yield from self.scheduler.work(thread, 0)  # on a CPU, holding the GIL
            started.succeed()
            yield from body(thread)

        thread = self.new_thread(
            task.process, op.name, "thread", run, op.daemon, task.name, op.target
        )
        self.threads[op.name] = thread
        gil = task.process.gil
        if gil is not None and gil.holder is task:
            gil.heir = thread
        # Real traces name this wait `gil` too: the kernel sees a futex wait
        # while a sibling thread runs, holding the GIL.
        yield from self.scheduler.block(
            task, "gil", started, lambda: {thread} if thread.alive else set()
        )

    def thread_start_ns(self, task: Task) -> int:
        """What `Thread.start()` costs `task`: `thread_start`, and `first_thread_start`
        more for its process's first (the new thread's code and the process's
        threading state touched for the first time)."""
        costs = self.scenario.machine.costs
        first = task.process.first_call("thread_start")
        return costs.thread_start_ns + (costs.first_thread_start_ns if first else 0)

    def is_alive(self, name: str) -> bool:
        thread = self.threads.get(name)
        if thread is not None:
            return thread.alive
        proc = self.by_name.get(name)
        return proc is not None and proc.alive
