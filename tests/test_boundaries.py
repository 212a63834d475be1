"""The layers import only what DESIGN.md allows them to."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = set(sys.stdlib_module_names)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def outside(path: Path, allowed: set[str]) -> set[str]:
    return {
        module
        for module in imported_modules(path)
        if module.split(".")[0] not in STDLIB
        and not any(module == a or module.startswith(a + ".") for a in allowed)
    }


@pytest.mark.parametrize("path", sorted((ROOT / "sim" / "kernel").glob("*.py")), ids=str)
def test_kernel_imports_simpy_and_the_standard_library_only(path: Path) -> None:
    allowed = {"simpy", "sim.program", "sim.trace", "sim.kernel", "sim.policies", "sim"}
    assert outside(path, allowed) == set()


@pytest.mark.parametrize("path", sorted((ROOT / "sim" / "policies").glob("*.py")), ids=str)
def test_policies_import_the_standard_library_only(path: Path) -> None:
    assert outside(path, {"sim.policies", "sim.program"}) == set()


@pytest.mark.parametrize("name", ["trace.py", "program.py"])
def test_contracts_need_the_standard_library_only(name: str) -> None:
    assert outside(ROOT / "sim" / name, set()) == set()


def test_viz_never_runs_real_processes() -> None:
    for path in (ROOT / "viz").rglob("*.py"):
        modules = imported_modules(path)
        starters = {m for m in modules if m.split(".")[0] in {"multiprocessing", "subprocess"}}
        assert not starters, path
        assert not {m for m in modules if m.startswith("sim.real")}, path


def test_only_sim_real_starts_processes() -> None:
    for path in (ROOT / "sim").rglob("*.py"):
        if "real" in path.relative_to(ROOT / "sim").parts or path.parent.name == "cli":
            continue
        assert "multiprocessing" not in {m.split(".")[0] for m in imported_modules(path)}, path
