"""`procsim compare` (model vs real) and `procsim calibrate` (a machine profile).

`compare SCENARIO` simulates the scenario and runs it for real N times;
`compare SIM.jsonl REAL.jsonl [REAL2.jsonl …]` compares recorded traces. Both
print a table of every check with its figures and verdict, optionally write it
as JSON and draw the two Gantt charts, and exit 0 when every level passes, 5
when a check fails, 2 on bad input.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from sim.cli.app import ExitCode, app, console, err_console

if TYPE_CHECKING:
    from sim.compare_report import ComparisonReport
    from sim.program import Scenario
    from sim.real import KernelMode
    from sim.trace import Trace

SCENARIO_SUFFIXES = (".yaml", ".yml")
KERNEL_MODES = ("auto", "on", "off")
_STATUS_STYLE = {"pass": "green", "fail": "bold red", "n/a": "dim", "skipped": "yellow"}


def _fail(message: str, code: ExitCode = ExitCode.INVALID_INPUT) -> typer.Exit:
    err_console.print(f"procsim: error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.command()
def compare(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            metavar="SCENARIO | SIM.jsonl REAL.jsonl [REAL2.jsonl ...]",
            help="A scenario to simulate and run for real, or a simulated trace and real ones.",
            show_default=False,
        ),
    ],
    runs: Annotated[
        int, typer.Option("--runs", help="Real runs of a scenario (its timing band).")
    ] = 5,
    kernel: Annotated[
        str,
        typer.Option("--kernel", help="Kernel scheduler tracing for real runs: auto, on or off."),
    ] = "auto",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the report as JSON here.")
    ] = None,
    png_out: Annotated[
        Path | None,
        typer.Option("--png", help="Draw the model's and a real run's Gantt charts here."),
    ] = None,
    machine: Annotated[
        Path | None,
        typer.Option("--machine", help="Machine profile to simulate with (procsim calibrate)."),
    ] = None,
    keep: Annotated[
        Path | None,
        typer.Option("--keep", help="Keep the simulated and real traces in this directory."),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", help="Time limit of each real run, in seconds."),
    ] = None,
) -> None:
    """Compare the model with real runs, level by level: outcome, order, timing.
    Exit 0 when every level passes, 5 when a check fails, 2 on bad input."""
    if not inputs:
        raise _fail("give a scenario, or a simulated trace and at least one real trace")
    if kernel not in KERNEL_MODES:
        raise _fail(f"--kernel must be one of {', '.join(KERNEL_MODES)} (got {kernel!r})")
    if runs < 1:
        raise _fail(f"--runs must be at least 1 (got {runs})")
    if timeout is not None and timeout <= 0:
        raise _fail(f"--timeout must be a positive number of seconds (got {timeout})")
    if len(inputs) == 1 and inputs[0].suffix.lower() in SCENARIO_SUFFIXES:
        report, sim, reals = _from_scenario(inputs[0], runs, kernel, machine, keep, timeout)
    elif len(inputs) == 1:
        raise _fail(
            f"{inputs[0]}: a single input must be a scenario (.yaml); to compare traces give "
            "the simulated trace and at least one real trace"
        )
    else:
        if machine is not None:
            raise _fail("--machine applies to a scenario, not to recorded traces")
        report, sim, reals = _from_traces(inputs[0], inputs[1:])
    show_comparison(report)
    _write_outputs(report, sim, reals, json_out, png_out)
    raise typer.Exit(ExitCode.OK if report.passed else ExitCode.COMPARISON_FAILED)


def _load(path: Path, profile: Path | None) -> Scenario:
    from sim.scenario import ScenarioError, load_scenario

    try:
        return load_scenario(path, profile=profile)
    except ScenarioError as exc:
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.INVALID_INPUT) from None


def _from_scenario(
    path: Path,
    runs: int,
    kernel: str,
    machine: Path | None,
    keep: Path | None,
    timeout: float | None,
) -> tuple[ComparisonReport, Trace, list[Trace]]:
    from sim.compare import compare_files
    from sim.compare_runs import record_runs
    from sim.real import RealRunError
    from sim.trace import read_trace

    scenario = _load(path, machine)
    with tempfile.TemporaryDirectory(prefix="procsim-compare-") as tmp:
        directory = keep if keep is not None else Path(tmp)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task(f"real runs of {scenario.name}", total=runs)
            try:
                recorded = record_runs(
                    scenario,
                    directory,
                    runs,
                    kernel=cast("KernelMode", kernel),  # one of KERNEL_MODES
                    timeout_s=timeout,
                    progress=lambda done: bar.update(task, completed=done),
                )
            except RealRunError as exc:
                raise _fail(f"cannot run {path} for real: {exc}") from None
            except OSError as exc:
                raise _fail(f"cannot write traces to {directory}: {exc.strerror or exc}") from None
        report = compare_files(recorded.sim_path, recorded.real_paths, scenario=scenario)
        sim = read_trace(recorded.sim_path)
        reals = [read_trace(p) for p in recorded.real_paths]
    if keep is not None:
        console.print(f"traces kept in {keep}", markup=False, highlight=False, soft_wrap=True)
    return report, sim, reals


def _from_traces(
    sim_path: Path, real_paths: list[Path]
) -> tuple[ComparisonReport, Trace, list[Trace]]:
    from sim.compare import compare_traces
    from sim.trace import TraceError, read_trace

    try:
        sim = read_trace(sim_path)
        reals = [read_trace(p) for p in real_paths]
    except TraceError as exc:
        raise _fail(str(exc)) from None
    if sim.header.source != "sim":
        raise _fail(
            f"{sim_path}: expected the simulated trace first (its header says source "
            f"{sim.header.source!r})"
        )
    for path, real in zip(real_paths, reals, strict=True):
        if real.header.source != "real":
            raise _fail(
                f"{path}: expected a real trace (its header says source {real.header.source!r})"
            )
        if real.header.scenario != sim.header.scenario:
            raise _fail(
                f"{path} records scenario {real.header.scenario!r}, "
                f"{sim_path} records {sim.header.scenario!r}"
            )
    scenario = _scenario_of(sim)
    report = compare_traces(
        sim,
        reals,
        scenario=scenario,
        paths=[str(sim_path), *map(str, real_paths)],
    )
    return report, sim, reals


def _scenario_of(sim: Trace) -> Scenario | None:
    """The scenario the trace was simulated from, for its exemptions, if its file
    is still there and still describes the same scenario."""
    from sim.scenario import ScenarioError, load_scenario

    source = sim.header.notes.get("source_file")
    if not isinstance(source, str) or not Path(source).is_file():
        return None
    try:
        scenario = load_scenario(source)
    except ScenarioError:
        return None
    return scenario if scenario.name == sim.header.scenario else None


def _write_outputs(
    report: ComparisonReport,
    sim: Trace,
    reals: list[Trace],
    json_out: Path | None,
    png_out: Path | None,
) -> None:
    if json_out is not None:
        from sim.compare_report import write_report

        try:
            write_report(report, json_out)
        except OSError as exc:
            raise _fail(f"cannot write {json_out}: {exc.strerror or exc}") from None
        console.print(f"wrote {json_out}", markup=False, highlight=False, soft_wrap=True)
    if png_out is not None:
        from sim.compare_picture import PictureError, draw_comparison, median_run

        try:
            draw_comparison(sim, reals[median_run(report)], report, png_out)
        except PictureError as exc:
            raise _fail(str(exc)) from None
        console.print(f"wrote {png_out}", markup=False, highlight=False, soft_wrap=True)


def report_table(report: ComparisonReport) -> Table:
    table = Table(
        title=f"{report.scenario}: model vs {len(report.reals)} real run(s)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    table.add_column("level")
    table.add_column("check")
    table.add_column("verdict")
    table.add_column("figures", overflow="fold")
    for level in report.levels:
        if level.status == "skipped":
            table.add_row(level.level, "—", Text("skipped", _STATUS_STYLE["skipped"]), level.why)
            continue
        for check in level.checks:
            figures = Text(check.summary)
            for problem in check.problems:
                figures.append(f"\n  {problem}", style="red")
            table.add_row(
                level.level, check.name, Text(check.status, _STATUS_STYLE[check.status]), figures
            )
        table.add_section()
    return table


def show_comparison(report: ComparisonReport) -> None:
    out = console if console.is_terminal else Console(width=160, highlight=False)
    out.print(report_table(report))
    for real in report.reals:
        kernel = real.notes.get("kernel_trace", "?")
        where = real.path if real.path and Path(real.path).exists() else "(not kept; see --keep)"
        steal = real.notes.get("host_steal")
        # In ms, not as a share: counted in 10 ms ticks, a short run's share says little.
        taken = (
            f", host steal {steal.get('steal_ms')} of {steal.get('busy_ms')} ms busy"
            if isinstance(steal, dict)
            else ""
        )
        out.print(Text(f"{real.label}: {where} — {real.status}, kernel trace {kernel}{taken}"))
    for note in report.notes:
        out.print(Text(f"note: {note}", style="yellow"))
    levels = ", ".join(f"{lv.level} {lv.status}" for lv in report.levels)
    verdict = Text("PASS", "bold green") if report.passed else Text("FAIL", "bold red")
    out.print(Text.assemble(("Verdict: ", "bold"), verdict, f" ({levels})"))


@app.command()
def calibrate(
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write the machine profile here (default: stdout)."),
    ] = None,
    probes: Annotated[
        bool,
        typer.Option(
            help="Measure with procsim's probes installed, as in the real runs `compare` "
            "checks the model against (the default); --no-probes: as a program run "
            "without procsim."
        ),
    ] = True,
    kernel: Annotated[
        str,
        typer.Option(
            "--kernel",
            help="Measure while perf records the scheduler's events, as in real runs with "
            "kernel tracing (its cost per context switch is theirs): auto, on or off.",
        ),
    ] = "auto",
    runs: Annotated[
        int,
        typer.Option(
            "--runs",
            min=1,
            help="Calibrate this many times, back to back, and write the median of each "
            "figure, as the shipped default profile is made (single runs differ by up to "
            "±40% on a shared machine); the median profile leaves context_switch out.",
        ),
    ] = 1,
) -> None:
    """Measure this machine's multiprocessing and scheduler costs (about half
    a minute a run) and write a machine profile for `simulate --machine` and
    `compare --machine`, or a scenario's `machine: {profile: PATH}`."""
    from sim.calibrate import render_profile, write_profile
    from sim.calibrate_combine import combine_profiles
    from sim.real import host_steal
    from sim.real.calibration import CalibrationError, measure

    if kernel not in KERNEL_MODES:
        raise _fail(f"--kernel must be one of {', '.join(KERNEL_MODES)} (got {kernel!r})")
    began = time.gmtime()
    profiles = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("calibrating", total=float(runs))
        for run in range(runs):
            prefix = f"run {run + 1} of {runs}: " if runs > 1 else ""

            def update(label: str, done: float, run: int = run, prefix: str = prefix) -> None:
                bar.update(task, description=prefix + label, completed=run + done)

            try:
                profiles.append(measure(update, probes=probes, kernel=cast("KernelMode", kernel)))
            except (OSError, CalibrationError) as exc:
                raise _fail(f"a measurement failed: {exc}", ExitCode.ERROR) from None
    for run, measured in enumerate(profiles, start=1):
        taken = host_steal.disturbance(dict(measured.measured))
        if taken is not None:
            which = f"run {run}: " if runs > 1 else ""
            err_console.print(
                f"warning: {which}{taken} while calibrating; the figures are longer than "
                "this machine's own",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    profile = profiles[0]
    if runs > 1:
        span = f"{time.strftime('%H:%M', began)}–{time.strftime('%H:%M', time.gmtime())} UTC"
        note = (
            f"per-figure median of {runs} procsim calibrate runs made back to back, {span} "
            f"on {time.strftime('%Y-%m-%d', began)}, probes {'on' if probes else 'off'}, "
            f"kernel tracing {kernel}; details: the last run's, except pool_run_ns.real (the "
            "median real run) and pool_run_ns.model (the model's run of the Pool workload "
            "under these costs)"
        )
        profile = combine_profiles(profiles, note)
    if output is None:
        typer.echo(render_profile(profile), nl=False)
        return
    try:
        write_profile(profile, output)
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror or exc}") from None
    console.print(f"wrote {output}", markup=False, highlight=False, soft_wrap=True)
