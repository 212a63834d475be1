"""Commands that run programs for real: `real` (a scenario) and `trace` (any program)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn

import typer

from sim.cli.app import ExitCode, app, console, err_console

if TYPE_CHECKING:
    from sim.real import RealResult

KernelOption = Annotated[
    str,
    typer.Option(
        "--kernel",
        help="Kernel scheduler trace (perf): auto uses it when it works, on requires it, off "
        "keeps the probes alone.",
    ),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option("--timeout", help="Stop the run after this many seconds (exit code 4)."),
]


def _say(text: str, *, error: bool = False) -> None:
    (err_console if error else console).print(
        text, markup=False, highlight=False, emoji=False, soft_wrap=True
    )


def _run_and_report(run: Callable[[], RealResult], out: Path) -> NoReturn:
    """Run, report the run, and exit with its exit code; a run that could not be
    made is one line on stderr and exit 1."""
    from sim.real import RealRunError

    try:
        result = run()
    except RealRunError as exc:
        _say(f"procsim: error: {exc}", error=True)
        raise typer.Exit(ExitCode.ERROR) from None
    except OSError as exc:
        _say(f"procsim: error: cannot write {out}: {exc.strerror or exc}", error=True)
        raise typer.Exit(ExitCode.ERROR) from None
    _report(result)
    raise typer.Exit(result.exit_code)


def _kernel_mode(value: str) -> Literal["auto", "on", "off"]:
    if value == "auto":
        return "auto"
    if value == "on":
        return "on"
    if value == "off":
        return "off"
    _say(f"procsim: error: --kernel {value!r}: expected auto, on or off", error=True)
    raise typer.Exit(ExitCode.INVALID_INPUT)


def _report(result: RealResult) -> None:
    """The run's verdict, what was not enforced, what the host took, and the
    per-task metrics."""
    from sim.cli.traces import show_report
    from sim.metrics import metrics_of
    from sim.real import host_steal
    from sim.trace import read_trace

    header = read_trace(result.trace_path).header
    _say(f"trace: {result.trace_path}")
    _say(f"kernel scheduler trace: {result.kernel_status}")
    for item in header.notes.get("not_enforced", []):
        _say(f"not enforced: {item}", error=True)
    taken = host_steal.disturbance(header.notes)
    if taken is not None:
        _say(f"host steal: {taken}; the run's times are longer than the program's own", error=True)
    show_report(metrics_of(result.trace_path))


@app.command()
def real(
    scenario_path: Annotated[
        Path, typer.Argument(metavar="SCENARIO", help="A scenario YAML file.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Trace file to write (default: SCENARIO.real.jsonl)."),
    ] = None,
    kernel: KernelOption = "auto",
    start_method: Annotated[
        str | None,
        typer.Option("--start-method", help="fork, spawn or forkserver (default: the scenario's)."),
    ] = None,
    timeout: TimeoutOption = None,
) -> None:
    """Run a scenario with real multiprocessing and record what happened.

    Exit 0 when the run completes, 3 on a deadlock, 4 past --timeout, 130 when
    interrupted; the trace is written in every case (marked incomplete)."""
    from sim.real import run_scenario
    from sim.scenario import ScenarioError, load_scenario

    mode = _kernel_mode(kernel)
    if start_method is not None and start_method not in ("fork", "spawn", "forkserver"):
        _say(f"procsim: error: --start-method {start_method!r}: expected fork, spawn or "
             "forkserver", error=True)  # fmt: skip
        raise typer.Exit(ExitCode.INVALID_INPUT)
    try:
        scenario = load_scenario(scenario_path)
    except ScenarioError as exc:
        _say(str(exc), error=True)
        raise typer.Exit(ExitCode.INVALID_INPUT) from None
    out = output or Path(f"{scenario_path.stem}.real.jsonl")
    _run_and_report(
        lambda: run_scenario(
            scenario, out, kernel=mode, start_method=start_method, timeout_s=timeout
        ),
        out,
    )


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def trace(
    argv: Annotated[
        list[str],
        typer.Argument(
            metavar="-- PROGRAM [ARGS]...",
            help="The program to run, after `--`, e.g. -- python my_program.py.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Trace file to write (default: PROGRAM.trace.jsonl)."),
    ] = None,
    kernel: KernelOption = "auto",
    timeout: TimeoutOption = None,
) -> None:
    """Run your own Python program, unchanged, and record its processes.

    The probes are injected into every process it starts (Process, Pool,
    concurrent.futures.ProcessPoolExecutor; fork, spawn or forkserver)."""
    from sim.real import trace_program

    mode = _kernel_mode(kernel)
    script = next((a for a in argv[1:] if not a.startswith("-")), argv[0])
    out = output or Path(f"{Path(script).stem}.trace.jsonl")
    _run_and_report(lambda: trace_program(list(argv), out, kernel=mode, timeout_s=timeout), out)
