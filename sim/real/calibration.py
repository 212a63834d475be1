"""Measuring what multiprocessing and the scheduler cost on this machine.

`measure(progress)` runs small real programs and returns a `MachineProfile`
whose fields are the simulator's cost parameters (see `sim.calibrate`). Each
figure is the median of many samples, so the odd run disturbed by another
process does not move it. What each one times, and how it maps onto the model:

- process start, per start method: `start_cost`, the CPU time the child runs
  before its target (its thread CPU clock as the target begins), and
  `exit_cost`, what it runs after (its CPU time in all, less that) — a
  forkserver's children are not ours to see, so they take fork's exit figure;
  the CPU time of `start()` in the parent and the latency from `start()`
  returning to the target running are reported; `shutdown`, the CPU time the
  main process runs from its last line to joining the children still running;
- a scenario's spawn step as the executor runs it (main starts children back to
  back, then joins them): `start_call`, main's CPU time from one spawn to the
  next; `start_return`, the part of it after `os.fork` returned (the child
  exists); `first_start`, what the first spawn takes more (it imports the start
  method's Popen module);
- a child's calls as the executor makes them (the op's step, its payload and
  the probes included), none of which waits: `queue_put`/`queue_get`,
  `pipe_send`/`pipe_recv` and `print` (a flushed line to stdout), the CPU time
  of a call once a few of its kind have been made; `first_get`, `first_put`,
  `first_send`, `first_recv`, `first_print`, what the child's first call of
  the kind costs more (first touches of code and objects, copy-on-write
  faults; less `thread_start` for a put, which starts the feeder); and
  `first_feed`, what a feeder's first item takes more, from the put's return
  to the return of a get waiting for it, than a later item; `first_job`, what
  a pool worker's first job (an empty function of the scenario) costs it more
  than a later one; `first_thread_start`, what the child's first `thread` step
  takes more wall time than a later one (the child starts its threads before
  its first put, so that its feeder's start is not its first); `sleep`, the CPU
  time of a 5 ms `sleep` step (the call and the wake-up: more after a longer
  sleep, measured 40–50 µs after 2 ms and 135 µs after 10 ms);
  `exit_function`, the CPU time of multiprocessing's exit function between
  its two rounds of finalizers (`active_children()` and its bookkeeping): from
  the end of the child's last Queue close, which woke the feeder, to the join
  of that feeder;
- the same child's calls made cold, each after 5 ms of computation:
  `queue_put_cold`, `queue_get_cold`, `pipe_send_cold` and `pipe_recv_cold`,
  their CPU time; and `queue_put_wait`, what a put into a full queue of one
  slot, which waits about 5 ms for it, costs more than a `queue_put`;
- joins as the executor makes them: `join_wait`, main's CPU time in a join of
  a child that computes 5 ms (the join waits for it); `thread_join_wait`, the
  child's in a join of a thread that sleeps 5 ms (one that computed would keep
  the GIL, so that `start()` returned only once it had ended). Main also joins
  12 children that have ended, back to back: reported (`details.calls_ns.join`,
  2–3 µs), not modelled;
- Queue: `feeder_latency`, put→get of a small item into a consumer already
  waiting, less the CPU time of the bare `put()` it was timed from (the model
  charges the rest to the feeder thread); `per_byte`, half the slope of that
  latency against the message size (the model pickles once on each side);
- Pipe: the send→recv latency, reported;
- `pool_create`: the parent's time in `Pool()` besides starting the workers
  (its queues, locks and threads): the wall time of Pool(1), in which the
  parent also waits for each of its threads to start, less a bare `start()`; the
  intercept of Pool(1)'s and Pool(3)'s CPU times is reported too;
- `thread_start`: the wall time of `Thread.start()`, which waits until the new
  thread has run;
- `gil_turn`: how long the Pool's worker handler keeps the GIL each time it
  gets it while a result waits unread in the result pipe (CPython's wait()
  there watches that pipe too, so the loop spins): with callbacks slower than
  the tasks, its CPU time over the number of switch intervals the callbacks
  last;
- Pool, set up as the reference text's example (4 workers, `apply_async` of a
  tiny function with a callback), the CPU time per task of each of its parts:
  `pool_submit` in the submitting thread, `pool_dispatch` in the task handler,
  `pool_maintain` in the worker handler (a turn of its loop per result: its
  wait() watches the result pipe), `pool_result` in the result handler, and the
  workers' (reported); the same workload, written as a scenario
  (`sim.calibrate_pool`), is run by the scenario executor in a root process of
  its own, as real runs run, and its wall time is reported beside the model's
  run of it with the measured costs (the parent's threads take turns with the
  GIL, so their CPU times add up to about the makespan); `pool_worker` is the
  CPU time of its workers per task, less their start-ups and exits (the
  executor's job adds to a bare function's);
- the same parts when every step waits first (`pool_*_cold`): `apply` of a
  task that computes 5 ms, one after another, on 2 workers: each thread and
  worker has waited that long before its step, and runs it cold (the caller's
  part, `pool_wake_cold`, is its CPU time per apply less a busy pool's
  `pool_submit`);
- `kill_exit`: the executor runs a scenario whose main spawns children that
  sleep, and terminates and joins each: a child's CPU time from just before
  the SIGTERM to its becoming a zombie (the kernel's teardown of the process);
- context switch: a one-byte ping-pong between two processes pinned to one
  CPU, less the same writes and reads done without switching;
- `wake_up`: the same ping-pong between two processes pinned to two CPUs, each
  waiting with its CPU idle: half the round trip, less the writes and reads;
- the fair scheduler's effective slice: two CPU-bound processes pinned to one
  CPU, the upper quartile of the lengths of their uninterrupted runs, each
  process reading its CPU clock in a loop as a real run's `compute` does (a
  loop that never enters the kernel runs on to the timer tick: reported too);
- the RR timeslice as the kernel reports it for a SCHED_RR process
  (`sched_rr_get_interval`), or from `/proc` without the rights to set one.

The only module of procsim that runs real processes for calibration; the
children's targets are module-level functions so every start method can run them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import multiprocessing
import os
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim import program as p
from sim.calibrate import MachineProfile
from sim.calibrate_pool import modelled_pool_run_ns, pool_workload
from sim.real import host_steal
from sim.real.executor import RunSpec
from sim.real.inject import new_run_id, probe_environment
from sim.real.runtime.recorder import DIR_ENV, ROOT_ENV

if TYPE_CHECKING:
    from sim.real.runner import KernelMode

Progress = Callable[[str, float], None]  # what is being measured, fraction done (0..1)

_now = time.monotonic_ns
_cpu = time.thread_time_ns

# Sample counts: enough for a stable median, small enough to stay well under a minute.
START_SAMPLES: dict[p.StartMethod, int] = {"fork": 30, "forkserver": 10, "spawn": 6}
QUEUE_CALLS = 2_000
LATENCY_ROUNDS = 300
SIZES = (64, 16 * 1024, 256 * 1024, 1024 * 1024)
SIZE_ROUNDS = 40
RR_SYSCTL = "/proc/sys/kernel/sched_rr_timeslice_ms"
POOL_TASKS = 4_000
SPAWN_CHILDREN = 8
CALLS = 12  # of each kind, in the calls run
CALL_SLEEP_NS = 5_000_000  # the calls run's timed sleeps (its puts are spaced by 2 ms ones)
# The calls run's cold calls each follow a computation this long (in scenarios,
# of 1-10 ms: a call costs more after a longer one); its puts into a full queue
# each wait about CALL_SLOT_WAIT_NS.
CALL_COLD_GAP_NS = 5_000_000
CALL_SLOT_WAIT_NS = 5_000_000
POOL_WORKERS = 4
POOL_CREATE_SAMPLES = 10
SLOW_CALLBACKS, SLOW_TASK_NS, SLOW_CALLBACK_NS = 8, 5_000_000, 20_000_000
COLD_APPLIES, COLD_WORKERS = 20, 2  # apply() of SLOW_TASK_NS tasks: every step waits
PINGS = 3_000
THREAD_STARTS = 200
KILLS = 8  # processes SIGTERMed while they sleep, their teardown timed
SPIN_NS = 200_000_000
GAP_NS = 30_000  # a pause longer than this in a spinning loop means another task ran


REPEATS = 5  # each measurement runs this often; the median of the runs is kept
PROBED_ENV = "PROCSIM_CALIBRATE_PROBED"  # set for a measuring process run under probes
PROBES_NOTE = "on: measured with procsim's probes installed, as in procsim's real runs"
KERNEL_NOTE = (
    "on: measured while perf recorded the scheduler's events, as in kernel-traced real runs"
)


class CalibrationError(Exception):
    """A measurement could not be made; `str()` says why."""


def measure(
    progress: Progress | None = None, probes: bool = True, kernel: KernelMode = "auto"
) -> MachineProfile:
    """Measure this machine; `progress` is told what runs and how far along it is.

    With `probes`, every measurement runs with procsim's probes installed, as
    they are in the real runs the model is compared with (a child process of
    this one measures, under the probe environment a real run has); without,
    the figures are those of programs run without procsim. `kernel`: record
    the scheduler's events meanwhile, as a real run with kernel tracing does
    (`auto`: when perf can), and throw them away: tracing costs every context
    switch and wake-up something, and the runs the model is compared with pay it.
    What the host took from the CPUs meanwhile (steal, on a virtual machine) is
    noted in `measured.host_steal`: it makes every figure longer."""
    report = progress or (lambda _label, _done: None)
    # Imported here, not by the measuring process: a fork costs more the more
    # its parent has loaded.
    from sim.real.runner import RealRunError, start_kernel

    with tempfile.TemporaryDirectory(prefix="procsim-calibrate-") as work:
        try:
            recorder, status = start_kernel(kernel, Path(work), keep=False)
        except RealRunError as exc:
            raise CalibrationError(str(exc)) from None
        steal_before = host_steal.sample()
        try:
            profile = _measure_probed(report, recorder is not None) if probes else _measure(report)
        finally:
            if recorder is not None:
                recorder.stop()
        steal = host_steal.between(steal_before, host_steal.sample())
    measured = {**profile.measured, "kernel_trace": KERNEL_NOTE if status == "on" else status}
    if steal is not None:
        measured["host_steal"] = steal
    return dataclasses.replace(profile, measured=measured)


def _measure_probed(report: Progress, schedstat: bool) -> MachineProfile:
    """`_measure` in a child process run under the probes, as `procsim real` runs a
    scenario's root process (`schedstat`: with kernel tracing)."""
    from sim.real import cleanup
    from sim.real.runner import memory_dir

    with tempfile.TemporaryDirectory(prefix="procsim-calibrate-", dir=memory_dir()) as records:
        run_id = new_run_id()
        env = probe_environment(Path(records), run_id, importable=True, schedstat=schedstat)
        env[PROBED_ENV] = "1"
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_CODE], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            return _read_measurements(proc, report)
        finally:
            cleanup.kill_run(proc.pid, run_id)
            proc.wait()


_CHILD_CODE = "from sim.real.calibration import serve; serve()"


def _read_measurements(proc: subprocess.Popen[str], report: Progress) -> MachineProfile:
    """Pass on the measuring process's progress lines; its profile, from its last line."""
    assert proc.stdout is not None
    profile: MachineProfile | None = None
    for line in proc.stdout:
        kind, _, rest = line.rstrip("\n").partition("\t")
        if kind == "progress":
            done, _, label = rest.partition("\t")
            report(label, float(done))
        elif kind == "profile":
            profile = MachineProfile(**json.loads(rest))
    if proc.wait() != 0 or profile is None:
        raise CalibrationError(f"the measuring process failed (exit code {proc.returncode})")
    return profile


def serve() -> None:
    """The measuring process's entry: progress and then the profile, one per line."""

    def report(label: str, done: float) -> None:
        print(f"progress\t{done}\t{label}", flush=True)

    profile = _measure(report)
    print(f"profile\t{json.dumps(dataclasses.asdict(profile))}", flush=True)


def _measure(report: Progress) -> MachineProfile:
    methods = [m for m in START_SAMPLES if m in multiprocessing.get_all_start_methods()]
    # (label, share of the total time, what to run): each runs REPEATS times.
    steps: list[tuple[str, float, Callable[[], Any]]] = [
        *(
            (
                f"process start ({m})",
                0.3 / len(methods),
                functools.partial(_start_costs, m, START_SAMPLES[m]),
            )
            for m in methods
        ),
        ("spawns as a scenario runs them", 0.1, _spawn_run),
        ("calls as a scenario makes them", 0.05, _calls_run),
        ("Queue put/get costs", 0.05, _queue_call_costs),
        ("Queue latency and cost per byte", 0.15, lambda: [_queue_latency(n) for n in SIZES]),
        ("Pipe latency and cost per byte", 0.1, lambda: [_pipe_latency(n) for n in SIZES]),
        ("Pool per-task overhead", 0.1, _pool_costs),
        ("Pool per-task overhead, each step after a wait", 0.05, _pool_cold_costs),
        ("Pool run, start to join", 0.1, _pool_run),
        ("Pool creation", 0.05, _pool_create),
        ("Pool worker handler's turns", 0.1, _gil_turn),
        ("thread start", 0.02, _thread_start),
        ("a killed process's teardown", 0.03, _kill_exit),
        ("context switch", 0.05, _context_switch),
        ("wake-up of an idle CPU", 0.05, _wake_up),
        ("fair scheduler slice", 0.1, functools.partial(_fair_slice, True)),
        ("timer tick", 0.05, functools.partial(_fair_slice, False)),
        ("RR timeslice", 0.02, _rr_timeslice),
    ]
    total = sum(share for _label, share, _run in steps)
    done = 0.0
    results: list[Any] = []
    for label, share, run in steps:
        runs = []
        for _ in range(REPEATS):
            report(label, min(done, 1.0))
            runs.append(run())
            done += share / total / REPEATS
        results.append(_median_of(runs))
    start = dict(zip(methods, results[: len(methods)], strict=True))
    (
        spawns,
        calls,
        (bare_put_ns, bare_get_ns),
        queue_lat,
        pipe_lat,
        pool,
        cold,
        (pool_run_ns, pool_workers_cpu_ns),
        created,
        turn_ns,
        thread_start_ns,
        kill_exit_ns,
    ) = results[len(methods) : -5]
    pool_wall_ns, pool_create_cpu_ns, pool_worker_start_ns = created
    (switch_ns, ping_ns), (wake_ns, cross_ping_ns), slice_ns, tick_ns, rr_ns = results[-5:]
    queue_latency = dict(zip(SIZES, queue_lat, strict=True))
    pipe_latency = dict(zip(SIZES, pipe_lat, strict=True))
    call_cpu = {m: figures[1] for m, figures in start.items()}
    # Pool() is longer than its CPU time: the parent waits while each of its three
    # threads starts (Thread.start() hands over the GIL) and while its semaphores
    # are made. What Pool(1) takes, besides its one start() call, is charged.
    pool_create_ns = max(0, pool_wall_ns - call_cpu.get("fork", min(call_cpu.values())))
    start_cpu: dict[p.StartMethod, int] = {m: figures[2] for m, figures in start.items()}
    # A forkserver child ends as a fork child does (os._exit after its target).
    exit_cpu: dict[p.StartMethod, int] = {
        m: figures[3] for m, figures in start.items() if figures[3]
    }
    # A fork child's as a scenario's spawn makes it: under the probes, a third
    # more than a bare Process's start-up and exit above.
    start_cpu["fork"], exit_cpu["fork"] = spawns["child_start"], spawns["child_exit"]
    if "fork" in exit_cpu and "forkserver" in start:
        exit_cpu["forkserver"] = exit_cpu["fork"]
    queue_slope, pipe_slope = _slope(queue_latency), _slope(pipe_latency)
    details: dict[str, Any] = {
        "start_call_cpu_ns": call_cpu,
        # start() returning → the target running, on a machine with CPUs to spare.
        "start_latency_ns": {m: figures[0] for m, figures in start.items()},
        "first_start_call_ns": {m: figures[4] for m, figures in start.items()},
        # A scenario's spawn op, run by the executor: main's CPU time per spawn.
        "spawn_op_ns": spawns,
        # A child's calls, made by the executor: a later call's CPU time, the first's.
        "calls_ns": calls,
        # Queue.put()/get() called in a loop, without the executor's op step.
        "bare_queue_call_ns": {"put": bare_put_ns, "get": bare_get_ns},
        # Sizes as text: the keys a profile file and the measuring process's report give.
        "queue_latency_ns": {str(size): ns for size, ns in queue_latency.items()},
        "pipe_latency_ns": {str(size): ns for size, ns in pipe_latency.items()},
        "pool_per_task_ns": pool,
        "pool_per_task_cold_ns": cold,
        "pool_run_ns": {"tasks": POOL_TASKS, "workers": POOL_WORKERS, "real": pool_run_ns},
        "pool_worker_start_call_ns": pool_worker_start_ns,
        "pool_create_cpu_ns": pool_create_cpu_ns,
        "pool1_wall_ns": pool_wall_ns,
        "ping_pong_round_trip_ns": ping_ns,
        "cross_cpu_ping_pong_round_trip_ns": cross_ping_ns,
        "context_switch_ns": switch_ns,
        # A CPU-bound task that never enters the kernel runs on to the next tick.
        "slice_without_system_calls_ns": tick_ns,
        "rr_timeslice_source": _rr_source(rr_ns),
    }
    per_byte = max(0.0, (queue_slope + pipe_slope) / 4)  # half of each slope, averaged
    details["per_byte_slope_ns"] = {"queue": round(queue_slope, 3), "pipe": round(pipe_slope, 3)}
    costs: dict[str, float] = {
        "start_call_ns": spawns["call"],
        "start_return_ns": spawns["after_fork"],
        # The first start() in a process imports the start method's Popen module.
        "first_start_ns": spawns["first"],
        "shutdown_ns": start["fork"][6] if "fork" in start else min(f[6] for f in start.values()),
        "exit_function_ns": calls["exit_function"],
        "queue_put_ns": calls["put"],
        "queue_get_ns": calls["get"],
        # The latency was timed from a bare put(): the rest is the feeder's.
        "feeder_latency_ns": max(0, queue_latency[SIZES[0]] - bare_put_ns),
        "per_byte_ns": round(per_byte, 3),
        "pipe_send_ns": calls["send"],
        "pipe_recv_ns": calls["recv"],
        "queue_put_cold_ns": calls["cold_put"],
        "queue_get_cold_ns": calls["cold_get"],
        "pipe_send_cold_ns": calls["cold_send"],
        "pipe_recv_cold_ns": calls["cold_recv"],
        # It began as a put made back to back with the one before.
        "queue_put_wait_ns": max(0, calls["put_wait"] - calls["put"]),
        "join_wait_ns": calls["join_waited"],
        "thread_join_wait_ns": calls["thread_join_waited"],
        "first_get_ns": max(0, calls["first_get"] - calls["get"]),
        # A child's first put also starts the Queue's feeder, not its first thread.
        "first_put_ns": max(0, calls["first_put"] - calls["put"] - thread_start_ns),
        "first_send_ns": max(0, calls["first_send"] - calls["send"]),
        "first_recv_ns": max(0, calls["first_recv"] - calls["recv"]),
        "first_print_ns": max(0, calls["first_print"] - calls["print"]),
        # The feeder's first item: its put-to-get time, less a later item's.
        "first_feed_ns": max(0, calls["first_feed"] - calls["feed"]),
        "first_job_ns": max(0, calls["first_job"] - calls["job"]),
        # The child's first less its later ones: the model adds thread_start to both.
        "first_thread_start_ns": max(0, calls["first_thread_start"] - calls["thread_start"]),
        "pool_create_ns": pool_create_ns,
        "pool_submit_ns": pool["submit"],
        # As the executor runs a scenario's job (`pool_job`, its result's bytes),
        # less the workers' start-up and exit: more than a bare function's.
        "pool_worker_ns": max(
            0,
            round(
                (pool_workers_cpu_ns - POOL_WORKERS * (start_cpu["fork"] + exit_cpu["fork"]))
                / POOL_TASKS
            ),
        )
        if "fork" in exit_cpu
        else pool["worker"],
        "pool_result_ns": pool["result_handler"],
        "pool_dispatch_ns": pool["task_handler"],
        "pool_maintain_ns": pool["worker_handler"],
        "pool_worker_cold_ns": cold["worker"],
        "pool_dispatch_cold_ns": cold["task_handler"],
        "pool_result_cold_ns": cold["result_handler"],
        "pool_maintain_cold_ns": cold["worker_handler"],
        # The caller's apply, less a submission in a busy pool.
        "pool_wake_cold_ns": max(0, cold["caller"] - pool["submit"]),
        "gil_switch_interval_ns": round(sys.getswitchinterval() * 1e9),
        "gil_turn_ns": turn_ns,
        "print_ns": calls["print"],
        "sleep_ns": calls["sleep"],
        "thread_start_ns": thread_start_ns,
        "kill_exit_ns": kill_exit_ns,
        "wake_up_ns": wake_ns,
    }
    profile = MachineProfile(
        cpus=len(os.sched_getaffinity(0)),
        context_switch_ns=switch_ns,
        linux_base_slice_ns=slice_ns,
        rr_timeslice_ns=rr_ns or None,
        start_cpu_ns=start_cpu,
        exit_cpu_ns=exit_cpu,
        costs={k: (v if k == "per_byte_ns" else round(v)) for k, v in costs.items()},
        measured={
            "host": platform.node(),
            "probes": PROBES_NOTE if os.environ.get(PROBED_ENV) else "off",
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "cpu": _cpu_model(),
            "details": details,
        },
    )
    report("modelling the Pool workload", min(done, 1.0))
    # The model's run of the Pool workload with these costs, beside the real one.
    modelled = modelled_pool_run_ns(profile.machine(), POOL_TASKS, POOL_WORKERS, 0)
    pool_run = {**details["pool_run_ns"], "model": modelled}
    with_model = {**profile.measured, "details": {**details, "pool_run_ns": pool_run}}
    report("done", 1.0)
    return dataclasses.replace(profile, measured=with_model)


# --- process start --------------------------------------------------------------

# Run as a program of its own (a file, so that spawn children can import its
# target) that has loaded what the root process of a real run loads
# (`sim.real.executor`) and no more: a fork costs more the more memory the
# parent has mapped, and a spawn child re-imports the parent's main module.
# Each child is a scenario's child as the executor makes it (`child_main`
# running an empty function, with the run's `Shared` as its argument), so the
# figures are those of the real runs the model is compared with, not those of
# a bare Process. The target sends the child's CPU time so far (its start-up);
# the parent adds up the child's CPU time in all once it has been joined
# (start-up, target and exit). Last, as a scenario's main code often does, it
# ends with a child still running: the CPU time from its last line to the join
# that multiprocessing's exit function makes is the main process's shutdown,
# printed on a line of its own.
_START_SCRIPT = """
import json, multiprocessing, resource, sys, time
from multiprocessing import process
from sim import program as p
from sim.real import executor
shutdown_from = None
original_join = process.BaseProcess.join
def join(self, timeout=None):
    global shutdown_from
    if shutdown_from is not None:
        print(time.thread_time_ns() - shutdown_from, flush=True)
        shutdown_from = None
    original_join(self, timeout)
process.BaseProcess.join = join
def pause():
    time.sleep(0.05)
def children_cpu_ns():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((usage.ru_utime + usage.ru_stime) * 1e9)
def target(writer, shared):
    writer.send(time.thread_time_ns())
    executor.child_main(shared, "child", "f", None)
def main(method, samples):
    ctx = multiprocessing.get_context(method)
    scenario = p.Scenario(
        name="calibrate", description="", seed=0, machine=p.Machine(start_method=method),
        objects={}, functions={"f": p.FunctionDef("f", ())}, main=(),
    )
    shared = executor.Shared(executor.RunSpec(scenario, method), {}, time.monotonic_ns())
    out = {"latency": [], "cpu": [], "start_up": [], "exit": [], "first_call": 0, "first_cpu": 0}
    for i in range(samples + 1):
        reader, writer = ctx.Pipe(duplex=False)
        before = children_cpu_ns()
        t0, c0 = time.monotonic_ns(), time.thread_time_ns()
        proc = ctx.Process(name="child", target=target, args=(writer, shared), daemon=True)
        proc.start()
        c1, t1 = time.thread_time_ns(), time.monotonic_ns()
        if i == 0:
            out["first_call"] = t1 - t0
            out["first_cpu"] = c1 - c0
        start_up = reader.recv()
        began = time.monotonic_ns()
        proc.join()
        writer.close()
        reader.close()
        if i > 0:  # the first start warms up imports (and starts a forkserver)
            out["latency"].append(began - t1)
            out["cpu"].append(c1 - c0)
            out["start_up"].append(start_up)
            # A forkserver's children are its own: their CPU time is not ours to see.
            if method != "forkserver":
                out["exit"].append(max(0, children_cpu_ns() - before - start_up))
    print(json.dumps(out), flush=True)
    ctx.Process(target=pause).start()
    global shutdown_from
    shutdown_from = time.thread_time_ns()
if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
"""


def _child_environment() -> dict[str, str]:
    """The environment of a measuring program: procsim importable and, when this
    process measures under probes, the probes installed with it as their root."""
    env = {**os.environ, "PYTHONPATH": _package_root()}
    if DIR_ENV in env:
        env[ROOT_ENV] = "1"
    return env


def _package_root() -> str:
    """The folder `sim` is imported from, with what PYTHONPATH already held."""
    root = str(Path(__file__).resolve().parents[2])
    return os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))


def _start_costs(method: str, samples: int) -> tuple[int, int, int, int, int, int, int]:
    """Medians of: the latency (start() returned → target runs), the CPU time of
    start() in the parent, the child's CPU time before its target and after it
    (0 where it cannot be seen); the wall time of the first start() (a
    forkserver's includes starting the server) and its CPU time in the parent;
    and the main process's shutdown up to joining its children."""
    with tempfile.TemporaryDirectory(prefix="procsim-calibrate-") as folder:
        script = Path(folder) / "start_costs.py"
        script.write_text(_START_SCRIPT, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, str(script), method, str(samples)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env=_child_environment(),
        )
    figures, shutdown = done.stdout.splitlines()
    out = json.loads(figures)
    return (
        _median(out["latency"]),
        _median(out["cpu"]),
        _median(out["start_up"]),
        _median(out["exit"]) if out["exit"] else 0,
        int(out["first_call"]),
        int(out["first_cpu"]),
        int(shutdown),
    )


# The start of a program that has the executor run the RunSpec pickled on its
# stdin, its op handlers timed by a `timed(kind)` of its own into `marks`.
_EXECUTOR_SCRIPT = """
import json, os, pickle, resource, sys, time
from sim import program as p
from sim.real import executor
spec = pickle.loads(sys.stdin.buffer.read())
marks = []
"""


def _run_executor_script(script: str, scenario: p.Scenario) -> bytes:
    """What a program that has the executor run `scenario` (fork) printed, run
    as a root process of its own (under the probes when this process measures
    with them); it reads the RunSpec on its stdin."""
    return subprocess.run(
        [sys.executable, "-c", script],
        input=pickle.dumps(RunSpec(scenario, "fork")),
        capture_output=True,
        timeout=120,
        check=True,
        env=_child_environment(),
    ).stdout


# Spawns, as a real run's main makes them: the executor runs a scenario whose main
# starts SPAWN_CHILDREN children back to back (each runs an empty function) and
# then joins them, in a root process of its own. Main's thread CPU clock is read
# as each spawn op begins, as os.fork returns in it, and as the join begins; each
# child's as its interpreter begins its function's steps; and, once main has
# joined them, its children's CPU time in all.
_SPAWN_SCRIPT = (
    _EXECUTOR_SCRIPT
    + """
def timed(kind):
    run = executor._HANDLERS[kind]
    def handler(interp, op):
        marks.append((kind.__name__, time.thread_time_ns()))
        run(interp, op)
    executor._HANDLERS[kind] = handler
timed(p.Spawn)
timed(p.Join)
root = os.getpid()
interpreter_run = executor.Interpreter.run
def timed_run(self, block):  # a child's, as it begins its function's steps
    if os.getpid() != root:  # one write: the children share the pipe
        os.write(1, f"start_up {time.thread_time_ns()}\\n".encode())
    interpreter_run(self, block)
executor.Interpreter.run = timed_run
fork = os.fork
def timed_fork():
    pid = fork()
    if pid:
        marks.append(("fork", time.thread_time_ns()))
    return pid
os.fork = timed_fork
executor.run(spec)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print("children", round((usage.ru_utime + usage.ru_stime) * 1e9))
print(json.dumps(marks))
"""
)


def _spawn_workload() -> p.Scenario:
    names = [f"c{i}" for i in range(1, SPAWN_CHILDREN + 1)]
    return p.Scenario(
        name="calibration-spawns",
        description="",
        seed=0,
        machine=p.Machine(),
        objects={},
        functions={"f": p.FunctionDef("f", ())},
        main=(
            *(p.Spawn(name=name, target="f") for name in names),
            p.Join(names=tuple(names)),
        ),
    )


def _spawn_run() -> dict[str, int]:
    """A scenario's spawn op as the executor runs it, in main's CPU time: `call`,
    from one spawn to the next (Process(), start() with the probes, the child's
    priority, the interpreter's step); `after_fork`, the part of it after the
    child exists (os.fork returned); `first`, what the first spawn takes more.
    And its children's CPU time: `child_start`, from the fork to the first step
    of its function (a child's CPU clock starts at the fork), and `child_exit`,
    the rest of a child whose function is empty (its whole CPU time, from the
    RUSAGE_CHILDREN main reads once it has joined them all)."""
    lines = _run_executor_script(_SPAWN_SCRIPT, _spawn_workload()).splitlines()
    marks: list[tuple[str, int]] = json.loads(lines[-1])
    begins = [t for what, t in marks if what in ("Spawn", "Join")]
    forks = [t for what, t in marks if what == "fork"]
    start_ups = [int(line.split()[1]) for line in lines if line.startswith(b"start_up ")]
    children = [int(line.split()[1]) for line in lines if line.startswith(b"children ")]
    if (
        len(begins) != SPAWN_CHILDREN + 1
        or len(forks) != SPAWN_CHILDREN
        or len(start_ups) != SPAWN_CHILDREN
        or len(children) != 1
    ):
        raise CalibrationError(f"the spawn run printed {lines!r}")
    calls = [b - a for a, b in itertools.pairwise(begins)]
    after = [b - f for f, b in zip(forks, begins[1:], strict=True)]
    call = _median(calls[1:])
    return {
        "call": call,
        "after_fork": _median(after[1:]),
        "first": max(0, calls[0] - call),
        "child_start": _median(start_ups),
        "child_exit": max(0, (children[0] - sum(start_ups)) // SPAWN_CHILDREN),
    }


# A child's calls, as the executor makes them: main puts CALLS items into a Queue
# and sends CALLS messages down a Pipe, then starts a child that starts CALLS
# threads one after another (each does nothing), gets and receives them (all
# there already: no call waits), puts as many back one every 2 ms (main waits
# for each in get()), then as many into a third Queue back to back, sends as
# many back, prints as many lines and sleeps 5 ms as many times; last, main
# applies an empty function CALLS times to a Pool of one worker. Each op's CPU
# time is read on its task's thread clock, its end and its wall time on the
# monotonic clock; each process prints its own when its code ends, the worker
# each job's CPU time, and the child, in its exit function, the CPU time from
# closing its Queues (their feeders woken) to joining their feeders.
_CALLS_SCRIPT = (
    _EXECUTOR_SCRIPT
    + """
def timed(kind):
    run = executor._HANDLERS[kind]
    def handler(interp, op):
        c0, t0 = time.thread_time_ns(), time.monotonic_ns()
        run(interp, op)
        end = time.monotonic_ns()
        cpu = time.thread_time_ns() - c0
        obj = (
            getattr(op, "queue", None) or getattr(op, "end", None) or getattr(op, "name", None)
            or ",".join(getattr(op, "names", ()))
        )
        marks.append((kind.__name__, obj, cpu, end, end - t0))
    executor._HANDLERS[kind] = handler
for kind in (p.Get, p.Put, p.Send, p.Recv, p.Print, p.StartThread, p.Sleep, p.Join):
    timed(kind)
def report(who):
    # A line a mark, each in one write of under PIPE_BUF bytes: atomic, so the
    # processes' lines never interleave (with one print of all its marks, a
    # process's line was found run into another's now and then).
    for mark in marks:
        os.write(1, f"{who} {os.getpid()} {json.dumps(mark)}\\n".encode())
child_main = executor.child_main
def timed_child_main(*args):
    del marks[:]  # its parent's, copied by the fork
    child_main(*args)
    report("child")
executor.child_main = timed_child_main
pool_job = executor.pool_job
def timed_pool_job(*args):
    c0 = time.thread_time_ns()
    result = pool_job(*args)
    print("job", time.thread_time_ns() - c0, flush=True)
    return result
executor.pool_job = timed_pool_job
import multiprocessing
from multiprocessing import queues
finalize_close, finalize_join = queues.Queue._finalize_close, queues.Queue._finalize_join
closed = []
def timed_finalize_close(*args):
    finalize_close(*args)
    closed.append(time.thread_time_ns())
def timed_finalize_join(*args):  # the child's exit function, once it has closed them
    if closed and multiprocessing.parent_process() is not None:
        os.write(1, f"exit_function {time.thread_time_ns() - closed[-1]}\\n".encode())
        del closed[:]
    finalize_join(*args)
queues.Queue._finalize_close = staticmethod(timed_finalize_close)
queues.Queue._finalize_join = staticmethod(timed_finalize_join)
executor.run(spec)
report("main")
"""
)
_CALL_KINDS = {"Get": "get", "Put": "put", "Send": "send", "Recv": "recv", "Print": "print"}


# The calls run's children joined: those main waits for, and those already ended.
JOIN_WAITED, JOIN_ENDED = "w", "e"
JOIN_THREAD = "b"  # the child's threads it waits for


def _calls_workload() -> p.Scenario:
    def repeat(op: p.Op) -> p.Repeat:
        return p.Repeat(times=CALLS, body=(op,))

    gap = p.Compute(duration=p.Constant(CALL_COLD_GAP_NS))

    return p.Scenario(
        name="calibration-calls",
        description="",
        seed=0,
        machine=p.Machine(),
        objects={
            "q": p.QueueDef("q"),
            "back": p.QueueDef("back"),
            "more": p.QueueDef("more"),
            "c": p.PipeDef("c", ("a", "b")),
            "p": p.PoolDef("p", 1),
            "cold_get": p.QueueDef("cold_get"),
            "cold_put": p.QueueDef("cold_put"),
            "slot": p.QueueDef("slot", maxsize=1),
            "cold": p.PipeDef("cold", ("cold_a", "cold_b")),
        },
        functions={
            "f": p.FunctionDef(
                "f",
                (
                    *(p.StartThread(name=f"t{i}", target="nothing") for i in range(CALLS)),
                    repeat(p.Get(queue="q")),
                    repeat(p.Recv(end="b")),
                    p.Repeat(
                        times=CALLS,
                        body=(p.Put(queue="back"), p.Sleep(duration=p.Constant(2_000_000))),
                    ),
                    repeat(p.Put(queue="more")),
                    repeat(p.Send(end="b")),
                    repeat(p.Print(text="calibration")),
                    repeat(p.Sleep(duration=p.Constant(CALL_SLEEP_NS))),
                    *(
                        p.Repeat(times=CALLS, body=(gap, call))
                        for call in (
                            p.Get(queue="cold_get"),
                            p.Recv(end="cold_b"),
                            p.Put(queue="cold_put"),
                            p.Send(end="cold_b"),
                        )
                    ),
                    repeat(p.Put(queue="slot")),
                    *(
                        op
                        for i in range(CALLS)
                        for op in (
                            p.StartThread(name=f"{JOIN_THREAD}{i}", target="nap"),
                            p.Join(names=(f"{JOIN_THREAD}{i}",)),
                        )
                    ),
                ),
            ),
            "nothing": p.FunctionDef("nothing", ()),
            "busy": p.FunctionDef("busy", (gap,)),
            # A thread that computed would keep the GIL: its start() would return
            # only once it had ended, and the join would not wait.
            "nap": p.FunctionDef("nap", (p.Sleep(duration=p.Constant(CALL_COLD_GAP_NS)),)),
        },
        main=(
            repeat(p.Put(queue="q")),
            repeat(p.Send(end="a")),
            repeat(p.Put(queue="cold_get")),
            repeat(p.Send(end="cold_a")),
            p.Sleep(duration=p.Constant(20_000_000)),  # the feeders have written every item
            p.Spawn(name="c1", target="f"),
            repeat(p.Get(queue="back")),
            # Each get frees the slot the child's next put waits for.
            p.Repeat(
                times=CALLS,
                body=(p.Sleep(duration=p.Constant(CALL_SLOT_WAIT_NS)), p.Get(queue="slot")),
            ),
            p.Join(names=("c1",)),
            # Joins that wait for their child, then joins of children that have
            # ended, back to back.
            *(
                op
                for i in range(CALLS)
                for op in (
                    p.Spawn(name=f"{JOIN_WAITED}{i}", target="busy"),
                    p.Join(names=(f"{JOIN_WAITED}{i}",)),
                )
            ),
            *(p.Spawn(name=f"{JOIN_ENDED}{i}", target="nothing") for i in range(CALLS)),
            p.Sleep(duration=p.Constant(20_000_000)),  # every one of them has ended
            *(p.Join(names=(f"{JOIN_ENDED}{i}",)) for i in range(CALLS)),
            repeat(p.Recv(end="a")),
            repeat(p.Apply(pool="p", function="nothing")),
            p.PoolClose(pool="p"),
            p.PoolJoin(pool="p"),
        ),
    )


def _calls_run() -> dict[str, int]:
    """A child's get, put, send, recv and print as the executor makes them (the
    op's step, its payload, the probes): for each, `<kind>`, the CPU time of a
    call once the kind has been made a few times, and `first_<kind>`, the CPU
    time of the child's first (a put's includes starting the feeder thread);
    `feed` and `first_feed`, the time from a put's return to the return of the
    get waiting for its item, for later items and for the first; `job` and
    `first_job`, a pool worker's CPU time in a job of the scenario (an empty
    function), later and first; `thread_start` and `first_thread_start`, the
    wall time of a `thread` step, later and the child's first (it waits until
    the new thread has run); `sleep`, the CPU time of a 5 ms `sleep` step;
    `exit_function`, the child's CPU time in multiprocessing's exit function
    from the end of its last Queue's close to the join of the first feeder. A
    put's cost is timed on the puts made back to back (one after a pause costs
    more); `cold_<kind>` of a get, recv, put or send, the CPU time of the call
    made after CALL_COLD_GAP_NS of computation; `put_wait`, of a put into a
    full queue of one slot, which waits about CALL_SLOT_WAIT_NS for it;
    `join_waited`, main's CPU time in a join of a child that computes
    CALL_COLD_GAP_NS, and `join`, in one of a child that has ended;
    `thread_join_waited`, the child's in a join of a thread that sleeps
    CALL_COLD_GAP_NS."""
    out = _run_executor_script(_CALLS_SCRIPT, _calls_workload())
    marks: dict[str, list[tuple[str, str, int, int, int]]] = {}
    jobs: list[int] = []
    exit_function: list[int] = []
    by_process: dict[tuple[str, str], list[tuple[str, str, int, int, int]]] = {}
    for line in out.decode().splitlines():
        who, _, rest = line.partition(" ")
        pid, _, mark = rest.partition(" ")
        if who in ("child", "main") and pid.isdigit() and mark.startswith("["):
            by_process.setdefault((who, pid), []).append(tuple(json.loads(mark)))
        elif who in ("job", "exit_function") and rest.isdigit():
            (jobs if who == "job" else exit_function).append(int(rest))
    for (who, _pid), recorded in by_process.items():
        # Of the children, c1 makes the calls; the joined ones make none.
        if len(recorded) > len(marks.get(who, [])):
            marks[who] = recorded
    times: dict[str, list[int]] = {}
    cold: dict[str, list[int]] = {}
    slot: list[int] = []
    starts: list[int] = []
    sleeps: list[int] = []
    for kind, obj, ns, _end, wall in marks.get("child", []):
        if kind == "Join" or (kind == "StartThread" and obj.startswith(JOIN_THREAD)):
            continue
        if kind == "StartThread":
            starts.append(wall)
        elif kind == "Sleep":
            sleeps.append(ns)
        elif obj == "slot":
            slot.append(ns)
        elif obj.startswith("cold_"):
            cold.setdefault(_CALL_KINDS[kind], []).append(ns)
        elif obj != "back":  # the spaced puts: timed for their items' way only
            times.setdefault(_CALL_KINDS[kind], []).append(ns)
    joins: dict[str, list[int]] = {JOIN_WAITED: [], JOIN_ENDED: []}
    for kind, name, ns, _end, _wall in marks.get("main", []):
        if kind == "Join" and name[:1] in joins and name[1:].isdigit():
            joins[name[:1]].append(ns)
    thread_joins = [ns for kind, _n, ns, _e, _w in marks.get("child", []) if kind == "Join"]
    child = marks.get("child", [])
    spaced = [(ns, end) for _kind, queue, ns, end, _wall in child if queue == "back"]
    got = [end for _kind, queue, _ns, end, _wall in marks.get("main", []) if queue == "back"]
    if (
        sorted(times) != sorted(_CALL_KINDS.values())
        or len(starts) != CALLS
        or len(sleeps) != 3 * CALLS  # the last CALLS: the joined threads' own
        or any(len(v) != CALLS for v in times.values())
        or sorted(cold) != ["get", "put", "recv", "send"]
        or any(len(v) != CALLS for v in cold.values())
        or len(slot) != CALLS
        or len(spaced) != CALLS
        or len(got) != CALLS
        or len(jobs) != CALLS
        or len(exit_function) != 1
        or any(len(v) != CALLS for v in joins.values())
        or len(thread_joins) != CALLS
    ):
        raise CalibrationError(f"the calls run recorded {marks!r}")
    figures: dict[str, int] = {}
    for kind, samples in times.items():
        figures[kind] = _median(samples[2:])  # the second call still touches pages
        figures[f"first_{kind}"] = samples[0]
    # The process's first put is the first spaced one (it starts the first feeder).
    figures["first_put"] = spaced[0][0]
    feeds = [end - put_end for (_ns, put_end), end in zip(spaced, got, strict=True)]
    figures["feed"] = _median(feeds[2:])
    figures["first_feed"] = feeds[0]
    figures["job"] = _median(jobs[2:])
    figures["first_job"] = jobs[0]
    figures["thread_start"] = _median(starts[2:])
    figures["first_thread_start"] = starts[0]
    figures["sleep"] = _median(sleeps[CALLS + 2 : 2 * CALLS])  # the 5 ms ones, after the second
    figures["exit_function"] = exit_function[0]
    # The first two of each: a put's starts its queue's feeder, and a put into
    # the full queue waits only once the next is ready to be got.
    for kind, samples in cold.items():
        figures[f"cold_{kind}"] = _median(samples[2:])
    figures["put_wait"] = _median(slot[2:])
    figures["join"] = _median(joins[JOIN_ENDED][2:])
    figures["join_waited"] = _median(joins[JOIN_WAITED][2:])
    figures["thread_join_waited"] = _median(thread_joins[2:])
    return figures


# --- Queue ----------------------------------------------------------------------


def _drain_queue(queue: Any, count: int, done: Connection) -> None:
    """Wait until `count` items are in, then get them, timing each get()."""
    times: list[int] = []
    got = 0
    # The first get waits for the producer; the rest find items already there.
    queue.get()
    got += 1
    time.sleep(0.05)
    while got < count:
        c0 = _cpu()
        queue.get()
        times.append(_cpu() - c0)
        got += 1
    done.send(_median(times))
    done.close()


def _queue_call_costs() -> tuple[int, int]:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    reader, writer = ctx.Pipe(duplex=False)
    # Items stay small so that all of them fit in the pipe: the gets never wait.
    count = min(QUEUE_CALLS, 600)
    consumer = ctx.Process(target=_drain_queue, args=(queue, count, writer), daemon=True)
    consumer.start()
    writer.close()
    queue.put(0)  # starts the feeder thread, which the timed puts then only wake
    puts: list[int] = []
    for i in range(1, count):
        c0 = _cpu()
        queue.put(i)
        puts.append(_cpu() - c0)
    get_ns = reader.recv()
    consumer.join()
    reader.close()
    queue.close()
    queue.join_thread()
    return _median(puts), int(get_ns)


def _echo_queue(inbox: Any, outbox: Any, rounds: int) -> None:
    """Get each item and put back the time it arrived."""
    for _ in range(rounds):
        inbox.get()
        outbox.put(_now())


def _queue_latency(size: int) -> int:
    """Median put→get time for items of `size` bytes into a waiting consumer."""
    ctx = multiprocessing.get_context("fork")
    inbox, outbox = ctx.Queue(), ctx.Queue()
    rounds = LATENCY_ROUNDS if size <= 64 else SIZE_ROUNDS
    echo = ctx.Process(target=_echo_queue, args=(inbox, outbox, rounds), daemon=True)
    echo.start()
    payload = b"x" * size
    samples: list[int] = []
    for _ in range(rounds):
        time.sleep(0.0005)  # let the consumer block in get() first
        t0 = _now()
        inbox.put(payload)
        samples.append(outbox.get() - t0)
    echo.join()
    for q in (inbox, outbox):
        q.close()
        q.join_thread()
    return _median(samples[len(samples) // 10 :])


# --- Pipe -----------------------------------------------------------------------


def _echo_pipe(conn: Connection, rounds: int) -> None:
    for _ in range(rounds):
        conn.recv()
        conn.send(_now())


def _pipe_latency(size: int) -> int:
    """Median send→recv time of `size` bytes into a waiting receiver (duplex Pipe)."""
    ctx = multiprocessing.get_context("fork")
    here, there = ctx.Pipe()
    rounds = LATENCY_ROUNDS if size <= 64 else SIZE_ROUNDS
    echo = ctx.Process(target=_echo_pipe, args=(there, rounds), daemon=True)
    echo.start()
    payload = b"x" * size
    samples: list[int] = []
    for _ in range(rounds):
        time.sleep(0.0005)
        t0 = _now()
        here.send(payload)
        samples.append(here.recv() - t0)
    echo.join()
    return _median(samples[len(samples) // 10 :])


# --- Pool -----------------------------------------------------------------------


def _tiny(i: int) -> int:
    return i + 1


def _burn(ns: int) -> None:
    end = _cpu() + ns
    while _cpu() < end:
        pass


def _slow_task(_i: int) -> int:
    _burn(SLOW_TASK_NS)
    return 0


def _slow_callback(_value: int) -> None:
    _burn(SLOW_CALLBACK_NS)


def _gil_turn() -> int:
    """How long the Pool's worker handler holds the GIL each time it gets it
    while a result waits unread (its wait() returns at once): callbacks slower
    than the tasks keep results waiting, the handler takes the GIL once per
    switch interval of callback time, and its CPU time over those turns is the
    length of one."""
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(2)
    try:
        pool.apply(_tiny, (0,))
        handler = f"/proc/self/task/{pool._worker_handler.native_id}/schedstat"  # type: ignore[attr-defined]
        before = _schedstat_cpu(handler)
        results = [
            pool.apply_async(_slow_task, (i,), callback=_slow_callback)
            for i in range(SLOW_CALLBACKS)
        ]
        for result in results:
            result.wait()
        spent = _schedstat_cpu(handler) - before
    finally:
        pool.terminate()
        pool.join()
    turns = SLOW_CALLBACKS * SLOW_CALLBACK_NS / (sys.getswitchinterval() * 1e9)
    return round(spent / turns)


def _idle() -> None:
    """The target of the threads whose start is timed."""


# A killed process's teardown, as in a real run: the executor runs a scenario
# whose main spawns KILLS children one after another, each sleeping, and
# terminates and joins each; the child's CPU time is read from /proc just
# before the SIGTERM and again once it is a zombie (torn down, not yet reaped).
_KILL_SCRIPT = (
    _EXECUTOR_SCRIPT
    + """
def cpu(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])
def zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
terminate = executor._HANDLERS[p.Terminate]
def timed_terminate(interp, op):
    pid = interp.children[op.name].pid
    before = cpu(pid)
    terminate(interp, op)
    deadline = time.monotonic() + 5
    while not zombie(pid) and time.monotonic() < deadline:
        time.sleep(0.0002)
    marks.append(cpu(pid) - before)
executor._HANDLERS[p.Terminate] = timed_terminate
executor.run(spec)
print(json.dumps(marks))
"""
)


def _kill_workload() -> p.Scenario:
    ops: list[p.Op] = []
    for i in range(KILLS):
        name = f"k{i}"
        ops += [
            p.Spawn(name=name, target="sleeper"),
            p.Sleep(duration=p.Constant(20_000_000)),  # it is asleep by then
            p.Terminate(name=name),
            p.Join(names=(name,)),
        ]
    return p.Scenario(
        name="calibration-kills",
        description="",
        seed=0,
        machine=p.Machine(),
        objects={},
        functions={
            "sleeper": p.FunctionDef("sleeper", (p.Sleep(duration=p.Constant(60 * 10**9)),))
        },
        main=tuple(ops),
    )


def _kill_exit() -> int:
    """CPU time a child SIGTERMed while it sleeps runs before it has exited (the
    kernel tears its memory and files down in its main thread)."""
    out = _run_executor_script(_KILL_SCRIPT, _kill_workload())
    samples = json.loads(out.decode().splitlines()[-1])
    if len(samples) != KILLS:
        raise CalibrationError(f"the kill run recorded {samples!r}")
    return _median(samples)


def _thread_start() -> int:
    """Wall time of `Thread.start()`: it returns once the new thread has run
    and said so, which takes a GIL hand-over each way."""
    samples = []
    for _ in range(THREAD_STARTS):
        thread = threading.Thread(target=_idle)
        t0 = _now()
        thread.start()
        samples.append(_now() - t0)
        thread.join()
    return _median(samples)


def _schedstat_cpu(path: str) -> int:
    """CPU time (ns) from a /proc schedstat file; 0 once the task is gone."""
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


class _PoolParts:
    """CPU time read from /proc of a Pool's helper threads and its workers."""

    def __init__(self, pool: Any) -> None:
        threads = {
            "worker_handler": pool._worker_handler,
            "task_handler": pool._task_handler,
            "result_handler": pool._result_handler,
        }
        self._files = {n: f"/proc/self/task/{t.native_id}/schedstat" for n, t in threads.items()}
        self._workers = [f"/proc/{w.pid}/schedstat" for w in pool._pool]
        self._before = self._read()

    def _read(self) -> dict[str, int]:
        spent = {n: _schedstat_cpu(f) for n, f in self._files.items()}
        return {**spent, "worker": sum(map(_schedstat_cpu, self._workers))}

    def per_task(self, tasks: int) -> dict[str, float]:
        """Each part's CPU time since this object was made, per task."""
        now = self._read()
        return {n: (now[n] - self._before[n]) / tasks for n in now}


def _pool_costs() -> dict[str, int]:
    """Per-task CPU time of each part of a Pool running `apply_async` of a tiny
    function with a callback, set up as the reference text's example (4 workers)."""
    ctx = multiprocessing.get_context("fork")
    calls = 0

    def callback(_value: int) -> None:
        nonlocal calls
        calls += 1

    pool = ctx.Pool(POOL_WORKERS)
    try:
        pool.apply(_tiny, (0,))  # workers up and warm
        parts = _PoolParts(pool)
        c0 = _cpu()
        results = [pool.apply_async(_tiny, (i,), callback=callback) for i in range(POOL_TASKS)]
        submit_ns = (_cpu() - c0) / POOL_TASKS
        for result in results:
            result.wait()
        while calls < POOL_TASKS:  # the last callback runs just after its wait() returns
            time.sleep(0.001)
        spent = parts.per_task(POOL_TASKS)
    finally:
        pool.terminate()
        pool.join()
    return {"submit": round(submit_ns), **{name: round(ns) for name, ns in spent.items()}}


def _pool_cold_costs() -> dict[str, int]:
    """Per-task CPU time of each part of a Pool whose every step waits: `apply`
    of a task that computes SLOW_TASK_NS, one after another, so each thread and
    worker waits that long before its step (POOL_COLD_AFTER_NS or more). The
    caller's is its CPU time per apply (submit, wake-up, fetch); the workers'
    is besides the task's computing."""
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(COLD_WORKERS)
    try:
        pool.apply(_tiny, (0,))  # workers up
        parts = _PoolParts(pool)
        c0 = _cpu()
        for i in range(COLD_APPLIES):
            pool.apply(_slow_task, (i,))
        caller_ns = (_cpu() - c0) / COLD_APPLIES
        spent = parts.per_task(COLD_APPLIES)
    finally:
        pool.terminate()
        pool.join()
    spent["worker"] = max(0.0, spent["worker"] - SLOW_TASK_NS)
    return {"caller": round(caller_ns), **{name: round(ns) for name, ns in spent.items()}}


# The root of a real run, timing the executor's run of the pickled RunSpec on
# stdin; then the CPU time of its children, the pool's workers (joined by then).
_POOL_SCRIPT = """
import pickle, resource, sys, time
from sim.real import executor
spec = pickle.loads(sys.stdin.buffer.read())
began = time.monotonic_ns()
executor.run(spec)
print(time.monotonic_ns() - began)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(round((usage.ru_utime + usage.ru_stime) * 1e9))
"""


def _pool_run() -> tuple[int, int]:
    """Wall time of the Pool workload whose model run is reported beside it
    (`sim.calibrate_pool.pool_workload`: Pool(4), POOL_TASKS × apply_async with a
    callback, close(), join()), run as a real run runs it: by the scenario
    executor, in a root process of its own; and the CPU time its workers used
    in all."""
    scenario = pool_workload(p.Machine(), POOL_TASKS, POOL_WORKERS, 0)
    wall, workers_cpu = _run_executor_script(_POOL_SCRIPT, scenario).split()[-2:]
    return int(wall), int(workers_cpu)


def _pool_create() -> tuple[int, int, int]:
    """The wall time of Pool(1) in the parent; and its CPU time besides starting
    the workers, and per worker started: from Pool(1) and Pool(3), as intercept
    and slope."""
    ctx = multiprocessing.get_context("fork")
    cpu_medians, wall_medians = [], []
    for workers in (1, 3):
        cpu, wall = [], []
        for _ in range(POOL_CREATE_SAMPLES):
            c0, t0 = _cpu(), _now()
            pool = ctx.Pool(workers)
            cpu.append(_cpu() - c0)
            wall.append(_now() - t0)
            pool.close()
            pool.join()
        cpu_medians.append(statistics.median(cpu))
        wall_medians.append(statistics.median(wall))
    per_worker = (cpu_medians[1] - cpu_medians[0]) / 2
    return round(wall_medians[0]), max(0, round(cpu_medians[0] - per_worker)), round(per_worker)


# --- the scheduler ------------------------------------------------------------


def _pin(cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})


def _pong(cpu: int, rfd: int, wfd: int, rounds: int) -> None:
    _pin(cpu)
    for _ in range(rounds):
        os.read(rfd, 1)
        os.write(wfd, b"x")


def _ping_pong(mine: int, theirs: int) -> tuple[int, int]:
    """Median round trip of a one-byte ping-pong with a process pinned to CPU
    `theirs`, this one pinned to `mine`; and of the same writes and reads with
    nobody to switch to."""
    ctx = multiprocessing.get_context("fork")
    a_r, b_w = os.pipe()
    b_r, a_w = os.pipe()
    with _pinned(mine):
        child = ctx.Process(target=_pong, args=(theirs, b_r, b_w, PINGS), daemon=True)
        child.start()
        os.write(a_w, b"x")  # one warm-up round
        os.read(a_r, 1)
        rtts: list[int] = []
        for _ in range(PINGS - 1):
            t0 = _now()
            os.write(a_w, b"x")
            os.read(a_r, 1)
            rtts.append(_now() - t0)
        child.join()
        # The same system calls with nobody to switch to: write, then read back.
        local: list[int] = []
        for _ in range(PINGS):
            t0 = _now()
            os.write(a_w, b"x")
            os.read(b_r, 1)
            local.append(_now() - t0)
    for fd in (a_r, a_w, b_r, b_w):
        os.close(fd)
    return _median(rtts), _median(local)


def _context_switch() -> tuple[int, int]:
    """(switch cost, round-trip time) from a ping-pong between two processes on one CPU."""
    cpu = min(os.sched_getaffinity(0))
    rtt, local = _ping_pong(cpu, cpu)
    # A round trip is two writes, two reads and two switches.
    return max(0, (rtt - 2 * local) // 2), rtt


def _wake_up() -> tuple[int, int]:
    """(wake-up latency, round-trip time) from a ping-pong between two processes
    on two CPUs: each waits for the other with its CPU idle, so each message
    wakes an idle CPU (0, 0 with one CPU)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return 0, 0
    rtt, local = _ping_pong(cpus[0], cpus[1])
    return max(0, (rtt - 2 * local) // 2), rtt


@contextlib.contextmanager
def _pinned(cpu: int) -> Iterator[None]:
    saved = os.sched_getaffinity(0)
    _pin(cpu)
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def _spin(cpu: int, spin_ns: int, syscalls: bool, conn: Connection) -> None:
    """Burn the CPU for `spin_ns`; report the lengths of the uninterrupted runs.
    With `syscalls`, each turn of the loop reads the thread's CPU clock, a
    system call, as a scenario's `compute` does when it runs for real."""
    _pin(cpu)
    runs: list[int] = []
    start = last = run_start = _now()
    while last - start < spin_ns:
        if syscalls:
            _cpu()
        t = _now()
        if t - last > GAP_NS:
            runs.append(last - run_start)
            run_start = t
        last = t
    conn.send(runs[1:])  # the first run began before the other spinner started
    conn.close()


def _fair_slice(syscalls: bool) -> int:
    """The uninterrupted runs of two CPU-bound processes sharing one CPU.

    The kernel ends a slice when it next looks: a task that makes system calls
    is preempted when its slice is used up, one that never enters the kernel
    only at the next timer tick. Another task of the machine landing on the
    CPU cuts a run short, so the upper quartile is taken: the slice a task gets
    when nothing but its rival is there."""
    cpu = max(os.sched_getaffinity(0))
    ctx = multiprocessing.get_context("fork")
    pipes = [ctx.Pipe(duplex=False) for _ in range(2)]
    procs = [
        ctx.Process(target=_spin, args=(cpu, SPIN_NS, syscalls, tx), daemon=True)
        for _rx, tx in pipes
    ]
    for proc in procs:
        proc.start()
    runs: list[int] = []
    for rx, tx in pipes:
        tx.close()
        runs += rx.recv()
    for proc in procs:
        proc.join()
    return round(statistics.quantiles(runs, n=4)[2]) if len(runs) >= 2 else 0


def _rr_interval(conn: Connection) -> None:
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
        conn.send(round(os.sched_rr_get_interval(0) * 1e9))
    except OSError:
        conn.send(None)
    conn.close()


def _rr_timeslice() -> int:
    """The kernel's SCHED_RR quantum: asked of a SCHED_RR child when allowed,
    else read from /proc; 0 when neither works."""
    ctx = multiprocessing.get_context("fork")
    rx, tx = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_rr_interval, args=(tx,), daemon=True)
    child.start()
    tx.close()
    value = rx.recv()
    child.join()
    if isinstance(value, int) and value > 0:
        return value
    try:
        with open(RR_SYSCTL) as f:
            return int(f.read().strip()) * 1_000_000
    except (OSError, ValueError):
        return 0


def _rr_source(rr_ns: int) -> str:
    if rr_ns == 0:
        return "unknown: neither a SCHED_RR process nor " + RR_SYSCTL + " could tell"
    if os.geteuid() == 0:
        return "sched_rr_get_interval of a SCHED_RR process"
    return RR_SYSCTL


# --- helpers --------------------------------------------------------------------


def _median(values: list[int]) -> int:
    return round(statistics.median(values)) if values else 0


def _median_of(runs: list[Any]) -> Any:
    """The median of repeated results, figure by figure: of numbers, of tuples
    or lists (position by position) and of dicts (key by key)."""
    first = runs[0]
    if isinstance(first, dict):
        return {key: _median_of([run[key] for run in runs]) for key in first}
    if isinstance(first, tuple | list):
        merged = [_median_of([run[i] for run in runs]) for i in range(len(first))]
        return type(first)(merged)
    return round(statistics.median(runs))


def _slope(latency: dict[int, int]) -> float:
    """Least-squares slope of latency against size, in ns per byte."""
    xs, ys = list(latency), list(latency.values())
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    den = sum((x - mx) ** 2 for x in xs)
    return num / den if den else 0.0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
