"""Fitting a model parameter to a measured run, where measuring it directly falls short.

A Pool's per-task cost is not the sum of its parts: the parent's four threads
(the submitting one and the worker, task and result handlers) hand the GIL to
each other for every task, and each hand-over costs a wake-up the model does
not itemise. Measured one thread at a time the parts add up to about half of
what a real Pool run takes. So `fit_pool_result` simulates the same Pool
workload that was run for real and searches the result handler's per-task
cost (`pool_result`) for which the model's makespan equals the measured one.
"""

from __future__ import annotations

import dataclasses

from sim import program as p
from sim.kernel import simulate
from sim.trace import MemorySink

TOLERANCE = 0.01  # stop when the model's makespan is within 1% of the measured one
MAX_STEPS = 20
UPPER_NS = 1_000_000  # no per-result cost is anywhere near 1 ms


def pool_workload(machine: p.Machine, tasks: int, workers: int, task_ns: int) -> p.Scenario:
    """`Pool(workers)`, `tasks` × apply_async of a `task_ns` function with a
    callback that does nothing, then close() and join(): the scenario that
    `sim.real.calibration` has the scenario executor run for real."""
    return p.Scenario(
        name="calibration-pool",
        description="",
        seed=0,
        machine=machine,
        objects={"p": p.PoolDef("p", workers)},
        functions={
            "task": p.FunctionDef("task", (p.Compute(duration=p.Constant(task_ns)),)),
            "callback": p.FunctionDef("callback", ()),
        },
        main=(
            p.ApplyAsync(pool="p", function="task", times=tasks, callback="callback"),
            p.PoolClose(pool="p"),
            p.PoolJoin(pool="p"),
        ),
    )


def _makespan(scenario: p.Scenario, pool_result_ns: int) -> int:
    costs = dataclasses.replace(scenario.machine.costs, pool_result_ns=pool_result_ns)
    machine = dataclasses.replace(scenario.machine, costs=costs)
    return simulate(dataclasses.replace(scenario, machine=machine), MemorySink()).makespan_ns


def fit_pool_result(
    machine: p.Machine, measured_ns: int, tasks: int, workers: int, task_ns: int
) -> int:
    """The `pool_result_ns` for which the model's run of the workload takes
    `measured_ns`; 0 when even that is slower than measured (the other costs
    already account for it all)."""
    scenario = pool_workload(machine, tasks, workers, task_ns)
    lo, hi = 0, UPPER_NS
    if _makespan(scenario, lo) >= measured_ns:
        return 0
    for _ in range(MAX_STEPS):
        mid = (lo + hi) // 2
        got = _makespan(scenario, mid)
        if abs(got - measured_ns) <= TOLERANCE * measured_ns:
            return mid
        if got < measured_ns:
            lo = mid
        else:
            hi = mid
    return (lo + hi) // 2
