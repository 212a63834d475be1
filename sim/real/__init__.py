"""Real runs: the only part of procsim that runs real processes.

`run_scenario` runs a scenario with real multiprocessing and `trace_program`
runs any Python program; both record the run with probes inside
multiprocessing (and the kernel's scheduler events when available) and write
one trace in the format the simulator writes. See docs/real.md.

The public names are imported lazily: `python -m sim.real` (the root process of
a scenario run, re-imported by spawn children) must not pay for the runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.real.runner import KernelMode, RealResult, RealRunError, run_scenario, trace_program

__all__ = ["KernelMode", "RealResult", "RealRunError", "run_scenario", "trace_program"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sim.real import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'sim.real' has no attribute {name!r}")
