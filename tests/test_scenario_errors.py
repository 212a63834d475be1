"""Malformed scenarios: every problem reported, at the right line and column.

Each file in tests/data/bad/ marks the problems it must produce with trailing
comments on the offending line, `# expect COLUMN: fragment`, where the fragment
is part of `key.path: message`. A file passes when every expected problem is
reported at that line and column and nothing else is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.scenario import Problem, ScenarioError, load_scenario, load_scenario_text

BAD = Path(__file__).parent / "data" / "bad"
_EXPECT = re.compile(r"# expect (\d+): (.*?)(?=\s+# expect \d+:|\s*$)")


def _expected(path: Path) -> list[tuple[int, int, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        (number, int(match.group(1)), match.group(2))
        for number, line in enumerate(lines, start=1)
        for match in _EXPECT.finditer(line)
    ]


def _text(problem: Problem) -> str:
    return f"{problem.path}: {problem.message}" if problem.path else problem.message


def _problems(path: Path) -> list[Problem]:
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    return error.value.problems


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_scenario_reports_exactly_the_expected_problems(path: Path) -> None:
    expected = _expected(path)
    assert expected, f"{path.name} declares no expected problem"
    unmatched = _problems(path)
    missing = []
    for line, column, fragment in expected:
        hit = next(
            (p for p in unmatched if (p.line, p.column) == (line, column) and fragment in _text(p)),
            None,
        )
        if hit is None:
            missing.append(f"{line}:{column} {fragment}")
        else:
            unmatched.remove(hit)
    extra = [f"{p.line}:{p.column} {_text(p)}" for p in unmatched]
    assert (missing, extra) == ([], [])


def test_the_bad_files_cover_every_kind_of_problem() -> None:
    """The kinds the language promises to catch, each in some file."""
    messages = "\n".join(_text(p) for path in BAD.glob("*.yaml") for p in _problems(path))
    for kind in [
        "YAML syntax error",
        "duplicate key",
        "unknown key",
        "unknown operation",
        "missing key",
        "expected a whole number",
        "a duration needs a unit",
        "a size needs a unit",
        "unknown unit",
        "cannot be negative",
        "which YAML 1.1 reads as the boolean",
        "YAML 1.1 reads 1e3 as text",
        "daemonic processes are not allowed to have children",
        "defined under functions",
        "defined under objects",
        "expected a pipe end that can send",
        "expected a pipe end that can receive",
        "which no spawn or thread creates",
        "spawned with start: false",
        "names must be unique",
        "expected a whole number ≥ 1 (got 0)",
    ]:
        assert kind in messages, kind


def test_the_report_shows_every_problem_with_its_line_and_a_caret() -> None:
    path = BAD / "many_problems.yaml"
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    report = str(error.value)
    lines = report.splitlines()
    assert lines[-1] == f"14 problems in {path}"
    assert "Traceback" not in report
    # The first problem, the offending line, and a caret under column 7.
    assert lines[0].startswith(f"{path}:2:7: name: expected text (got no, which YAML 1.1")
    assert lines[1].startswith("    name: no   # expect 7")
    assert lines[2] == "    " + " " * 6 + "^"
    # Sorted by position.
    positions = [(p.line, p.column) for p in error.value.problems]
    assert positions == sorted(positions)


def test_one_problem_is_singular_and_tabs_keep_the_caret_aligned() -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario_text("name: x\nmain:\n\t- compute: 1ms\n", "tab.yaml")
    report = str(error.value).splitlines()
    assert report[0].startswith("tab.yaml:3:1: YAML syntax error:")
    assert report[-1] == "1 problem in tab.yaml"


def test_caret_follows_tabs_before_the_column() -> None:
    problem = Problem("f.yaml", 1, 4, "x", "bad", "\ta: 1")
    assert str(problem).splitlines()[2] == "    \t  ^"


def test_unreadable_files_are_reported_not_raised(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError) as error:
        load_scenario(missing)
    assert (
        str(error.value)
        == f"{missing}: cannot read: No such file or directory\n1 problem in {missing}"
    )
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: x\nmain: [\xff]\n")
    with pytest.raises(ScenarioError) as error:
        load_scenario(binary)
    (problem,) = error.value.problems
    assert (problem.line, problem.column) == (2, 8)
    assert problem.message == "expected UTF-8 text (got the byte 0xff)"


def test_a_problem_in_the_structure_does_not_hide_reference_problems() -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario_text("name: x\nseed: one\nmain: [{join: ghost}]\n")
    assert [(p.line, p.path) for p in error.value.problems] == [(2, "seed"), (3, "main[0].join")]


def test_a_broken_definition_does_not_cascade_into_undefined_names() -> None:
    """The spawn is malformed (daemon: yes), but its name still counts as defined."""
    text = (
        "name: x\nfunctions:\n  f: [{compute: 1ms}]\n"
        "main:\n  - spawn: {name: p1, target: f, daemon: yes}\n  - join: p1\n"
    )
    with pytest.raises(ScenarioError) as error:
        load_scenario_text(text)
    assert [p.path for p in error.value.problems] == ["main[0].spawn.daemon"]


VALID: dict[str, Any] = {
    "name": "fuzz",
    "machine": {"cpus": 2, "policy": "rr", "quantum": "1ms"},
    "objects": {
        "q": {"type": "queue", "maxsize": 2},
        "pp": {"type": "pipe", "ends": ["a", "b"]},
        "p": {"type": "pool", "workers": 2},
    },
    "functions": {"f": [{"compute": "1ms"}, {"put": {"queue": "q", "size": "1KiB"}}]},
    "main": [
        {"spawn": {"name": "c", "target": "f", "daemon": True}},
        {"repeat": {"times": 2, "do": [{"get": "q"}]}},
        {"apply_async": {"pool": "p", "function": "f", "times": 3, "callback": "f"}},
        {"join": ["c"]},
    ],
}

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["q", "a", "f", "c", "p", "1ms", "-1ms", "64B", "yes", "1e3", "main", ""]),
    st.text(max_size=5),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["type", "name", "do", "q", "queue", "x"]), inner, max_size=3
        )
    ),
    max_leaves=8,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


def _replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, *rest = path
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[head] = _replace(node[head], tuple(rest), value)
    return copy


def _never_crashes(text: str) -> None:
    try:
        load_scenario_text(text, "fuzz.yaml")
    except ScenarioError as error:
        assert error.problems
        lines = max(1, len(text.splitlines()) + 1)
        for problem in error.problems:
            assert 1 <= problem.line <= lines
            assert problem.column >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_paths(VALID)), _values)
def test_any_part_replaced_by_anything_gives_problems_not_crashes(
    path: tuple[Any, ...], value: Any
) -> None:
    _never_crashes(yaml.safe_dump(_replace(VALID, path, value), allow_unicode=True))


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("ab:- {}[],\n\t'\"&*!#%|>?0123456789.yes")), max_size=60)
)
def test_any_text_gives_problems_not_crashes(text: str) -> None:
    _never_crashes(text)
