"""YAML text to plain data, remembering where every value was written.

PyYAML's own constructor forgets positions, silently keeps the last of two equal
keys, and reads YAML 1.1: `no` is false, `010` is 8, `1:30` is 90. This module
builds the data from PyYAML's composed node tree instead, so that it can:

- record, for every path such as `("main", 2, "spawn", "target")`, where the key
  and the value start, for messages that point at the right column;
- report duplicate keys (at compose time, where both are still visible);
- keep the YAML 1.1 readings that surprise people as `Yaml11Scalar` markers, which
  no field accepts, so the message can say what YAML made of the text;
- take keys as the text written, so an object named `on` is named "on".

Only `true`/`false` are booleans. Values this module cannot represent (an unknown
tag, a recursive alias) become `DAMAGED` after their problem is reported, so that
later stages stay quiet about them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sim.scenario_errors import Problem

Path: TypeAlias = tuple[str | int, ...]
Position: TypeAlias = tuple[int, int]  # 1-based line, column

_TAG = "tag:yaml.org,2002:"
_OCTAL = re.compile(r"[-+]?0[0-7_]+")


@dataclass(frozen=True)
class Yaml11Scalar:
    """A plain scalar PyYAML would read the YAML 1.1 way, e.g. `no` as false."""

    text: str
    kind: Literal["bool", "octal", "sexagesimal"]
    reading: bool | int | float  # what YAML 1.1 makes of it

    @property
    def meaning(self) -> str:
        """E.g. "the boolean false", "the octal number 8"."""
        if isinstance(self.reading, bool):
            return f"the boolean {'true' if self.reading else 'false'}"
        return f"the {'octal' if self.kind == 'octal' else 'base-60'} number {self.reading}"


class _Damaged:
    """A value already reported as a problem; later stages ignore it."""

    def __repr__(self) -> str:
        return "DAMAGED"


DAMAGED: Final = _Damaged()


@dataclass(frozen=True)
class _Entry:
    key: Position | None  # the key holding the value (None for list items, the root)
    value: Position
    node: Node


def format_path(path: Iterable[str | int]) -> str:
    """`("main", 2, "spawn", "target")` → `main[2].spawn.target`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


class Locator:
    """Where each part of the data was written."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.data: Any = None
        self._lines = text.splitlines()
        self._entries: dict[Path, _Entry] = {}

    def record(self, path: Path, key: Node | None, value: Node) -> None:
        key_position = _pos(key) if key is not None else None
        self._entries.setdefault(path, _Entry(key_position, _pos(value), value))

    def resolve(self, loc: Iterable[Any]) -> Path:
        """The path in the data that a validator's location designates.

        Validators put parts into locations that are not in the data (a union
        member's tag, a validator's name, a long form's key when the short form was
        written); those are skipped, so the result is always a real path."""
        node: Any = self.data
        path: list[str | int] = []
        for part in loc:
            if _has(node, part):
                node = node[part]
                path.append(part)
        return tuple(path)

    def value_at(self, path: Path) -> Any:
        node: Any = self.data
        for part in path:
            node = node[part]
        return node

    def _entry(self, path: Path) -> _Entry | None:
        # Values reached through an alias are recorded once, under the anchor's
        # path; the nearest recorded ancestor is the best place for the others.
        for end in range(len(path), -1, -1):
            entry = self._entries.get(path[:end])
            if entry is not None:
                return entry
        return None

    def position(self, path: Path, at_key: bool = False) -> Position:
        entry = self._entry(path)
        if entry is None:
            return (1, 1)
        return entry.key if at_key and entry.key is not None else entry.value

    def written(self, path: Path) -> str | None:
        """The text of a scalar as written (with its quotes), if `path` is one."""
        entry = self._entries.get(path)
        if entry is None or not isinstance(entry.node, ScalarNode):
            return None
        node = entry.node
        if node.style in ("'", '"'):
            return f"{node.style}{node.value}{node.style}"
        return str(node.value)

    def problem(self, path: Path, message: str, at_key: bool = False) -> Problem:
        line, column = self.position(path, at_key)
        return self.problem_at((line, column), format_path(path), message)

    def problem_at(self, position: Position, path: str, message: str) -> Problem:
        line, column = position
        text = self._lines[line - 1] if 0 < line <= len(self._lines) else ""
        return Problem(self.source, line, column, path, message, text)


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return isinstance(part, str) and part in node
    return isinstance(node, list) and type(part) is int and 0 <= part < len(node)


class _Builder:
    """Plain data from a node tree; problems and positions on the side."""

    def __init__(self, locator: Locator) -> None:
        self.locator = locator
        self.problems: list[Problem] = []
        self._constructor = SafeConstructor()
        self._built: dict[int, Any] = {}  # shared (aliased) nodes are built once
        self._building: set[int] = set()

    def build(self, node: Node, path: Path) -> Any:
        if id(node) in self._building:
            self.problems.append(self.locator.problem(path, "an alias refers to itself"))
            return DAMAGED
        if id(node) in self._built:
            return self._built[id(node)]
        self._building.add(id(node))
        if isinstance(node, MappingNode):
            value: Any = self._mapping(node, path)
        elif isinstance(node, SequenceNode):
            value = self._sequence(node, path)
        elif isinstance(node, ScalarNode):
            value = self._scalar(node, path)
        else:
            value = self._unsupported(node, path)
        self._building.discard(id(node))
        self._built[id(node)] = value
        return value

    def _mapping(self, node: MappingNode, path: Path) -> Any:
        if node.tag != _TAG + "map":
            return self._unsupported(node, path)
        result: dict[str, Any] = {}
        first: dict[str, Position] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                self.problems.append(
                    self.locator.problem_at(
                        _pos(key_node),
                        format_path(path),
                        "merge keys (<<) are not supported: write the keys out",
                    )
                )
                continue
            if not isinstance(key_node, ScalarNode):
                self.problems.append(
                    self.locator.problem_at(
                        _pos(key_node), format_path(path), "a key must be a plain name"
                    )
                )
                continue
            key = str(key_node.value)
            if key in first:
                line, column = first[key]
                self.problems.append(
                    self.locator.problem_at(
                        _pos(key_node),
                        format_path((*path, key)),
                        f"duplicate key '{key}' (first written at line {line}, column {column})",
                    )
                )
                continue
            first[key] = _pos(key_node)
            self.locator.record((*path, key), key_node, value_node)
            result[key] = self.build(value_node, (*path, key))
        return result

    def _sequence(self, node: SequenceNode, path: Path) -> Any:
        if node.tag != _TAG + "seq":
            return self._unsupported(node, path)
        items: list[Any] = []
        for index, item in enumerate(node.value):
            self.locator.record((*path, index), None, item)
            items.append(self.build(item, (*path, index)))
        return items

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        tag, text = node.tag, str(node.value)
        if tag == _TAG + "str":
            return text
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool":
            if text.lower() in ("true", "false"):
                return text.lower() == "true"
            return Yaml11Scalar(text, "bool", self._constructor.construct_yaml_bool(node))
        if tag in (_TAG + "int", _TAG + "float"):
            number = (
                self._constructor.construct_yaml_int(node)
                if tag == _TAG + "int"
                else self._constructor.construct_yaml_float(node)
            )
            if ":" in text:
                return Yaml11Scalar(text, "sexagesimal", number)
            if tag == _TAG + "int" and _OCTAL.fullmatch(text):
                return Yaml11Scalar(text, "octal", number)
            return number
        if tag == _TAG + "timestamp":
            return self._constructor.construct_yaml_timestamp(node)
        return self._unsupported(node, path)

    def _unsupported(self, node: Node, path: Path) -> Any:
        self.problems.append(
            self.locator.problem(path, f"unsupported YAML tag {node.tag}: remove the tag")
        )
        return DAMAGED


def _pos(node: Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _syntax_message(error: yaml.MarkedYAMLError) -> str:
    problem = (error.problem or "invalid YAML").strip()
    mark = error.context_mark
    if error.context and problem.startswith("but "):
        # PyYAML splits "expected X, but found Y" across context and problem.
        return f"YAML syntax error: {error.context}, {problem}"
    message = f"YAML syntax error: {problem}"
    if error.context and mark is not None and mark != error.problem_mark:
        message += f" ({error.context} started at line {mark.line + 1}, column {mark.column + 1})"
    if "'\\t'" in problem:
        message += "; indent with spaces, YAML does not allow tabs there"
    elif problem == "mapping values are not allowed here":
        message += "; quote a value that contains ': '"
    return message


def parse_yaml(text: str, source: str) -> tuple[Any, Locator, list[Problem]]:
    """The data of one YAML document, its locator and the problems found so far.

    A syntax error stops here (the data is None): nothing after it can be read."""
    locator = Locator(source, text)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        position = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        return None, locator, [locator.problem_at(position, "", _syntax_message(error))]
    except yaml.reader.ReaderError as error:
        before = text[: error.position]
        position = (before.count("\n") + 1, len(before) - before.rfind("\n"))
        message = f"character #x{error.character:04x} is not allowed in YAML ({error.reason})"
        return None, locator, [locator.problem_at(position, "", message)]
    except RecursionError:
        return None, locator, [locator.problem_at((1, 1), "", "the YAML is nested too deeply")]
    if root is None:
        message = "the file holds no scenario: expected a mapping with at least name and main"
        return None, locator, [locator.problem_at((1, 1), "", message)]
    builder = _Builder(locator)
    locator.record((), None, root)
    try:
        locator.data = builder.build(root, ())
    except RecursionError:
        return None, locator, [locator.problem_at((1, 1), "", "the YAML is nested too deeply")]
    return locator.data, locator, builder.problems


def describe(value: Any, written: str | None = None) -> str:
    """How a value is named after "got" in a message: as written where known."""
    if isinstance(value, Yaml11Scalar):
        return f"{value.text}, which YAML 1.1 reads as {value.meaning}"
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if written is not None:
        return written
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return str(value)
