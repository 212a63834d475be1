"""multiprocessing.Queue, JoinableQueue and SimpleQueue.

A Queue is an OS pipe, a reader lock, a writer lock and, when bounded, a
semaphore of `maxsize` (Lib/multiprocessing/queues.py). `put` waits for room
only on the semaphore; then it appends to a buffer in the putting process, under the
lock of the buffer's condition, and wakes that process's feeder thread
(started at its first put), which pickles the item and writes it to the pipe
under the writer lock, blocking while the pipe is full. So `put` returns at
once and the item reaches readers a little later; how the condition's lock
passes between a producer and its feeder is `ConditionLock`'s. `get`
takes the reader lock, blocks reading the pipe, releases the semaphore and
unpickles. At exit a process closes its feeders (finalizer priority 10) and
joins them (priority -5): data still unwritten holds the process up.

SimpleQueue (used inside Pool) has no feeder: `put` pickles and writes in the
caller under the writer lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from sim import program as p
from sim.kernel.channel import Channel, Message
from sim.kernel.clock import Steps
from sim.kernel.runtime import Runtime
from sim.kernel.scheduler import must_wait
from sim.kernel.tasks import ProgramError, SimProcess, Task
from sim.kernel.waitqueue import WaitQueue
from sim.trace import MessageEvent, WarningEvent


class Mutex:
    """A lock between processes that the model takes without a scenario name
    (a queue's reader and writer locks)."""

    def __init__(self, rt: Runtime) -> None:
        self.env = rt.env
        self.owner: Task | None = None
        self.waiters = WaitQueue(rt.env, rt.scheduler, futex=True)

    def try_acquire(self, task: Task) -> bool:
        """Take the lock if it is free: the common case, without a generator."""
        if self.owner is None:
            self.owner = task
            return True
        return False

    def acquire(
        self, task: Task, reason: str, timeout: int | None = None
    ) -> Generator[simpy.Event, Any, bool]:
        deadline = None if timeout is None else self.env.now + timeout
        while self.owner is not None:
            left = None if deadline is None else max(0, deadline - self.env.now)
            woken = yield from self.waiters.wait(task, reason, self._owners, left)
            if not woken:
                return False
        self.owner = task
        return True

    def _owners(self) -> set[Task]:
        return {self.owner} if self.owner is not None and self.owner.alive else set()

    def release(self) -> None:
        self.owner = None
        if self.waiters.waiting:
            self.waiters.wake_one()


class ConditionLock(Mutex):
    """The threading.Lock under a Queue's `_notempty` condition, in one process.

    CPython takes a lock with the GIL released, so a thread blocked on this one
    takes it in the kernel the moment its holder releases it, before it has the
    GIL back: the holder, carrying on with the GIL, finds it taken at its next
    acquire. `heir` takes it at its next release without having asked yet (the
    feeder thread, which blocks on it while the first put's `start()` waits for
    it to begin)."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.heir: Task | None = None

    def acquire(
        self, task: Task, reason: str, timeout: int | None = None
    ) -> Generator[simpy.Event, Any, bool]:
        """Wait until the lock is this task's: handed to it, or found free."""
        assert timeout is None, "CPython's feeder and put take it without one"
        while self.owner is not None and self.owner is not task:
            yield from self.waiters.wait(task, reason, self._owners)
        self.owner = task
        return True

    def release(self) -> None:
        heir, self.heir = self.heir, None
        if heir is not None and heir.alive and heir not in self.waiters.tasks():
            self.owner = heir
        else:
            self.owner = self.waiters.wake_one() if self.waiters.waiting else None


@dataclass(eq=False)
class Feeder:
    lock: ConditionLock
    idle: WaitQueue
    task: Task | None = None
    buffer: deque[Message] = field(default_factory=deque)
    closed: bool = False


class SimQueue:
    def __init__(self, rt: Runtime, definition: p.QueueDef) -> None:
        self.rt = rt
        self.name = definition.name
        self.joinable = definition.joinable
        self.channel = Channel(rt.env, rt.scheduler, socket=False)
        self.free_slots: int | None = definition.maxsize if definition.maxsize > 0 else None
        self.putters = WaitQueue(rt.env, rt.scheduler, futex=True)
        self.rlock = Mutex(rt)
        self.wlock = Mutex(rt)
        self.unfinished = 0
        self.joiners = WaitQueue(rt.env, rt.scheduler, futex=True)
        self.feeders: dict[int, Feeder] = {}
        rt.usage.declare(self._feeder_program, frozenset({("put", self.name)}))
        self._getters = rt.able_to(("get", self.name))
        self._writers = rt.able_to(("put", self.name))

    @property
    def _feeder_program(self) -> str:
        return f"<feeder {self.name}>"

    def put(self, task: Task, op: p.Put) -> Steps:
        rt = self.rt
        costs = rt.costs
        cost = rt.call_ns(
            task, "put", costs.first_put_ns, costs.queue_put_ns, costs.queue_put_cold_ns
        )
        yield from rt.scheduler.work(task, cost)
        if self.free_slots is not None:
            timeout = rt.timeout_of(task, op.timeout)
            while self.free_slots == 0:
                waited_from = rt.env.now
                woken = yield from self.putters.wait(
                    task, f"{self.name}.put", self._getters, timeout
                )
                if not woken:
                    rt.call_done(task)
                    yield from rt.on_timeout(task, op.on_timeout, "queue.Full")
                    return
                long_wait = rt.env.now - waited_from >= p.CALL_COLD_AFTER_NS
                yield from rt.scheduler.work(task, costs.queue_put_wait_ns if long_wait else 0)
            self.free_slots -= 1
        message = Message(rt.next_message_id(), op.size)
        rt.sink.emit(MessageEvent(rt.env.now, task.name, "put", self.name, message.msg, op.size))
        if self.joinable:
            self.unfinished += 1
        starts_feeder = id(task.process) not in self.feeders
        feeder = self._feeder_of(task)
        # `with self._notempty:` If the feeder holds the lock (it took it when this
        # thread last released it), this thread waits, the GIL goes to the
        # feeder, which lets go of the lock once it sees the buffer's items, and
        # writes them while this thread waits for the GIL: a convoy, in which
        # each put has the feeder write the items of the put before.
        yield from feeder.lock.acquire(task, f"{self.name}.notempty")
        if starts_feeder:
            # start() waits until the new thread runs, and it runs to the lock.
            yield from rt.scheduler.work(task, rt.processes.thread_start_ns(task))
            feeder.lock.heir = feeder.task
        feeder.buffer.append(message)
        feeder.idle.wake_one()  # notify(): the feeder, if it waits for items
        feeder.lock.release()
        rt.call_done(task)

    def _feeder_of(self, task: Task) -> Feeder:
        proc = task.process
        feeder = self.feeders.get(id(proc))
        if feeder is not None:
            return feeder
        rt = self.rt
        feeder = Feeder(ConditionLock(rt), WaitQueue(rt.env, rt.scheduler, futex=True))
        self.feeders[id(proc)] = feeder
        feeder.task = rt.processes.new_thread(
            proc,
            f"{self.name}.feeder",
            "feeder",
            lambda t: self._feed(t, feeder),
            True,
            task.name,
            self._feeder_program,
        )
        rt.processes.at_exit(proc, 10, lambda t: self._close_feeder(t, feeder))
        rt.processes.at_exit(proc, -5, lambda t: self._join_feeder(t, feeder))
        return feeder

    def _feed(self, task: Task, feeder: Feeder) -> Steps:
        """Queue._feed: take the lock, wait on the condition while the buffer is
        empty, let go of the lock, then write every item the buffer holds."""
        rt = self.rt
        owner = task.process
        reason = f"{self.name}.feeder"
        first = rt.costs.first_feed_ns  # the new thread's first item touches its code
        yield from rt.scheduler.work(task, 0)  # Python code: the GIL first
        while True:
            yield from feeder.lock.acquire(task, reason)
            while not feeder.buffer and not feeder.closed:
                feeder.lock.release()  # wait() lets go of it, and takes it back once woken
                yield from feeder.idle.wait(task, reason, lambda: _tasks_of(owner))
                yield from rt.scheduler.work(task, 0)
                yield from feeder.lock.acquire(task, reason)
            feeder.lock.release()
            if not feeder.buffer:  # closed, and every item written
                return
            while feeder.buffer:
                message = feeder.buffer.popleft()
                yield from rt.scheduler.work(
                    task, first + rt.costs.feeder_latency_ns + rt.pickle_ns(message.size)
                )
                first = 0
                yield from self._write(task, message)

    def _write(self, task: Task, message: Message) -> Steps:
        if not self.wlock.try_acquire(task):
            yield from self.wlock.acquire(task, f"{self.name}.wlock")
        reason = f"{self.name}.write"
        yield from self.channel.write(task, message, reason, self._getters)
        if self.channel.oversized(message):
            yield from self.channel.wait_until_taken(task, message, reason, self._getters)
        self.wlock.release()
        yield from self.rt.scheduler.syscall(task)  # the write

    def _close_feeder(self, task: Task, feeder: Feeder) -> Steps:
        """Queue._finalize_close: the sentinel, under the lock."""
        yield from self.rt.scheduler.work(task, 0)
        yield from feeder.lock.acquire(task, f"{self.name}.notempty")
        feeder.closed = True
        feeder.idle.wake_one()
        feeder.lock.release()

    def _join_feeder(self, task: Task, feeder: Feeder) -> Steps:
        thread = feeder.task
        if thread is None or not thread.alive:
            return
        yield from self.rt.scheduler.work(task, 0)
        yield from self.rt.scheduler.block(
            task, f"join {thread.name}", thread.ended, lambda: {thread} if thread.alive else set()
        )

    def get(self, task: Task, op: p.Get) -> Steps:
        rt = self.rt
        costs = rt.costs
        first = task.process.first_call("get")
        yield from rt.scheduler.work(task, costs.first_get_ns if first else 0)
        timeout = rt.timeout_of(task, op.timeout)
        started = rt.env.now
        reason = f"{self.name}.get"
        if not self.rlock.try_acquire(task) and not (
            yield from self.rlock.acquire(task, reason, timeout)
        ):
            rt.call_done(task)
            yield from rt.on_timeout(task, op.on_timeout, "queue.Empty")
            return
        left = None if timeout is None else max(0, timeout - (rt.env.now - started))
        message = yield from self.channel.read(task, reason, self._writers, left)
        if message is None:
            self.rlock.release()
            rt.call_done(task)
            yield from rt.on_timeout(task, op.on_timeout, "queue.Empty")
            return
        yield from rt.scheduler.syscall(task)  # the read
        # CPython's order: read the bytes, release the semaphore, let go of the
        # reader lock, then unpickle.
        cold = not first and rt.runs_cold(task)
        yield from rt.scheduler.work(task, costs.queue_get_cold_ns if cold else costs.queue_get_ns)
        if self.free_slots is not None:
            self.free_slots += 1
            self.putters.wake_one()
        self.rlock.release()
        yield from rt.scheduler.work(task, rt.pickle_ns(message.size))
        rt.call_done(task)
        rt.sink.emit(
            MessageEvent(rt.env.now, task.name, "get", self.name, message.msg, message.size)
        )

    def task_done(self, task: Task, op: p.TaskDone) -> Steps:
        yield from self.rt.scheduler.work(task, 0)
        if self.unfinished <= 0:
            text = f"task_done() on {self.name} called more times than items were put"
            self.rt.sink.emit(WarningEvent(self.rt.env.now, task.name, "task_done", text))
            raise ProgramError("ValueError", "task_done() called too many times")
        self.unfinished -= 1
        if self.unfinished == 0:
            self.joiners.wake_all()

    def join(self, task: Task, op: p.JoinQueue) -> Steps:
        yield from self.rt.scheduler.work(task, 0)
        waits_for = self.rt.able_to(("task_done", self.name))
        while self.unfinished > 0:
            yield from self.joiners.wait(task, f"{self.name}.join", waits_for)
            yield from self.rt.scheduler.work(task, 0)


def _tasks_of(proc: SimProcess) -> set[Task]:
    return set(proc.live_tasks())


class SimpleQueue:
    """multiprocessing.SimpleQueue: a pipe with a reader and a writer lock; the
    caller pickles and writes itself. `on_message` lets the owner trace the
    message under its own name (a pool's task and result queues)."""

    def __init__(self, rt: Runtime, name: str, writers: Callable[[], set[Task]]) -> None:
        self.rt = rt
        self.name = name
        self.channel = Channel(rt.env, rt.scheduler, socket=False)
        self.rlock = Mutex(rt)
        self.wlock = Mutex(rt)
        self._writers = writers
        self._readers: Callable[[], set[Task]] = set
        self._write_reason = f"{name}.write"

    def set_readers(self, readers: Callable[[], set[Task]]) -> None:
        self._readers = readers

    def put(self, task: Task, message: Message, cost_ns: int) -> Steps:
        rt = self.rt
        channel = self.channel
        # `work` with its common case inlined (as Interpreter.run_block does):
        # each pool task is put twice (task, result) and got twice.
        scheduler = rt.scheduler
        amount = cost_ns + rt.pickle_ns(message.size)
        timeout = scheduler.quick_work(task, amount)
        if timeout is None:
            yield from scheduler.work(task, amount)
        else:
            try:
                yield timeout
            except simpy.Interrupt as interrupt:
                yield from scheduler.resume_work(task, interrupt)
            else:
                task.in_timer = False
                scheduler.account(task)
        reason = self._write_reason
        if not self.wlock.try_acquire(task):
            yield from self.wlock.acquire(task, f"{self.name}.wlock")
        if not channel.try_write(message):
            yield from channel.write(task, message, reason, self._readers)
        rt.sink.emit(
            MessageEvent(rt.env.now, task.name, "put", self.name, message.msg, message.size)
        )
        if channel.oversized(message):
            yield from channel.wait_until_taken(task, message, reason, self._readers)
        self.wlock.release()
        yield from scheduler.syscall(task)  # the write

    def get(
        self, task: Task, reason: str, cost_ns: int, cold_ns: int
    ) -> Generator[simpy.Event, Any, Message]:
        """Read one message; `cost_ns` and the unpickling are one stretch of CPU
        time after the read, `cold_ns` instead of `cost_ns` when the reader
        waited at least POOL_COLD_AFTER_NS for the message."""
        rt = self.rt
        if must_wait(task):
            yield from rt.scheduler.work(task, 0)
        began = rt.env.now
        if not self.rlock.try_acquire(task):
            yield from self.rlock.acquire(task, reason)
        message = self.channel.try_read()
        if message is None:
            message = yield from self.channel.read(task, reason, self._writers)
        else:
            yield from rt.scheduler.syscall(task)  # the read, of data already there
        self.rlock.release()
        assert message is not None, "a pool queue is never closed for writing"
        if rt.env.now - began >= p.POOL_COLD_AFTER_NS:
            cost_ns = cold_ns
        scheduler = rt.scheduler  # `work`, its common case inlined as in `put`
        amount = cost_ns + rt.pickle_ns(message.size)
        timeout = scheduler.quick_work(task, amount)
        if timeout is None:
            yield from scheduler.work(task, amount)
        else:
            try:
                yield timeout
            except simpy.Interrupt as interrupt:
                yield from scheduler.resume_work(task, interrupt)
            else:
                task.in_timer = False
                scheduler.account(task)
        rt.sink.emit(
            MessageEvent(rt.env.now, task.name, "get", self.name, message.msg, message.size)
        )
        return message
