"""The command line. Each command group lives in its own module and registers
itself on the shared app; importing them here wires them together."""

from __future__ import annotations

from sim.cli import compare as _compare  # noqa: F401
from sim.cli import real as _real  # noqa: F401
from sim.cli import traces as _traces  # noqa: F401
from sim.cli import validate as _validate  # noqa: F401
from sim.cli import viz as _viz  # noqa: F401
from sim.cli.app import app


def main() -> None:
    app()
