"""docs/scenarios.md: its examples load (and run), and it explains every key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim import program as p
from sim.kernel import simulate
from sim.scenario import ScenarioError, load_scenario_text
from sim.scenario_build import machine
from sim.scenario_models import (
    OBJECT_TYPES,
    OPERATIONS,
    CostsModel,
    MachineModel,
    MlfqModel,
    PerStartMethodModel,
    Strict,
)
from sim.trace import MemorySink

DOC = Path(__file__).parent.parent / "docs" / "scenarios.md"
TEXT = DOC.read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```yaml\n(.*?)```", TEXT, re.S)


def _name(example: str) -> str:
    match = re.search(r"^name: (.+)$", example, re.M)
    return match.group(1) if match else "?"


@pytest.mark.parametrize("example", EXAMPLES, ids=_name)
def test_every_example_loads_and_simulates_to_the_end(example: str) -> None:
    scenario = load_scenario_text(example, f"{DOC.name}: {_name(example)}")
    result = simulate(scenario, MemorySink())
    assert result.end.status == "complete"


def _operations(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if len(node) == 1 and next(iter(node)) in OPERATIONS:
            found.add(next(iter(node)))
        for value in node.values():
            found |= _operations(value)
    elif isinstance(node, list):
        for value in node:
            found |= _operations(value)
    return found


def test_every_operation_has_an_example_and_a_section() -> None:
    shown = set().union(*(_operations(yaml.safe_load(example)) for example in EXAMPLES))
    assert shown == set(OPERATIONS)
    headings = " ".join(re.findall(r"^### (.+)$", TEXT, re.M))
    for operation in OPERATIONS:
        assert re.search(rf"\b{operation}\b", headings), operation


def _models(base: type[Strict]) -> list[type[Strict]]:
    """The models of the scenario language (other files, such as machine
    profiles, reuse `Strict` for their own formats)."""
    subclasses = [m for sub in base.__subclasses__() for m in (sub, *_models(sub))]
    return [m for m in subclasses if m.__module__ == "sim.scenario_models"]


def test_every_key_and_object_type_is_explained() -> None:
    keys = {
        field.alias or name
        for model in _models(Strict)
        for name, field in model.model_fields.items()
    }
    for word in sorted(keys | set(OBJECT_TYPES)):
        # In a code span: `key`, `machine.costs.key`, `put: {queue, size, …}`.
        assert re.search(rf"`[^`\n]*\b{word}\b[^`\n]*`", TEXT), word


_DEFAULT_ROW = re.compile(r"^\| `(machine\.[a-z_.]+)` \| `([^`]+)` \|", re.M)


def _nested(path: list[str], value: Any) -> dict[str, Any]:
    return {path[0]: _nested(path[1:], value) if len(path) > 1 else value}


def test_documented_machine_defaults_are_the_real_ones() -> None:
    """Writing the default the docs state onto `sim.program`'s machine changes
    nothing (the profile, which may replace these, is documented apart)."""
    rows = _DEFAULT_ROW.findall(TEXT)
    groups = {
        "mlfq": MlfqModel,
        "start_cost": PerStartMethodModel,
        "exit_cost": PerStartMethodModel,
        "costs": CostsModel,
    }
    every_key = {
        f"machine.{key}.{sub}" if key in groups else f"machine.{key}"
        for key in MachineModel.model_fields
        for sub in (groups[key].model_fields if key in groups else [""])
        if key != "profile"
    }
    assert {key for key, _ in rows} == every_key
    for key, default in rows:
        data = _nested(key.split(".")[1:], yaml.safe_load(default))
        assert machine(MachineModel.model_validate(data), p.Machine()) == p.Machine(), key


def test_the_report_shown_in_the_docs_is_the_real_one() -> None:
    section = TEXT.split("# What validation checks", 1)[1]
    scenario, report = re.findall(r"```text\n(.*?)```", section, re.S)[:2]
    with pytest.raises(ScenarioError) as error:
        load_scenario_text(scenario, "scenario.yaml")
    assert str(error.value) + "\n" == report
