"""The trace: one schema for simulated and real runs, streamed as JSON Lines.

A trace file is a header line, then events ordered by time, then an end record.
Times are integer nanoseconds from the start of the scenario (simulated time, or
the monotonic clock for real runs): integers keep sums exact, so a textbook
average of 17 ms is 17 ms and not 16.999999 ms.

Writing streams to a temporary file beside the target and renames it into place
when the end record is written, so an interrupted writer never leaves a
half-written file under the requested name. Standard library only: every other
part of procsim imports this module.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Protocol, TypeAlias

FORMAT = "procsim-trace"
VERSION = 1

TaskState = Literal["new", "ready", "running", "blocked", "terminated"]
STATES: tuple[TaskState, ...] = ("new", "ready", "running", "blocked", "terminated")

# main: the main process's main thread; child: a Process; worker: a Pool worker;
# thread: a user thread; feeder: a Queue's feeder thread; handler: a Pool helper thread.
TaskKind = Literal["main", "child", "worker", "thread", "feeder", "handler"]

# Why a task terminated: its code returned; it raised (exit code 1); it called exit;
# it was killed because it was a daemon and the main code ended; terminate() was
# called on it; it crashed (killed by a signal it did not expect); the run stopped.
Cause = Literal[
    "returned", "exception", "exit", "killed_as_daemon", "terminated", "crashed", "run_stopped"
]

# How a run ended: every task terminated; deadlock; past the time limit; cut off
# (interrupted, or a writer that died) so the events may be missing some tail.
EndStatus = Literal["complete", "deadlock", "timeout", "interrupted"]

MessageOp = Literal["put", "get", "send", "recv"]
JobOp = Literal["submit", "start", "finish", "error", "callback", "error_callback", "result"]


class TraceError(Exception):
    """A trace file that cannot be read: names the file, the line and what is wrong."""

    def __init__(self, path: str | Path, line: int, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        super().__init__(f"{path}:{line}: {message}")


@dataclass(frozen=True, slots=True)
class Header:
    """What produced the trace and on what machine."""

    scenario: str
    source: Literal["sim", "real"]
    # cpus, policy, quantum_ns, context_switch_ns, start_method, and for real runs
    # what was enforced (affinity, real-time class) and what was not.
    machine: dict[str, Any]
    seed: int
    tool_version: str
    python_version: str
    # "simulated" for the simulator; for real runs the clock and its value at time 0.
    clock_origin: str
    # Free-form facts a consumer may show: kernel tracing status, warnings, argv.
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TaskCreated:
    """A task (process or thread) comes into existence, in state `new`."""

    t: int
    task: str
    kind: TaskKind
    process: str  # the process the task belongs to (itself, for a process)
    parent: str | None = None  # the task that created it
    daemon: bool = False
    pid: int | None = None
    tid: int | None = None
    ev: Literal["task"] = "task"


@dataclass(slots=True)
class StateChanged:
    """A task enters a state. `cpu` is set for running, `reason` for blocked
    (`q.get`, `conn.recv`, `join p1`, `sleep`, `lock.acquire`, `gil`, ...),
    `exit_code` and `cause` for terminated. `uncertain` marks an interval whose
    start the recorder could not see exactly (a gap in a kernel trace)."""

    t: int
    task: str
    state: TaskState
    cpu: int | None = None
    reason: str | None = None
    exit_code: int | None = None
    cause: Cause | None = None
    uncertain: bool = False
    ev: Literal["state"] = "state"


@dataclass(slots=True)
class MessageEvent:
    """An IPC operation that moved message `msg` through object `obj`.
    A put and its get (a send and its recv) share the message id."""

    t: int
    task: str
    op: MessageOp
    obj: str
    msg: int
    size: int = 0
    ev: Literal["msg"] = "msg"


@dataclass(slots=True)
class JobEvent:
    """A Pool job's life: submitted by the parent, started and finished (or
    raised) in a worker, its callback run in the parent's result handler."""

    t: int
    task: str
    op: JobOp
    pool: str
    job: int
    chunk: int | None = None
    ev: Literal["job"] = "job"


@dataclass(slots=True)
class OutputEvent:
    """A line the program printed."""

    t: int
    task: str
    text: str
    ev: Literal["out"] = "out"


@dataclass(slots=True)
class WarningEvent:
    """Something the user should know: a race on a pipe end, a task_done too many."""

    t: int
    task: str
    kind: str
    text: str
    ev: Literal["warn"] = "warn"


@dataclass(frozen=True, slots=True)
class BlockedTask:
    task: str
    reason: str


@dataclass(frozen=True, slots=True)
class End:
    """The last record. `blocked` names the tasks still blocked (with a deadlock
    or timeout verdict), `cycle` the wait-for cycle when there is one."""

    t: int
    status: EndStatus
    blocked: tuple[BlockedTask, ...] = ()
    cycle: tuple[str, ...] = ()
    detail: str = ""
    ev: Literal["end"] = "end"


# Events are values: nothing changes one once made. They are not frozen only
# because a frozen dataclass takes five times as long to build (1.2 vs 0.23 us
# measured), and a simulation makes hundreds of thousands of them.
Event: TypeAlias = TaskCreated | StateChanged | MessageEvent | JobEvent | OutputEvent | WarningEvent

_EVENT_TYPES: dict[str, type[Event]] = {
    "task": TaskCreated,
    "state": StateChanged,
    "msg": MessageEvent,
    "job": JobEvent,
    "out": OutputEvent,
    "warn": WarningEvent,
}
# Fields whose default is left out of the file to keep lines short.
_DEFAULTS: dict[type[Any], dict[str, Any]] = {
    cls: {f.name: f.default for f in fields(cls) if f.name not in ("t", "ev")}
    for cls in _EVENT_TYPES.values()
}


def event_to_json(event: Event) -> dict[str, Any]:
    """The event as a JSON object, fields equal to their default left out."""
    defaults = _DEFAULTS[type(event)]
    out: dict[str, Any] = {"ev": event.ev, "t": event.t}
    for name, default in defaults.items():
        value = getattr(event, name)
        if value != default:
            out[name] = value
    return out


def event_from_json(obj: dict[str, Any]) -> Event:
    """The event a JSON object describes; KeyError/TypeError/ValueError when malformed."""
    kind = obj["ev"]
    cls = _EVENT_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}")
    args = {k: v for k, v in obj.items() if k != "ev"}
    if not isinstance(args.get("t"), int):
        raise ValueError("event time 't' must be an integer number of nanoseconds")
    return cls(**args)


def _end_to_json(end: End) -> dict[str, Any]:
    out = asdict(end)
    out["blocked"] = [asdict(b) for b in end.blocked]
    out["cycle"] = list(end.cycle)
    return out


def _end_from_json(obj: dict[str, Any]) -> End:
    return End(
        t=int(obj["t"]),
        status=obj["status"],
        blocked=tuple(BlockedTask(**b) for b in obj.get("blocked", ())),
        cycle=tuple(obj.get("cycle", ())),
        detail=obj.get("detail", ""),
    )


def _header_to_json(header: Header) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, **asdict(header)}


class TraceSink(Protocol):
    """Where a producer (the simulator, the real runner) sends its events."""

    def emit(self, event: Event) -> None: ...


class MemorySink:
    """Keeps events in a list: for tests and small in-process runs."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


class TeeSink:
    """Sends every event to several sinks (e.g. a file and a metrics builder)."""

    def __init__(self, *sinks: TraceSink) -> None:
        self._sinks = sinks

    def emit(self, event: Event) -> None:
        for sink in self._sinks:
            sink.emit(event)


class TraceWriter:
    """Streams a trace to `path` atomically.

    Events go to a temporary file in the same directory; `close(end)` writes the
    end record and renames the file into place. Leaving the `with` block through an
    exception, or calling `abort()`, removes the temporary file, so the target is
    either a complete trace or untouched.
    """

    def __init__(self, path: str | Path, header: Header) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        self._tmp = Path(tmp)
        # A lone surrogate (program output decoded with surrogateescape) cannot be
        # encoded as UTF-8; written as a \uXXXX escape it is still valid JSON and
        # reads back as the same string.
        self._file: IO[str] | None = os.fdopen(
            fd, "w", encoding="utf-8", errors="backslashreplace", buffering=1 << 20
        )
        self._dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        self._file.write(self._dumps(_header_to_json(header)) + "\n")

    def emit(self, event: Event) -> None:
        assert self._file is not None, "trace writer already closed"
        self._file.write(self._dumps(event_to_json(event)) + "\n")

    def close(self, end: End) -> Path:
        """Write the end record and move the file into place."""
        assert self._file is not None, "trace writer already closed"
        self._file.write(self._dumps(_end_to_json(end)) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop everything written; the target path is left as it was."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self.abort()


@dataclass(frozen=True, slots=True)
class Trace:
    """A whole trace in memory, for consumers that need random access."""

    header: Header
    events: tuple[Event, ...]
    end: End


def _parse_line(path: Path, lineno: int, line: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TraceError(
            path, lineno, f"not valid JSON ({exc.msg}); the file may be truncated"
        ) from None
    if not isinstance(obj, dict):
        raise TraceError(path, lineno, "expected a JSON object on each line")
    return obj


def _read_header(path: Path, first: str) -> Header:
    obj = _parse_line(path, 1, first) if first.strip() else {}
    if obj.get("format") != FORMAT:
        raise TraceError(
            path, 1, f"not a procsim trace (the first line must be a '{FORMAT}' header)"
        )
    if obj.get("version") != VERSION:
        raise TraceError(
            path, 1, f"trace format version {obj.get('version')!r}; this procsim reads {VERSION}"
        )
    try:
        return Header(**{k: v for k, v in obj.items() if k not in ("format", "version")})
    except TypeError as exc:
        raise TraceError(path, 1, f"malformed header: {exc}") from None


class TraceReader:
    """Reads a trace lazily: `header` at once, `events()` one at a time, then `end`.

    Raises TraceError for a foreign file, a malformed line, events out of time
    order, or a file with no end record (cut off before it was closed).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file: IO[str] = self.path.open(encoding="utf-8")
        except OSError as exc:
            raise TraceError(self.path, 0, f"cannot open: {exc.strerror}") from None
        try:
            self.header = _read_header(self.path, self._file.readline())
        except (TraceError, UnicodeDecodeError) as exc:
            self._file.close()
            if isinstance(exc, UnicodeDecodeError):
                raise TraceError(self.path, 1, "not a procsim trace (not UTF-8 text)") from None
            raise
        self._end: End | None = None

    @property
    def end(self) -> End:
        if self._end is None:
            for _ in self.events():
                pass
        assert self._end is not None
        return self._end

    def events(self) -> Iterator[Event]:
        if self._end is not None:
            return
        last_t = 0
        lineno = 1
        with self._file:
            for lineno, line in enumerate(self._file, start=2):
                obj = _parse_line(self.path, lineno, line)
                if obj.get("ev") == "end":
                    try:
                        self._end = _end_from_json(obj)
                    except (KeyError, TypeError, ValueError) as exc:
                        raise TraceError(
                            self.path, lineno, f"malformed end record: {exc}"
                        ) from None
                    if self._end.t < last_t:
                        message = f"the end record ({self._end.t}) is before the last event"
                        raise TraceError(self.path, lineno, message)
                    if self._file.readline():
                        raise TraceError(self.path, lineno + 1, "data after the end record")
                    return
                try:
                    event = event_from_json(obj)
                except (KeyError, TypeError, ValueError) as exc:
                    raise TraceError(self.path, lineno, f"malformed event: {exc}") from None
                if event.t < last_t:
                    raise TraceError(
                        self.path, lineno, f"time goes backwards ({event.t} after {last_t})"
                    )
                last_t = event.t
                yield event
        raise TraceError(
            self.path,
            lineno,
            "truncated: no end record (the run was cut off before the trace was closed)",
        )


def read_trace(path: str | Path) -> Trace:
    """The whole trace in memory."""
    reader = TraceReader(path)
    events = tuple(reader.events())
    return Trace(reader.header, events, reader.end)


def write_trace(path: str | Path, trace: Trace) -> Path:
    """Write a whole trace held in memory."""
    with TraceWriter(path, trace.header) as writer:
        for event in trace.events:
            writer.emit(event)
        return writer.close(trace.end)
