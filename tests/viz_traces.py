"""Synthetic traces for the viz tests and benchmark, built with the dataclasses
of `sim.trace`: a hand-written producer/consumer run, and a small FCFS
scheduler that turns per-task scripts into a consistent trace of any size."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sim.trace import (
    Cause,
    End,
    Event,
    Header,
    JobEvent,
    MemorySink,
    MessageEvent,
    OutputEvent,
    StateChanged,
    TaskCreated,
    TaskKind,
    Trace,
)

MS = 1_000_000


def header(name: str, cpus: int, policy: str = "fcfs") -> Header:
    return Header(
        scenario=name,
        source="sim",
        machine={"cpus": cpus, "policy": policy, "quantum_ns": 10 * MS},
        seed=0,
        tool_version="test",
        python_version="3.11",
        clock_origin="simulated",
    )


def producer_consumer() -> Trace:
    """The reference text's Queue example on 2 CPUs, with a daemon that main's
    end kills and a feeder thread: p1 blocks on q.get until p2 puts."""
    ev: list[Event] = [
        TaskCreated(0, "main", "main", "main"),
        StateChanged(0, "main", "running", cpu=0),
        OutputEvent(1 * MS, "main", "main"),
        TaskCreated(2 * MS, "p1", "child", "p1", parent="main"),
        TaskCreated(3 * MS, "p2", "child", "p2", parent="main"),
        TaskCreated(3 * MS, "d1", "child", "d1", parent="main", daemon=True),
        StateChanged(4 * MS, "p1", "ready"),
        StateChanged(4 * MS, "p2", "ready"),
        StateChanged(4 * MS, "d1", "ready"),
        StateChanged(5 * MS, "p1", "running", cpu=1),
        StateChanged(6 * MS, "main", "blocked", reason="join p1"),
        StateChanged(6 * MS, "p2", "running", cpu=0),
        StateChanged(7 * MS, "p1", "blocked", reason="q.get"),
        StateChanged(7 * MS, "d1", "running", cpu=1),
        OutputEvent(8 * MS, "p2", "producer"),
        MessageEvent(9 * MS, "p2", "put", "q", 1, 64),
        TaskCreated(9 * MS, "p2.q.feeder", "feeder", "p2", parent="p2"),
        StateChanged(9 * MS, "p2.q.feeder", "ready"),
        StateChanged(10 * MS, "p1", "ready"),
        StateChanged(10 * MS, "d1", "ready"),
        StateChanged(10 * MS, "p1", "running", cpu=1),
        StateChanged(11 * MS, "p2", "blocked", reason="p2.q.feeder.flush"),
        StateChanged(11 * MS, "p2.q.feeder", "running", cpu=0),
        MessageEvent(12 * MS, "p1", "get", "q", 1, 64),
        OutputEvent(13 * MS, "p1", "consumer 2333"),
        StateChanged(14 * MS, "p2.q.feeder", "terminated", exit_code=0, cause="returned"),
        StateChanged(14 * MS, "p2", "ready"),
        StateChanged(15 * MS, "p1", "terminated", exit_code=0, cause="returned"),
        StateChanged(15 * MS, "main", "ready"),
        StateChanged(15 * MS, "p2", "running", cpu=1),
        StateChanged(16 * MS, "main", "running", cpu=0),
        StateChanged(17 * MS, "p2", "terminated", exit_code=0, cause="returned"),
        StateChanged(18 * MS, "d1", "terminated", exit_code=-15, cause="killed_as_daemon"),
        StateChanged(19 * MS, "main", "terminated", exit_code=0, cause="returned"),
    ]
    return Trace(header("producer-consumer", 2), tuple(ev), End(19 * MS, "complete"))


# --- scripted traces ----------------------------------------------------------


@dataclass(frozen=True)
class Run:
    ns: int


@dataclass(frozen=True)
class Block:
    reason: str
    ns: int


@dataclass(frozen=True)
class Put:
    obj: str
    msg: int


@dataclass(frozen=True)
class Get:
    obj: str
    msg: int


@dataclass(frozen=True)
class Job:
    op: str
    pool: str
    job: int


Step = Run | Block | Put | Get | Job


@dataclass(frozen=True)
class Script:
    name: str
    kind: TaskKind
    steps: tuple[Step, ...]
    process: str = ""
    daemon: bool = False
    exit_code: int = 0


def scripted(name: str, cpus: int, scripts: Iterable[Script]) -> Trace:
    """Run the scripts under FCFS on `cpus` CPUs: every task is created at 0 and
    queued in order; a Run holds a CPU, a Block gives it up for a fixed time,
    the other steps are instantaneous annotations made while running."""
    scripts = list(scripts)
    ev: list[Event] = []
    for s in scripts:
        ev.append(TaskCreated(0, s.name, s.kind, s.process or s.name, daemon=s.daemon))
    ready: deque[int] = deque()
    for i, s in enumerate(scripts):
        ev.append(StateChanged(0, s.name, "ready"))
        ready.append(i)
    pc = [0] * len(scripts)
    free = list(range(cpus))
    on_cpu: dict[int, int] = {}
    timers: list[tuple[int, int, int, str]] = []  # (t, seq, task, what)
    seq = 0
    t = 0

    def advance(i: int) -> None:
        """Run task i's instantaneous steps; then start its next timed step."""
        nonlocal seq
        s = scripts[i]
        while pc[i] < len(s.steps):
            step = s.steps[pc[i]]
            if isinstance(step, Put):
                ev.append(MessageEvent(t, s.name, "put", step.obj, step.msg, 64))
            elif isinstance(step, Get):
                ev.append(MessageEvent(t, s.name, "get", step.obj, step.msg, 64))
            elif isinstance(step, Job):
                ev.append(JobEvent(t, s.name, step.op, step.pool, step.job))  # type: ignore[arg-type]
            elif isinstance(step, Run):
                heapq.heappush(timers, (t + step.ns, seq, i, "ran"))
                seq += 1
                return
            else:
                cpu = on_cpu.pop(i)
                free.append(cpu)
                ev.append(StateChanged(t, s.name, "blocked", reason=step.reason))
                heapq.heappush(timers, (t + step.ns, seq, i, "woke"))
                seq += 1
                pc[i] += 1
                return
            pc[i] += 1
        cpu = on_cpu.pop(i)
        free.append(cpu)
        cause: Cause = "killed_as_daemon" if s.exit_code == -15 else "returned"
        ev.append(StateChanged(t, s.name, "terminated", exit_code=s.exit_code, cause=cause))

    while True:
        free.sort()
        while free and ready:
            i = ready.popleft()
            cpu = free.pop(0)
            on_cpu[i] = cpu
            ev.append(StateChanged(t, scripts[i].name, "running", cpu=cpu))
            advance(i)
        if not timers:
            break
        t, _, i, what = heapq.heappop(timers)
        if what == "ran":
            pc[i] += 1
            advance(i)
        else:
            ev.append(StateChanged(t, scripts[i].name, "ready"))
            ready.append(i)
    return Trace(header(name, cpus), tuple(ev), End(t, "complete"))


def pool_like(workers: int, jobs: int, cpus: int = 2, job_ns: int = 200_000) -> Trace:
    """A main process that submits `jobs` jobs and `workers` workers that take
    them in turn, each wait for work shown as a block on `pool.tasks.get`."""
    main_steps: list[Step] = [Run(50_000)]
    for j in range(jobs):
        main_steps += [Job("submit", "pool", j), Run(1_000)]
    main_steps.append(Block("pool.join", job_ns * (jobs // workers + 2)))
    per_worker: list[list[Step]] = [[] for _ in range(workers)]
    for j in range(jobs):
        w = per_worker[j % workers]
        # The first wait outlasts main's submissions, so no job starts unsubmitted.
        wait = 30_000 if w else 100_000 + 1_000 * jobs
        w += [Block("pool.tasks.get", wait), Job("start", "pool", j), Run(job_ns)]
        w += [Job("finish", "pool", j)]
    scripts = [Script("main", "main", tuple(main_steps))]
    for n, steps in enumerate(per_worker, start=1):
        scripts.append(Script(f"pool.worker{n}", "worker", tuple(steps), process=f"pool.worker{n}"))
    return scripted("pool-like", cpus, scripts)


# --- the shipped scenarios -----------------------------------------------------

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def shipped(name: str) -> Trace:
    """The simulated trace of scenarios/<name>.yaml."""
    from sim.kernel import sim_header, simulate
    from sim.scenario import load_scenario

    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    sink = MemorySink()
    result = simulate(scenario, sink)
    return Trace(sim_header(scenario), tuple(sink.events), result.end)


def shipped_names() -> list[str]:
    return sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
