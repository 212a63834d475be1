"""The scenario language as pydantic models: every key, its type, its default.

These models are the single description of the language: validation, the JSON
Schema for editors, and the reference checks all read them. They are strict (`"3"`
is not an integer, only `true`/`false` are booleans) and refuse unknown keys.

Optional keys default to None, meaning "not written": the builder passes only the
keys a scenario wrote, so the defaults live in `sim.program` and nowhere else.

Fields that name something defined elsewhere carry a `Ref` (what they may name);
fields that define a process or thread name carry a `Defines`; fields holding a
list of operations carry `BLOCK`. Operations with a short form (`put: q` for
`put: {queue: q}`) expand it before validation, with both forms in the schema.
"""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from sim.program import PolicyName, StartMethod
from sim.scenario_yaml import DAMAGED, describe
from sim.units import (
    DURATION_HINT,
    DURATION_PATTERN,
    SIZE_HINT,
    SIZE_PATTERN,
    UnitError,
    parse_duration_fractional_ns,
    parse_duration_ns,
    parse_size,
)

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"


def problem(message: str, at_key: str | None = None) -> PydanticCustomError:
    """A validation error whose message is already written for the user. `at_key`
    points the message at that key of the value instead of the value itself."""
    context: dict[str, Any] = {"message": message}
    if at_key is not None:
        context["at_key"] = at_key
    return PydanticCustomError("scenario", "{message}", context)


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- what the checker reads from field metadata --------------------------------


@dataclass(frozen=True)
class Ref:
    """The field names something defined elsewhere in the scenario.

    kind: `function`; `object` (of one of `types`); `end` (a pipe end, able to
    `direction`); `process` (spawned); `task` (a process or a thread); `start`
    (a process spawned with start: false)."""

    kind: Literal["function", "object", "end", "process", "task", "start"]
    types: tuple[str, ...] = ()
    direction: Literal["send", "recv"] | None = None

    def noun(self) -> str:
        """What the field names, with its article: "a queue or joinable_queue"."""
        if self.kind == "object":
            noun = " or ".join(self.types)
        else:
            noun = {
                "function": "function",
                "end": "pipe end",
                "process": "process",
                "task": "process or thread",
                "start": "process spawned with start: false",
            }[self.kind]
        return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


@dataclass(frozen=True)
class Defines:
    """The field gives a new process or thread its name."""

    kind: Literal["process", "thread"]


@dataclass(frozen=True)
class Creates:
    """The operation makes child processes: a daemon may not run it."""


BLOCK: Final = "block"  # metadata of fields holding a list of operations
CREATES_CHILDREN: Final = Creates()


# --- scalars --------------------------------------------------------------------

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
NonNegative = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]
DurationText = Annotated[str, StringConstraints(pattern=DURATION_PATTERN)]
SizeText = Annotated[str, StringConstraints(pattern=SIZE_PATTERN)]


def _quantity(parse: Callable[[str], Any], hint: str, noun: str) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        if value is DAMAGED:
            raise problem("")  # already reported where it was read
        if isinstance(value, str):
            try:
                return parse(value)
            except UnitError as error:
                raise problem(str(error)) from None
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise problem(f"{hint} (got {value})")
        raise problem(f"expected {noun} (got {describe(value)})")

    return validate


def _positive(value: int) -> int:
    if value <= 0:
        raise problem("expected a duration greater than zero (got 0)")
    return value


FixedDuration = Annotated[
    int,
    PlainValidator(
        _quantity(parse_duration_ns, DURATION_HINT, "a duration such as 10ms or 1.5s"),
        json_schema_input_type=DurationText,
    ),
]
PositiveDuration = Annotated[FixedDuration, AfterValidator(_positive)]
FractionalDuration = Annotated[
    float,
    PlainValidator(
        _quantity(parse_duration_fractional_ns, DURATION_HINT, "a duration such as 0.5ns"),
        json_schema_input_type=DurationText,
    ),
]
Size = Annotated[
    int,
    PlainValidator(
        _quantity(parse_size, SIZE_HINT, "a size such as 64B or 4KiB"),
        json_schema_input_type=SizeText,
    ),
]


def _optional(alias: str | None = None) -> Any:
    """A key that may be left out; None means it was (see the module docstring)."""
    return Field(default=None, alias=alias)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- random durations -----------------------------------------------------------


class DistributionModel(Strict):
    """A duration: `10ms` (short for `{constant: 10ms}`) or one distribution."""

    constant: FixedDuration = _optional()
    uniform: Annotated[list[FixedDuration], Field(min_length=2, max_length=2)] = _optional()
    exponential: FixedDuration = _optional()
    normal: NormalModel = _optional()

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    @model_validator(mode="before")
    @classmethod
    def _one_distribution(cls, data: Any) -> Any:
        if not isinstance(data, dict) or len(data) == 1:
            return data
        keys = ", ".join(data) or "an empty mapping"
        raise problem(
            "expected a duration such as 10ms, or one distribution: constant, uniform, "
            f"exponential or normal (got {keys})"
        )

    @model_validator(mode="after")
    def _ordered(self) -> DistributionModel:
        if self.uniform is not None and self.uniform[0] > self.uniform[1]:
            raise problem("uniform needs [low, high] with low ≤ high", at_key="uniform")
        return self


class NormalModel(Strict):
    """A normal distribution, truncated at 0."""

    mean: FixedDuration
    std: FixedDuration


def _wrap_constant(value: Any) -> Any:
    return value if isinstance(value, dict) else {"constant": value}


Duration = Annotated[
    DistributionModel,
    BeforeValidator(_wrap_constant, json_schema_input_type=DurationText | DistributionModel),
]


# --- short forms ----------------------------------------------------------------


@dataclass(frozen=True)
class ShortForm:
    """`op: NAME` stands for `op: {key: NAME}`; with `listify`, a name or a list of
    names stands for `{key: [names]}`; with `from_list`, a list stands for
    `{key: list}` (a function's body)."""

    key: str
    listify: bool = False
    from_list: bool = False

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str) and not self.from_list:
            return {self.key: [value] if self.listify else value}
        if (self.listify or self.from_list) and isinstance(value, list):
            return {self.key: value}
        return value


def _ref(kind: Literal["function", "process", "task", "start"]) -> Ref:
    return Ref(kind)


def _objects(*types: str) -> Ref:
    return Ref("object", types)


FunctionRef = Annotated[Name, Ref("function")]
QueueRef = Annotated[Name, _objects("queue", "joinable_queue")]
JoinableRef = Annotated[Name, _objects("joinable_queue")]
LockRef = Annotated[Name, _objects("lock", "rlock", "semaphore", "bounded_semaphore", "condition")]
EventRef = Annotated[Name, _objects("event")]
ConditionRef = Annotated[Name, _objects("condition")]
BarrierRef = Annotated[Name, _objects("barrier")]
PoolRef = Annotated[Name, _objects("pool"), CREATES_CHILDREN]
EndRef = Annotated[Name, Ref("end")]
SendEndRef = Annotated[Name, Ref("end", direction="send")]
RecvEndRef = Annotated[Name, Ref("end", direction="recv")]
ProcessRef = Annotated[Name, _ref("process")]
StartRef = Annotated[Name, _ref("start")]
TaskRef = Annotated[Name, _ref("task")]


def _builtin_exception(name: str) -> str:
    candidates = sorted(
        n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, Exception)
    )
    if name not in candidates:
        raise problem(
            "expected the name of a built-in exception such as ValueError or RuntimeError "
            f"(got '{name}'){did_you_mean(name, candidates)}"
        )
    return name


ExceptionName = Annotated[str, AfterValidator(_builtin_exception)]


# --- operations -----------------------------------------------------------------


class RepeatSpec(Strict):
    times: Positive
    do: Annotated[list[OpModel], BLOCK]


class SpawnSpec(Strict):
    name: Annotated[Name, Defines("process")]
    target: FunctionRef
    daemon: bool = _optional()
    start: bool = _optional()
    priority: int = _optional()
    arrive_at: FixedDuration = _optional()


class JoinSpec(Strict):
    names: Annotated[list[Name], Field(min_length=1), _ref("task")]
    timeout: Duration = _optional()


class ThreadSpec(Strict):
    name: Annotated[Name, Defines("thread")]
    target: FunctionRef
    daemon: bool = _optional()


class PutSpec(Strict):
    queue: QueueRef
    size: Size = _optional()
    timeout: Duration = _optional()
    on_timeout: Annotated[list[OpModel], BLOCK] = _optional()


class GetSpec(Strict):
    queue: QueueRef
    timeout: Duration = _optional()
    on_timeout: Annotated[list[OpModel], BLOCK] = _optional()


class SendSpec(Strict):
    end: SendEndRef
    size: Size = _optional()


class RecvSpec(Strict):
    end: RecvEndRef
    on_eof: Annotated[list[OpModel], BLOCK] = _optional()


class AcquireSpec(Strict):
    obj: LockRef
    timeout: Duration = _optional()
    on_timeout: Annotated[list[OpModel], BLOCK] = _optional()


class LockedSpec(Strict):
    lock: LockRef
    do: Annotated[list[OpModel], BLOCK]


class WaitEventSpec(Strict):
    event: EventRef
    timeout: Duration = _optional()
    on_timeout: Annotated[list[OpModel], BLOCK] = _optional()


class WaitConditionSpec(Strict):
    condition: ConditionRef
    timeout: Duration = _optional()
    on_timeout: Annotated[list[OpModel], BLOCK] = _optional()


class NotifySpec(Strict):
    condition: ConditionRef
    n: Positive = _optional()


class ApplySpec(Strict):
    pool: PoolRef
    function: FunctionRef
    arg_size: Size = _optional()


class ApplyAsyncSpec(Strict):
    pool: PoolRef
    function: FunctionRef
    times: Positive = _optional()
    arg_size: Size = _optional()
    callback: FunctionRef = _optional()
    error_callback: FunctionRef = _optional()


class MapSpec(Strict):
    """map, starmap, imap, imap_unordered: CPython gives these no callback."""

    pool: PoolRef
    function: FunctionRef
    items: NonNegative
    chunksize: Positive = _optional()
    arg_size: Size = _optional()


class MapAsyncSpec(MapSpec):
    """map_async: as map, with a callback run once with the whole list."""

    callback: FunctionRef = _optional()


class WithPoolSpec(Strict):
    pool: PoolRef
    do: Annotated[list[OpModel], BLOCK]


def _short_form(spec: type[Strict], key: str, short: Any, *, listify: bool = False) -> Any:
    return BeforeValidator(ShortForm(key, listify=listify), json_schema_input_type=short | spec)


def short_form(field: FieldInfo) -> ShortForm | None:
    """The short form a field accepts, if any."""
    for item in field.metadata:
        if isinstance(item, BeforeValidator) and isinstance(item.func, ShortForm):
            return item.func
    return None


class OpModel(Strict):
    """One operation: a mapping with exactly one key, the operation's name."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    compute: Duration = _optional()
    sleep: Duration = _optional()
    print: str = _optional()
    repeat: RepeatSpec = _optional()
    exit: Annotated[int, Field(ge=0, le=255)] = _optional()
    raise_: ExceptionName = _optional(alias="raise")
    spawn: Annotated[SpawnSpec, CREATES_CHILDREN] = _optional()
    start: StartRef = _optional()
    join: Annotated[
        JoinSpec, _short_form(JoinSpec, "names", TaskRef | list[TaskRef], listify=True)
    ] = _optional()
    terminate: ProcessRef = _optional()
    is_alive: TaskRef = _optional()
    thread: ThreadSpec = _optional()
    put: Annotated[PutSpec, _short_form(PutSpec, "queue", QueueRef)] = _optional()
    get: Annotated[GetSpec, _short_form(GetSpec, "queue", QueueRef)] = _optional()
    task_done: JoinableRef = _optional()
    join_queue: JoinableRef = _optional()
    send: Annotated[SendSpec, _short_form(SendSpec, "end", SendEndRef)] = _optional()
    recv: Annotated[RecvSpec, _short_form(RecvSpec, "end", RecvEndRef)] = _optional()
    close: EndRef = _optional()
    acquire: Annotated[AcquireSpec, _short_form(AcquireSpec, "obj", LockRef)] = _optional()
    release: LockRef = _optional()
    with_lock: LockedSpec = _optional()
    set: EventRef = _optional()
    clear: EventRef = _optional()
    wait_event: Annotated[WaitEventSpec, _short_form(WaitEventSpec, "event", EventRef)] = (
        _optional()
    )
    wait_condition: Annotated[
        WaitConditionSpec, _short_form(WaitConditionSpec, "condition", ConditionRef)
    ] = _optional()
    notify: Annotated[NotifySpec, _short_form(NotifySpec, "condition", ConditionRef)] = _optional()
    notify_all: ConditionRef = _optional()
    barrier_wait: BarrierRef = _optional()
    apply: ApplySpec = _optional()
    apply_async: ApplyAsyncSpec = _optional()
    map: MapSpec = _optional()
    map_async: MapAsyncSpec = _optional()
    starmap: MapSpec = _optional()
    imap: MapSpec = _optional()
    imap_unordered: MapSpec = _optional()
    wait_results: PoolRef = _optional()
    close_pool: PoolRef = _optional()
    join_pool: PoolRef = _optional()
    terminate_pool: PoolRef = _optional()
    with_pool: WithPoolSpec = _optional()

    @model_validator(mode="before")
    @classmethod
    def _one_operation(cls, data: Any) -> Any:
        if data is DAMAGED:
            return data
        if not isinstance(data, dict):
            raise problem(
                "expected an operation: a mapping with one key, such as `compute: 10ms` "
                f"(got {describe(data)})"
            )
        keys = list(data)
        if not keys:
            raise problem("expected an operation such as `compute: 10ms` (got an empty mapping)")
        operations = [key for key in keys if key in OPERATIONS]
        if not operations:
            raise problem(
                f"unknown operation '{keys[0]}'{did_you_mean(keys[0], list(OPERATIONS))}; "
                "the operations are listed in docs/scenarios.md",
                at_key=keys[0],
            )
        if len(keys) > 1:
            op = operations[0]
            others = ", ".join(f"{key}: …" for key in keys if key != op)
            raise problem(
                "an operation is a mapping with exactly one key, but this one has "
                f"{', '.join(keys)}: put the options inside the operation, as in "
                f"`{op}: {{{_short_key(op)}: …, {others}}}`"
            )
        return data

    def chosen(self) -> tuple[str, Any]:
        """The operation written (its key as in YAML) and its validated value."""
        (name,) = self.model_fields_set
        field = type(self).model_fields[name]
        return (field.alias or name, getattr(self, name))


# --- objects --------------------------------------------------------------------


class QueueObject(Strict):
    type: Literal["queue"]
    maxsize: NonNegative = _optional()


class JoinableQueueObject(Strict):
    type: Literal["joinable_queue"]
    maxsize: NonNegative = _optional()


class PipeObject(Strict):
    type: Literal["pipe"]
    ends: Annotated[list[Name], Field(min_length=2, max_length=2)]
    duplex: bool = _optional()


class LockObject(Strict):
    type: Literal["lock"]


class RLockObject(Strict):
    type: Literal["rlock"]


class SemaphoreObject(Strict):
    type: Literal["semaphore"]
    value: NonNegative = _optional()


class BoundedSemaphoreObject(Strict):
    type: Literal["bounded_semaphore"]
    value: NonNegative = _optional()


class EventObject(Strict):
    type: Literal["event"]


class ConditionObject(Strict):
    type: Literal["condition"]


class BarrierObject(Strict):
    type: Literal["barrier"]
    parties: Positive


class PoolObject(Strict):
    type: Literal["pool"]
    workers: Positive = _optional()
    maxtasksperchild: Positive = _optional()


ObjectModel = Annotated[
    QueueObject
    | JoinableQueueObject
    | PipeObject
    | LockObject
    | RLockObject
    | SemaphoreObject
    | BoundedSemaphoreObject
    | EventObject
    | ConditionObject
    | BarrierObject
    | PoolObject,
    Field(discriminator="type"),
]
OBJECT_TYPES: Final = (
    "queue",
    "joinable_queue",
    "pipe",
    "lock",
    "rlock",
    "semaphore",
    "bounded_semaphore",
    "event",
    "condition",
    "barrier",
    "pool",
)


# --- functions, machine, comparison, scenario -----------------------------------


class FunctionModel(Strict):
    """A function: its body, and the size of what it returns (pool results)."""

    body: Annotated[list[OpModel], BLOCK]
    returns: Size = _optional()


FUNCTION_FORM: Final = ShortForm("body", from_list=True)
FunctionField = Annotated[
    FunctionModel,
    BeforeValidator(FUNCTION_FORM, json_schema_input_type=list[OpModel] | FunctionModel),
]


class MlfqModel(Strict):
    quanta: Annotated[list[PositiveDuration], Field(min_length=1)] = _optional()
    boost: PositiveDuration = _optional()


class PerStartMethodModel(Strict):
    fork: FixedDuration = _optional()
    spawn: FixedDuration = _optional()
    forkserver: FixedDuration = _optional()


class CostsModel(Strict):
    start_call: FixedDuration = _optional()
    start_return: FixedDuration = _optional()
    first_start: FixedDuration = _optional()
    queue_put: FixedDuration = _optional()
    queue_get: FixedDuration = _optional()
    feeder_latency: FixedDuration = _optional()
    per_byte: FractionalDuration = _optional()
    pipe_send: FixedDuration = _optional()
    pipe_recv: FixedDuration = _optional()
    queue_put_cold: FixedDuration = _optional()
    queue_get_cold: FixedDuration = _optional()
    pipe_send_cold: FixedDuration = _optional()
    pipe_recv_cold: FixedDuration = _optional()
    queue_put_wait: FixedDuration = _optional()
    join_wait: FixedDuration = _optional()
    thread_join_wait: FixedDuration = _optional()
    first_get: FixedDuration = _optional()
    first_put: FixedDuration = _optional()
    first_send: FixedDuration = _optional()
    first_recv: FixedDuration = _optional()
    first_print: FixedDuration = _optional()
    first_feed: FixedDuration = _optional()
    first_job: FixedDuration = _optional()
    pool_create: FixedDuration = _optional()
    pool_submit: FixedDuration = _optional()
    pool_worker: FixedDuration = _optional()
    pool_result: FixedDuration = _optional()
    pool_dispatch: FixedDuration = _optional()
    pool_maintain: FixedDuration = _optional()
    pool_worker_cold: FixedDuration = _optional()
    pool_dispatch_cold: FixedDuration = _optional()
    pool_result_cold: FixedDuration = _optional()
    pool_maintain_cold: FixedDuration = _optional()
    pool_wake_cold: FixedDuration = _optional()
    gil_switch_interval: PositiveDuration = _optional()
    gil_turn: PositiveDuration = _optional()
    print: FixedDuration = _optional()
    sleep: FixedDuration = _optional()
    thread_start: FixedDuration = _optional()
    first_thread_start: FixedDuration = _optional()
    shutdown: FixedDuration = _optional()
    exit_function: FixedDuration = _optional()
    kill_exit: FixedDuration = _optional()
    wake_up: FixedDuration = _optional()


class MachineModel(Strict):
    # A machine profile file (see sim.calibrate), relative to the scenario file;
    # the keys below win over its values.
    profile: str = _optional()
    cpus: Positive = _optional()
    policy: PolicyName = _optional()
    quantum: PositiveDuration = _optional()
    preemptive: bool = _optional()
    mlfq: MlfqModel = _optional()
    base_slice: PositiveDuration = _optional()
    balance_delay: FixedDuration = _optional()
    context_switch: FixedDuration = _optional()
    start_method: StartMethod = _optional()
    start_cost: PerStartMethodModel = _optional()
    exit_cost: PerStartMethodModel = _optional()
    costs: CostsModel = _optional()


class CompareModel(Strict):
    skip: list[Literal["outcome", "order", "timing"]] = _optional()
    # `profile`: the comparison's model runs with the machine profile's costs
    # instead of those the scenario writes (idealised, as in a textbook exercise).
    costs: Literal["scenario", "profile"] = _optional()
    why: str = _optional()

    @model_validator(mode="after")
    def _why_skipped(self) -> CompareModel:
        if (self.skip or self.costs == "profile") and not (self.why or "").strip():
            what = "a comparison level is skipped" if self.skip else "the costs are replaced"
            raise problem(f"{what}, so say why: add `why: …`")
        return self


class ScenarioModel(Strict):
    """A procsim scenario: a machine, objects, functions and the main program."""

    name: Annotated[str, StringConstraints(min_length=1)]
    description: str = _optional()
    seed: int = _optional()
    machine: MachineModel = _optional()
    objects: dict[Name, ObjectModel] = _optional()
    functions: dict[Name, FunctionField] = _optional()
    main: Annotated[list[OpModel], BLOCK]
    compare: CompareModel = _optional()


def _models(base: type[Strict]) -> list[type[Strict]]:
    return [m for sub in base.__subclasses__() for m in (sub, *_models(sub))]


# Models that name a model defined after them (an operation inside a block) are
# completed now; until then their fields lack the metadata the checker reads.
for _model in _models(Strict):
    _model.model_rebuild()

OPERATIONS: Final = {field.alias or name: field for name, field in OpModel.model_fields.items()}


def _short_key(operation: str) -> str:
    form = short_form(OPERATIONS[operation])
    return form.key if form is not None else "…"
