"""Scenario files: YAML in, a validated, frozen `sim.program.Scenario` out.

Loading goes through four stages, and every stage reports all it finds:

1. `sim.scenario_yaml` reads the YAML, keeping positions, catching syntax errors,
   duplicate keys and YAML 1.1 readings;
2. the pydantic models of `sim.scenario_models` check every key and type (their
   errors are put in plain words by `sim.scenario_messages`);
3. `sim.scenario_refs` checks the names the scenario uses against what it defines;
4. `sim.scenario_build` makes the `sim.program` objects.

Stages 2 and 3 both run on whatever stage 1 could read, so one pass shows every
problem of the file. Any problem raises `ScenarioError`, whose `str()` is the
complete report: nothing else ever escapes to the user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.calibrate import ProfileError, resolve_profile
from sim.program import Scenario
from sim.scenario_build import build_scenario
from sim.scenario_errors import Problem, ScenarioError
from sim.scenario_messages import structure_problems
from sim.scenario_models import ScenarioModel
from sim.scenario_refs import check_references
from sim.scenario_yaml import parse_yaml

__all__ = ["Problem", "ScenarioError", "json_schema", "load_scenario", "load_scenario_text"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def load_scenario(path: str | Path, profile: str | Path | None = None) -> Scenario:
    """Read, validate and build the scenario in the file at `path`. `profile`, a
    machine profile file, replaces the one the scenario names (see sim.calibrate)."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        reason = error.strerror or str(error)
        raise ScenarioError(source, [Problem(source, 0, 0, "", f"cannot read: {reason}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        line = before.count(b"\n") + 1
        column = len(before) - before.rfind(b"\n")
        message = f"expected UTF-8 text (got the byte 0x{raw[error.start]:02x})"
        raise ScenarioError(source, [Problem(source, line, column, "", message)]) from None
    return load_scenario_text(text, source, profile)


def load_scenario_text(
    text: str, source: str = "<string>", profile: str | Path | None = None
) -> Scenario:
    """Validate and build a scenario from YAML text; `source` names it in messages."""
    data, locator, problems = parse_yaml(text, source)
    if data is None and problems:
        raise ScenarioError(source, problems)  # nothing readable to check further
    model: ScenarioModel | None = None
    try:
        model = ScenarioModel.model_validate(data)
    except ValidationError as error:
        problems += structure_problems(error, locator)
    problems += check_references(data, locator)
    if problems or model is None:
        raise ScenarioError(source, problems)
    written = model.machine.profile if model.machine is not None else None
    try:
        machine_profile = resolve_profile(written, profile, source)
    except ProfileError as error:
        if profile is not None or written is None:
            raise
        here = locator.problem(("machine", "profile"), "this machine profile cannot be used:")
        raise ScenarioError(source, [here, *error.problems]) from None
    return build_scenario(model, locator, machine_profile.machine())


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the scenario language, for editors (completion, checks).

    Keys left out take the defaults of `sim.program`, so the schema states no
    defaults rather than a misleading `null`."""
    schema = ScenarioModel.model_json_schema(by_alias=True)
    _drop_null_defaults(schema)
    schema["title"] = "procsim scenario"
    return {"$schema": SCHEMA_DIALECT, **schema}


def _drop_null_defaults(node: Any) -> None:
    if isinstance(node, dict):
        if "default" in node and node["default"] is None:
            del node["default"]
        for value in node.values():
            _drop_null_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _drop_null_defaults(value)
