"""Issue 3's performance target: the reference text's Pool example simulates in
at most 4x the time of a bare SimPy model of the same work.

procsim runs `scenarios/reference_pool_apply_async.yaml` (Pool(4), 10,000
apply_async with a callback, close, join) twice per round: with a sink that
drops every event, and streaming the trace to a temporary file. The bare model
is what SimPy alone costs for the same flow: a producer puts the tasks on a
`simpy.Store`, the pool's workers each get one, `yield env.timeout(...)` for the
task's CPU time and put the result on a second Store, which one consumer (the
callback) reads. Tasks, workers and the task's CPU time are read from the
scenario. Rounds are interleaved so that the machine's background load falls on
all three alike; medians are printed with their ratios to the bare model.
The target is the simulation's (events dropped); writing the trace is JSON
encoding and file output on top, reported beside it.

    python benchmarks/bench_pool.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import simpy

from sim import program as p
from sim.kernel import sim_header, simulate
from sim.scenario import load_scenario
from sim.trace import Event, TraceWriter

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "reference_pool_apply_async.yaml"
TARGET = 4.0


@dataclass(frozen=True)
class PoolShape:
    tasks: int
    workers: int
    task_ns: int


def shape_of(scenario: p.Scenario) -> PoolShape:
    """What the scenario's pool does: its submissions, workers and task's CPU time."""
    [submit] = [op for op in scenario.main if isinstance(op, p.ApplyAsync)]
    pool = scenario.objects[submit.pool]
    assert isinstance(pool, p.PoolDef)
    task_ns = sum(
        p.mean_ns(op.duration)
        for op in scenario.functions[submit.function].body
        if isinstance(op, p.Compute)
    )
    return PoolShape(submit.times, pool.workers or scenario.machine.cpus, task_ns)


def bare_simpy(shape: PoolShape) -> None:
    env = simpy.Environment()
    tasks: simpy.Store = simpy.Store(env)
    results: simpy.Store = simpy.Store(env)

    def producer() -> simpy.events.ProcessGenerator:
        for i in range(shape.tasks):
            yield tasks.put(i)

    def worker() -> simpy.events.ProcessGenerator:
        while True:
            item = yield tasks.get()
            yield env.timeout(shape.task_ns)
            yield results.put(item + 1)

    def consumer() -> simpy.events.ProcessGenerator:
        for _ in range(shape.tasks):
            yield results.get()

    env.process(producer())
    for _ in range(shape.workers):
        env.process(worker())
    done = env.process(consumer())
    env.run(until=done)


class DropEvents:
    def emit(self, event: Event) -> None:
        pass


def procsim_dropping(scenario: p.Scenario) -> None:
    result = simulate(scenario, DropEvents())
    assert result.end.status == "complete", result.end.detail


def procsim_to_file(scenario: p.Scenario, directory: Path) -> None:
    with TraceWriter(directory / "pool.jsonl", sim_header(scenario)) as writer:
        writer.close(simulate(scenario, writer).end)


def seconds(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    scenario = load_scenario(SCENARIO)
    shape = shape_of(scenario)
    with tempfile.TemporaryDirectory() as d:
        runs: dict[str, Callable[[], None]] = {
            "bare SimPy (2 Stores)": lambda: bare_simpy(shape),
            "procsim, events dropped": lambda: procsim_dropping(scenario),
            "procsim, trace to a file": lambda: procsim_to_file(scenario, Path(d)),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, fn in runs.items():
                times[name].append(seconds(fn))
        trace_bytes = (Path(d) / "pool.jsonl").stat().st_size
    medians = {name: statistics.median(t) for name, t in times.items()}
    bare = medians["bare SimPy (2 Stores)"]
    print(
        f"{scenario.name}: {shape.tasks} tasks, {shape.workers} workers, "
        f"{shape.task_ns} ns each; median of {args.rounds} interleaved rounds"
    )
    for name, median in medians.items():
        spread = f"{min(times[name]):.3f}-{max(times[name]):.3f} s"
        print(f"  {name:26} {median:7.3f} s  ({spread})  {median / bare:5.2f}x bare")
    print(f"  trace file: {trace_bytes / 1e6:.1f} MB")
    ratio = medians["procsim, events dropped"] / bare
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"target: the simulation <= {TARGET:.0f}x bare: {ratio:.2f}x, {verdict}")
    written = medians["procsim, trace to a file"] - medians["procsim, events dropped"]
    print(f"writing the trace adds {written:.3f} s (JSON encoding and the file)")


if __name__ == "__main__":
    main()
