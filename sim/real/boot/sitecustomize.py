"""Installs procsim's probes in every Python process of a traced run.

procsim puts this directory first on PYTHONPATH, so the interpreter imports this
module at start-up in the traced program and in every process it creates with
a new interpreter (spawn children, the forkserver and the processes it forks);
fork children inherit the probes from their parent. Without the run's
environment variables it does nothing but hand over to any other
`sitecustomize` further down the path.

The probe runtime is loaded from its files under the private name `_procsim_rt`,
so a program with a `sim` package of its own is not disturbed. This runs at the
start of every process of the run, so it imports as little as it can
(`importlib.machinery`, not `importlib.util`, which costs ~2 ms more).
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import ModuleSpec, SourceFileLoader
from types import ModuleType


def _load_runtime() -> object:
    here = os.path.dirname(os.path.abspath(__file__))
    package_dir = os.path.join(os.path.dirname(here), "runtime")
    init = os.path.join(package_dir, "__init__.py")
    loader = SourceFileLoader("_procsim_rt", init)
    package = ModuleType("_procsim_rt")
    package.__spec__ = ModuleSpec("_procsim_rt", loader, origin=init, is_package=True)
    package.__spec__.submodule_search_locations = [package_dir]
    package.__spec__.has_location = True
    package.__path__ = [package_dir]
    package.__file__ = init
    package.__loader__ = loader
    package.__package__ = "_procsim_rt"
    sys.modules["_procsim_rt"] = package
    loader.exec_module(package)
    __import__("_procsim_rt.instrument")
    return sys.modules["_procsim_rt.instrument"]


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
            name = "_procsim_next_sitecustomize"
            loader = SourceFileLoader(name, candidate)
            module = ModuleType(name)
            module.__spec__ = ModuleSpec(name, loader, origin=candidate)
            module.__file__, module.__loader__ = candidate, loader
            loader.exec_module(module)
            return


_install()
_chain()
