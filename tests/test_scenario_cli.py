"""`procsim validate` and `procsim schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

import sim.cli  # noqa: F401  (registers every command on the app)
from sim.cli.app import app
from sim.scenario_models import OBJECT_TYPES, OPERATIONS

ROOT = Path(__file__).parent.parent
BAD = Path(__file__).parent / "data" / "bad"
runner = CliRunner()


def run(*args: str | Path) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_validate_valid_files(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: good\nmain: [{compute: 1ms}]\n", encoding="utf-8")
    result = run("validate", good, good)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [f"ok  {good}", f"ok  {good}"]
    assert result.stderr == ""


def test_validate_reports_every_problem_of_every_file_and_exits_2(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: good\nmain: []\n", encoding="utf-8")
    first, second = BAD / "many_problems.yaml", BAD / "unitless_duration.yaml"
    result = run("validate", first, good, second)
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [f"ok  {good}"]
    errors = result.stderr
    assert f"14 problems in {first}" in errors
    assert f"3 problems in {second}" in errors
    # Key paths such as main[3] are printed as they are, not eaten as markup.
    assert f"{first}:14:15: main[3].join[1]: expected the name of a process or thread" in errors
    assert (
        f"{second}:3:14: main[0].compute: a duration needs a unit: ns, us, ms or s (got 5)"
        in errors
    )


def test_validate_a_missing_file(tmp_path: Path) -> None:
    result = run("validate", tmp_path / "absent.yaml")
    assert result.exit_code == 2
    assert "absent.yaml: cannot read: No such file or directory" in result.stderr


def test_every_bad_file_exits_2() -> None:
    result = run("validate", *sorted(BAD.glob("*.yaml")))
    assert result.exit_code == 2
    assert "ok  " not in result.stdout


def test_shipped_scenarios_are_valid() -> None:
    shipped = sorted((ROOT / "scenarios").glob("*.yaml"))
    assert shipped
    result = run("validate", *shipped)
    assert result.stderr == ""
    assert result.exit_code == 0


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_schema_is_json_with_the_language() -> None:
    result = run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {
        "name",
        "description",
        "seed",
        "machine",
        "objects",
        "functions",
        "main",
        "compare",
    }
    assert sorted(schema["required"]) == ["main", "name"]
    assert schema["additionalProperties"] is False
    definitions = schema["$defs"]
    # Every reference resolves; every operation is a property of an operation.
    for ref in _refs(schema):
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in definitions
    operation = definitions["OpModel"]
    assert set(operation["properties"]) == set(OPERATIONS)
    assert (operation["minProperties"], operation["maxProperties"]) == (1, 1)
    # Short forms are in the schema: `put: q` as well as `put: {queue: q}`.
    assert {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"} in operation["properties"][
        "put"
    ]["anyOf"]
    # Durations are strings with a unit, or a distribution.
    compute = operation["properties"]["compute"]["anyOf"]
    assert compute[0]["type"] == "string" and "ms" in compute[0]["pattern"]
    (objects,) = schema["properties"]["objects"]["patternProperties"].values()
    tags = set(objects["discriminator"]["mapping"])
    assert tags == set(OBJECT_TYPES)
    assert '"default": null' not in result.stdout


def test_problem_lines_are_printed_as_written(tmp_path: Path) -> None:
    """No rich markup, emoji codes or wrapping in what the user wrote."""
    line = 'main: [{print: ":thumbs_up: [bold]x[/bold]"}, {compute: 5}]' + " " * 100 + "# long"
    path = tmp_path / "s.yaml"
    path.write_text(f"name: x\n{line}\n", encoding="utf-8")
    result = run("validate", path)
    assert result.exit_code == 2
    assert f"    {line}\n" in result.stderr
