"""Machine profiles: what one machine's multiprocessing and scheduler cost.

A profile is a YAML file written by `procsim calibrate` (the measuring itself is
`sim.real.calibration`, which runs real processes). Its keys are those of a
scenario's `machine:` section, with the same units, plus `rr_timeslice` (the
quantum of the `rr` policy, as SCHED_RR uses it) and free-form `measured` notes:

    procsim-profile: 1
    measured: {host: …, date: …, python: 3.11.7, kernel: …, details: {…}}
    cpus: 2
    context_switch: 3.1us
    base_slice: 1.4ms          # the linux policy's slice
    rr_timeslice: 100ms
    start_cost: {fork: 1ms, forkserver: 2ms, spawn: 30ms}
    exit_cost: {fork: 800us, forkserver: 800us, spawn: 5ms}
    costs: {start_call: 600us, queue_put: 6us, …, per_byte: 0.4ns, …}

A scenario picks a profile with `machine: {profile: PATH}` (relative to the
scenario file) or the command line's `--machine PROFILE`; without either the
default profile shipped in `sim/profiles/default.yaml` applies. Values the
scenario writes itself always win over the profile's, and anything the profile
leaves out keeps `sim.program`'s default.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import Field, ValidationError

from sim import program as p
from sim.scenario_errors import Problem, ScenarioError
from sim.scenario_models import (
    CostsModel,
    FixedDuration,
    PerStartMethodModel,
    Positive,
    PositiveDuration,
    Strict,
    did_you_mean,
)
from sim.scenario_yaml import DAMAGED, Locator, describe, parse_yaml

FORMAT_KEY = "procsim-profile"
FORMAT = 1
DEFAULT_PROFILE = "default.yaml"  # in the package `sim.profiles`


class ProfileError(ScenarioError):
    """A profile that cannot be read; `str()` is the complete report."""


@dataclass(frozen=True)
class MachineProfile:
    """What a profile sets; None (or a missing key) leaves `sim.program`'s default.

    `costs` holds `sim.program.Costs` fields by name (`queue_put_ns`, …) except
    the per-start-method `start_cpu_ns` and `exit_cpu_ns`, which are fields here."""

    cpus: int | None = None
    context_switch_ns: int | None = None
    linux_base_slice_ns: int | None = None
    rr_timeslice_ns: int | None = None
    start_cpu_ns: Mapping[p.StartMethod, int] = field(default_factory=dict)
    exit_cpu_ns: Mapping[p.StartMethod, int] = field(default_factory=dict)
    costs: Mapping[str, float] = field(default_factory=dict)
    measured: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # the file it was read from

    def machine(self) -> p.Machine:
        """`sim.program`'s default machine with this profile's values in place."""
        base = p.Machine()
        values: dict[str, Any] = {
            name: _cost_value(name, value) for name, value in self.costs.items()
        }
        costs = dataclasses.replace(
            base.costs,
            **values,
            start_cpu_ns={**base.costs.start_cpu_ns, **self.start_cpu_ns},
            exit_cpu_ns={**base.costs.exit_cpu_ns, **self.exit_cpu_ns},
        )
        settings = base.settings
        if self.linux_base_slice_ns is not None:
            settings = dataclasses.replace(settings, linux_base_slice_ns=self.linux_base_slice_ns)
        if self.rr_timeslice_ns is not None:
            settings = dataclasses.replace(settings, quantum_ns=self.rr_timeslice_ns)
        return dataclasses.replace(
            base,
            cpus=base.cpus if self.cpus is None else self.cpus,
            context_switch_ns=(
                base.context_switch_ns if self.context_switch_ns is None else self.context_switch_ns
            ),
            settings=settings,
            costs=costs,
        )


def _cost_value(name: str, value: float) -> float:
    return value if name == "per_byte_ns" else round(value)


# --- the file format --------------------------------------------------------------


# A key left out is None (as in sim.scenario_models); written, it must be valid.
_LEFT_OUT: Any = None


class ProfileModel(Strict):
    """The keys of a profile file and what each must hold."""

    format: Literal[1] = Field(alias="procsim-profile")
    measured: dict[str, Any] = _LEFT_OUT
    cpus: Positive = _LEFT_OUT
    context_switch: FixedDuration = _LEFT_OUT
    base_slice: PositiveDuration = _LEFT_OUT
    rr_timeslice: PositiveDuration = _LEFT_OUT
    start_cost: PerStartMethodModel = _LEFT_OUT
    exit_cost: PerStartMethodModel = _LEFT_OUT
    costs: CostsModel = _LEFT_OUT


_PROFILE_KEYS = [f.alias or name for name, f in ProfileModel.model_fields.items()]
_NESTED_KEYS = {
    "start_cost": list(PerStartMethodModel.model_fields),
    "exit_cost": list(PerStartMethodModel.model_fields),
    "costs": list(CostsModel.model_fields),
}


def read_profile(path: str | Path) -> MachineProfile:
    """Read and check the profile at `path`; ProfileError says what is wrong where."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        reason = error.strerror or str(error)
        raise ProfileError(source, [Problem(source, 0, 0, "", f"cannot read: {reason}")]) from None
    except UnicodeDecodeError:
        raise ProfileError(source, [Problem(source, 0, 0, "", "expected UTF-8 text")]) from None
    return read_profile_text(text, source)


def read_profile_text(text: str, source: str = "<string>") -> MachineProfile:
    if not text.strip():
        message = f"the file is empty: expected a machine profile starting with `{FORMAT_KEY}: 1`"
        raise ProfileError(source, [Problem(source, 1, 1, "", message)])
    data, locator, problems = parse_yaml(text, source)
    if data is None or problems:
        raise ProfileError(source, problems)
    if not isinstance(data, dict):
        message = f"expected a mapping of profile keys (got {describe(data)})"
        raise ProfileError(source, [locator.problem((), message)])
    try:
        model = ProfileModel.model_validate(data)
    except ValidationError as error:
        raise ProfileError(source, _problems(error, locator)) from None
    return _profile(model, source)


def _problems(error: ValidationError, locator: Locator) -> list[Problem]:
    out: list[Problem] = []
    for detail in error.errors():
        loc = detail["loc"]
        if detail["input"] is DAMAGED:
            continue
        path = locator.resolve(loc)
        kind = detail["type"]
        if kind == "scenario":  # the duration and size validators' own words
            out.append(locator.problem(path, str((detail.get("ctx") or {})["message"])))
        elif kind == "missing":
            what = f" (`{FORMAT_KEY}: {FORMAT}`)" if loc[-1] == FORMAT_KEY else ""
            out.append(locator.problem(path, f"missing key '{loc[-1]}'{what}", at_key=True))
        elif kind == "extra_forbidden":
            key = str(loc[-1])
            allowed = _PROFILE_KEYS if len(loc) == 1 else _NESTED_KEYS.get(str(loc[0]), [])
            message = f"unknown key '{key}'{did_you_mean(key, allowed)}"
            expected = f"{message}; expected one of: {', '.join(allowed)}"
            out.append(locator.problem(path, expected, at_key=True))
        elif loc and loc[0] == FORMAT_KEY:
            got = describe(detail["input"], locator.written(path))
            message = f"this procsim reads profile format {FORMAT} (got {got})"
            out.append(locator.problem(path, message))
        else:
            got = describe(detail["input"], locator.written(path))
            out.append(locator.problem(path, f"{detail['msg'].lower()} (got {got})"))
    return out


def _profile(model: ProfileModel, source: str) -> MachineProfile:
    costs = model.costs.model_dump(exclude_none=True) if model.costs else {}
    return MachineProfile(
        cpus=model.cpus,
        context_switch_ns=model.context_switch,
        linux_base_slice_ns=model.base_slice,
        rr_timeslice_ns=model.rr_timeslice,
        start_cpu_ns=_per_method(model.start_cost),
        exit_cpu_ns=_per_method(model.exit_cost),
        costs={f"{key}_ns": value for key, value in costs.items()},
        measured=model.measured or {},
        source=source,
    )


def _per_method(model: PerStartMethodModel | None) -> dict[p.StartMethod, int]:
    if model is None:
        return {}
    values = ((method, getattr(model, method)) for method in get_args(p.StartMethod))
    return {method: value for method, value in values if value is not None}


def format_duration(ns: float) -> str:
    """Nanoseconds as the shortest exact duration text: 1523400 → `1.5234ms`."""
    value = Decimal(str(ns))
    for unit, scale in (("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if abs(value) >= scale:
            return f"{format((value / scale).normalize(), 'f')}{unit}"
    return f"{format(value.normalize(), 'f')}ns"


def render_profile(profile: MachineProfile) -> str:
    """The profile as the YAML `read_profile` reads back to the same values."""
    header = (
        "# procsim machine profile, written by `procsim calibrate`.\n"
        "# Keys and units are those of a scenario's `machine:` section; a scenario's\n"
        "# own values win over these. rr_timeslice is the rr policy's quantum (SCHED_RR).\n"
    )
    data: dict[str, Any] = {FORMAT_KEY: FORMAT}
    if profile.measured:
        data["measured"] = dict(profile.measured)
    if profile.cpus is not None:
        data["cpus"] = profile.cpus
    for key, value in (
        ("context_switch", profile.context_switch_ns),
        ("base_slice", profile.linux_base_slice_ns),
        ("rr_timeslice", profile.rr_timeslice_ns),
    ):
        if value is not None:
            data[key] = format_duration(value)
    for key, per_method in (
        ("start_cost", profile.start_cpu_ns),
        ("exit_cost", profile.exit_cpu_ns),
    ):
        if per_method:
            data[key] = {m: format_duration(v) for m, v in per_method.items()}
    if profile.costs:
        data["costs"] = {
            name.removesuffix("_ns"): format_duration(value)
            for name, value in profile.costs.items()
        }
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=88)
    return header + body


def write_profile(profile: MachineProfile, path: str | Path) -> Path:
    """Write the profile atomically (a temporary file renamed into place)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(render_profile(profile))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


@functools.cache
def default_profile() -> MachineProfile:
    """The profile shipped with procsim, measured on the machine kind it targets."""
    resource = importlib.resources.files("sim.profiles").joinpath(DEFAULT_PROFILE)
    return read_profile_text(resource.read_text(encoding="utf-8"), f"<procsim>/{DEFAULT_PROFILE}")


def resolve_profile(
    written: str | None, override: str | Path | None, scenario_source: str
) -> MachineProfile:
    """The profile a scenario runs with: the command line's `override`, else the
    one the scenario names (`written`, relative to the scenario's directory),
    else the default. Raises ProfileError for a profile that cannot be read."""
    if override is not None:
        return read_profile(override)
    if written is not None:
        base = Path(scenario_source).parent if not scenario_source.startswith("<") else Path()
        return read_profile(base / written)
    return default_profile()
