"""Exports of a trace: Chrome Trace Event JSON (opens in Perfetto), CSV of state
intervals, and the JSON of its metrics (keys documented in `sim.metrics`).

The trace exports read the trace once, lazily, and write as they go; memory
holds the open interval of each live task and, for the JSON, the messages put
but not yet got. Every export writes to a temporary file beside the target and
renames it into place, so an export that fails leaves no half-written file.

Perfetto layout: one process track per procsim process (pid 1, 2, … in order of
appearance), one thread track per task (tids unique across the whole trace, so a
thread never lands in another process's track), a complete slice (`X`) per state
interval named by the state (`blocked: q.get` for a blocked one), instants (`i`)
for outputs, warnings and Pool job events, and a flow (`s` → `f`) from each put
or send to the get or recv of the same message id (ids are unique in a trace;
a pipe's send and recv name different ends, so the object cannot be part of the
key). A message never received has no flow (an `s` with no `f` is not valid).
ts and dur are microseconds.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sim.intervals import Interval, IntervalTracker
from sim.metrics import Metrics
from sim.trace import (
    End,
    Event,
    Header,
    JobEvent,
    MessageEvent,
    OutputEvent,
    TaskCreated,
    TraceReader,
    WarningEvent,
)

CSV_COLUMNS = (
    "task",
    "process",
    "kind",
    "state",
    "start_ns",
    "end_ns",
    "duration_ns",
    "cpu",
    "reason",
    "uncertain",
)
_SENDS = frozenset({"put", "send"})
_FLOW_CATEGORY = "message"


@contextmanager
def _atomic_text(out_path: str | Path, newline: str | None = None) -> Iterator[IO[str]]:
    """A text file that appears at `out_path` only if the block completes."""
    target = Path(out_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            yield f
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _us(ns: int) -> float:
    return ns / 1000


def _slice_name(iv: Interval) -> str:
    return f"blocked: {iv.reason}" if iv.state == "blocked" and iv.reason else iv.state


class _Tracks:
    """Assigns Perfetto pids and tids and produces their metadata events."""

    def __init__(self) -> None:
        self.pids: dict[str, int] = {}
        self.tids: dict[str, tuple[int, int]] = {}  # task -> (pid, tid)

    def task(self, task: str, process: str | None, out: list[dict[str, Any]]) -> tuple[int, int]:
        """The (pid, tid) of a task, naming the tracks the first time it is seen.
        A task seen before its `task` event is its own process."""
        known = self.tids.get(task)
        if known is not None:
            return known
        proc = process if process is not None else task
        pid = self.pids.get(proc)
        if pid is None:
            pid = self.pids[proc] = len(self.pids) + 1
            out.append(_meta("process_name", pid, 0, {"name": proc}))
            out.append(_meta("process_sort_index", pid, 0, {"sort_index": pid}))
        tid = len(self.tids) + 1
        self.tids[task] = (pid, tid)
        out.append(_meta("thread_name", pid, tid, {"name": task}))
        out.append(_meta("thread_sort_index", pid, tid, {"sort_index": tid}))
        return pid, tid


def _meta(name: str, pid: int, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"ph": "M", "name": name, "pid": pid, "tid": tid, "ts": 0, "args": args}


class _PerfettoEvents:
    """Turns procsim events into Trace Event Format dicts, one event at a time."""

    def __init__(self) -> None:
        self.tracks = _Tracks()
        self.intervals = IntervalTracker()
        self.pending: dict[int, dict[str, Any]] = {}  # msg id -> the `s` flow event
        self.next_flow = 1

    def feed(self, event: Event) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        process = event.process if isinstance(event, TaskCreated) else None
        pid, tid = self.tracks.task(event.task, process, out)
        closed = self.intervals.feed(event)
        if closed is not None:
            out.append(self._slice(*closed))
        if isinstance(event, MessageEvent):
            self._message(event, pid, tid, out)
        elif isinstance(event, OutputEvent):
            out.append(
                _instant(event.t, pid, tid, f"print: {event.text}", "output", {"text": event.text})
            )
        elif isinstance(event, WarningEvent):
            warn_args = {"kind": event.kind, "text": event.text}
            out.append(_instant(event.t, pid, tid, f"warning: {event.kind}", "warning", warn_args))
        elif isinstance(event, JobEvent):
            job_args = {"pool": event.pool, "job": event.job, "chunk": event.chunk}
            name = f"{event.pool} job {event.job} {event.op}"
            out.append(_instant(event.t, pid, tid, name, "job", job_args))
        return out

    def _slice(self, task: str, iv: Interval) -> dict[str, Any]:
        pid, tid = self.tracks.tids[task]
        args: dict[str, Any] = {"state": iv.state}
        if iv.cpu is not None:
            args["cpu"] = iv.cpu
        if iv.reason is not None:
            args["reason"] = iv.reason
        if iv.uncertain:
            args["uncertain"] = True
        return {
            "ph": "X",
            "name": _slice_name(iv),
            "cat": "state",
            "pid": pid,
            "tid": tid,
            "ts": _us(iv.start_ns),
            "dur": _us(iv.duration_ns),
            "args": args,
        }

    def _message(self, ev: MessageEvent, pid: int, tid: int, out: list[dict[str, Any]]) -> None:
        args = {"obj": ev.obj, "msg": ev.msg, "size": ev.size}
        out.append(_instant(ev.t, pid, tid, f"{ev.op} {ev.obj}", "message", args))
        if ev.op in _SENDS:
            # Named after the sending side: a pipe's recv names the other end.
            name = f"{ev.obj} msg {ev.msg}"
            start = {"ph": "s", "name": name, "cat": _FLOW_CATEGORY, "pid": pid, "tid": tid}
            self.pending[ev.msg] = {**start, "ts": _us(ev.t)}
            return
        start_flow = self.pending.pop(ev.msg, None)
        if start_flow is None:
            return
        flow_id = self.next_flow
        self.next_flow += 1
        out.append({**start_flow, "id": flow_id})
        out.append(
            {
                "ph": "f",
                "bp": "e",  # bind to the slice enclosing the get, not the next one
                "name": start_flow["name"],
                "cat": _FLOW_CATEGORY,
                "id": flow_id,
                "pid": pid,
                "tid": tid,
                "ts": _us(ev.t),
            }
        )

    def finish(self, end: End) -> list[dict[str, Any]]:
        out = [self._slice(task, iv) for task, iv in self.intervals.close_all(end.t)]
        args = {
            "status": end.status,
            "blocked": [f"{b.task}: {b.reason}" for b in end.blocked],
            "cycle": list(end.cycle),
            "detail": end.detail,
        }
        # A global instant: drawn across every track, on no process of its own.
        out.append(
            {
                "ph": "i",
                "s": "g",
                "name": f"end: {end.status}",
                "cat": "end",
                "pid": 0,
                "tid": 0,
                "ts": _us(end.t),
                "args": args,
            }
        )
        return out


def _instant(
    t: int, pid: int, tid: int, name: str, cat: str, args: dict[str, Any]
) -> dict[str, Any]:
    return {
        "ph": "i",
        "s": "t",
        "name": name,
        "cat": cat,
        "pid": pid,
        "tid": tid,
        "ts": _us(t),
        "args": args,
    }


def _header_data(header: Header) -> dict[str, Any]:
    return {
        "scenario": header.scenario,
        "source": header.source,
        "machine": header.machine,
        "seed": header.seed,
        "tool_version": header.tool_version,
        "python_version": header.python_version,
        "clock_origin": header.clock_origin,
    }


def export_perfetto(trace_path: str | Path, out_path: str | Path) -> Path:
    """Write the trace as a Trace Event Format JSON object to `out_path`.
    Raises `sim.trace.TraceError` for an invalid trace (and writes nothing)."""
    reader = TraceReader(trace_path)
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    conv = _PerfettoEvents()
    with _atomic_text(out_path) as f:
        f.write('{"displayTimeUnit":"ms","otherData":')
        f.write(dumps(_header_data(reader.header)))
        f.write(',"traceEvents":[\n')
        first = True
        for event in reader.events():
            for obj in conv.feed(event):
                f.write(("" if first else ",\n") + dumps(obj))
                first = False
        for obj in conv.finish(reader.end):
            f.write(("" if first else ",\n") + dumps(obj))
            first = False
        f.write("\n]}\n")
    return Path(out_path)


def export_csv(trace_path: str | Path, out_path: str | Path) -> Path:
    """Write one CSV row per state interval (columns `CSV_COLUMNS`), in the
    order the intervals end; intervals open at the end of the trace come last.
    `cpu` and `reason` are empty when not set; `uncertain` is true or false.
    Raises `sim.trace.TraceError` for an invalid trace (and writes nothing)."""
    reader = TraceReader(trace_path)
    info: dict[str, tuple[str, str]] = {}  # task -> (process, kind)
    tracker = IntervalTracker()
    with _atomic_text(out_path, newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)

        def row(task: str, iv: Interval) -> None:
            process, kind = info.get(task, (task, "unknown"))
            writer.writerow(
                (
                    task,
                    process,
                    kind,
                    iv.state,
                    iv.start_ns,
                    iv.end_ns,
                    iv.duration_ns,
                    "" if iv.cpu is None else iv.cpu,
                    iv.reason or "",
                    "true" if iv.uncertain else "false",
                )
            )

        for event in reader.events():
            if isinstance(event, TaskCreated):
                info[event.task] = (event.process, event.kind)
            closed = tracker.feed(event)
            if closed is not None:
                row(*closed)
        for task, iv in tracker.close_all(reader.end.t):
            row(task, iv)
    return Path(out_path)


def export_metrics_json(metrics: Metrics, out_path: str | Path) -> Path:
    """Write `metrics.to_json()` to `out_path`, indented for people to read."""
    with _atomic_text(out_path) as f:
        json.dump(metrics.to_json(), f, indent=2, ensure_ascii=False)
        f.write("\n")
    return Path(out_path)
