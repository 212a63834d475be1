"""Comparing a simulated trace with real ones, on the traces alone.

`compare_traces(sim, reals)` checks three levels, each with its own verdict
(see `sim.compare_outcome`, `sim.compare_order`, `sim.compare_timing`):

1. outcome — the same tasks, outputs, message counts, pool jobs, exit codes
   and causes, and the same deadlock verdict;
2. order — the happens-before rules hold in every trace, and where the
   scenario is deterministic the per-task state sequences are identical;
3. timing — the makespan, the time each task spends running, ready and
   blocked, and the pools' task waiting and turnaround times lie in the real
   runs' band, widened by a stated `Tolerance`.

A scenario may exempt itself from a level (`compare: {skip: [timing], why:
…}`): the level is reported as skipped, with the scenario's reason, and does
not count against the verdict. A scenario whose costs are idealised (a
textbook exercise's zero start-up costs) is simulated for the comparison with
its machine profile's costs instead (`compare: {costs: profile, why: …}`, see
`sim.compare_runs`); the simulated trace's header says so and so does the
report. `ComparisonReport.passed` is the verdict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

from sim import program as p
from sim.compare_facts import Facts, facts_of
from sim.compare_order import Determinism, order_checks
from sim.compare_outcome import outcome_checks
from sim.compare_report import (
    LEVELS,
    Check,
    ComparisonReport,
    Level,
    LevelReport,
    RunInfo,
    Tolerance,
    level_report,
)
from sim.compare_timing import timing_checks
from sim.real import host_steal
from sim.trace import Header, Trace, read_trace

__all__ = [
    "ComparisonReport",
    "Tolerance",
    "compare_files",
    "compare_traces",
    "determinism",
]


def compare_files(
    sim_path: str | Path,
    real_paths: Sequence[str | Path],
    *,
    scenario: p.Scenario | None = None,
    tolerance: Tolerance | None = None,
) -> ComparisonReport:
    """Compare trace files; raises `sim.trace.TraceError` for one that is not valid."""
    sim = read_trace(sim_path)
    reals = [read_trace(path) for path in real_paths]
    return compare_traces(
        sim,
        reals,
        scenario=scenario,
        tolerance=tolerance,
        paths=[str(sim_path), *map(str, real_paths)],
    )


# A simulated trace's header note: simulated with the profile's costs (`compare:
# {costs: profile}`), and why.
COSTS_NOTE = "costs_from_profile"


def compare_traces(
    sim: Trace,
    reals: Sequence[Trace],
    *,
    scenario: p.Scenario | None = None,
    tolerance: Tolerance | None = None,
    paths: Sequence[str] = (),
) -> ComparisonReport:
    """Compare a simulated trace with one or more real ones.

    `scenario`, when known, supplies its exemptions and tells whether it draws
    random durations; `paths` names the traces in the report (sim first)."""
    if not reals:
        raise ValueError("compare_traces needs at least one real trace")
    tol = tolerance or Tolerance()
    sim_facts = facts_of(sim, "model")
    real_facts = [facts_of(t, f"real {i}") for i, t in enumerate(reals, start=1)]
    skip = scenario.compare if scenario is not None else p.CompareSettings()
    kernel_states = all(_kernel_states(f.header) for f in real_facts)
    checks: dict[Level, list[Check]] = {
        "outcome": outcome_checks(sim_facts, real_facts),
        "order": order_checks(
            sim_facts, real_facts, determinism(sim.header, [t.header for t in reals], scenario)
        ),
        "timing": timing_checks(
            sim_facts,
            real_facts,
            tol,
            kernel_states=kernel_states,
            other_policy=_other_policy(real_facts),
        ),
    }
    levels = tuple(
        LevelReport(level, "skipped", why=skip.why)
        if level in skip.skip
        else level_report(level, checks[level])
        for level in LEVELS
    )
    names = iter(paths)
    return ComparisonReport(
        scenario=sim.header.scenario,
        sim=_info(sim_facts, next(names, "")),
        reals=tuple(_info(f, next(names, "")) for f in real_facts),
        levels=levels,
        tolerance=tol,
        notes=tuple(_notes(sim_facts, real_facts, kernel_states)),
    )


def _other_policy(reals: list[Facts]) -> str | None:
    """Why a real run did not run under the model's policy (or its quantum), if
    one did not."""
    for real in reals:
        for item in real.header.notes.get("not_enforced") or ():
            if str(item).startswith(("policy:", "quantum:")):
                return f"{real.label}: {item}"
    return None


def _kernel_states(header: Header) -> bool:
    return header.source != "real" or header.notes.get("kernel_trace") == "on"


def _info(facts: Facts, path: str) -> RunInfo:
    notes: dict[str, object] = {
        k: facts.header.notes[k]
        for k in ("kernel_trace", "not_enforced", "kernel_gaps", "host_steal")
        if k in facts.header.notes
    }
    return RunInfo(facts.label, path, facts.end.t, facts.span_ns, facts.end.status, notes)


def _notes(sim: Facts, reals: list[Facts], kernel_states: bool) -> Iterator[str]:
    if COSTS_NOTE in sim.header.notes:
        why = " ".join(str(sim.header.notes[COSTS_NOTE]).split())
        yield f"the model ran with the machine profile's costs, not the scenario's: {why}"
    if not kernel_states:
        yield (
            "some real runs have no kernel scheduler events: ready and running cannot be "
            "told apart there, so their times are not compared"
        )
    for real in reals:
        for item in real.header.notes.get("not_enforced", ()):
            yield f"{real.label}: not enforced: {item}"
    for real in reals:
        taken = host_steal.disturbance(real.header.notes)
        if taken is not None:
            yield (
                f"{real.label}: {taken}; the model has no such host, so this run's times "
                "are longer than the program's own"
            )


def determinism(
    sim: Header, reals: Sequence[Header], scenario: p.Scenario | None = None
) -> Determinism:
    """Whether the per-task state sequences must be identical, and why not."""
    cpus = sim.machine.get("cpus")
    if cpus != 1:
        return Determinism(False, f"{cpus} CPUs: which task runs where is up to the kernel")
    if sim.machine.get("policy") == "linux":
        return Determinism(
            False, "the model approximates Linux's fair scheduler; its slices are not the kernel's"
        )
    for i, real in enumerate(reals, start=1):
        not_enforced = real.notes.get("not_enforced") or []
        if not_enforced:
            return Determinism(False, f"real {i}: {not_enforced[0]}")
        affinity = (real.machine.get("enforced") or {}).get("affinity")
        if not isinstance(affinity, list) or len(affinity) != 1:
            return Determinism(False, f"real {i} was not pinned to one CPU")
    if scenario is not None and _draws_randomly(scenario):
        return Determinism(False, "the scenario draws random durations")
    return Determinism(True, "one CPU, the policy enforced, no random durations")


def _draws_randomly(scenario: p.Scenario) -> bool:
    random = (p.Uniform, p.Exponential, p.Normal)

    def block(ops: p.Block) -> bool:
        for op in ops:
            for f in dataclasses.fields(op):
                value = getattr(op, f.name)
                if isinstance(value, random):
                    return True
                nested = isinstance(value, tuple) and value and isinstance(value[0], p.Op)
                if nested and block(value):
                    return True
        return False

    return block(scenario.main) or any(block(f.body) for f in scenario.functions.values())
