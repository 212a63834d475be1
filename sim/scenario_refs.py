"""The names a scenario uses, checked against what it defines, before anything runs.

A `put` must name a queue, a `send` a pipe end that can send, a `join` a process
or thread that some `spawn` or `thread` creates; process names are unique; a
daemon may not start children. CPython finds these at run time, half-way through
a program; procsim finds them all at load time.

The checks read the YAML data directly, not the validated models, so that they
run even when other parts of the file are malformed: a broken operation is
skipped, and names are collected from whatever is readable, so one mistake does
not cascade into a page of "undefined" messages. Which fields are references, and
to what, comes from the `Ref`, `Defines` and `Creates` metadata of the models.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sim.scenario_errors import Problem
from sim.scenario_models import (
    BLOCK,
    FUNCTION_FORM,
    NAME_PATTERN,
    OBJECT_TYPES,
    OPERATIONS,
    Creates,
    Defines,
    Ref,
    did_you_mean,
    short_form,
)
from sim.scenario_yaml import Locator, Path

MAIN = "main"
_MANY = 2  # run counts are capped here: all that matters is "more than once"
_DAEMON_RULE = 'CPython: "daemonic processes are not allowed to have children"'


@dataclass(frozen=True)
class _Op:
    """One operation as written, its short form expanded."""

    key: str
    value: Any
    field: FieldInfo
    path: Path  # of the operation's mapping
    owner: str  # MAIN or the function whose body holds it
    repeat: int  # how many times the enclosing repeat blocks run it (capped)

    def spec(self, key: str) -> Any:
        return self.value.get(key) if isinstance(self.value, dict) else None

    def key_path(self, *keys: str | int) -> Path:
        return (*self.path, self.key, *keys)

    def creates_children(self) -> bool:
        fields = [self.field, *_spec_fields(self.field).values()]
        return any(isinstance(m, Creates) for f in fields for m in f.metadata)

    def defines(self) -> Defines | None:
        return next(
            (d for f in _spec_fields(self.field).values() if (d := _meta(f, Defines))), None
        )


@dataclass(frozen=True)
class _End:
    pipe: str
    index: int  # 0 or 1: with duplex false the first end receives, the second sends
    duplex: bool
    ends: tuple[str, str]


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _count(value: Any) -> int:
    """A count as written, capped; 1 when absent or malformed (reported elsewhere)."""
    return min(value, _MANY) if type(value) is int and value >= 0 else 1


def _spec_fields(field: FieldInfo) -> dict[str, FieldInfo]:
    model = field.annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return {f.alias or name: f for name, f in model.model_fields.items()}
    return {}


def _meta(field: FieldInfo, kind: type[Any]) -> Any:
    return next((m for m in field.metadata if isinstance(m, kind)), None)


def _ops(block: Any, path: Path, owner: str, repeat: int) -> Iterator[_Op]:
    """Every readable operation of a block and of the blocks nested in it."""
    if not isinstance(block, list):
        return
    for index, item in enumerate(block):
        if not (isinstance(item, dict) and len(item) == 1):
            continue
        ((key, value),) = item.items()
        field = OPERATIONS.get(key)
        if field is None:
            continue
        form = short_form(field)
        op = _Op(key, form(value) if form else value, field, (*path, index), owner, repeat)
        yield op
        inner = min(repeat * _count(op.spec("times")), _MANY) if key == "repeat" else repeat
        for name, spec_field in _spec_fields(field).items():
            if BLOCK in spec_field.metadata:
                yield from _ops(op.spec(name), op.key_path(name), owner, inner)


def _refs(op: _Op) -> Iterator[tuple[Ref, str, str, Path]]:
    """Every name the operation refers to: (what it may be, the name, the field, where)."""
    ref = _meta(op.field, Ref)
    if ref is not None:
        if isinstance(op.value, str):
            yield ref, op.value, op.key, op.key_path()
        return
    for field_name, field in _spec_fields(op.field).items():
        ref = _meta(field, Ref)
        value = op.spec(field_name)
        if ref is None:
            continue
        if isinstance(value, str):
            yield ref, value, field_name, op.key_path(field_name)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, str):
                    yield ref, item, field_name, op.key_path(field_name, index)


def check_references(data: Any, locator: Locator) -> list[Problem]:
    """Every problem with the names the scenario defines and uses."""
    if not isinstance(data, dict):
        return []
    checker = _Checker(data, locator)
    checker.check_definitions()
    checker.check_uses()
    checker.check_daemons()
    return checker.problems


class _Checker:
    def __init__(self, data: dict[str, Any], locator: Locator) -> None:
        self.locator = locator
        self.problems: list[Problem] = []
        self.objects: dict[str, str] = {}  # name → type
        self.ends: dict[str, _End] = {}
        self.functions: dict[str, Any] = {}  # name → body as written
        self.processes: dict[str, _Op] = {}  # name → its spawn
        self.threads: dict[str, _Op] = {}
        if isinstance(data.get("objects"), dict):
            self._index_objects(data["objects"])
        if isinstance(data.get("functions"), dict):
            for name, function in data["functions"].items():
                function = FUNCTION_FORM(function)
                self.functions[name] = function.get("body") if isinstance(function, dict) else None
        self.ops = list(_ops(data.get("main"), ("main",), MAIN, 1))
        for name, body in self.functions.items():
            self.ops += _ops(body, ("functions", name, "body"), name, 1)
        self.owned: dict[str, list[_Op]] = {}  # function → the operations of its body
        for op in self.ops:
            self.owned.setdefault(op.owner, []).append(op)
        self.runs = self._runs()

    def report(self, path: Path, message: str, at_key: bool = False) -> None:
        self.problems.append(self.locator.problem(self.locator.resolve(path), message, at_key))

    def where(self, op: _Op) -> str:
        line, column = self.locator.position(self.locator.resolve(op.path))
        return f"line {line}, column {column}"

    def times(self, op: _Op) -> int:
        """How many times `op` may run (capped)."""
        return min(op.repeat * self.runs[op.owner], _MANY)

    # --- definitions ---------------------------------------------------------------

    def _index_objects(self, objects: dict[str, Any]) -> None:
        for name, spec in objects.items():
            if isinstance(spec, dict) and spec.get("type") in OBJECT_TYPES:
                self.objects[name] = spec["type"]
        for name, spec in objects.items():
            ends = spec.get("ends") if isinstance(spec, dict) else None
            if self.objects.get(name) != "pipe" or not isinstance(ends, list) or len(ends) != 2:
                continue
            pair = (str(ends[0]), str(ends[1]))
            for index, end in enumerate(ends):
                if not isinstance(end, str):
                    continue
                path = ("objects", name, "ends", index)
                if end in self.objects:
                    self.report(path, f"expected a name no object uses (got '{end}', an object)")
                elif end in self.ends:
                    other = self.ends[end].pipe
                    self.report(
                        path,
                        f"expected a name no other pipe end uses (got '{end}', "
                        + ("the pipe's other end)" if other == name else f"an end of '{other}')"),
                    )
                else:
                    self.ends[end] = _End(name, index, spec.get("duplex") is not False, pair)

    def _runs(self) -> dict[str, int]:
        """How many times main and each function may run, capped. A function runs
        as often as the operations that name it (targets, pool tasks, callbacks)
        run, summed; iterating to a fixed point handles functions that start
        themselves, and leaves functions nothing runs at 0."""
        runs = dict.fromkeys(self.functions, 0) | {MAIN: 1}
        while True:
            new = dict.fromkeys(self.functions, 0) | {MAIN: 1}
            for op in self.ops:
                for ref, name, field, _ in _refs(op):
                    if ref.kind == "function" and name in self.functions:
                        per_op = 1
                        if op.key == "apply_async":
                            per_op = _count(op.spec("times"))
                        elif field == "function":
                            per_op = _count(op.spec("items"))
                        times = op.repeat * runs[op.owner] * per_op
                        new[name] = min(new[name] + times, _MANY)
            if new == runs:
                return runs
            runs = new

    def check_definitions(self) -> None:
        """Process and thread names: not `main`, unique, created once."""
        for op in self.ops:
            defines, name = op.defines(), op.spec("name")
            if defines is None or not isinstance(name, str):
                continue
            kind, path = defines.kind, op.key_path("name")
            if name == MAIN:
                self.report(path, f"expected a {kind} name other than main (got 'main', reserved)")
                continue
            first = self.processes.get(name) or self.threads.get(name)
            if first is not None:
                self.report(
                    path,
                    f"expected a new {kind} name (got '{name}', already used by the "
                    f"{first.key} at {self.where(first)}): names must be unique",
                )
                continue
            (self.processes if kind == "process" else self.threads)[name] = op
            # A thread is named within its process, so only a repeat can clash.
            times = op.repeat if kind == "thread" else self.times(op)
            if times > 1:
                why = "inside a repeat" if op.repeat > 1 else f"'{op.owner}' runs more than once"
                self.report(
                    path,
                    f"expected a {op.key} that runs once (this one can run more than once: "
                    f"{why}), since every {kind} needs its own name (got '{name}')",
                )

    # --- uses ----------------------------------------------------------------------

    def check_uses(self) -> None:
        started: dict[str, _Op] = {}
        for op in self.ops:
            for ref, name, _, path in _refs(op):
                if not re.fullmatch(NAME_PATTERN, name):
                    continue  # not a name at all: reported as such by validation
                message = self._check(ref, name)
                if message is None and ref.kind == "start":
                    message = self._check_start(op, name, started)
                if message is not None:
                    self.report(path, message)

    def _check(self, ref: Ref, name: str) -> str | None:
        if ref.kind == "function":
            if name in self.functions:
                return None
            known = list(self.functions)
            return (
                "expected the name of a function defined under functions "
                f"(got '{name}'){did_you_mean(name, known)}"
            )
        if ref.kind == "object":
            return self._check_object(ref, name)
        if ref.kind == "end":
            return self._check_end(ref, name)
        return self._check_task(ref, name)

    def _check_object(self, ref: Ref, name: str) -> str | None:
        kind = self.objects.get(name)
        if kind in ref.types:
            return None
        expected = f"expected the name of {ref.noun()}"
        if kind is not None:
            return f"{expected} (got '{name}', {_a(kind)})"
        if name in self.ends:
            return f"{expected} (got '{name}', an end of pipe '{self.ends[name].pipe}')"
        fitting = [n for n, k in self.objects.items() if k in ref.types]
        return f"{expected} defined under objects (got '{name}'){did_you_mean(name, fitting)}"

    def _check_end(self, ref: Ref, name: str) -> str | None:
        end = self.ends.get(name)
        if end is None:
            kind = self.objects.get(name)
            if kind == "pipe":
                return (
                    f"expected the name of a pipe end (got '{name}', the pipe itself): "
                    "send, recv and close use one of its ends"
                )
            got = f"'{name}', {_a(kind)}" if kind else f"'{name}'"
            return (
                "expected the name of a pipe end, one of the ends of a pipe under objects "
                f"(got {got}){did_you_mean(name, list(self.ends))}"
            )
        if end.duplex or ref.direction is None:
            return None
        if ref.direction == "send" and end.index == 0:
            return (
                f"expected a pipe end that can send (got '{name}', the receiving end of the "
                f"one-way pipe '{end.pipe}', duplex: false): send on '{end.ends[1]}'"
            )
        if ref.direction == "recv" and end.index == 1:
            return (
                f"expected a pipe end that can receive (got '{name}', the sending end of the "
                f"one-way pipe '{end.pipe}', duplex: false): receive on '{end.ends[0]}'"
            )
        return None

    def _check_task(self, ref: Ref, name: str) -> str | None:
        expected = f"expected the name of {ref.noun()}"
        if name == MAIN:
            return f"{expected} (got 'main', the main process itself)"
        if name in self.processes or (ref.kind == "task" and name in self.threads):
            return None
        if name in self.threads:
            return f"{expected} (got '{name}', a thread)"
        known = list(self.processes) + (list(self.threads) if ref.kind == "task" else [])
        creator = "spawn or thread" if ref.kind == "task" else "spawn"
        return f"{expected} (got '{name}', which no {creator} creates){did_you_mean(name, known)}"

    def _check_start(self, op: _Op, name: str, started: dict[str, _Op]) -> str | None:
        spawn = self.processes[name]
        if spawn.spec("start") is not False:
            return (
                f"expected the name of a process spawned with start: false (got '{name}', "
                f"which the spawn at {self.where(spawn)} already starts)"
            )
        if name in started:
            return (
                f"expected a process not started yet (got '{name}', already started at "
                f"{self.where(started[name])}): a process can be started once"
            )
        started[name] = op
        if self.times(op) > 1:
            return (
                f"expected a start that runs once (got '{name}', started by an operation "
                "that can run more than once): a process can be started once"
            )
        return None

    # --- daemons -------------------------------------------------------------------

    def check_daemons(self) -> None:
        """Functions run by a daemon (a daemon's target, or a pool task: pool
        workers are daemons) may not start processes or use a pool."""
        reported: set[Path] = set()
        for op in self.ops:
            for ref, name, field, _ in _refs(op):
                if ref.kind != "function" or name not in self.functions:
                    continue
                if op.key == "spawn" and field == "target" and op.spec("daemon") is True:
                    context = f"daemon process '{op.spec('name')}' (spawned at {self.where(op)})"
                elif field == "function":
                    context = f"the workers of pool '{op.spec('pool')}' (daemon processes)"
                else:
                    continue
                for creator in self._creators(name, set()):
                    if creator.path not in reported:
                        reported.add(creator.path)
                        self.report(
                            creator.key_path(),
                            f"expected no {creator.key} here: function '{creator.owner}' runs "
                            f"in {context}, which may not start processes ({_DAEMON_RULE})",
                            at_key=True,
                        )

    def _creators(self, function: str, seen: set[str]) -> Iterator[_Op]:
        """Operations that start processes when `function` runs, including those
        of the threads it starts (they run in the same process)."""
        seen.add(function)
        for op in self.owned.get(function, []):
            if op.creates_children():
                yield op
            target = op.spec("target")
            if op.key == "thread" and target in self.functions and target not in seen:
                yield from self._creators(target, seen)
