"""Pydantic's validation errors, said in plain words at the right line and column.

Pydantic reports `('main', 2, 'put', 'function-before[…]', 'size')` and "Input
should be a valid integer". This module maps the location back to the place in
the YAML (through the `Locator`), names what was expected in the scenario's own
terms, quotes what was written, and explains the YAML 1.1 readings that cause
most of these errors (`no` read as false, `1e3` read as text).
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable
from typing import Annotated, Any, TypeAlias, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from sim.scenario_errors import Problem
from sim.scenario_models import (
    NAME_PATTERN,
    OBJECT_TYPES,
    Ref,
    ScenarioModel,
    did_you_mean,
    short_form,
)
from sim.scenario_yaml import DAMAGED, Locator, Path, Yaml11Scalar, describe

Loc: TypeAlias = tuple[int | str, ...]  # a location in pydantic's errors
_YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n"}
_NUMBER_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def structure_problems(error: ValidationError, locator: Locator) -> list[Problem]:
    problems = []
    for detail in error.errors():
        if detail["input"] is DAMAGED:
            continue  # reported where the YAML was read
        problems.append(_problem(detail, locator))
    return problems


def _problem(detail: ErrorDetails, locator: Locator) -> Problem:
    kind, loc = detail["type"], detail["loc"]
    ctx: dict[str, Any] = dict(detail.get("ctx") or {})
    path = locator.resolve(loc)
    value = detail["input"]
    written = _written(locator, path, value)
    got = describe(value, written)

    if kind == "scenario":
        at_key = ctx.get("at_key")
        if isinstance(at_key, str) and isinstance(value, dict) and at_key in value:
            return locator.problem((*path, at_key), str(ctx["message"]), at_key=True)
        return locator.problem(path, str(ctx["message"]))
    if kind == "missing":
        return locator.problem(path, f"missing key '{loc[-1]}'", at_key=True)
    if kind == "extra_forbidden":
        allowed = _keys(_model_at(loc[:-1]))
        key = str(loc[-1])
        message = f"unknown key '{key}'{did_you_mean(key, allowed)}"
        if allowed:
            message += f"; expected one of: {', '.join(allowed)}"
        return locator.problem(path, message, at_key=True)
    if kind == "union_tag_invalid":
        type_path = locator.resolve((*loc, "type"))
        tag = locator.value_at(type_path)
        types = ", ".join(OBJECT_TYPES)
        if isinstance(tag, str):
            unknown = f"unknown object type '{tag}'{did_you_mean(tag, list(OBJECT_TYPES))}"
            return locator.problem(type_path, f"{unknown}; expected one of: {types}")
        got = describe(tag, _written(locator, type_path, tag))
        return locator.problem(type_path, f"expected one of: {types} (got {got})")
    if kind == "union_tag_not_found":
        message = f"missing key 'type': one of {', '.join(OBJECT_TYPES)}"
        return locator.problem(path, message, at_key=True)
    return locator.problem(path, _type_message(kind, loc, ctx, value, got), at_key=_in_key(loc))


def _in_key(loc: Loc) -> bool:
    return bool(loc) and loc[-1] == "[key]"


def _written(locator: Locator, path: Path, value: Any) -> str | None:
    """The scalar's text as written, if the error is about the value at `path`."""
    text = locator.written(path)
    if text is None or isinstance(value, dict | list):
        return None
    at_path = locator.value_at(path)
    return text if type(at_path) is type(value) and at_path == value else None


def _type_message(kind: str, loc: Loc, ctx: dict[str, Any], value: Any, got: str) -> str:
    field = _field_at(loc)
    if kind == "string_type":
        return f"expected {_string_noun(field)} (got {got}){_text_hint(value)}"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
        what = "a key" if _in_key(loc) else _string_noun(field)
        rule = "made of letters, digits, _ and -, starting with a letter or _"
        return f"expected {what} {rule} (got {got})"
    if kind == "string_too_short":
        return f"expected some text (got {got})"
    if kind == "int_type":
        return f"expected a whole number (got {got}){_number_hint(value)}"
    if kind == "bool_type":
        return f"expected true or false (got {got}){_bool_hint(value)}"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        choice = did_you_mean(value, options) if isinstance(value, str) else ""
        return f"expected one of: {', '.join(options)} (got {got}){choice}{_text_hint(value)}"
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = "≥" if kind == "greater_than_equal" else "≤"
        limit = ctx.get("ge", ctx.get("le"))
        return f"expected a whole number {bound} {limit} (got {got})"
    if kind in ("list_type", "tuple_type"):
        return f"expected a list (got {got})"
    if kind in ("too_short", "too_long"):
        fixed = _fixed_length(loc)
        if fixed is not None:
            wanted = f"exactly {fixed}"
        elif kind == "too_short":
            wanted = f"at least {ctx.get('min_length')}"
        else:
            wanted = f"at most {ctx.get('max_length')}"
        plural = "" if wanted.endswith(" 1") else "s"
        return f"expected {wanted} item{plural} (got {ctx.get('actual_length')})"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        form = short_form(field) if field is not None else None
        hint = _text_hint(value) if form is not None and not form.from_list else ""
        return f"expected {_mapping_noun(loc, field)} (got {got}){hint}"
    # A constraint this module has no words for: name it, at least.
    detail = f"{kind.replace('_', ' ')}{': ' + str(ctx) if ctx else ''}"
    return f"invalid value ({detail}) (got {got})"


def _string_noun(field: FieldInfo | None) -> str:
    ref = _ref(field)
    if ref is not None:
        return f"the name of {ref.noun()}"
    return "text"


def _mapping_noun(loc: Loc, field: FieldInfo | None) -> str:
    keys = ", ".join(_keys(_model_at(loc)))
    mapping = f"a mapping with keys {keys}" if keys else "a mapping"
    form = short_form(field) if field is not None else None
    if form is None:
        return mapping
    if form.from_list:
        return f"a list of operations or {mapping}"
    short = "a name or a list of names" if form.listify else "a name"
    return f"{short} or {mapping}"


def _text_hint(value: Any) -> str:
    """Where text was expected and YAML read a number, a boolean or a date."""
    if isinstance(value, Yaml11Scalar):
        return f": quote it ('{value.text}') if text was meant"
    if value is None or isinstance(value, str | dict | list):
        return ""
    return ": quote it if text was meant"


def _number_hint(value: Any) -> str:
    if isinstance(value, Yaml11Scalar):
        if value.kind == "octal":
            return f": write the number without the leading zero, or {value.reading}"
        if value.kind == "sexagesimal":
            return ": write the number in decimal"
        return ""
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        number = float(value)
        plain = str(int(number)) if number.is_integer() else str(number)
        if "e" in value.lower():
            return (
                f": YAML 1.1 reads {value} as text, not a number "
                f"(it wants a dot and a signed exponent, as in 1.0e+3); write {plain}"
            )
        return f": write {plain} without quotes"
    return ""


def _bool_hint(value: Any) -> str:
    text = value.text if isinstance(value, Yaml11Scalar) else value
    if isinstance(text, str) and text.lower() in _YAML11_BOOLS:
        return ": only true and false are booleans here, write one of those"
    return ""


def _fixed_length(loc: Loc) -> int | None:
    """The one length a list must have (a pipe's two ends), if it has one."""
    field = _field_at(loc)
    if field is None:
        return None
    lows = {m.min_length for m in field.metadata if hasattr(m, "min_length")}
    highs = {m.max_length for m in field.metadata if hasattr(m, "max_length")}
    return lows.pop() if len(lows) == 1 and lows == highs else None


def _ref(field: FieldInfo | None) -> Ref | None:
    if field is None:
        return None
    return next((m for m in field.metadata if isinstance(m, Ref)), None)


def _keys(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_at(loc: Iterable[int | str]) -> type[BaseModel] | None:
    kind, _ = _walk(loc)
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _field_at(loc: Iterable[int | str]) -> FieldInfo | None:
    return _walk(loc)[1]


def _walk(loc: Iterable[int | str]) -> tuple[Any, FieldInfo | None]:
    """The type expected at a validator's location, and the field that holds it.

    Parts that are not keys (union tags, validator names) leave the type as is,
    except an object's `type` tag, which picks the union member."""
    kind: Any = ScenarioModel
    field: FieldInfo | None = None
    for part in loc:
        kind = _unwrap(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found = _model_field(kind, part)
            if found is not None:
                field, kind = found, found.annotation
            continue
        origin, args = get_origin(kind), get_args(kind)
        if origin is list and type(part) is int:
            kind = args[0]
        elif origin is dict and isinstance(part, str):
            kind, field = args[1], None
        elif origin in (Union, types.UnionType):
            kind = next((m for m in args if _tagged(m, part)), kind)
    return _unwrap(kind), field


def _unwrap(kind: Any) -> Any:
    while get_origin(kind) is Annotated:
        kind = get_args(kind)[0]
    return kind


def _model_field(model: type[BaseModel], part: int | str) -> FieldInfo | None:
    for name, field in model.model_fields.items():
        if part in (name, field.alias):
            return field
    return None


def _tagged(member: Any, tag: int | str) -> bool:
    member = _unwrap(member)
    if not (isinstance(member, type) and issubclass(member, BaseModel)):
        return False
    field = member.model_fields.get("type")
    return field is not None and tag in get_args(field.annotation)
