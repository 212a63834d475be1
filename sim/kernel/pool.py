"""multiprocessing.Pool, as Lib/multiprocessing/pool.py runs it.

The parent creates the workers (daemon processes) and three helper threads. A
submission (`apply_async`, a chunk of `map`) goes on an in-process task queue;
the task handler thread pickles it into the shared input pipe (blocking while
that pipe is full). Idle workers wait: one reading the pipe, the others on its
reader lock. A worker runs the task and puts the result on the output pipe; the
result handler thread reads results and runs each callback or error callback
there, in the parent, one after another, before the result counts as ready.

`close()` lets the worker handler finish once every result is in: it sends the
task handler a sentinel, which sends one to each worker (they exit with 0) and
one to the result handler. `join()` waits for the three threads, then the
workers. `terminate()` (also leaving a `with` block, and what happens at exit to
a pool never closed) SIGTERMs every worker still alive (-15); jobs not finished
never are. `maxtasksperchild=N`: a worker exits after N tasks and the worker
handler starts a replacement.

Simplification: at terminate every live worker ends with -15, although in
CPython an idle one sometimes exits 0 first (measured 29 vs 11 of 40).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Literal

import simpy

from sim import program as p
from sim.kernel.channel import Message
from sim.kernel.clock import Steps
from sim.kernel.queues import SimpleQueue
from sim.kernel.runtime import Runtime
from sim.kernel.tasks import ProgramError, SimProcess, Task
from sim.kernel.waitqueue import WaitQueue
from sim.trace import JobEvent, JobOp

SENTINEL_SIZE = 4  # a pickled None


@dataclass(eq=False, slots=True)
class Job:
    """One ApplyResult or MapResult."""

    id: int
    function: str
    chunks_left: int
    callback: str | None
    error_callback: str | None
    # A flag, not a SimPy event: waiters are woken through _result_waiters, so
    # an event would only cost a schedule and a step per job.
    done: bool = False
    failed: bool = False


@dataclass(eq=False, slots=True)
class Chunk:
    job: Job
    index: int | None  # None for apply; the chunk's number for map
    items: int
    arg_size: int


@dataclass(eq=False)
class PoolState:
    state: Literal["run", "close", "terminate"] = "run"
    workers: list[SimProcess] = field(default_factory=list)
    handlers: list[Task] = field(default_factory=list)


class SimPool:
    def __init__(self, rt: Runtime, definition: p.PoolDef) -> None:
        self.rt = rt
        self.name = definition.name
        self.size = definition.workers or rt.scenario.machine.cpus
        self.maxtasks = definition.maxtasksperchild
        self.created = False
        self.pool = PoolState()
        self.owner: SimProcess | None = None
        self.cache: dict[int, Job] = {}
        self.jobs: list[Job] = []  # every job submitted, for wait_results
        self._job_ids = 0
        self._worker_ids = 0
        self._payloads: dict[int, Chunk | None] = {}
        self._taskqueue: deque[Chunk | None] = deque()
        self._taskqueue_waiters = WaitQueue(rt.env, rt.scheduler, futex=True)
        self._handler_wake = WaitQueue(rt.env, rt.scheduler)
        # CPython's change notifier is a queue: a notification sent while the
        # worker handler is busy (starting a replacement) waits for it.
        self._handler_notified = False
        self._result_wakes = 0  # results written since the worker handler's last turn
        self._result_waiters = WaitQueue(rt.env, rt.scheduler, futex=True)
        self.inqueue = SimpleQueue(rt, f"{self.name}.inqueue", self._pool_tasks)
        self.outqueue = SimpleQueue(rt, f"{self.name}.outqueue", self._pool_tasks)
        self.inqueue.set_readers(self._pool_tasks)
        self.outqueue.set_readers(self._pool_tasks)
        # What the workers can do to other objects: what the submitted functions do.
        programs = (rt.scenario.main, *(fn.body for fn in rt.scenario.functions.values()))
        functions = {
            op.function
            for ops in programs
            for op in p.walk(ops)
            if isinstance(op, p.Apply | p.ApplyAsync | p.Map) and op.pool == self.name
        }
        actions = frozenset().union(*(rt.usage.of(f) for f in functions))
        rt.usage.declare(self._worker_program, actions)

    @property
    def _worker_program(self) -> str:
        return f"<pool {self.name}>"

    def _pool_tasks(self) -> set[Task]:
        tasks = {t for proc in self.pool.workers for t in proc.live_tasks()}
        return tasks | {t for t in self.pool.handlers if t.alive}

    def _emit(self, task: Task, op: JobOp, job: Job, chunk: int | None = None) -> None:
        self.rt.sink.emit(JobEvent(self.rt.env.now, task.name, op, self.name, job.id, chunk))

    # --- creating the pool ----------------------------------------------------

    def create(self, task: Task) -> Steps:
        """Pool(n): start the workers, then the three helper threads."""
        rt = self.rt
        if self.created:
            raise ProgramError("RuntimeError", f"pool {self.name} created twice")
        self.created = True
        self.owner = task.process
        for _ in range(self.size):
            yield from self._start_worker(task)
        # The rest of Pool(): its pipes and locks, starting its threads.
        yield from rt.scheduler.work(task, rt.costs.pool_create_ns)
        for name, body in (
            ("worker_handler", self._handle_workers),
            ("task_handler", self._handle_tasks),
            ("result_handler", self._handle_results),
        ):
            thread = rt.processes.new_thread(
                task.process, f"{self.name}.{name}", "handler", body, True, task.name, ""
            )
            self.pool.handlers.append(thread)
        rt.processes.at_exit(task.process, 15, self._terminate_at_exit)
        yield from rt.scheduler.work(task, 0)

    def _start_worker(self, task: Task) -> Steps:
        rt = self.rt
        self._worker_ids += 1
        assert self.owner is not None
        proc = rt.processes.create(
            f"{self.name}.worker{self._worker_ids}", self.owner, True, self.owner.priority, None
        )
        self.pool.workers.append(proc)
        # A worker that exits (maxtasksperchild) wakes the handler, which replaces it.
        proc.ended.callbacks.append(self._worker_exited)
        yield from rt.processes.start(
            task, proc, self._worker_loop, kind="worker", program=self._worker_program
        )

    def _worker_exited(self, _event: simpy.Event) -> None:
        self._notify_handler()

    def _notify_handler(self) -> None:
        self._handler_notified = True
        self._handler_wake.wake_one()

    # --- the threads and processes of the pool ----------------------------------

    def _worker_loop(self, task: Task) -> Steps:
        rt = self.rt
        completed = 0
        reason = f"{self.name}.task"
        while self.maxtasks is None or completed < self.maxtasks:
            message = yield from self.inqueue.get(
                task, reason, rt.costs.pool_worker_ns, rt.costs.pool_worker_cold_ns
            )
            chunk = self._payloads.pop(message.msg)
            if chunk is None:
                break
            job = chunk.job
            self._emit(task, "start", job, chunk.index)
            if completed == 0:  # the job's code, first run in this new process
                yield from rt.scheduler.work(task, rt.costs.first_job_ns)
            body = rt.scenario.functions[job.function].body
            ok = True
            try:
                for _ in range(chunk.items):
                    yield from rt.run_block(task, body)
            except ProgramError:
                ok = False  # the worker catches it and sends it back as the result
            self._emit(task, "finish" if ok else "error", job, chunk.index)
            if not ok:
                job.failed = True
            size = rt.scenario.functions[job.function].result_size * chunk.items
            result = Message(rt.next_message_id(), size)
            self._payloads[result.msg] = chunk
            yield from self.outqueue.put(task, result, 0)
            # The worker handler's wait() watches the result pipe too: each
            # result wakes it, whether or not the result handler reads it first.
            self._result_wakes += 1
            self._handler_wake.wake_one()
            completed += 1

    def _handle_tasks(self, task: Task) -> Steps:
        rt = self.rt
        while True:
            began = rt.env.now
            while not self._taskqueue:
                yield from self._taskqueue_waiters.wait(
                    task, f"{self.name}.taskqueue", rt.able_to(("submit", self.name))
                )
            chunk = self._taskqueue.popleft()
            if chunk is None:
                break
            message = Message(rt.next_message_id(), chunk.arg_size * chunk.items)
            self._payloads[message.msg] = chunk
            cold = rt.env.now - began >= p.POOL_COLD_AFTER_NS
            cost = rt.costs.pool_dispatch_cold_ns if cold else rt.costs.pool_dispatch_ns
            yield from self.inqueue.put(task, message, cost)
        # No more work: one sentinel for the result handler, one for each worker.
        for queue in (self.outqueue, *([self.inqueue] * len(self.pool.workers))):
            sentinel = Message(rt.next_message_id(), SENTINEL_SIZE)
            self._payloads[sentinel.msg] = None
            yield from queue.put(task, sentinel, 0)

    def _handle_results(self, task: Task) -> Steps:
        rt = self.rt
        sentinel_seen = False
        reason = f"{self.name}.outqueue"
        while not sentinel_seen or (self.cache and self.pool.state != "terminate"):
            message = yield from self.outqueue.get(
                task, reason, rt.costs.pool_result_ns, rt.costs.pool_result_cold_ns
            )
            chunk = self._payloads.pop(message.msg)
            if chunk is None:
                sentinel_seen = True
                continue
            yield from self._set_result(task, chunk)

    def _set_result(self, task: Task, chunk: Chunk) -> Steps:
        job = chunk.job
        job.chunks_left -= 1
        if job.chunks_left:
            return
        callback = job.error_callback if job.failed else job.callback
        if callback is not None:
            yield from self.rt.run_block(task, self.rt.scenario.functions[callback].body)
            self._emit(task, "error_callback" if job.failed else "callback", job)
        self._complete(job)

    def _complete(self, job: Job) -> None:
        job.done = True
        if self._result_waiters.waiting:
            self._result_waiters.wake_all()
        del self.cache[job.id]
        if not self.cache:
            self._notify_handler()  # _PoolCache tells the worker handler

    def _handle_workers(self, task: Task) -> Steps:
        rt = self.rt
        cold = False  # the last wait() lasted POOL_COLD_AFTER_NS or more
        while self.pool.state == "run" or (self.cache and self.pool.state != "terminate"):
            for proc in list(self.pool.workers):
                if proc.exit_code is not None:
                    self.pool.workers.remove(proc)
                    yield from self._start_worker(task)
            # A turn of the loop (_maintain_pool, then wait()) per result
            # written since the last: each woke it. Charged together, as the
            # handler runs them once it has the GIL.
            turns, self._result_wakes = max(1, self._result_wakes), 0
            cost = turns * rt.costs.pool_maintain_ns
            if cold:  # its first turn after a long wait runs cold
                cost += rt.costs.pool_maintain_cold_ns - rt.costs.pool_maintain_ns
                cold = False
            yield from rt.scheduler.work(task, cost)
            if self.outqueue.channel.messages:
                # wait() watches the result pipe, so it returns at once while a
                # result waits there unread: the loop spins, taking the GIL in
                # turns with the result handler, until that has read every result.
                yield from rt.scheduler.spin(task, rt.costs.gil_turn_ns)
                continue
            if not self._handler_notified:
                began = rt.env.now
                yield from self._handler_wake.wait(task, f"{self.name}.workers", self._pool_tasks)
                cold = rt.env.now - began >= p.POOL_COLD_AFTER_NS
            self._handler_notified = False
        self._taskqueue.append(None)
        self._taskqueue_waiters.wake_one()
        yield from rt.scheduler.work(task, 0)

    # --- what the program calls -------------------------------------------------

    def _check_running(self) -> None:
        if not self.created:
            raise ProgramError("ValueError", f"Pool {self.name} is not created")
        if self.pool.state != "run":
            raise ProgramError("ValueError", "Pool not running")

    def _submit(
        self,
        task: Task,
        function: str,
        chunks: list[int],
        arg_size: int,
        callback: str | None,
        error_callback: str | None,
        indexed: bool,
    ) -> Generator[simpy.Event, Any, Job]:
        rt = self.rt
        yield from rt.scheduler.work(task, rt.costs.pool_submit_ns)
        self._check_running()
        self._job_ids += 1
        job = Job(self._job_ids, function, len(chunks), callback, error_callback)
        self.cache[job.id] = job
        self.jobs.append(job)
        self._emit(task, "submit", job)
        for index, items in enumerate(chunks):
            self._taskqueue.append(Chunk(job, index if indexed else None, items, arg_size))
        if self._taskqueue_waiters.waiting:
            self._taskqueue_waiters.wake_one()
        if not chunks:
            # A map over nothing is ready at once, and CPython's MapResult never
            # calls its callback then.
            self._complete(job)
        return job

    def _wait(self, task: Task, jobs: list[Job]) -> Steps:
        """AsyncResult.get() on each job; raises what a failed job raised."""
        rt = self.rt
        for job in jobs:
            began = rt.env.now
            while not job.done:
                yield from self._result_waiters.wait(task, f"{self.name}.result", self._pool_tasks)
            # Woken after a long wait, the caller runs its wake-up and the fetch cold.
            cold = rt.env.now - began >= p.POOL_COLD_AFTER_NS
            yield from rt.scheduler.work(task, rt.costs.pool_wake_cold_ns if cold else 0)
            self._emit(task, "result", job)
            if job.failed:
                raise ProgramError("Exception", f"a task of pool {self.name} raised")

    def apply(self, task: Task, op: p.Apply) -> Steps:
        job = yield from self._submit(task, op.function, [1], op.arg_size, None, None, False)
        yield from self._wait(task, [job])

    def apply_async(self, task: Task, op: p.ApplyAsync) -> Steps:
        for _ in range(op.times):
            yield from self._submit(
                task, op.function, [1], op.arg_size, op.callback, op.error_callback, False
            )

    def map(self, task: Task, op: p.Map) -> Steps:
        chunksize = op.chunksize or self.default_chunksize(op)
        chunks = [min(chunksize, op.items - start) for start in range(0, op.items, chunksize)]
        job = yield from self._submit(
            task, op.function, chunks, op.arg_size, op.callback, None, True
        )
        if op.kind != "map_async":
            yield from self._wait(task, [job])

    def default_chunksize(self, op: p.Map) -> int:
        """CPython's: map/starmap split into about four chunks per worker;
        imap and imap_unordered send items one by one."""
        if op.kind in ("imap", "imap_unordered"):
            return 1
        return max(1, math.ceil(op.items / (self.size * 4)))

    def wait_results(self, task: Task, op: p.WaitResults) -> Steps:
        yield from self._wait(task, list(self.jobs))

    def close(self, task: Task, op: p.PoolClose) -> Steps:
        yield from self.rt.scheduler.work(task, 0)
        if self.pool.state == "run":
            self.pool.state = "close"
            self._notify_handler()

    def join(self, task: Task, op: p.PoolJoin) -> Steps:
        yield from self.rt.scheduler.work(task, 0)
        if self.pool.state == "run":
            raise ProgramError("ValueError", "Pool is still running")
        # As CPython: the handler threads first, then the workers the worker
        # handler left (it may have replaced some meanwhile: maxtasksperchild).
        for other in itertools.chain(
            list(self.pool.handlers),
            (proc.main_task for proc in self.pool.workers if proc.main_task is not None),
        ):
            if other.alive:
                yield from self.rt.scheduler.block(
                    task, f"{self.name}.join", other.ended, self._pool_tasks
                )
                yield from self.rt.scheduler.work(task, 0)

    def terminate(self, task: Task, op: p.PoolTerminate | None = None) -> Steps:
        yield from self.rt.scheduler.work(task, 0)
        self._terminate()

    def _terminate(self) -> None:
        if not self.created or self.pool.state == "terminate":
            return
        self.pool.state = "terminate"
        for proc in self.pool.workers:
            self.rt.processes.kill_process(proc, "terminated")
        for thread in self.pool.handlers:
            self.rt.scheduler.kill(thread, None, "returned")

    def _terminate_at_exit(self, task: Task) -> Steps:
        yield from self.rt.scheduler.work(task, 0)
        self._terminate()

    def with_pool(self, task: Task, op: p.WithPool) -> Steps:
        yield from self.create(task)
        try:
            yield from self.rt.run_block(task, op.body)
        except simpy.Interrupt:
            raise
        except BaseException:
            self._terminate()
            raise
        yield from self.terminate(task)
