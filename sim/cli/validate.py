"""Commands about the scenario language: `validate` and `schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sim.cli.app import ExitCode, app, console, err_console


def _print(where: Console, text: str) -> None:
    """As written: key paths such as main[2] are no rich markup, `:name:` in a
    quoted line no emoji, and long lines are not wrapped."""
    where.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)


@app.command()
def validate(
    paths: Annotated[
        list[Path], typer.Argument(help="Scenario files to check.", show_default=False)
    ],
) -> None:
    """Check scenario files without running them: every problem of every file,
    each with file:line:column. Exit 0 when all are valid, 2 otherwise."""
    # Imported here so that `procsim --help` does not pay for pydantic.
    from sim.scenario import ScenarioError, load_scenario

    failed = False
    for path in paths:
        try:
            load_scenario(path)
        except ScenarioError as error:
            failed = True
            _print(err_console, str(error))
        else:
            _print(console, f"ok  {path}")
    if failed:
        raise typer.Exit(ExitCode.INVALID_INPUT)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the scenario language (for editor completion)."""
    from sim.scenario import json_schema

    typer.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))
