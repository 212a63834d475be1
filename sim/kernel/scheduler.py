"""CPUs, the ready queue and the moves of tasks between states.

The policy decides which ready task runs and for how long; this module carries
the decisions out on the SimPy clock and records every state change. A task's
program calls `work(task, ns)` to use the CPU (waiting to be dispatched first when
it is not running) and `block(task, reason, event)` to give the CPU up until an
event; preemption and kills reach it as SimPy interrupts with a typed cause.

The `linux` policy's queue is split by CPU, simplified: a ready task waits for
the CPU it last ran on for up to the balance delay (see `_may_run_on`).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from functools import partial
from typing import Any

import simpy

from sim.kernel.clock import Clock, Steps
from sim.kernel.gil import DropGil
from sim.kernel.tasks import Killed, Preempted, Task
from sim.policies import Policy, Why
from sim.trace import Cause, StateChanged, TaskCreated, TaskState, TraceSink

# The kernel's timer tick (CONFIG_HZ=250 on this machine kind: a CPU-bound loop
# that never enters the kernel runs 3.9-4.0 ms, calibration's
# slice_without_system_calls_ns). Ticks fall on its multiples from time 0.
LINUX_TICK_NS = 4_000_000


def must_wait(task: Task) -> bool:
    """Whether `task` must wait before it can execute: for a CPU, or for its
    process's GIL (or to hand the GIL over, when asked to drop it)."""
    gil = task.process.gil
    return task.state != "running" or (
        gil is not None and (gil.holder is not task or gil.drop_requested)
    )


class Cpu:
    __slots__ = ("idle_since", "index", "last", "switching", "task")

    def __init__(self, index: int) -> None:
        self.index = index
        self.task: Task | None = None  # running, or being switched to
        self.last: Task | None = None  # the task that ran last (no switch cost to resume it)
        self.switching = False
        self.idle_since: int | None = 0  # None while a task has it


class Scheduler:
    def __init__(
        self,
        env: Clock,
        policy: Policy[Any],
        cpus: int,
        context_switch_ns: int,
        sink: TraceSink,
        wake_up_ns: int = 0,
    ) -> None:
        self.env = env
        self.policy = policy
        # Most policies ignore the CPU time used: skip the call on the hot path.
        self._policy_charges = type(policy).charge is not Policy.charge
        self.sink = sink
        self.cpus = [Cpu(i) for i in range(cpus)]
        self._idle: list[int] = list(range(cpus))  # sorted: the lowest free CPU is used first
        self.context_switch_ns = context_switch_ns
        self.wake_up_ns = wake_up_ns
        self.tasks: list[Task] = []
        self._dispatch_pending = False
        self._arrivals: list[Task] = []  # made ready this instant: may preempt
        # The linux policy's per-CPU queues: a ready task waits for the CPU it ran
        # on last unless a CPU is idle when it becomes ready, or it has not run
        # for balance_delay (see _may_run_on); 0: one queue for all CPUs.
        linux = policy.name == "linux"
        self._balance_delay = policy.settings.linux_balance_delay_ns if linux else 0
        # Linux notices that a slice ran out only when it next accounts the task's
        # time: at the timer tick, at a wake-up on its CPU, or when the task reads
        # its own CPU clock (a compute step does, all the time). Other work runs
        # on past the slice's end until one of those. 0: slices end on time.
        self._tick_ns = LINUX_TICK_NS if linux else 0
        self._balance_at: int | None = None  # when a waiting task may next move
        self.last_change = 0  # when a task last changed state: the run's end

    # --- recording ------------------------------------------------------------

    def announce(self, task: Task, parent: str | None) -> None:
        """Record that `task` exists (state new)."""
        self.tasks.append(task)
        self.sink.emit(
            TaskCreated(
                self.env.now,
                task.name,
                task.kind,
                task.process.name,
                parent,
                task.daemon or (task.kind != "thread" and task.process.daemon),
            )
        )

    def _set(
        self,
        task: Task,
        state: TaskState,
        reason: str | None = None,
        exit_code: int | None = None,
        cause: Cause | None = None,
    ) -> None:
        task.state = state
        self.last_change = self.env.now
        cpu = task.cpu.index if state == "running" and task.cpu is not None else None
        self.sink.emit(StateChanged(self.env.now, task.name, state, cpu, reason, exit_code, cause))

    # --- the ready queue and dispatch -----------------------------------------

    def running(self) -> list[Task]:
        return [c.task for c in self.cpus if c.task is not None and c.task.state == "running"]

    def make_ready(self, task: Task, why: Why) -> None:
        """`task` can run: queue it. At the end of this instant an idle CPU takes
        it, or it preempts a running task if the policy says so."""
        self._set(task, "ready")
        task.queued_at = self.env.now
        self.policy.add(task, self.env.now, why)
        if why in ("new", "wake"):
            self._arrivals.append(task)
        if not self._dispatch_pending:  # _dispatch_soon, inlined: once per wake
            self._dispatch_pending = True
            self.env.at_end_of_instant(self._dispatch)

    def _refill_soon(self) -> None:
        """A CPU was freed: give it out at the end of this instant, if any task
        waits for one (a task made ready later at this instant asks by itself)."""
        if len(self.policy):
            self._dispatch_soon()

    def _dispatch_soon(self) -> None:
        """Decide once everything else that happens at this instant has happened,
        so that tasks arriving together are all in the queue when the policy
        chooses (three jobs arriving at 0 under SJF: the shortest runs first), and
        a task that an idle CPU will take preempts nobody."""
        if not self._dispatch_pending:
            self._dispatch_pending = True
            self.env.at_end_of_instant(self._dispatch)

    def _dispatch(self) -> None:
        self._dispatch_pending = False
        self._fill_idle_cpus()
        arrivals, self._arrivals = self._arrivals, []
        for task in arrivals:
            if task.state != "ready" or task.cpu is not None:
                continue
            running = self.running()
            if self._balance_delay and task.last_cpu is not None:
                # It waits in its last CPU's queue: only that CPU's task may yield.
                running = [t for t in running if t.cpu is not None and t.cpu.index == task.last_cpu]
            for other in running:
                self.account(other)
            # Under linux a wake-up accounts the time of the task running there:
            # one past its slice's end gives way.
            overdue = (
                next((t for t in running if t.slice_left is not None and t.slice_left <= 0), None)
                if self._tick_ns
                else None
            )
            victim = overdue or self.policy.victim(task, running)
            if victim is not None:
                self._preempt(victim)
                self._fill_idle_cpus()

    def _fill_idle_cpus(self) -> None:
        if self._balance_delay:
            self._fill_idle_cpus_per_cpu()
            return
        while self._idle and len(self.policy):
            task = self.policy.pick(self.env.now)
            if task is None:
                return
            self._start_on(self.cpus[self._idle.pop(0)], task)

    def place_fork(self, child: Task, parent: Task) -> None:
        """Linux places a forked child on the idlest CPU, and while every CPU is
        busy that is another than its parent's (which runs the parent): with
        per-CPU queues the child waits for that CPU unless one is idle when it
        becomes ready, and may preempt only the task there."""
        if not self._balance_delay or parent.cpu is None or len(self.cpus) < 2:
            return
        child.last_cpu = next(c.index for c in self.cpus if c is not parent.cpu)
        child.left_at = self.env.now

    def _may_run_on(self, index: int, now: int, task: Task) -> bool:
        """Linux's placement, simplified: a task waking up (or new) takes an
        idle CPU if there is one then; otherwise it waits in the queue of the
        CPU it ran on last, and another CPU takes it only once it has not run
        for balance_delay (an idle CPU does not pull a cache-hot task, and the
        kernel balances its queues at the timer tick). So does a task taken off
        its CPU (preempted, its slice over), whatever idles: the kernel chooses
        a CPU for a task only as it wakes."""
        if task.handed_at == now and task.handed_cpu == index and len(self._idle) > 1:
            return False  # another idle CPU takes it (see Gil.release)
        if task.futex_woken_at == now and task.last_cpu != index:
            cpu = self.cpus[index]
            if (
                cpu.idle_since == now
                and cpu.last is not None
                and cpu.last.sim_process is task.futex_waker
                and now - task.left_at < self._balance_delay
            ):
                # Its waker's, freed after the wake, so busy when the task was
                # placed; going idle, that CPU does not pull a cache-hot task.
                return False
        return (
            task.last_cpu is None
            or task.last_cpu == index
            or task.queued_at == now
            or now - task.left_at >= self._balance_delay
        )

    def _fill_idle_cpus_per_cpu(self) -> None:
        now = self.env.now
        for index in list(self._idle):
            if not len(self.policy):
                return
            task = self.policy.pick_where(now, partial(self._may_run_on, index, now))
            if task is not None:
                self._idle.remove(index)
                self._start_on(self.cpus[index], task)
        if self._idle and len(self.policy):
            # Tasks wait for their busy CPUs while another idles: look again
            # when the first of them may move.
            at = min(t.left_at for t in self.policy.ordered()) + self._balance_delay
            if self._balance_at is None or at < self._balance_at or self._balance_at <= now:
                self._balance_at = at
                self.env.timeout(at - now).callbacks.append(lambda _e: self._dispatch_soon())

    def _start_on(self, cpu: Cpu, task: Task) -> None:
        cpu.task = task
        task.cpu = cpu
        delay = 0
        if self.context_switch_ns and cpu.last is not None and cpu.last is not task:
            delay = self.context_switch_ns
        if cpu.idle_since is not None and cpu.idle_since < self.env.now:
            delay += self.wake_up_ns  # a CPU idle before this instant must be woken first
        cpu.idle_since = None
        if delay:
            # The CPU is busy switching; the task stays ready until the switch is done.
            cpu.switching = True
            self.env.timeout(delay).callbacks.append(lambda _event: self._switched(cpu, task))
        else:
            self._run(task)

    def _switched(self, cpu: Cpu, task: Task) -> None:
        if cpu.task is task and cpu.switching:
            cpu.switching = False
            self._run(task)

    def _run(self, task: Task) -> None:
        self._set(task, "running")
        task.slice_left = self.policy.time_slice(task, self.env.now)
        task.charged_at = self.env.now
        if task.wake is not None:
            self.env.fire(task.wake)

    def _free(self, task: Task) -> None:
        """Take `task` off its CPU (it blocks, ends or is preempted)."""
        cpu = task.cpu
        if cpu is None:
            return
        task.cpu = None
        task.last_cpu, task.left_at = cpu.index, self.env.now
        cpu.task = None
        cpu.switching = False
        cpu.last = task
        cpu.idle_since = self.env.now
        bisect.insort(self._idle, cpu.index)

    def account(self, task: Task) -> None:
        """Charge the CPU time `task` used since it was last charged."""
        now = self.env.now
        ran = now - task.charged_at
        if ran <= 0:
            return
        task.charged_at = now
        task.remaining -= ran
        task.burst_ns = task.remaining
        if task.slice_left is not None:
            task.slice_left -= ran
        if self._policy_charges:
            self.policy.charge(task, ran)

    def _preempt(self, task: Task) -> None:
        """Take the CPU from a running task; it goes back to the ready queue."""
        self.account(task)
        self._free(task)
        self._set(task, "ready")
        self.policy.add(task, self.env.now, "preempted")
        if task.in_timer and task.sim_process is not None:
            task.sim_process.interrupt(Preempted())

    def _expire(self, task: Task) -> None:
        """The task's time slice ran out: it goes back to the queue, and keeps the CPU
        without a switch when the policy picks it again."""
        cpu = task.cpu
        assert cpu is not None
        now = self.env.now
        self.policy.add(task, now, "expired")
        if self._balance_delay:
            task.last_cpu, task.left_at = cpu.index, now
            chosen = self.policy.pick_where(now, partial(self._may_run_on, cpu.index, now))
        else:
            chosen = self.policy.pick(now)
        if chosen is task:
            task.slice_left = self.policy.time_slice(task, now)
            return
        assert chosen is not None
        task.cpu = None
        cpu.last = task
        self._set(task, "ready")
        self._start_on(cpu, chosen)

    # --- what programs call ---------------------------------------------------

    def work(self, task: Task, amount: int, reads_clock: bool = False) -> Steps:
        """Use `amount` ns of CPU time (0: just get the CPU), waiting to be
        dispatched first when the task is not running, and for its process's GIL.
        `reads_clock`: the work reads the task's CPU clock all along (a compute
        step), so the kernel notices at once when its slice runs out."""
        if amount <= 0:
            if must_wait(task):
                yield from self._get_cpu_and_gil(task, 0)
            return
        timeout = self.quick_work(task, amount, reads_clock)
        if timeout is not None:
            # The common case, without the generator of `_use_cpu`.
            try:
                yield timeout
            except simpy.Interrupt as interrupt:
                yield from self.resume_work(task, interrupt)
            else:
                task.in_timer = False
                self.account(task)
            return
        if must_wait(task):
            yield from self._get_cpu_and_gil(task, amount)
        task.remaining = amount
        yield from self._use_cpu(task)

    def spin(self, task: Task, turn_ns: int) -> Steps:
        """One turn of a loop whose system calls return at once (they release the
        GIL and take it straight back): it runs `turn_ns` of CPU time holding
        the GIL, or less if another thread forces it to drop the GIL, then lets
        a waiting thread have it, which wins it on one of those calls sooner or
        later. The task waits for the GIL again at its next step."""
        if must_wait(task):
            yield from self._get_cpu_and_gil(task, turn_ns)
        gil = task.process.gil
        task.remaining = turn_ns
        task.reads_clock = False
        while task.remaining > 0 and not (gil is not None and gil.drop_requested):
            left = self._slice_limit(task)
            if left is not None and left <= 0:
                self._expire(task)
                yield from self._await_cpu(task)
                continue
            run = task.remaining if left is None or left > task.remaining else left
            task.in_timer = True
            try:
                yield self.env.cpu_timeout(run)
            except simpy.Interrupt as interrupt:
                task.in_timer = False
                self.account(task)
                if not isinstance(interrupt.cause, DropGil):
                    yield from self._after_interrupt(task, interrupt)
                continue
            task.in_timer = False
            self.account(task)
            if self._slice_over(task):
                self._expire(task)
                yield from self._await_cpu(task)
        task.remaining = 0
        if gil is not None:
            gil.release(task)

    def syscall(self, task: Task) -> Steps:
        """A system call that returns at once (a pipe write with room, a read of
        data already there, a print). CPython releases the GIL around it and the
        caller takes it straight back, unless a thread waiting for it is faster:
        the thread a forced switch has just taken it from, which waits again at
        once and wins it back; the caller then waits for the GIL again."""
        gil = task.process.gil
        if gil is not None and gil.hot is not None and gil.hand_back(task):
            self.account(task)
            yield from self._hold_gil(task, 0)

    def _get_cpu_and_gil(self, task: Task, burst: int) -> Steps:
        """Be running and hold the process's GIL; `burst` is what the task will
        run next (the policy may look at it). Leaves `task.remaining` alone: a
        computation the GIL interrupted carries on afterwards."""
        if task.state != "running":
            yield from self._get_cpu(task, burst)
        gil = task.process.gil
        if (
            gil is not None
            and (gil.holder is not task or gil.drop_requested)
            and not gil.try_acquire(task)
        ):
            yield from self._hold_gil(task, burst)

    def quick_work(
        self, task: Task, amount: int, reads_clock: bool = False
    ) -> simpy.Timeout | None:
        """The common case of `work`, without a generator: when the task runs,
        holds its GIL and its slice outlasts `amount`, nothing needs deciding, so
        the caller can yield this timeout itself, then clear `task.in_timer` and
        call `account` (or `resume_work` with the interrupt if one came).
        None: use `work`."""
        task.reads_clock = reads_clock
        if task.state != "running" or amount <= 0:
            return None
        gil = task.process.gil
        if gil is not None and (gil.holder is not task or gil.drop_requested):
            return None
        left = self._slice_limit(task)
        if left is not None and left <= amount:
            return None
        task.remaining = amount
        task.in_timer = True
        return self.env.cpu_timeout(amount)

    def resume_work(self, task: Task, interrupt: simpy.Interrupt) -> Steps:
        """Carry on with the work an interrupt cut short."""
        task.in_timer = False
        yield from self._after_interrupt(task, interrupt)
        yield from self._use_cpu(task)

    def _after_interrupt(self, task: Task, interrupt: simpy.Interrupt) -> Steps:
        if isinstance(interrupt.cause, Preempted):
            yield from self._await_cpu(task)
        elif isinstance(interrupt.cause, DropGil):
            self.account(task)
            yield from self._hold_gil(task, task.remaining)
        else:
            raise interrupt

    def _use_cpu(self, task: Task) -> Steps:
        env = self.env
        while task.remaining > 0:
            left = self._slice_limit(task)
            if left is not None and left <= 0:
                self._expire(task)
                yield from self._await_cpu(task)
                continue
            run = task.remaining if left is None or left > task.remaining else left
            task.in_timer = True
            try:
                yield env.cpu_timeout(run)
            except simpy.Interrupt as interrupt:
                task.in_timer = False
                yield from self._after_interrupt(task, interrupt)
                continue
            task.in_timer = False
            self.account(task)
            if self._slice_over(task):
                self._expire(task)
                if task.remaining > 0:
                    yield from self._await_cpu(task)

    def _slice_limit(self, task: Task) -> int | None:
        """How long `task` may run on before the end of its slice is noticed:
        its slice left; under linux, for work that does not read its CPU clock,
        until the first tick at or after that end (0: noticed now)."""
        left = task.slice_left
        if left is None or task.reads_clock or not self._tick_ns:
            return left
        now, tick = self.env.now, self._tick_ns
        return -(-max(now + left, now) // tick) * tick - now

    def _slice_over(self, task: Task) -> bool:
        """The running task's slice has run out, and the kernel has noticed."""
        left = self._slice_limit(task)
        return left is not None and left <= 0

    def _get_cpu(self, task: Task, burst: int) -> Steps:
        task.burst_ns = burst
        if task.state != "ready":
            self.make_ready(task, "new" if task.state == "new" else "wake")
        yield from self._await_cpu(task)

    def _hold_gil(self, task: Task, burst: int) -> Steps:
        """Get the GIL (dropping it first if asked to), then the CPU again if the
        wait for the GIL took it away."""
        gil = task.process.gil
        assert gil is not None
        if gil.holder is task and gil.drop_requested:
            gil.release(task)
        yield from gil.acquire(task)
        if task.state != "running":
            yield from self._get_cpu(task, burst)

    def _await_cpu(self, task: Task) -> Steps:
        while task.state != "running":
            task.wake = simpy.Event(self.env)
            try:
                yield task.wake
            except simpy.Interrupt as interrupt:
                if not isinstance(interrupt.cause, Preempted | DropGil):
                    raise

    def block(
        self,
        task: Task,
        reason: str,
        until: simpy.Event,
        waits_for: Callable[[], set[Task]] | None = None,
        cancel: Callable[[], None] | None = None,
    ) -> Steps:
        """Give the CPU up until `until` fires; returns its value once the task
        runs again: a woken task does nothing (takes no item, frees no slot,
        records no message) before it is back on a CPU. `cancel` undoes the wait
        if the task is killed meanwhile."""
        if task.state != "running":
            # Calling anything takes the CPU, even right after waking from a wait.
            yield from self._get_cpu_and_gil(task, 0)
        self.account(task)
        self._free(task)
        if task.process.gil is not None:
            task.process.gil.release(task)
        task.blocked_reason = reason
        task.waits_for = waits_for
        self._set(task, "blocked", reason=reason)
        self._refill_soon()
        # The task's program resumes only once it runs again: `until` makes it
        # ready through a callback, which runs exactly where the program would
        # have been resumed, so a wake costs one pass through the program's
        # generators instead of two.
        wakeup = partial(self._woken, task)
        if until.callbacks is None:
            wakeup(until)  # already processed: ready again at once
        else:
            until.callbacks.append(wakeup)
        try:
            yield from self._await_cpu(task)
        except simpy.Interrupt:
            if until.callbacks is not None and wakeup in until.callbacks:
                # Killed while still blocked.
                until.callbacks.remove(wakeup)
                task.blocked_reason = None
                task.waits_for = None
                if cancel is not None:
                    cancel()
            raise
        gil = task.process.gil
        if (
            gil is not None
            and (gil.holder is not task or gil.drop_requested)
            and not gil.try_acquire(task)
        ):
            yield from self._hold_gil(task, 0)
        return until.value

    def _woken(self, task: Task, _until: simpy.Event) -> None:
        """The event a blocked task waited for has fired: it waits for a CPU."""
        task.blocked_reason = None
        task.waits_for = None
        task.burst_ns = 0
        self.make_ready(task, "wake")

    def terminate(self, task: Task, exit_code: int | None, cause: Cause) -> None:
        """The task has ended by itself (it is running: it executed its last step)."""
        self.account(task)
        self._free(task)
        if task.process.gil is not None:
            task.process.gil.release(task)
        self._set(task, "terminated", exit_code=exit_code, cause=cause)
        task.ended.succeed()
        self._refill_soon()

    def doom(self, task: Task, exit_code: int, cause: Cause) -> bool:
        """Unwind a task's program because its process was killed, leaving it to
        run the process's teardown before it ends (see `Killed.teardown`).
        False if its program cannot be interrupted now: `kill` it instead."""
        process = task.sim_process
        if process is None or not process.is_alive or process is self.env.active_process:
            return False
        if task.state == "running":
            self.account(task)
        process.interrupt(Killed(cause, exit_code, teardown=True))
        return True

    def kill(self, task: Task, exit_code: int | None, cause: Cause) -> None:
        """End a task from outside, whatever state it is in, and unwind its program."""
        if not task.alive:
            return
        if task.state == "running":
            self.account(task)
        if task.state == "ready" and task.cpu is None and task in self.policy.ordered():
            self.policy.remove(task)
        self._free(task)
        if task.process.gil is not None:
            task.process.gil.release(task)
        self._set(task, "terminated", exit_code=exit_code, cause=cause)
        task.ended.succeed()
        process = task.sim_process
        if process is not None and process.is_alive and process is not self.env.active_process:
            process.interrupt(Killed(cause, exit_code if exit_code is not None else 0))
        self._refill_soon()
