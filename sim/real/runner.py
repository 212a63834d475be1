"""Real runs, start to finish: the public API of `sim.real`.

`run_scenario` runs a scenario through the executor (`python -m sim.real`);
`trace_program` runs any Python program unchanged. Both start the kernel's
scheduler trace if asked, start the root process with the probes injected (in
a session of its own, so a Ctrl-C reaches procsim and not the program), watch
it for the end, a deadlock, the time limit or an interrupt, kill whatever of
the run is left, and merge probe records and kernel events into one trace,
written atomically.
"""

from __future__ import annotations

import compileall
import contextlib
import os
import pickle
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import sim
from sim.program import Scenario, has_arrivals
from sim.real import cleanup, host_steal
from sim.real.executor import RunSpec
from sim.real.inject import BOOT_DIR, new_run_id, probe_environment
from sim.real.kernel_trace import KernelRecorder, KernelTraceUnavailable
from sim.real.merge import RunFacts, merge
from sim.real.policy import RT_BASE_PRIORITY, PolicyPlan, plan
from sim.real.records import Record, read_records
from sim.real.watch import DeadlockWatch
from sim.trace import End, EndStatus, Header, TraceWriter

KernelMode = Literal["auto", "on", "off"]
EXIT_CODES: dict[EndStatus, int] = {"complete": 0, "deadlock": 3, "timeout": 4, "interrupted": 130}
_POLL_S = 0.05  # how soon Ctrl-C and the timeout are acted on
# How often the deadlock watch looks at the run's threads in /proc: each look
# costs the supervisor 0.5-1 ms of CPU on the CPUs the run is measured on, and
# a verdict needs half a second of stillness anyway. A run shorter than this
# is never looked at.
_WATCH_EVERY_NS = 125_000_000
_LEFTOVER_S = 2.0  # how long processes of a finished run get to exit on their own
RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"


class RealRunError(Exception):
    """A run that could not be made; the message says why, for the user."""


@dataclass(frozen=True)
class RealResult:
    trace_path: Path
    end: End
    exit_code: int  # the CLI's: 0, 3 deadlock, 4 timeout, 130 interrupted
    kernel_status: str


@dataclass
class _Outcome:
    status: EndStatus
    stop_t: int
    root_exit: int | None = None
    root_exit_t: int | None = None


def run_scenario(
    scenario: Scenario,
    out: Path,
    *,
    kernel: KernelMode = "auto",
    start_method: str | None = None,
    timeout_s: float | None = None,
) -> RealResult:
    """Run `scenario` with real multiprocessing and write its trace to `out`."""
    method = start_method or scenario.machine.start_method
    if method not in ("fork", "spawn", "forkserver"):
        raise RealRunError(f"start method {method!r}: expected fork, spawn or forkserver")
    policy = plan(scenario.machine, has_arrivals(scenario))
    spec = RunSpec(scenario, method, policy.rt_policy, RT_BASE_PRIORITY, policy.priorities)
    machine = scenario.machine
    requested = {
        "cpus": machine.cpus,
        "policy": machine.policy,
        "quantum_ns": machine.settings.quantum_ns,
        "start_method": method,
    }
    with tempfile.TemporaryDirectory(prefix="procsim-real-") as tmp:
        work = Path(tmp)
        spec_path = work / "run.pickle"
        spec_path.write_bytes(pickle.dumps(spec))
        return _run(
            [sys.executable, "-m", "sim.real", str(spec_path)],
            out,
            kernel,
            timeout_s,
            work,
            name=scenario.name,
            seed=scenario.seed,
            machine={**requested, "requested": requested, "enforced": policy.enforced},
            notes={"start_method": method, "source_file": scenario.source}
            if scenario.source
            else {"start_method": method},
            policy=policy,
            executor=True,
        )


def trace_program(
    argv: list[str], out: Path, *, kernel: KernelMode = "auto", timeout_s: float | None = None
) -> RealResult:
    """Run any Python program (`argv`, e.g. ["python", "prog.py"]) and write its trace."""
    if not argv:
        raise RealRunError("nothing to run: give the program after `--`, e.g. -- python prog.py")
    if shutil.which(argv[0]) is None:
        raise RealRunError(f"cannot run {argv[0]!r}: no such program")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory(prefix="procsim-trace-") as tmp:
        return _run(
            list(argv),
            out,
            kernel,
            timeout_s,
            Path(tmp),
            name=Path(argv[1]).stem if len(argv) > 1 else Path(argv[0]).name,
            seed=0,
            machine={"cpus": cpus, "policy": "linux"},
            notes={"argv": list(argv)},
            policy=None,
            executor=False,
        )


def compile_runtime() -> None:
    """Byte-compile the probe runtime and its boot `sitecustomize`, so that every
    process of a run loads them from their cache instead of compiling them
    (PYTHONDONTWRITEBYTECODE would otherwise make each of them pay ~25 ms).
    A read-only install keeps the cost."""
    with contextlib.suppress(OSError):
        for directory in (RUNTIME_DIR, BOOT_DIR):
            compileall.compile_dir(str(directory), quiet=2)


def start_kernel(
    mode: KernelMode, work: Path, keep: bool = True
) -> tuple[KernelRecorder | None, str]:
    """The kernel recorder for `mode`, recording, and what the header says of it."""
    if mode == "off":
        return None, "off"
    recorder = KernelRecorder(work, keep)
    try:
        recorder.start()
    except (KernelTraceUnavailable, OSError) as exc:
        if mode == "on":
            raise RealRunError(f"kernel tracing unavailable: {exc}") from None
        return None, f"unavailable: {exc}"
    return recorder, "on"


@contextmanager
def _interrupts(flag: threading.Event) -> Iterator[None]:
    """Ctrl-C sets `flag` instead of raising, while the run is supervised."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_sig: int, _frame: FrameType | None) -> None:
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _supervise(
    proc: subprocess.Popen[bytes],
    probe_dir: Path,
    timeout_s: float | None,
    stop: threading.Event,
    scenario_run: bool,
) -> _Outcome:
    exited = threading.Event()
    exit_t: list[int] = []

    def waiter() -> None:
        proc.wait()
        exit_t.append(time.monotonic_ns())
        exited.set()

    threading.Thread(target=waiter, name="procsim-wait", daemon=True).start()
    deadline = None if timeout_s is None else time.monotonic_ns() + int(timeout_s * 1e9)
    watch = DeadlockWatch(probe_dir, every_wait_seen=scenario_run)
    look_at = time.monotonic_ns() + _WATCH_EVERY_NS
    while not exited.wait(_POLL_S):
        now = time.monotonic_ns()
        if stop.is_set():
            return _Outcome("interrupted", now)
        if deadline is not None and now >= deadline:
            return _Outcome("timeout", now)
        if now >= look_at:
            look_at = now + _WATCH_EVERY_NS
            if watch.check(proc.pid, now):
                return _Outcome("deadlock", now)
    return _Outcome("complete", exit_t[0], proc.returncode, exit_t[0])


def _run(
    argv: list[str],
    out: Path,
    mode: KernelMode,
    timeout_s: float | None,
    work: Path,
    *,
    name: str,
    seed: int,
    machine: dict[str, Any],
    notes: dict[str, Any],
    policy: PolicyPlan | None,
    executor: bool,
) -> RealResult:
    if mode not in ("auto", "on", "off"):
        raise RealRunError(f"--kernel {mode!r}: expected auto, on or off")
    compile_runtime()
    with tempfile.TemporaryDirectory(prefix="procsim-probes-", dir=memory_dir()) as probes:
        return _run_with_probes(
            argv, out, mode, timeout_s, work, Path(probes),
            name=name, seed=seed, machine=machine, notes=notes, policy=policy, executor=executor,
        )  # fmt: skip


def memory_dir() -> str | None:
    """A RAM-backed directory for the record files when there is one: a page of
    a record file on disk costs a block allocation the first time it is written."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _run_with_probes(
    argv: list[str],
    out: Path,
    mode: KernelMode,
    timeout_s: float | None,
    work: Path,
    probe_dir: Path,
    *,
    name: str,
    seed: int,
    machine: dict[str, Any],
    notes: dict[str, Any],
    policy: PolicyPlan | None,
    executor: bool,
) -> RealResult:
    run_id = new_run_id()
    recorder, kernel_status = start_kernel(mode, work)
    env = probe_environment(probe_dir, run_id, importable=executor, schedstat=recorder is not None)
    stop = threading.Event()
    proc: subprocess.Popen[bytes] | None = None
    outcome: _Outcome | None = None
    cpus = _run_cpus(policy)
    steal_before = host_steal.sample(cpus)
    try:
        with _interrupts(stop):
            try:
                proc = subprocess.Popen(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    preexec_fn=policy.apply if policy is not None else None,
                )
            except OSError as exc:
                raise RealRunError(f"cannot start {argv[0]!r}: {exc.strerror}") from None
            outcome = _supervise(proc, probe_dir, timeout_s, stop, executor)
            if outcome.status == "complete":
                cleanup.wait_for_run(None, run_id, _LEFTOVER_S)
    finally:
        if proc is not None:
            cleanup.kill_run(proc.pid, run_id)
            proc.wait()
        steal = host_steal.between(steal_before, host_steal.sample(cpus))
        if recorder is not None:
            recorder.stop()
    assert outcome is not None
    records = read_records(probe_dir)
    root = [r for r in records if r.pid == proc.pid]
    if not root:
        raise RealRunError(
            f"no probe records from {argv[0]!r} (exit code {proc.returncode}): its Python did "
            "not load procsim's probes (not CPython 3.11+, or run with -I, -E or -S?)"
        )
    t0 = _time_zero(root, executor)
    end_t = outcome.stop_t if outcome.status in ("timeout", "interrupted") else None
    facts = RunFacts(
        root_pid=proc.pid,
        t0=t0,
        end_t=end_t if end_t is not None else max(outcome.stop_t, records[-1].t),
        status=outcome.status,
        root_exit=outcome.root_exit,
        root_exit_t=outcome.root_exit_t,
        detail=_detail(outcome),
        pool_worker_names=executor,
    )
    merged = merge(records, facts, recorder.events() if recorder is not None else None)
    stats = merged.stats
    python = _mark(root, "python") or platform.python_version()
    if not executor:  # what the program used; "none" if it started no process
        machine["start_method"] = "+".join(sorted(stats.start_methods)) or "none"
    notes = {
        **notes,
        "kernel_trace": kernel_status,
        "states": (
            "exact: kernel scheduler events (perf, CLOCK_MONOTONIC); reasons from the probes"
            if recorder is not None
            else "probe-only: ready and running are not told apart (blocked = inside a "
            "blocking call, running = anywhere else)"
        ),
        "python_version": python,
        "message_sizes": "bytes on the wire (the pickled message)",
        "tasks": stats.tasks,
        "not_enforced": list(policy.not_enforced) if policy is not None else [],
    }
    if recorder is not None:
        notes["kernel_gaps"] = stats.gaps
        notes["uncertain_intervals"] = stats.uncertain
        notes["kernel_tasks"] = stats.kernel_tasks
        if stats.schedstat:
            notes["schedstat_check"] = stats.schedstat
    if stats.garbled:
        notes["garbled_reads"] = stats.garbled
    if steal is not None:
        notes["host_steal"] = steal
    header = Header(
        scenario=name,
        source="real",
        machine=machine,
        seed=seed,
        tool_version=sim.__version__,
        python_version=python,
        clock_origin=f"CLOCK_MONOTONIC {t0} ns",
        notes=notes,
    )
    with TraceWriter(out, header) as writer:
        for event in merged.events:
            writer.emit(event)
        path = writer.close(merged.end)
    return RealResult(path, merged.end, EXIT_CODES[merged.end.status], kernel_status)


def _run_cpus(policy: PolicyPlan | None) -> tuple[int, ...] | None:
    """The CPUs the run may use: its pinning, else this process's own."""
    if policy is not None and policy.affinity is not None:
        return policy.affinity
    if hasattr(os, "sched_getaffinity"):
        return tuple(sorted(os.sched_getaffinity(0)))
    return None


def _time_zero(root: list[Record], executor: bool) -> int:
    """Time 0: the executor's start of `main`, or the traced program's first record."""
    if executor:
        for r in root:
            if r.kind == "H" and r.fields[0] == "main_begin":
                return r.t
    return root[0].t


def _mark(root: list[Record], what: str) -> str | None:
    for r in root:
        if r.kind == "H" and r.fields[0] == what and len(r.fields) > 1:
            return r.fields[1]
    return None


def _detail(outcome: _Outcome) -> str:
    return {
        "complete": "",
        "deadlock": "deadlock: every task of the program waits and nothing moves",
        "timeout": "timeout: the run went past its time limit and was stopped",
        "interrupted": "interrupted: the run was stopped by a signal (Ctrl-C)",
    }[outcome.status]
