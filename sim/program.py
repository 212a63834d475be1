"""A scenario as the simulator and the real runner see it: frozen, typed, checked.

`sim.scenario` turns YAML into these objects after validating every key; nothing
here knows about YAML or pydantic. Durations are integer nanoseconds and sizes
integer bytes. Standard library only.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, TypeAlias

# --- random durations ---------------------------------------------------------


@dataclass(frozen=True)
class Constant:
    ns: int


@dataclass(frozen=True)
class Uniform:
    low_ns: int
    high_ns: int


@dataclass(frozen=True)
class Exponential:
    mean_ns: int


@dataclass(frozen=True)
class Normal:
    """A normal distribution truncated at 0 (a negative draw becomes 0)."""

    mean_ns: int
    std_ns: int


Duration: TypeAlias = Constant | Uniform | Exponential | Normal


def draw(duration: Duration, rng: random.Random) -> int:
    """One value in nanoseconds. A constant consumes no randomness, so adding a
    constant step to a program does not shift the draws of the others."""
    if isinstance(duration, Constant):
        return duration.ns
    if isinstance(duration, Uniform):
        return round(rng.uniform(duration.low_ns, duration.high_ns))
    if isinstance(duration, Exponential):
        return round(rng.expovariate(1.0 / duration.mean_ns)) if duration.mean_ns > 0 else 0
    return max(0, round(rng.gauss(duration.mean_ns, duration.std_ns)))


def mean_ns(duration: Duration) -> int:
    """The expected value, for estimates made before a value is drawn (SJF)."""
    if isinstance(duration, Constant):
        return duration.ns
    if isinstance(duration, Uniform):
        return (duration.low_ns + duration.high_ns) // 2
    if isinstance(duration, Exponential):
        return duration.mean_ns
    # Mean of a normal truncated at 0: mu + sigma * pdf(a) / (1 - cdf(a)), a = -mu/sigma.
    if duration.std_ns == 0:
        return max(0, duration.mean_ns)
    a = -duration.mean_ns / duration.std_ns
    pdf = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    tail = 0.5 * math.erfc(a / math.sqrt(2))
    return round(duration.mean_ns + duration.std_ns * pdf / tail) if tail > 0 else 0


def task_rng(seed: int, task: str) -> random.Random:
    """The random stream of one task. Seeding per task (not per run) makes the
    values a task draws independent of how tasks interleave, so the simulator
    and a real run of the same scenario draw the same durations."""
    return random.Random(f"{seed}/{task}")


# --- operations ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Op:
    """One step of a program. `loc` is `file:line:column` of the step in the
    scenario, for runtime messages; it takes no part in equality."""

    loc: str = field(default="", compare=False)


Block: TypeAlias = "tuple[Op, ...]"


@dataclass(frozen=True, kw_only=True)
class Compute(Op):
    """Use the CPU for this much CPU time."""

    duration: Duration


@dataclass(frozen=True, kw_only=True)
class Sleep(Op):
    """Block for this long (time.sleep)."""

    duration: Duration


@dataclass(frozen=True, kw_only=True)
class Print(Op):
    text: str


@dataclass(frozen=True, kw_only=True)
class Repeat(Op):
    times: int
    body: Block


@dataclass(frozen=True, kw_only=True)
class Exit(Op):
    """sys.exit(code): the process ends here with this exit code."""

    code: int = 0


@dataclass(frozen=True, kw_only=True)
class Raise(Op):
    """Raise an exception: a process ends with exit code 1, a pool task's error
    reaches error_callback / get()."""

    error: str = "Exception"


@dataclass(frozen=True, kw_only=True)
class Spawn(Op):
    """Process(name=..., target=..., daemon=...) and, unless `start` is false, start().
    `arrive_at`, for scheduling exercises, holds the new process back until that
    absolute time (a job arriving). `priority`: lower is more urgent."""

    name: str
    target: str
    daemon: bool = False
    start: bool = True
    priority: int = 0
    arrive_at: int | None = None


@dataclass(frozen=True, kw_only=True)
class Start(Op):
    name: str


@dataclass(frozen=True, kw_only=True)
class Join(Op):
    """Join processes or threads, in order. A timeout bounds each join."""

    names: tuple[str, ...]
    timeout: Duration | None = None


@dataclass(frozen=True, kw_only=True)
class Terminate(Op):
    """p.terminate(): SIGTERM, exit code -15."""

    name: str


@dataclass(frozen=True, kw_only=True)
class IsAlive(Op):
    """Print `is_alive(name) = True|False`, as a program checking on a child would."""

    name: str


@dataclass(frozen=True, kw_only=True)
class StartThread(Op):
    """threading.Thread(name=..., target=..., daemon=...).start() in this process."""

    name: str
    target: str
    daemon: bool = False


# Queue and JoinableQueue. A timeout that expires raises Full/Empty: the
# `on_timeout` block runs instead when given, otherwise the task exits with 1.


@dataclass(frozen=True, kw_only=True)
class Put(Op):
    queue: str
    size: int = 64
    timeout: Duration | None = None
    on_timeout: Block | None = None


@dataclass(frozen=True, kw_only=True)
class Get(Op):
    queue: str
    timeout: Duration | None = None
    on_timeout: Block | None = None


@dataclass(frozen=True, kw_only=True)
class TaskDone(Op):
    queue: str


@dataclass(frozen=True, kw_only=True)
class JoinQueue(Op):
    queue: str


# Pipe ends (Connection objects).


@dataclass(frozen=True, kw_only=True)
class Send(Op):
    end: str
    size: int = 64


@dataclass(frozen=True, kw_only=True)
class Recv(Op):
    """recv(); on EOF (the other end closed) `on_eof` runs, otherwise exit 1."""

    end: str
    on_eof: Block | None = None


@dataclass(frozen=True, kw_only=True)
class Close(Op):
    end: str


# Synchronisation.


@dataclass(frozen=True, kw_only=True)
class Acquire(Op):
    """Lock, RLock, Semaphore or Condition acquire."""

    obj: str
    timeout: Duration | None = None
    on_timeout: Block | None = None


@dataclass(frozen=True, kw_only=True)
class Release(Op):
    obj: str


@dataclass(frozen=True, kw_only=True)
class Locked(Op):
    """`with obj:` — acquire, run the body, release (also when the body exits)."""

    obj: str
    body: Block


@dataclass(frozen=True, kw_only=True)
class SetEvent(Op):
    event: str


@dataclass(frozen=True, kw_only=True)
class ClearEvent(Op):
    event: str


@dataclass(frozen=True, kw_only=True)
class WaitEvent(Op):
    event: str
    timeout: Duration | None = None
    on_timeout: Block | None = None


@dataclass(frozen=True, kw_only=True)
class Wait(Op):
    """condition.wait() (the condition must be held)."""

    condition: str
    timeout: Duration | None = None
    on_timeout: Block | None = None


@dataclass(frozen=True, kw_only=True)
class Notify(Op):
    """condition.notify(n), or notify_all() when `n` is None."""

    condition: str
    n: int | None = 1


@dataclass(frozen=True, kw_only=True)
class BarrierWait(Op):
    barrier: str


# Pool.

MapKind = Literal["map", "map_async", "starmap", "imap", "imap_unordered"]


@dataclass(frozen=True, kw_only=True)
class Apply(Op):
    """pool.apply(func, args): submit and wait for the result."""

    pool: str
    function: str
    arg_size: int = 64


@dataclass(frozen=True, kw_only=True)
class ApplyAsync(Op):
    """pool.apply_async(func, args, callback=, error_callback=), `times` times in a
    row (the reference text's loop of 10,000 submissions). Callbacks name
    functions run in the parent's result-handler thread."""

    pool: str
    function: str
    times: int = 1
    arg_size: int = 64
    callback: str | None = None
    error_callback: str | None = None


@dataclass(frozen=True, kw_only=True)
class Map(Op):
    """pool.map / map_async / starmap / imap / imap_unordered over `items` inputs.
    chunksize None means CPython's default for that call."""

    pool: str
    function: str
    items: int
    kind: MapKind = "map"
    chunksize: int | None = None
    arg_size: int = 64
    callback: str | None = None


@dataclass(frozen=True, kw_only=True)
class WaitResults(Op):
    """Wait for every result of this pool submitted so far (AsyncResult.get())."""

    pool: str


@dataclass(frozen=True, kw_only=True)
class PoolClose(Op):
    pool: str


@dataclass(frozen=True, kw_only=True)
class PoolJoin(Op):
    pool: str


@dataclass(frozen=True, kw_only=True)
class PoolTerminate(Op):
    pool: str


@dataclass(frozen=True, kw_only=True)
class WithPool(Op):
    """`with Pool(...) as p:` — the pool is created here and terminated on exit."""

    pool: str
    body: Block


def walk(ops: Block) -> Iterator[Op]:
    """Every step of `ops`, and of the blocks nested in them (a repeat's or a
    `with` block's body, an `on_timeout` or `on_eof` branch), in program order."""
    for op in ops:
        yield op
        for name in ("body", "on_timeout", "on_eof"):
            block = getattr(op, name, None)
            if block:
                yield from walk(block)


def has_arrivals(scenario: Scenario) -> bool:
    """Whether a process of the scenario is held back until an arrival time."""
    blocks = (scenario.main, *(f.body for f in scenario.functions.values()))
    return any(isinstance(op, Spawn) and op.arrive_at is not None for b in blocks for op in walk(b))


# --- objects ------------------------------------------------------------------


@dataclass(frozen=True)
class QueueDef:
    name: str
    maxsize: int = 0
    joinable: bool = False


@dataclass(frozen=True)
class PipeDef:
    """Pipe(duplex). `ends` names the two Connections; with duplex false the
    first end only receives and the second only sends, as in CPython."""

    name: str
    ends: tuple[str, str]
    duplex: bool = True


@dataclass(frozen=True)
class LockDef:
    name: str
    reentrant: bool = False


@dataclass(frozen=True)
class SemaphoreDef:
    name: str
    value: int = 1
    bounded: bool = False


@dataclass(frozen=True)
class EventDef:
    name: str


@dataclass(frozen=True)
class ConditionDef:
    name: str


@dataclass(frozen=True)
class BarrierDef:
    name: str
    parties: int


@dataclass(frozen=True)
class PoolDef:
    """workers None: the machine's CPU count, as CPython's default."""

    name: str
    workers: int | None = None
    maxtasksperchild: int | None = None


ObjectDef: TypeAlias = (
    QueueDef | PipeDef | LockDef | SemaphoreDef | EventDef | ConditionDef | BarrierDef | PoolDef
)


# --- functions, machine, scenario -------------------------------------------


@dataclass(frozen=True)
class FunctionDef:
    """A target for a process, thread or pool task, or a callback.
    `result_size`: bytes of the pickled return value (pool results)."""

    name: str
    body: Block
    result_size: int = 64


PolicyName = Literal["fcfs", "sjf", "srtf", "rr", "priority", "mlfq", "linux"]
POLICY_NAMES: tuple[PolicyName, ...] = ("fcfs", "sjf", "srtf", "rr", "priority", "mlfq", "linux")
StartMethod = Literal["fork", "spawn", "forkserver"]


@dataclass(frozen=True)
class PolicySettings:
    """Parameters of the scheduling policies; each policy reads its own."""

    quantum_ns: int = 10_000_000  # rr; also the time slice of fcfs-like RT runs
    preemptive: bool = True  # priority
    mlfq_quanta_ns: tuple[int, ...] = (8_000_000, 16_000_000, 32_000_000)
    mlfq_boost_ns: int = 100_000_000
    linux_base_slice_ns: int = 1_400_000  # se.slice measured on this machine kind
    # How long a ready task waits for the CPU it last ran on, that CPU busy,
    # before an idle CPU takes it: the kernel balances its run queues at the
    # timer tick (every 4 ms here, HZ=250), so half a tick on average.
    # 0: one queue for all CPUs.
    linux_balance_delay_ns: int = 2_000_000


# How long a Pool's thread or process must have waited for a step to run it
# cold (`Costs.pool_*_cold_ns`): measured, a step after a 1 ms wait already costs
# several times its cost in a busy pool, and after 5 ms ten to twenty times.
POOL_COLD_AFTER_NS = 1_000_000
# How long a thread must have gone without a Queue or Pipe call for its next one
# to run cold (`Costs.*_cold_ns`): measured in scenarios, a put 1 ms after the
# last costs 20-40 µs, a recv 5 ms after 110-140 µs and a get 10 ms after
# 100-290 µs, where the same calls made back to back cost 7-19 µs.
CALL_COLD_AFTER_NS = 1_000_000


@dataclass(frozen=True)
class Costs:
    """What multiprocessing's machinery costs, in CPU time or latency.

    Defaults are measured on the project's machine kind (see docs/model.md); a
    calibrated machine profile replaces them."""

    # Per start method, the CPU time a new process runs before its target (fork:
    # copy-on-write faults and the bootstrap; spawn: a whole interpreter start) and
    # after it ends on its own (stdio flush, finalizers, freeing its memory); and
    # the CPU time start() takes in the parent.
    start_cpu_ns: Mapping[StartMethod, int] = field(
        default_factory=lambda: {"fork": 1_000_000, "spawn": 30_000_000, "forkserver": 2_000_000}
    )
    exit_cpu_ns: Mapping[StartMethod, int] = field(
        default_factory=lambda: {"fork": 800_000, "spawn": 5_000_000, "forkserver": 800_000}
    )
    start_call_ns: int = 600_000
    # The part of start_call after the child exists (os.fork returned): the child
    # is ready, and may run on another CPU, while the parent finishes start().
    start_return_ns: int = 300_000
    # What the first start() in a process costs more: it imports the start
    # method's Popen module (a child forked afterwards inherits the import).
    first_start_ns: int = 700_000
    # Queue: CPU time of a put/get step in the caller (put()/get() as the scenario
    # executor calls them); the feeder's pipe write, and the pickling/copy cost
    # per byte of a message.
    queue_put_ns: int = 5_000
    queue_get_ns: int = 10_000
    feeder_latency_ns: int = 30_000
    per_byte_ns: float = 0.5
    # Pipe (Connection): CPU time of a send/recv step.
    pipe_send_ns: int = 8_000
    pipe_recv_ns: int = 8_000
    # The same four calls run cold: CALL_COLD_AFTER_NS or more after the thread's
    # last Queue or Pipe call (after a computation, a sleep, a wait): their code
    # and data have left the caches. A get's cost is reckoned once it has its
    # item, so a get that waited that long runs cold too.
    queue_put_cold_ns: int = 40_000
    queue_get_cold_ns: int = 60_000
    pipe_send_cold_ns: int = 40_000
    pipe_recv_cold_ns: int = 60_000
    # What a put that waited that long for a free slot of a bounded queue costs
    # more: the semaphore's wake-up, and the rest of the put, cold.
    queue_put_wait_ns: int = 100_000
    # What a join that waited that long for its process (thread) costs: the
    # wake-up, the reaping of the child (waitpid) and the rest of join(), cold.
    # One that finds its process (thread) ended costs a few µs: not modelled.
    join_wait_ns: int = 70_000
    thread_join_wait_ns: int = 30_000
    # What a process's first get/put/send/recv/print costs more than later ones,
    # before it can block: the call's code and objects are first touched (in a
    # fork child each page first written is a copy-on-write fault). A first
    # put's feeder thread start is thread_start, besides.
    first_get_ns: int = 450_000
    first_put_ns: int = 250_000
    first_send_ns: int = 40_000
    first_recv_ns: int = 40_000
    first_print_ns: int = 50_000
    # What a feeder thread's first item costs it more than later ones.
    first_feed_ns: int = 300_000
    # What a pool worker's first job costs it more than later ones.
    first_job_ns: int = 1_000_000
    # Pool(): what the parent spends besides starting the workers (its pipes,
    # locks and helper threads).
    pool_create_ns: int = 1_000_000
    # Pool: per task in the parent (apply_async bookkeeping), per task in the
    # worker (get the task, run the loop, put the result), per result in the
    # parent's result handler (before the callback runs).
    pool_submit_ns: int = 10_000
    pool_worker_ns: int = 20_000
    pool_result_ns: int = 10_000
    # Pool, in the parent's helper threads: the task handler's per task (pickle
    # it and write it into the workers' pipe); one turn of the worker handler's
    # loop (check the workers, then wait() on their sentinels, the change
    # notifier and the result pipe, which wakes it for every result).
    pool_dispatch_ns: int = 10_000
    pool_maintain_ns: int = 15_000
    # The same steps, each as a whole, when the thread or process had waited at
    # least POOL_COLD_AFTER_NS for it (an apply's round trip; a result after a
    # long task): its code and data have left the caches, and the kernel's
    # wake-up is in it. Per task in a worker, the task handler and the result
    # handler; a turn of the worker handler's loop; and, in a caller woken from
    # waiting for a result, the wake-up and the fetch.
    pool_worker_cold_ns: int = 200_000
    pool_dispatch_cold_ns: int = 70_000
    pool_result_cold_ns: int = 120_000
    pool_maintain_cold_ns: int = 250_000
    pool_wake_cold_ns: int = 60_000
    # The interpreter's switch interval (sys.getswitchinterval()); and how long a
    # thread looping on system calls that return at once (a Pool's worker
    # handler while a result waits unread) keeps the GIL each time it gets it.
    gil_switch_interval_ns: int = 5_000_000
    gil_turn_ns: int = 350_000
    # CPU time of a print() of one line, flushed (a write to stdout).
    print_ns: int = 5_000
    # CPU time of a time.sleep() besides the sleeping: the call, and the
    # wake-up once the timer fires (longer after a longer sleep).
    sleep_ns: int = 60_000
    # Thread.start() in the starting thread: it waits until the new thread runs
    # (a user thread, or a Queue's feeder at the process's first put); and what
    # a process's first costs more.
    thread_start_ns: int = 100_000
    first_thread_start_ns: int = 200_000
    # What the main process runs once its code ends, before it joins its threads
    # and children: the interpreter's shutdown up to multiprocessing's exit function.
    shutdown_ns: int = 400_000
    # Of a process's exit (`shutdown_ns` for the main process, `exit_cpu_ns` for
    # a child), what multiprocessing's exit function runs between its two rounds
    # of finalizers (`active_children()`, its bookkeeping): after a Queue's close
    # has woken its feeder, before the join of that feeder.
    exit_function_ns: int = 30_000
    # CPU time of a process killed by a signal (terminate(), a daemon at its
    # parent's exit) before it has exited: the kernel's teardown of its memory
    # and files, in its main thread.
    kill_exit_ns: int = 700_000
    # Not CPU time: how long a task given a CPU that was idle waits before it
    # runs (the kernel wakes the CPU, with an interrupt, out of its idle loop).
    wake_up_ns: int = 25_000


@dataclass(frozen=True)
class Machine:
    cpus: int = 1
    policy: PolicyName = "linux"
    settings: PolicySettings = PolicySettings()
    context_switch_ns: int = 0
    start_method: StartMethod = "fork"
    costs: Costs = Costs()


@dataclass(frozen=True)
class CompareSettings:
    """Comparison levels a scenario exempts itself from, with the reason shown;
    and, for a scenario whose costs are idealised (`compare: {costs: profile}`),
    the costs the comparison's model runs with instead: its machine profile's."""

    skip: tuple[Literal["outcome", "order", "timing"], ...] = ()
    why: str = ""
    costs: Costs | None = None
    context_switch_ns: int | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    seed: int
    machine: Machine
    objects: Mapping[str, ObjectDef]
    functions: Mapping[str, FunctionDef]
    main: Block
    compare: CompareSettings = CompareSettings()
    source: str = ""  # the file it was loaded from


def as_compared(scenario: Scenario) -> Scenario:
    """The scenario as the comparison simulates it: with the profile's costs if
    it asks for them (see CompareSettings), on whatever CPUs and policy it has."""
    compare = scenario.compare
    if compare.costs is None:
        return scenario
    machine = replace(scenario.machine, costs=compare.costs)
    if compare.context_switch_ns is not None:
        machine = replace(machine, context_switch_ns=compare.context_switch_ns)
    return replace(scenario, machine=machine)


def pools_at_start(scenario: Scenario) -> list[str]:
    """The pools that exist from the main program's first line, like `p = Pool(4)`
    at the top of `if __name__ == '__main__'`: all but those a `with_pool` block
    creates."""
    in_with = {op.pool for op in walk(scenario.main) if isinstance(op, WithPool)}
    return [
        name
        for name, definition in scenario.objects.items()
        if isinstance(definition, PoolDef) and name not in in_with
    ]
