"""How the probes get into every process of a run: the environment of the root.

The root process is started with `sim/real/boot` first on PYTHONPATH, so its
interpreter, and every interpreter started from it (spawn children, the
forkserver, the resource tracker), imports the boot `sitecustomize`, which
installs the probes when it finds the run's variables; fork children inherit
them. The root alone is marked as the root (the mark is removed from the
environment as soon as it is read). Every process of the run carries the run
id, which is how the cleanup finds them all, orphans included.

Python started with -I, -E or -S skips PYTHONPATH or site and cannot be traced;
the runner then finds no records and says so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path

from sim.real.runtime.recorder import DIR_ENV, ROOT_ENV, RUN_ENV, SCHEDSTAT_ENV

BOOT_DIR = Path(__file__).resolve().parent / "boot"
PROCSIM_ROOT = Path(__file__).resolve().parents[2]


def new_run_id() -> str:
    return uuid.uuid4().hex


def probe_environment(
    probe_dir: Path,
    run_id: str,
    base: Mapping[str, str] | None = None,
    importable: bool = False,
    schedstat: bool = False,
) -> dict[str, str]:
    """The environment of a run's root process. `importable`: procsim itself
    must be importable too (the scenario executor is part of it). `schedstat`:
    each task reads its /proc schedstat at its end, for the kernel trace's
    cross-check (a file read per task that is wasted without one)."""
    env = dict(os.environ if base is None else base)
    paths = [str(BOOT_DIR)]
    if importable:
        paths.append(str(PROCSIM_ROOT))
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env[DIR_ENV] = str(probe_dir)
    env[ROOT_ENV] = "1"
    env[RUN_ENV] = run_id
    if schedstat:
        env[SCHEDSTAT_ENV] = "1"
    return env
