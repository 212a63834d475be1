"""Runs a scenario with real multiprocessing: the root process of `procsim real`.

`python -m sim.real RUN.pickle` (see `sim/real/__main__.py`) loads a `sim.program.Scenario` and
interprets its `main` block in this process, starting real processes, threads,
Queues, Pipes, locks and Pools for what the scenario declares. `compute` burns
CPU time of the calling thread (`time.thread_time_ns`), so preemption does not
shorten it; `sleep` sleeps; messages are byte strings of the scenario's size
whose first bytes are unique (the sender's pid and a counter), so the probes
can tell them apart; random durations are drawn from `task_rng(seed, task)` in
program order, as the simulator draws them.

The probes (loaded by the run's sitecustomize) record everything; this module
only names the objects after the scenario and marks the start of `main`.
Processes end as CPython ends them: the main code returns and the interpreter's
own shutdown joins threads, kills daemons and joins children.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import pickle
import queue
import random
import re
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import context as mp_context
from multiprocessing import current_process
from multiprocessing import process as mp_process
from multiprocessing.pool import AsyncResult, Pool
from typing import Any

from sim import program as p

_ACTIVE: Interpreter | None = None  # the interpreter of this process's main task


def _runtime() -> Any:
    """The probe runtime when this run is traced (installed by sitecustomize)."""
    return sys.modules.get("_procsim_rt.instrument")


def _name_object(obj: object, name: str) -> None:
    rt = _runtime()
    if rt is not None:
        rt.name_object(obj, name)


@dataclass(frozen=True)
class RunSpec:
    """What the runner hands the executor."""

    scenario: p.Scenario
    start_method: str
    # Real-time class to give each process ("SCHED_FIFO", "SCHED_RR") and the
    # priority of main; children shift it by their scenario priority.
    rt_policy: str | None = None
    rt_base_priority: int = 50
    priorities: bool = False


@dataclass
class Shared:
    """What every process of the run receives: the scenario and its objects."""

    spec: RunSpec
    objects: dict[str, Any]
    t0: int


@dataclass
class Interpreter:
    """Runs blocks of ops as one task (a process's main thread, a thread, a
    pool worker or the result handler running callbacks)."""

    shared: Shared
    task: str
    process: str
    ctx: mp_context.BaseContext
    children: dict[str, Any] = field(default_factory=dict)
    threads: dict[str, threading.Thread] = field(default_factory=dict)
    pools: dict[str, Pool] = field(default_factory=dict)
    results: dict[str, list[AsyncResult[Any]]] = field(default_factory=dict)
    priorities: dict[str, int] = field(default_factory=dict)
    _sent: int = 0
    _rng: random.Random | None = None

    def __post_init__(self) -> None:
        self.functions = self.shared.spec.scenario.functions

    def _draw(self, duration: p.Duration) -> int:
        """A duration's value in ns, as `p.draw` gives it. The task's random
        stream is made at its first random draw: seeding one costs a fork child
        about 70 µs, mostly copy-on-write faults."""
        if isinstance(duration, p.Constant):
            return duration.ns
        if self._rng is None:
            self._rng = p.task_rng(self.shared.spec.scenario.seed, self.task)
        return p.draw(duration, self._rng)

    # --- running blocks -------------------------------------------------------

    def run(self, block: p.Block) -> None:
        handlers = _HANDLERS
        for op in block:
            handlers[type(op)](self, op)

    def _seconds(self, duration: p.Duration | None) -> float | None:
        return None if duration is None else self._draw(duration) / 1e9

    def _timed_out(self, block: p.Block | None, error: type[BaseException]) -> None:
        """A blocking call timed out: the scenario's branch, or the exception."""
        if block is None:
            raise error("timed out")
        self.run(block)

    def _payload(self, size: int) -> bytes:
        """`size` bytes, the first ones unique to this message."""
        self._sent += 1
        head = struct.pack("<QQ", os.getpid(), self._sent)
        return (head + bytes(max(0, size - len(head))))[:size]

    def _obj(self, name: str) -> Any:
        return self.shared.objects[name]

    # --- basics ---------------------------------------------------------------

    def _compute(self, op: p.Compute) -> None:
        burn(self._draw(op.duration))

    def _sleep(self, op: p.Sleep) -> None:
        time.sleep(self._draw(op.duration) / 1e9)

    def _print(self, op: p.Print) -> None:
        try:
            print(op.text, flush=True)
        except BrokenPipeError:
            # Whoever read the run's output has gone (`procsim real ... | head`):
            # the rest of this process's output goes nowhere, and the scenario
            # runs on as it would with a reader, instead of a task dying of it
            # (a pool's result handler dying leaves the pool waiting forever).
            _discard_stdout()
            print(op.text, flush=True)

    def _repeat(self, op: p.Repeat) -> None:
        for _ in range(op.times):
            self.run(op.body)

    def _exit(self, op: p.Exit) -> None:
        sys.exit(op.code)

    def _raise(self, op: p.Raise) -> None:
        error = getattr(builtins, op.error, None)
        if isinstance(error, type) and issubclass(error, Exception):
            raise error(f"raised by the scenario ({op.loc or self.task})")
        raise Exception(f"{op.error} raised by the scenario ({op.loc or self.task})")

    # --- processes and threads ----------------------------------------------------

    def _spawn(self, op: p.Spawn) -> None:
        arrive = None if op.arrive_at is None else self.shared.t0 + op.arrive_at
        proc = self.ctx.Process(  # type: ignore[attr-defined]
            name=op.name,
            target=child_main,
            args=(self.shared, op.name, op.target, arrive),
            daemon=op.daemon,
        )
        self.children[op.name] = proc
        self.priorities[op.name] = op.priority
        if op.start:
            self._start_process(op.name)

    def _start(self, op: p.Start) -> None:
        self._start_process(op.name)

    def _start_process(self, name: str) -> None:
        proc = self.children[name]
        proc.start()
        # The parent gives the child its real-time priority before the child
        # can run: set by the child itself, it would first run once at ours.
        set_priority(self.shared.spec, proc.pid, self.priorities.get(name, 0))

    def _join(self, op: p.Join) -> None:
        timeout = self._seconds(op.timeout)
        for name in op.names:
            target = self.threads.get(name) or self.children.get(name)
            if target is None:
                raise AssertionError(f"can only join a started process ({name})")
            target.join(timeout)

    def _terminate(self, op: p.Terminate) -> None:
        self.children[op.name].terminate()

    def _is_alive(self, op: p.IsAlive) -> None:
        target = self.threads.get(op.name) or self.children.get(op.name)
        alive = target is not None and target.is_alive()
        print(f"is_alive({op.name}) = {alive}", flush=True)

    def _start_thread(self, op: p.StartThread) -> None:
        body = self.functions[op.target].body
        interp = Interpreter(self.shared, f"{self.process}.{op.name}", self.process, self.ctx)
        interp.children, interp.pools, interp.results = self.children, self.pools, self.results
        interp.priorities = self.priorities
        thread = threading.Thread(name=op.name, target=interp.run, args=(body,), daemon=op.daemon)
        self.threads[op.name] = thread
        thread.start()

    # --- queues and pipes -----------------------------------------------------------

    def _put(self, op: p.Put) -> None:
        timeout = self._seconds(op.timeout)
        try:
            self._obj(op.queue).put(self._payload(op.size), timeout=timeout)
        except queue.Full:
            self._timed_out(op.on_timeout, queue.Full)

    def _get(self, op: p.Get) -> None:
        timeout = self._seconds(op.timeout)
        try:
            self._obj(op.queue).get(timeout=timeout)
        except queue.Empty:
            self._timed_out(op.on_timeout, queue.Empty)

    def _task_done(self, op: p.TaskDone) -> None:
        self._obj(op.queue).task_done()

    def _join_queue(self, op: p.JoinQueue) -> None:
        self._obj(op.queue).join()

    def _send(self, op: p.Send) -> None:
        self._obj(op.end).send_bytes(self._payload(op.size))

    def _recv(self, op: p.Recv) -> None:
        try:
            self._obj(op.end).recv_bytes()
        except EOFError:
            if op.on_eof is None:
                raise
            self.run(op.on_eof)

    def _close(self, op: p.Close) -> None:
        self._obj(op.end).close()

    # --- synchronisation --------------------------------------------------------------

    def _acquire(self, op: p.Acquire) -> None:
        timeout = self._seconds(op.timeout)
        if not self._obj(op.obj).acquire(True, timeout):
            self._timed_out(op.on_timeout, TimeoutError)

    def _release(self, op: p.Release) -> None:
        self._obj(op.obj).release()

    def _locked(self, op: p.Locked) -> None:
        with self._obj(op.obj):
            self.run(op.body)

    def _set_event(self, op: p.SetEvent) -> None:
        self._obj(op.event).set()

    def _clear_event(self, op: p.ClearEvent) -> None:
        self._obj(op.event).clear()

    def _wait_event(self, op: p.WaitEvent) -> None:
        if not self._obj(op.event).wait(self._seconds(op.timeout)):
            self._timed_out(op.on_timeout, TimeoutError)

    def _wait(self, op: p.Wait) -> None:
        if not self._obj(op.condition).wait(self._seconds(op.timeout)):
            self._timed_out(op.on_timeout, TimeoutError)

    def _notify(self, op: p.Notify) -> None:
        cond = self._obj(op.condition)
        if op.n is None:
            cond.notify_all()
        else:
            cond.notify(op.n)

    def _barrier_wait(self, op: p.BarrierWait) -> None:
        self._obj(op.barrier).wait()

    # --- pools ------------------------------------------------------------------------

    def create_pool(self, name: str) -> Pool:
        definition = self.shared.spec.scenario.objects[name]
        assert isinstance(definition, p.PoolDef)
        size = definition.workers or self.shared.spec.scenario.machine.cpus
        # Workers are created one after another, so their process identities
        # follow the next one: each numbers itself from it (1, 2, ...).
        pool: Pool = self.ctx.Pool(
            size, worker_init, (self.shared, name, _next_identity()), definition.maxtasksperchild
        )
        _name_object(pool, name)
        self.pools[name] = pool
        self.results[name] = []
        return pool

    def _callback(self, name: str | None, pool: str) -> Callable[[Any], None] | None:
        if name is None:
            return None
        body = self.functions[name].body
        # Callbacks run in the pool's result-handler thread, a task of its own.
        handler = f"{self.process}.{pool}.result_handler"

        def callback(_value: Any) -> None:
            _callback_interpreter(self, handler).run(body)

        return callback

    def _apply(self, op: p.Apply) -> None:
        self.pools[op.pool].apply(pool_job, (op.function, self._payload(op.arg_size)))

    def _apply_async(self, op: p.ApplyAsync) -> None:
        pool = self.pools[op.pool]
        callback = self._callback(op.callback, op.pool)
        error_callback = self._callback(op.error_callback, op.pool)
        for _ in range(op.times):
            result = pool.apply_async(
                pool_job,
                (op.function, self._payload(op.arg_size)),
                callback=callback,
                error_callback=error_callback,
            )
            self.results[op.pool].append(result)

    def _map(self, op: p.Map) -> None:
        pool = self.pools[op.pool]
        items = [(op.function, self._payload(op.arg_size)) for _ in range(op.items)]
        if op.kind == "starmap":
            pool.starmap(pool_job, items, op.chunksize)
        elif op.kind in ("map", "map_async"):
            callback = self._callback(op.callback, op.pool)
            result = pool.map_async(pool_item, items, op.chunksize, callback)
            self.results[op.pool].append(result)
            if op.kind == "map":
                result.get()
        else:
            method = pool.imap if op.kind == "imap" else pool.imap_unordered
            for _ in method(pool_item, items, op.chunksize or 1):
                pass

    def _wait_results(self, op: p.WaitResults) -> None:
        for result in list(self.results.get(op.pool, [])):
            result.get()

    def _pool_close(self, op: p.PoolClose) -> None:
        self.pools[op.pool].close()

    def _pool_join(self, op: p.PoolJoin) -> None:
        self.pools[op.pool].join()

    def _pool_terminate(self, op: p.PoolTerminate) -> None:
        self.pools[op.pool].terminate()

    def _with_pool(self, op: p.WithPool) -> None:
        with self.create_pool(op.pool):
            self.run(op.body)


# One table for every interpreter: a fork child that built its own (bound
# methods) would pay a copy-on-write fault for each page of methods it touched.
_HANDLERS: dict[type[p.Op], Callable[[Interpreter, Any], None]] = {
    p.Compute: Interpreter._compute,
    p.Sleep: Interpreter._sleep,
    p.Print: Interpreter._print,
    p.Repeat: Interpreter._repeat,
    p.Exit: Interpreter._exit,
    p.Raise: Interpreter._raise,
    p.Spawn: Interpreter._spawn,
    p.Start: Interpreter._start,
    p.Join: Interpreter._join,
    p.Terminate: Interpreter._terminate,
    p.IsAlive: Interpreter._is_alive,
    p.StartThread: Interpreter._start_thread,
    p.Put: Interpreter._put,
    p.Get: Interpreter._get,
    p.TaskDone: Interpreter._task_done,
    p.JoinQueue: Interpreter._join_queue,
    p.Send: Interpreter._send,
    p.Recv: Interpreter._recv,
    p.Close: Interpreter._close,
    p.Acquire: Interpreter._acquire,
    p.Release: Interpreter._release,
    p.Locked: Interpreter._locked,
    p.SetEvent: Interpreter._set_event,
    p.ClearEvent: Interpreter._clear_event,
    p.WaitEvent: Interpreter._wait_event,
    p.Wait: Interpreter._wait,
    p.Notify: Interpreter._notify,
    p.BarrierWait: Interpreter._barrier_wait,
    p.Apply: Interpreter._apply,
    p.ApplyAsync: Interpreter._apply_async,
    p.Map: Interpreter._map,
    p.WaitResults: Interpreter._wait_results,
    p.PoolClose: Interpreter._pool_close,
    p.PoolJoin: Interpreter._pool_join,
    p.PoolTerminate: Interpreter._pool_terminate,
    p.WithPool: Interpreter._with_pool,
}


_callback_interpreters: dict[str, Interpreter] = {}


def _callback_interpreter(owner: Interpreter, task: str) -> Interpreter:
    """One interpreter (one random stream) per result-handler thread."""
    interp = _callback_interpreters.get(task)
    if interp is None:
        interp = Interpreter(owner.shared, task, owner.process, owner.ctx)
        interp.children, interp.pools, interp.results = owner.children, owner.pools, owner.results
        _callback_interpreters[task] = interp
    return interp


def _discard_stdout() -> None:
    """Point this process's standard output at the null device."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, sys.stdout.fileno())
    finally:
        os.close(null)


def burn(ns: int) -> None:
    """Use `ns` of CPU time of the calling thread. Reading the thread's CPU
    clock costs about a microsecond, so long burns read it every 200 steps and
    short ones every step, to stop within a few microseconds of the target."""
    clock = time.thread_time_ns
    deadline = clock() + ns
    steps = range(200 if ns > 1_000_000 else 1)
    while clock() < deadline:
        for _ in steps:
            pass


# --- the entry points of other processes ----------------------------------------------


def set_priority(spec: RunSpec, pid: int, priority: int) -> None:
    """Process `pid`'s real-time priority: main's shifted by its scenario priority."""
    if spec.rt_policy is None or not spec.priorities:
        return
    policy = os.SCHED_FIFO if spec.rt_policy == "SCHED_FIFO" else os.SCHED_RR
    value = min(98, max(1, spec.rt_base_priority - priority))
    # The runner checked the rights; a refusal here keeps the inherited class.
    with contextlib.suppress(OSError):
        os.sched_setscheduler(pid, policy, os.sched_param(value))


def child_main(shared: Shared, name: str, target: str, arrive_at: int | None) -> None:
    """The target of a scenario's Process."""
    if arrive_at is not None:
        rt = _runtime()
        recorded = rt.begin("arrival") if rt is not None else False
        try:
            while (left := arrive_at - time.monotonic_ns()) > 0:
                time.sleep(left / 1e9)
        finally:
            if rt is not None:
                rt.end(recorded)
    ctx = mp_context._default_context.get_context(shared.spec.start_method)
    global _ACTIVE
    _ACTIVE = Interpreter(shared, name, name, ctx)
    _ACTIVE.run(shared.spec.scenario.functions[target].body)


def _next_identity() -> int:
    """The identity multiprocessing gives the next process this one creates
    (read from its counter's repr, which does not advance it)."""
    match = re.fullmatch(r"count\((\d+)\)", repr(getattr(mp_process, "_process_counter", "")))
    return int(match.group(1)) if match else 1


@dataclass
class _Worker:
    shared: Shared
    pool: str
    first: int
    interp: Interpreter | None = None

    def interpreter(self) -> Interpreter:
        if self.interp is None:
            index = current_process()._identity[-1] - self.first + 1
            name = f"{self.pool}.worker{index}"
            ctx = mp_context._default_context.get_context(self.shared.spec.start_method)
            self.interp = Interpreter(self.shared, name, name, ctx)
        return self.interp


_WORKER: _Worker | None = None


def worker_init(shared: Shared, pool: str, first: int) -> None:
    global _WORKER
    _WORKER = _Worker(shared, pool, first)


def pool_job(function: str, _payload: bytes) -> bytes:
    """A pool task: run the function's body once, return its result bytes."""
    assert _WORKER is not None
    interp = _WORKER.interpreter()
    fn = interp.functions[function]
    interp.run(fn.body)
    return interp._payload(fn.result_size)


def pool_item(item: tuple[str, bytes]) -> bytes:
    return pool_job(*item)


# --- main ----------------------------------------------------------------------------


def make_objects(scenario: p.Scenario, ctx: mp_context.BaseContext) -> dict[str, Any]:
    """The scenario's queues, pipes and synchronisation objects, named for the probes."""
    c: Any = ctx
    objects: dict[str, Any] = {}
    for name, d in scenario.objects.items():
        if isinstance(d, p.QueueDef):
            objects[name] = c.JoinableQueue(d.maxsize) if d.joinable else c.Queue(d.maxsize)
            _name_object(objects[name], name)
        elif isinstance(d, p.PipeDef):
            a, b = c.Pipe(d.duplex)
            objects[d.ends[0]], objects[d.ends[1]] = a, b
            _name_object(a, d.ends[0])
            _name_object(b, d.ends[1])
        elif isinstance(d, p.LockDef):
            objects[name] = c.RLock() if d.reentrant else c.Lock()
        elif isinstance(d, p.SemaphoreDef):
            objects[name] = c.BoundedSemaphore(d.value) if d.bounded else c.Semaphore(d.value)
        elif isinstance(d, p.EventDef):
            objects[name] = c.Event()
        elif isinstance(d, p.ConditionDef):
            objects[name] = c.Condition()
        elif isinstance(d, p.BarrierDef):
            objects[name] = c.Barrier(d.parties)
        if name in objects and not isinstance(d, p.QueueDef):
            _name_object(objects[name], name)
    return objects


def run(spec: RunSpec) -> None:
    global _ACTIVE
    scenario = spec.scenario
    ctx = mp_context._default_context.get_context(spec.start_method)
    objects = make_objects(scenario, ctx)
    rt = _runtime()
    t0 = time.monotonic_ns()
    if rt is not None:
        rt.mark("main_begin")
    shared = Shared(spec, objects, t0)
    _ACTIVE = Interpreter(shared, "main", "main", ctx)
    for name in p.pools_at_start(scenario):
        _ACTIVE.create_pool(name)
    _ACTIVE.run(scenario.main)


def main(argv: list[str]) -> int:
    """Run the RunSpec pickled in argv[0]; the exit code is the program's."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m sim.real RUN.pickle\n")
        return 2
    with open(argv[0], "rb") as f:
        spec = pickle.load(f)
    if not isinstance(spec, RunSpec):
        sys.stderr.write(f"{argv[0]}: not a procsim run specification\n")
        return 2
    run(spec)
    return 0
