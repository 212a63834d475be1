"""Validated scenario models to the frozen `sim.program` objects everyone else uses.

Only keys the scenario wrote are passed on, so every default is the one
`sim.program` declares. Each operation gets its `loc` (`file:line:column`) for the
messages the simulator and the real runner print at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, get_args

from pydantic import BaseModel

from sim import program as p
from sim.scenario_models import (
    CostsModel,
    DistributionModel,
    MachineModel,
    OpModel,
    ScenarioModel,
)
from sim.scenario_yaml import Locator, Path


@dataclass(frozen=True)
class _Target:
    """How one operation becomes a program step: the class; for operations whose
    value is a single scalar, the field it fills; keys renamed; fixed values."""

    cls: type[p.Op]
    scalar: str | None = None
    rename: dict[str, str] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)


_BODY = {"do": "body"}
_OPS: dict[str, _Target] = {
    "compute": _Target(p.Compute, "duration"),
    "sleep": _Target(p.Sleep, "duration"),
    "print": _Target(p.Print, "text"),
    "repeat": _Target(p.Repeat, rename=_BODY),
    "exit": _Target(p.Exit, "code"),
    "raise": _Target(p.Raise, "error"),
    "spawn": _Target(p.Spawn),
    "start": _Target(p.Start, "name"),
    "join": _Target(p.Join),
    "terminate": _Target(p.Terminate, "name"),
    "is_alive": _Target(p.IsAlive, "name"),
    "thread": _Target(p.StartThread),
    "put": _Target(p.Put),
    "get": _Target(p.Get),
    "task_done": _Target(p.TaskDone, "queue"),
    "join_queue": _Target(p.JoinQueue, "queue"),
    "send": _Target(p.Send),
    "recv": _Target(p.Recv),
    "close": _Target(p.Close, "end"),
    "acquire": _Target(p.Acquire),
    "release": _Target(p.Release, "obj"),
    "with_lock": _Target(p.Locked, rename={"lock": "obj", **_BODY}),
    "set": _Target(p.SetEvent, "event"),
    "clear": _Target(p.ClearEvent, "event"),
    "wait_event": _Target(p.WaitEvent),
    "wait_condition": _Target(p.Wait),
    "notify": _Target(p.Notify),
    "notify_all": _Target(p.Notify, "condition", fixed={"n": None}),
    "barrier_wait": _Target(p.BarrierWait, "barrier"),
    "apply": _Target(p.Apply),
    "apply_async": _Target(p.ApplyAsync),
    **{kind: _Target(p.Map, fixed={"kind": kind}) for kind in get_args(p.MapKind)},
    "wait_results": _Target(p.WaitResults, "pool"),
    "close_pool": _Target(p.PoolClose, "pool"),
    "join_pool": _Target(p.PoolJoin, "pool"),
    "terminate_pool": _Target(p.PoolTerminate, "pool"),
    "with_pool": _Target(p.WithPool, rename=_BODY),
}

_OBJECTS: dict[str, tuple[type[p.ObjectDef], dict[str, Any]]] = {
    "queue": (p.QueueDef, {}),
    "joinable_queue": (p.QueueDef, {"joinable": True}),
    "pipe": (p.PipeDef, {}),
    "lock": (p.LockDef, {}),
    "rlock": (p.LockDef, {"reentrant": True}),
    "semaphore": (p.SemaphoreDef, {}),
    "bounded_semaphore": (p.SemaphoreDef, {"bounded": True}),
    "event": (p.EventDef, {}),
    "condition": (p.ConditionDef, {}),
    "barrier": (p.BarrierDef, {}),
    "pool": (p.PoolDef, {}),
}


def duration(model: DistributionModel) -> p.Duration:
    if model.uniform is not None:
        return p.Uniform(model.uniform[0], model.uniform[1])
    if model.exponential is not None:
        return p.Exponential(model.exponential)
    if model.normal is not None:
        return p.Normal(model.normal.mean, model.normal.std)
    return p.Constant(model.constant)


def _written(model: BaseModel | None) -> dict[str, Any]:
    """The keys the scenario wrote (as spelled in YAML) and their values."""
    if model is None:
        return {}
    fields = type(model).model_fields
    return {fields[name].alias or name: getattr(model, name) for name in model.model_fields_set}


def _pick(model: BaseModel | None, names: dict[str, str]) -> dict[str, Any]:
    """The written keys among `names`, renamed to their `sim.program` fields."""
    return {names[key]: value for key, value in _written(model).items() if key in names}


class _Builder:
    def __init__(self, locator: Locator) -> None:
        self.locator = locator

    def loc(self, path: Path) -> str:
        line, column = self.locator.position(self.locator.resolve(path))
        return f"{self.locator.source}:{line}:{column}"

    def block(self, ops: list[OpModel], path: Path) -> p.Block:
        return tuple(self.op(op, (*path, index)) for index, op in enumerate(ops))

    def op(self, op: OpModel, path: Path) -> p.Op:
        key, value = op.chosen()
        target = _OPS[key]
        where = (*path, key)
        if target.scalar is not None:
            kwargs = {target.scalar: self.value(value, where)}
        else:
            kwargs = {
                target.rename.get(key, key): self.value(item, (*where, key))
                for key, item in _written(value).items()
            }
        return target.cls(**kwargs, **target.fixed, loc=self.loc(path))

    def value(self, value: Any, path: Path) -> Any:
        if isinstance(value, DistributionModel):
            return duration(value)
        if isinstance(value, list):
            if value and isinstance(value[0], OpModel):
                return self.block(value, path)
            return tuple(value)
        return value


_MACHINE = {
    "cpus": "cpus",
    "policy": "policy",
    "context_switch": "context_switch_ns",
    "start_method": "start_method",
}
_POLICY = {
    "quantum": "quantum_ns",
    "preemptive": "preemptive",
    "base_slice": "linux_base_slice_ns",
    "balance_delay": "linux_balance_delay_ns",
}
_MLFQ = {"quanta": "mlfq_quanta_ns", "boost": "mlfq_boost_ns"}


def machine(model: MachineModel | None, base: p.Machine) -> p.Machine:
    """The scenario's machine: what it writes, over `base` (its machine profile)."""
    if model is None:
        return base
    policy = _pick(model, _POLICY) | _pick(model.mlfq, _MLFQ)
    if "mlfq_quanta_ns" in policy:
        policy["mlfq_quanta_ns"] = tuple(policy["mlfq_quanta_ns"])
    return replace(
        base,
        **_pick(model, _MACHINE),
        settings=replace(base.settings, **policy),
        costs=costs(model.costs, _written(model.start_cost), _written(model.exit_cost), base.costs),
    )


def costs(
    model: CostsModel | None, start_cpu: dict[str, int], exit_cpu: dict[str, int], base: p.Costs
) -> p.Costs:
    """Every cost key is its `sim.program.Costs` field without the `_ns`;
    `start_cost`/`exit_cost` are `start_cpu_ns`/`exit_cpu_ns`."""
    kwargs: dict[str, Any] = {f"{key}_ns": value for key, value in _written(model).items()}
    # Start methods not written keep the base's.
    if start_cpu:
        kwargs["start_cpu_ns"] = {**base.start_cpu_ns, **start_cpu}
    if exit_cpu:
        kwargs["exit_cpu_ns"] = {**base.exit_cpu_ns, **exit_cpu}
    return replace(base, **kwargs)


def build_scenario(
    model: ScenarioModel, locator: Locator, base: p.Machine | None = None
) -> p.Scenario:
    """`base`: the machine of the scenario's profile (`sim.program`'s default if None)."""
    builder = _Builder(locator)
    objects: dict[str, p.ObjectDef] = {}
    for name, obj in (model.objects or {}).items():
        cls, fixed = _OBJECTS[obj.type]
        written = {k: builder.value(v, ()) for k, v in _written(obj).items() if k != "type"}
        objects[name] = cls(name, **written, **fixed)
    functions = {
        name: p.FunctionDef(
            name,
            builder.block(function.body, ("functions", name, "body")),
            **_pick(function, {"returns": "result_size"}),
        )
        for name, function in (model.functions or {}).items()
    }
    compare = {k: builder.value(v, ()) for k, v in _written(model.compare).items()}
    base_machine = p.Machine() if base is None else base
    if compare.pop("costs", "scenario") == "profile":
        compare["costs"] = base_machine.costs
        compare["context_switch_ns"] = base_machine.context_switch_ns
    return p.Scenario(
        name=model.name,
        description=model.description or "",
        seed=model.seed or 0,
        machine=machine(model.machine, base_machine),
        objects=objects,
        functions=functions,
        main=builder.block(model.main, ("main",)),
        compare=p.CompareSettings(**compare),
        source=locator.source,
    )
