"""The `procsim` Typer application and the exit codes every command shares."""

from __future__ import annotations

from enum import IntEnum

import typer
from rich.console import Console


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # a run that failed for a reason of its own (a crash of procsim is a bug)
    INVALID_INPUT = 2  # a scenario, trace or option that is not valid
    DEADLOCK = 3
    TIMEOUT = 4
    COMPARISON_FAILED = 5
    INTERRUPTED = 130


EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 2 invalid input (scenario, trace or option), 3 deadlock, "
    "4 timeout (real runs), 5 a comparison check failed, 130 interrupted."
)

app = typer.Typer(
    name="procsim",
    help="Simulate, run for real, compare and animate Python multiprocessing programs. "
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)
