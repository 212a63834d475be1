"""How fast this machine runs right now, and the model's costs scaled to it.

A shared virtual machine does not run at one speed: on this project's machine
kind the same pure-Python loop takes 27 or 46 ns per iteration depending on
what the host does, for minutes at a time. A `compute` step is CPU time and
takes as long either way, but the fixed work behind every modelled cost
(starting a process, a `put`, a Pool task) takes that much longer. A profile
records the loop's speed when its costs were measured (`measured.loop_ns`);
`procsim compare` measures it again before its real runs and scales the costs
by the ratio, so the model and the real runs it is checked against see the
same machine.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

from sim import program as p

LOOP_ITERATIONS = 100_000
LOOP_SAMPLES = 9


def loop_ns() -> float:
    """Nanoseconds of CPU time per iteration of a reference pure-Python loop
    (the median of a few short runs: about 30 ms in all)."""
    samples = []
    for _ in range(LOOP_SAMPLES):
        start = time.thread_time_ns()
        total = 0
        for i in range(LOOP_ITERATIONS):
            total += i
        samples.append((time.thread_time_ns() - start) / LOOP_ITERATIONS)
    return statistics.median(samples)


def scaled(machine: p.Machine, factor: float) -> p.Machine:
    """`machine` with its costs of work scaled by `factor`. Not scaled: what is
    a setting rather than work (the GIL's switch interval, the policies' slices)."""
    costs = machine.costs

    def ns(value: int) -> int:
        return round(value * factor)

    work = {
        name: ns(getattr(costs, name))
        for name in p.Costs.__dataclass_fields__
        if name.endswith("_ns") and name not in _SETTINGS and isinstance(getattr(costs, name), int)
    }
    return replace(
        machine,
        context_switch_ns=ns(machine.context_switch_ns),
        costs=replace(
            costs,
            **work,
            per_byte_ns=costs.per_byte_ns * factor,
            start_cpu_ns={m: ns(v) for m, v in costs.start_cpu_ns.items()},
            exit_cpu_ns={m: ns(v) for m, v in costs.exit_cpu_ns.items()},
        ),
    )


_SETTINGS = frozenset({"gil_switch_interval_ns"})
