"""The calibration's Pool workload, as a scenario the model and the executor both run.

`procsim calibrate` measures a Pool's per-task costs thread by thread (the
submitting thread, the task, worker and result handlers, the workers), and runs
this workload for real with the scenario executor. The model's run of the same
scenario with the measured costs is reported next to the real one: the
parent's threads take turns with the GIL, so how long the workload takes is
the model's prediction from its parts, not a sum anyone wrote down.
"""

from __future__ import annotations

from sim import program as p
from sim.kernel import simulate
from sim.trace import MemorySink


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


def modelled_pool_run_ns(machine: p.Machine, tasks: int, workers: int, task_ns: int) -> int:
    """The model's makespan of `pool_workload` on `machine`."""
    return simulate(pool_workload(machine, tasks, workers, task_ns), MemorySink()).makespan_ns
