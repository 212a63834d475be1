"""Installs procsim's probes in every Python process of a traced run.

procsim puts this directory first on PYTHONPATH, so the interpreter imports this
module at start-up in the traced program and in every process it creates with
a new interpreter (spawn children, the forkserver and the processes it forks);
fork children inherit the probes from their parent. Without the run's
environment variables it does nothing but hand over to any other
`sitecustomize` further down the path.

The probe runtime is loaded from its files under the private name `_procsim_rt`,
so a program with a `sim` package of its own is not disturbed.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def _load_runtime() -> object:
    here = os.path.dirname(os.path.abspath(__file__))
    package_dir = os.path.join(os.path.dirname(here), "runtime")
    spec = importlib.util.spec_from_file_location(
        "_procsim_rt",
        os.path.join(package_dir, "__init__.py"),
        submodule_search_locations=[package_dir],
    )
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules["_procsim_rt"] = package
    spec.loader.exec_module(package)
    return importlib.import_module("_procsim_rt.instrument")


def _install() -> None:
    directory = os.environ.get("PROCSIM_PROBE_DIR")
    if not directory or "_procsim_rt" in sys.modules:
        return
    # Only the program's first process is the root; its children must not inherit that.
    root = os.environ.pop("PROCSIM_PROBE_ROOT", "") == "1"
    try:
        instrument = _load_runtime()
        instrument.install(directory, root)  # type: ignore[attr-defined]
    except Exception as exc:  # never break the traced program
        sys.stderr.write(f"procsim: probes not installed in process {os.getpid()}: {exc!r}\n")


def _chain() -> None:
    """Run the sitecustomize this one shadows, if there is one."""
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if os.path.abspath(entry or ".") == here:
            continue
        candidate = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_procsim_next_sitecustomize", candidate)
            if spec is not None and spec.loader is not None:
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            return


_install()
_chain()
