"""The Gantt timeline as pixel runs: for each task, which state each pixel
column of its row shows.

Many state changes can fall in one pixel column of a long trace; the column
shows the most telling state (running, then ready, then blocked, then new), so
a burst of short runs stays visible instead of averaging away.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.trace import TaskState
from viz.index import TaskInfo, TraceIndex

_PRIORITY: dict[TaskState, int] = {"new": 0, "blocked": 1, "ready": 2, "running": 3}


@dataclass(slots=True)
class PixelRun:
    """Columns x0 (inclusive) to x1 (exclusive) of a row show `state`."""

    x0: int
    x1: int
    state: TaskState


def timeline_rows(
    index: TraceIndex, t0: int, t1: int, width: int
) -> list[tuple[TaskInfo, list[PixelRun]]]:
    """One row per task, in order of appearance, over [t0, t1] in `width` columns."""
    span = max(1, t1 - t0)
    rows: list[tuple[TaskInfo, list[PixelRun]]] = []
    for track in index.order:
        runs: list[PixelRun] = []
        trs = track.transitions
        for i, tr in enumerate(trs):
            if tr.state == "terminated":
                break
            end = trs[i + 1].t if i + 1 < len(trs) else index.end_t
            if end < t0 or tr.t > t1:
                continue
            a = max(0, (max(tr.t, t0) - t0) * width // span)
            b = min(width, max(a + 1, (min(end, t1) - t0) * width // span))
            _append(runs, a, b, tr.state)
        rows.append((track.info, runs))
    return rows


def _append(runs: list[PixelRun], a: int, b: int, state: TaskState) -> None:
    if runs and runs[-1].x1 > a:
        last = runs[-1]
        if _PRIORITY[state] > _PRIORITY[last.state]:
            last.x1 = a
            if last.x1 <= last.x0:
                runs.pop()
        else:
            a = last.x1
    if a >= b:
        return
    if runs and runs[-1].state == state and runs[-1].x1 == a:
        runs[-1].x1 = b
    else:
        runs.append(PixelRun(a, b, state))
