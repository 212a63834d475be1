"""Commands that produce or read traces: `simulate`, `metrics`, `export`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sim.cli.app import ExitCode, app, console, err_console
from sim.export import export_csv, export_metrics_json, export_perfetto
from sim.kernel import sim_header
from sim.kernel import simulate as run_model
from sim.metrics import Metrics, MetricsBuilder, metrics_of
from sim.program import POLICY_NAMES, PolicyName, Scenario
from sim.scenario import ScenarioError, load_scenario
from sim.trace import End, EndStatus, TeeSink, TraceError, TraceWriter
from sim.units import UnitError, parse_duration_ns

_STATUS_EXIT: dict[EndStatus, ExitCode] = {
    "complete": ExitCode.OK,
    "deadlock": ExitCode.DEADLOCK,
    "timeout": ExitCode.TIMEOUT,
    "interrupted": ExitCode.INTERRUPTED,
}


def _ms(ns: float | None) -> str:
    return "—" if ns is None else f"{ns / 1e6:.3f}"


def _fail(message: str, code: ExitCode = ExitCode.INVALID_INPUT) -> typer.Exit:
    """Print one error line on stderr; the caller raises the returned Exit."""
    err_console.print(f"procsim: error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


_TASK_COLUMNS = (
    "task",
    "kind",
    "running",
    "ready",
    "blocked",
    "turnaround",
    "response",
    "disp",
    "preempt",
    "exit",
)


def task_table(metrics: Metrics) -> Table:
    """Per-task figures; times in milliseconds."""
    rows = []
    for tm in metrics.tasks:
        exit_text = "—"
        if tm.exit_code is not None or tm.cause is not None:
            exit_text = f"{'' if tm.exit_code is None else tm.exit_code} {tm.cause or ''}".strip()
        rows.append(
            (
                tm.task,
                tm.kind,
                _ms(tm.time_ns["running"]),
                _ms(tm.time_ns["ready"]),
                _ms(tm.time_ns["blocked"]),
                _ms(tm.turnaround_ns),
                _ms(tm.response_ns),
                str(tm.dispatches),
                str(tm.preemptions),
                exit_text,
            )
        )
    title = (
        f"{metrics.scenario or 'trace'} ({metrics.source or '?'}): times in ms, "
        "disp = dispatches, preempt = preemptions"
    )
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )
    for i, name in enumerate(_TASK_COLUMNS):
        # On a narrow terminal let headers and names wrap, but never cut a number.
        numeric = 2 <= i <= 8
        table.add_column(
            name,
            justify="right" if numeric else "left",
            min_width=max((len(row[i]) for row in rows), default=1) if numeric else None,
            overflow="fold",
        )
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


def verdict_lines(metrics: Metrics) -> list[Text]:
    """How the run ended, naming every blocked task and the wait-for cycle."""
    at = f"at {_ms(metrics.makespan_ns)} ms"
    if metrics.status == "complete":
        return [
            Text.assemble(
                ("Verdict: ", "bold"), ("complete", "bold green"), " — every task terminated"
            )
        ]
    facts = [f"{b.task} is blocked on {b.reason}" for b in metrics.blocked]
    if metrics.cycle:
        cycle = list(metrics.cycle)
        # Close the loop for the reader unless the recorder already did.
        if cycle[0] != cycle[-1]:
            cycle.append(cycle[0])
        facts.append(f"wait-for cycle: {' → '.join(cycle)}")
    head = Text.assemble(("Verdict: ", "bold"), (metrics.status.upper(), "bold red"), f" {at}")
    detail = [metrics.detail] if metrics.detail else []
    return [head, *(Text(f"  {line}") for line in [*detail, *facts])]


def warning_lines(metrics: Metrics) -> list[Text]:
    """The run's warnings (races on a pipe end, task_done too often, exceptions)."""
    if not metrics.warning_counts:
        return []
    counts = ", ".join(f"{kind} x{n}" for kind, n in sorted(metrics.warning_counts.items()))
    lines = [Text.assemble(("Warnings: ", "bold yellow"), counts)]
    lines += [Text(f"  {_ms(t)} ms  {task}: {text}") for t, task, _kind, text in metrics.warnings]
    shown, total = len(metrics.warnings), sum(metrics.warning_counts.values())
    if total > shown:
        lines.append(Text(f"  … and {total - shown} more"))
    return lines


def summary_lines(metrics: Metrics) -> list[Text]:
    """Averages, makespan, CPU utilisation and the verdict, a line each."""
    names = metrics.averaged_over
    over = ", ".join(names[:6]) + (f", … {len(names) - 6} more" if len(names) > 6 else "")
    throughput = (
        "—" if metrics.throughput_per_s is None else f"{metrics.throughput_per_s:.3f} tasks/s"
    )
    cpus = ", ".join(
        f"cpu{c.cpu} {c.utilisation * 100:.1f}% ({_ms(c.busy_ns)} ms)" for c in metrics.cpus
    )
    return [
        Text(
            f"Averages over {len(names)} task(s) ({over or 'none'}): "
            f"waiting {_ms(metrics.avg_waiting_ns)} ms, "
            f"turnaround {_ms(metrics.avg_turnaround_ns)} ms, "
            f"response {_ms(metrics.avg_response_ns)} ms"
        ),
        Text(f"Makespan {_ms(metrics.makespan_ns)} ms, throughput {throughput}"),
        Text(f"CPU utilisation: {cpus or '—'}"),
        *warning_lines(metrics),
        *verdict_lines(metrics),
    ]


def show_report(metrics: Metrics) -> None:
    """Print the table and the summary on stdout. A pipe or file has no width of
    its own: give the table the width it needs and leave lines unwrapped, rather
    than squeeze everything into rich's default 80 columns."""
    table = task_table(metrics)
    if console.is_terminal:
        console.print(table)
        for line in summary_lines(metrics):
            console.print(line)
        return
    needed = console.measure(table, options=console.options.update_width(10_000)).maximum
    out = Console(width=max(console.width, needed), highlight=False)
    out.print(table)
    for line in summary_lines(metrics):
        out.print(line, soft_wrap=True)


def _write_summary(metrics: Metrics, path: Path | None) -> None:
    if path is None:
        return
    try:
        export_metrics_json(metrics, path)
    except OSError as exc:
        raise _fail(f"cannot write {path}: {exc.strerror or exc}") from None


def _parse_overrides(
    cpus: int | None, policy: str | None, quantum: str | None
) -> tuple[int | None, PolicyName | None, int | None]:
    """Check the command-line overrides before anything is loaded or run."""
    if cpus is not None and cpus < 1:
        raise _fail(f"--cpus must be a whole number of at least 1 (got {cpus})")
    # Looked up rather than cast, so the name is a checked PolicyName.
    policy_name = next((name for name in POLICY_NAMES if name == policy), None)
    if policy is not None and policy_name is None:
        raise _fail(f"--policy must be one of {', '.join(POLICY_NAMES)} (got {policy!r})")
    quantum_ns: int | None = None
    if quantum is not None:
        try:
            quantum_ns = parse_duration_ns(quantum)
        except UnitError as exc:
            raise _fail(f"--quantum: {exc}") from None
        if quantum_ns <= 0:
            raise _fail(f"--quantum must be a positive duration (got {quantum!r})")
    return cpus, policy_name, quantum_ns


def _override(
    scenario: Scenario,
    cpus: int | None,
    policy: PolicyName | None,
    quantum_ns: int | None,
    seed: int | None,
) -> Scenario:
    """The scenario with the command line's values in place of the file's."""
    machine = scenario.machine
    if quantum_ns is not None:
        settings = dataclasses.replace(machine.settings, quantum_ns=quantum_ns)
        machine = dataclasses.replace(machine, settings=settings)
    if cpus is not None:
        machine = dataclasses.replace(machine, cpus=cpus)
    if policy is not None:
        machine = dataclasses.replace(machine, policy=policy)
    return dataclasses.replace(
        scenario, machine=machine, seed=scenario.seed if seed is None else seed
    )


def _run(scenario: Scenario, builder: MetricsBuilder, output: Path | None) -> End:
    """Simulate, feeding `builder` and, with `output`, a trace file written
    atomically (an interrupted run leaves no file)."""
    if output is None:
        return run_model(scenario, builder).end
    try:
        with TraceWriter(output, sim_header(scenario)) as writer:
            end = run_model(scenario, TeeSink(writer, builder)).end
            writer.close(end)
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror or exc}") from None
    return end


@app.command()
def simulate(
    scenario_path: Annotated[
        Path, typer.Argument(metavar="SCENARIO", help="A scenario YAML file.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write the trace (JSON Lines) here."),
    ] = None,
    summary_json: Annotated[
        Path | None,
        typer.Option(
            "--summary-json", help="Write the metrics (makespan, per-task times) as JSON."
        ),
    ] = None,
    cpus: Annotated[
        int | None, typer.Option("--cpus", help="Number of CPUs (overrides the file).")
    ] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", help="Scheduling policy (overrides the file).")
    ] = None,
    quantum: Annotated[
        str | None, typer.Option("--quantum", help="Round-robin quantum with a unit, e.g. 4ms.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed (overrides the file).")
    ] = None,
    machine: Annotated[
        Path | None,
        typer.Option("--machine", help="Machine profile (procsim calibrate) to simulate with."),
    ] = None,
) -> None:
    """Simulate a scenario and print per-task metrics. Exit 3 on deadlock."""
    overrides = _parse_overrides(cpus, policy, quantum)
    try:
        scenario = _override(load_scenario(scenario_path, profile=machine), *overrides, seed)
    except ScenarioError as exc:
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.INVALID_INPUT) from None
    builder = MetricsBuilder(sim_header(scenario))
    try:
        end = _run(scenario, builder, output)
    except KeyboardInterrupt:
        raise _fail("interrupted; no trace written", ExitCode.INTERRUPTED) from None
    metrics = builder.finish(end)
    show_report(metrics)
    _write_summary(metrics, summary_json)
    raise typer.Exit(_STATUS_EXIT[end.status])


@app.command()
def metrics(
    trace: Annotated[Path, typer.Argument(metavar="TRACE", help="A procsim trace (.jsonl).")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the metrics as JSON to this file.")
    ] = None,
) -> None:
    """Print per-task metrics of any trace file (simulated or real)."""
    try:
        result = metrics_of(trace)
    except TraceError as exc:
        raise _fail(str(exc)) from None
    show_report(result)
    _write_summary(result, json_out)


@app.command()
def export(
    trace: Annotated[Path, typer.Argument(metavar="TRACE", help="A procsim trace (.jsonl).")],
    perfetto: Annotated[
        Path | None,
        typer.Option("--perfetto", help="Write Chrome Trace Event JSON (open in ui.perfetto.dev)."),
    ] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Write one CSV row per state interval.")
    ] = None,
) -> None:
    """Export a trace for Perfetto or as CSV of state intervals."""
    if perfetto is None and csv_out is None:
        raise _fail("say what to export: --perfetto OUT.json and/or --csv OUT.csv")
    jobs = [
        (p, f) for p, f in ((perfetto, export_perfetto), (csv_out, export_csv)) if p is not None
    ]
    for out, export_fn in jobs:
        try:
            export_fn(trace, out)
        except TraceError as exc:
            raise _fail(str(exc)) from None
        except OSError as exc:
            raise _fail(f"cannot write {out}: {exc.strerror or exc}") from None
        console.print(f"wrote {out}", markup=False, highlight=False)
