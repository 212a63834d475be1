"""Producing the traces a comparison needs: one simulation and N real runs.

`record_runs` simulates the scenario and runs it for real `runs` times,
writing `sim.jsonl` and `real-1.jsonl` … into a directory, then compares them.
The real runs go through `sim.real` (imported when needed: it is the part of
procsim that runs processes). A real run gets a time limit well above what
the model predicts, so a run that hangs where the model does not is stopped
and reported rather than waited for. What the programs print goes to the
traces, not the terminal: the reference Pool example alone prints 10,000
lines a run.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sim import program as p
from sim.compare import COSTS_NOTE, compare_files
from sim.compare_report import ComparisonReport, Tolerance
from sim.kernel import sim_header, simulate
from sim.trace import TraceWriter

if TYPE_CHECKING:
    from sim.real import KernelMode

MIN_TIMEOUT_S = 10.0
TIMEOUT_FACTOR = 20  # × the simulated makespan


@dataclass(frozen=True)
class RecordedRuns:
    sim_path: Path
    real_paths: tuple[Path, ...]
    kernel_status: tuple[str, ...]  # per real run: "on", "off", "unavailable: …"


def real_timeout_s(sim_makespan_ns: int) -> float:
    return max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * sim_makespan_ns / 1e9)


def record_runs(
    scenario: p.Scenario,
    directory: Path,
    runs: int,
    *,
    kernel: KernelMode = "auto",
    start_method: str | None = None,
    timeout_s: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> RecordedRuns:
    """Simulate once and run for real `runs` times; `progress(i)` after each real run.
    Raises `sim.real.RealRunError` when a real run cannot be made."""
    sim_path, makespan_ns = record_simulation(scenario, directory)
    limit = timeout_s if timeout_s is not None else real_timeout_s(makespan_ns)
    paths: list[Path] = []
    statuses: list[str] = []
    for i in range(1, runs + 1):
        path, status = record_real_run(scenario, directory, i, kernel, start_method, limit)
        paths.append(path)
        statuses.append(status)
        if progress is not None:
            progress(i)
    return RecordedRuns(sim_path, tuple(paths), tuple(statuses))


def record_simulation(scenario: p.Scenario, directory: Path) -> tuple[Path, int]:
    """Simulate the scenario as a comparison models it into `directory`/sim.jsonl;
    the trace's path and the simulated makespan."""
    directory.mkdir(parents=True, exist_ok=True)
    sim_path = directory / "sim.jsonl"
    modelled = p.as_compared(scenario)
    header = sim_header(modelled)
    if modelled is not scenario:
        header = replace(header, notes={**header.notes, COSTS_NOTE: scenario.compare.why})
    with TraceWriter(sim_path, header) as writer:
        result = simulate(modelled, writer)
        writer.close(result.end)
    return sim_path, result.makespan_ns


def record_real_run(
    scenario: p.Scenario,
    directory: Path,
    number: int,
    kernel: KernelMode,
    start_method: str | None,
    timeout_s: float,
) -> tuple[Path, str]:
    """Run the scenario for real into `directory`/real-`number`.jsonl, its output
    kept from the terminal; the trace's path and the kernel trace's status."""
    from sim.real import run_scenario

    with _program_output_to_null():
        real = run_scenario(
            scenario,
            directory / f"real-{number}.jsonl",
            kernel=kernel,
            start_method=start_method,
            timeout_s=timeout_s,
        )
    return real.trace_path, real.kernel_status


@contextlib.contextmanager
def _program_output_to_null() -> Iterator[None]:
    """Point file descriptor 1 at /dev/null while a run starts its processes
    (they inherit it), and back afterwards; the probes still record every line."""
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def compare_scenario(
    scenario: p.Scenario,
    directory: Path,
    runs: int,
    *,
    kernel: KernelMode = "auto",
    start_method: str | None = None,
    timeout_s: float | None = None,
    tolerance: Tolerance | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[ComparisonReport, RecordedRuns]:
    """Record the runs into `directory` and compare them."""
    recorded = record_runs(
        scenario,
        directory,
        runs,
        kernel=kernel,
        start_method=start_method,
        timeout_s=timeout_s,
        progress=progress,
    )
    report = compare_files(
        recorded.sim_path, recorded.real_paths, scenario=scenario, tolerance=tolerance
    )
    return report, recorded
