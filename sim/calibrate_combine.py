"""Several calibrations of one machine as one profile: the median of each figure.

A single `procsim calibrate` run is noisy on a shared machine (its figures
differ by up to ±40% from one run to the next, the Pool's and `gil_turn` most),
and the host's speed drifts over minutes. The shipped default profile and
`procsim calibrate --runs N` therefore take, figure by figure, the median of
several runs. `measured` is the last run's notes, except the real Pool
workload's run (the median of the runs), the model's run of it under the
combined costs, and the host's steal (each run's).

The combined profile leaves `context_switch` out (each run's measurement stays
under `measured.details`): charged on every dispatch of another task, it
changes no figure worth comparing but puts textbook exercises off by
microseconds (17.004 ms instead of 17 ms).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sim.calibrate import MachineProfile
from sim.calibrate_pool import modelled_pool_run_ns

K = TypeVar("K")
V = TypeVar("V", int, float)


def _per_key(maps: Sequence[Mapping[K, float]], rounding: Callable[[K, float], V]) -> dict[K, V]:
    """Per key, the median of the values of the maps that have it (in the last
    map's order, then any key only earlier runs had)."""
    keys: dict[K, None] = {}
    for m in reversed(maps):
        keys.update(dict.fromkeys(m))
    return {k: rounding(k, statistics.median([m[k] for m in maps if k in m])) for k in keys}


def _optional_median(values: Sequence[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known)) if known else None


def combine_profiles(profiles: Sequence[MachineProfile], note: str) -> MachineProfile:
    """The per-figure median of `profiles` (at least one); `note` says how they
    were made and is kept as `measured.combined`."""
    if not profiles:
        raise ValueError("no profile to combine")
    last = profiles[-1]

    def cost(name: str, value: float) -> float:
        return round(value, 3) if name == "per_byte_ns" else round(value)

    def whole(_method: Any, value: float) -> int:
        return round(value)

    combined = dataclasses.replace(
        last,
        context_switch_ns=None,
        linux_base_slice_ns=_optional_median([pr.linux_base_slice_ns for pr in profiles]),
        rr_timeslice_ns=_optional_median([pr.rr_timeslice_ns for pr in profiles]),
        start_cpu_ns=_per_key([pr.start_cpu_ns for pr in profiles], whole),
        exit_cpu_ns=_per_key([pr.exit_cpu_ns for pr in profiles], whole),
        costs=_per_key([pr.costs for pr in profiles], cost),
        source="",
    )
    measured: dict[str, Any] = dict(last.measured)
    details: dict[str, Any] = dict(measured.get("details", {}))
    pool_runs = [pr.measured.get("details", {}).get("pool_run_ns") for pr in profiles]
    runs = [run for run in pool_runs if isinstance(run, Mapping)]
    if runs and all("real" in r for r in runs):
        last_run = dict(runs[-1])
        last_run["real"] = round(statistics.median([r["real"] for r in runs]))
        last_run["model"] = modelled_pool_run_ns(
            combined.machine(), last_run["tasks"], last_run["workers"], 0
        )
        details["pool_run_ns"] = last_run
    measured["details"] = details
    measured["combined"] = note
    # What the host took during each run (the last run's alone would hide a slow spell).
    steals = [pr.measured.get("host_steal") for pr in profiles]
    if any(steals):
        measured["host_steal"] = steals
    return dataclasses.replace(combined, measured=measured)
