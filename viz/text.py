"""Trace things in words: times, speeds, token labels and events as sentences
("12.3 ms  p1 blocked on q.get")."""

from __future__ import annotations

from sim.trace import (
    End,
    Event,
    JobEvent,
    MessageEvent,
    OutputEvent,
    StateChanged,
    TaskCreated,
    WarningEvent,
)
from viz.index import TaskInfo

_UNITS = ((1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "µs"), (1, "ns"))


def time_unit(span_ns: int) -> tuple[int, str]:
    """The unit a clock over a span should use, so its digits do not jump."""
    for scale, name in _UNITS:
        if span_ns >= scale:
            return scale, name
    return 1, "ns"


def format_time(ns: int, unit: tuple[int, str] | None = None, decimals: int = 3) -> str:
    scale, name = unit or time_unit(abs(ns))
    if scale == 1:
        return f"{ns} ns"
    return f"{ns / scale:.{decimals}f} {name}"


def format_short(ns: int) -> str:
    """A compact time for axis ticks and lists: 3 significant figures."""
    scale, name = time_unit(abs(ns))
    value = ns / scale
    text = f"{value:.3g}" if value < 1000 else f"{value:.0f}"
    return f"{text} {name}"


def format_speed(speed: float) -> str:
    """Trace time shown per wall-clock second: "2 ms/s", or "×1" at real time."""
    if speed >= 1:
        return f"×{speed:g}"
    return f"{format_short(round(speed * 1e9))}/s"


_HANDLERS = {"result_handler": "results", "task_handler": "tasks", "worker_handler": "watcher"}


def token_label(info: TaskInfo) -> str:
    """The short name on a token: a thread drops its process's name ("p2.q.feeder"
    → "q.feeder"), a pool worker its pool's ("pool.worker12" → "worker12");
    the full name is in the token's details."""
    name = info.name
    if info.kind == "worker":
        return name.rsplit(".", 1)[-1]
    prefix = info.process + "."
    if info.kind != "main" and name.startswith(prefix):
        name = name[len(prefix) :]
    if info.kind == "handler":
        # The Pool's helper threads by what they handle: "pool.result_handler"
        # → "pool.results"; the pool's name still tells which pool.
        head, _, last = name.rpartition(".")
        short = _HANDLERS.get(last, last)
        name = f"{head}.{short}" if head else short
    return name


def exit_text(exit_code: int | None, cause: str | None) -> str:
    if cause == "killed_as_daemon":
        return f"killed daemon ({exit_code})"
    if cause in ("terminated", "crashed"):
        return f"{cause} ({exit_code})"
    return f"exit {exit_code}" if exit_code is not None else "ended"


_JOB_WORDS = {
    "submit": "submitted job {job} to {pool}",
    "start": "started {pool} job {job}",
    "finish": "finished {pool} job {job}",
    "error": "raised in {pool} job {job}",
    "callback": "ran the callback of {pool} job {job}",
    "error_callback": "ran the error callback of {pool} job {job}",
    "result": "received the result of {pool} job {job}",
}


def describe(event: Event) -> str:
    """One event as a sentence, without its time."""
    who = event.task
    if isinstance(event, TaskCreated):
        parent = f" by {event.parent}" if event.parent else ""
        daemon = " (daemon)" if event.daemon else ""
        return f"{who} created{parent}{daemon}"
    if isinstance(event, StateChanged):
        if event.state == "running":
            cpu = f"CPU {event.cpu}" if event.cpu is not None else "a CPU"
            return f"{who} runs on {cpu}"
        if event.state == "blocked":
            return f"{who} blocked on {event.reason or 'something'}"
        if event.state == "terminated":
            return f"{who} terminated: {exit_text(event.exit_code, event.cause)}"
        return f"{who} is {event.state}"
    if isinstance(event, MessageEvent):
        verb = {"put": "put", "get": "got", "send": "sent", "recv": "received"}[event.op]
        prep = "on" if event.op in ("put", "send") else "from"
        return f"{who} {verb} message {event.msg} {prep} {event.obj}"
    if isinstance(event, JobEvent):
        return f"{who} " + _JOB_WORDS[event.op].format(job=event.job, pool=event.pool)
    if isinstance(event, OutputEvent):
        return f'{who} printed "{event.text}"'
    assert isinstance(event, WarningEvent)
    return f"warning from {who}: {event.text}"


def end_words(end: End) -> str:
    """How a run that did not complete ended: "deadlock: p1 → p2 → p1"."""
    if end.cycle:
        return f"{end.status}: " + " waits for ".join([*end.cycle, end.cycle[0]])
    if end.blocked:
        stuck = ", ".join(f"{b.task} on {b.reason}" for b in end.blocked)
        return f"{end.status}: blocked for good: {stuck}"
    return f"{end.status}{': ' + end.detail if end.detail else ''}"
