"""A task's story up to the playhead: its recent transitions and its figures
so far (time in each state, dispatches, preemptions, messages, jobs).

Figures use the definitions of `sim.metrics` (waiting is time in ready, a
preemption is running → ready) but stop at the cursor, so they grow as the
trace plays. Prefix sums are built once per task on first request, so the
details panel costs a bisect per frame however long the task's history is.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from sim.trace import TaskState
from viz.index import TaskInfo, TraceIndex, Transition

TIMED: tuple[TaskState, ...] = ("new", "ready", "running", "blocked")
RECENT = 6


@dataclass(frozen=True, slots=True)
class TaskSummary:
    info: TaskInfo
    time_in: dict[TaskState, int]
    dispatches: int
    preemptions: int
    sent: int  # messages put or sent, jobs submitted, results returned
    received: int  # messages got or received, jobs started, results taken
    recent: tuple[Transition, ...]  # the latest transitions, oldest first
    current: Transition | None


@dataclass(slots=True)
class _Prefix:
    # Up to transition i: time spent in each state before it, and dispatches
    # and preemptions counting it.
    time_in: list[tuple[int, int, int, int]] = field(default_factory=list)
    dispatches: list[int] = field(default_factory=list)
    preemptions: list[int] = field(default_factory=list)
    sent_ks: list[int] = field(default_factory=list)
    received_ks: list[int] = field(default_factory=list)


class History:
    """Summaries of the tasks of one trace index."""

    def __init__(self, index: TraceIndex) -> None:
        self._index = index
        self._prefix: dict[str, _Prefix] = {}

    def summary(self, name: str, t: int, k: int) -> TaskSummary | None:
        track = self._index.tracks.get(name)
        if track is None:
            return None
        j = track.current(k)
        if j < 0:
            return TaskSummary(track.info, dict.fromkeys(TIMED, 0), 0, 0, 0, 0, (), None)
        p = self._prefix_of(name)
        tr = track.transitions[j]
        times = list(p.time_in[j])
        if tr.state in TIMED:
            times[TIMED.index(tr.state)] += max(0, t - tr.t)
        return TaskSummary(
            info=track.info,
            time_in=dict(zip(TIMED, times, strict=True)),
            dispatches=p.dispatches[j],
            preemptions=p.preemptions[j],
            sent=bisect.bisect_left(p.sent_ks, k),
            received=bisect.bisect_left(p.received_ks, k),
            recent=tuple(track.transitions[max(0, j + 1 - RECENT) : j + 1]),
            current=tr,
        )

    def _prefix_of(self, name: str) -> _Prefix:
        p = self._prefix.get(name)
        if p is not None:
            return p
        p = _Prefix()
        trs = self._index.tracks[name].transitions
        acc = [0, 0, 0, 0]
        dispatches = preemptions = 0
        for i, tr in enumerate(trs):
            if i > 0 and trs[i - 1].state in TIMED:
                acc[TIMED.index(trs[i - 1].state)] += tr.t - trs[i - 1].t
            dispatches += tr.state == "running"
            preemptions += tr.state == "ready" and i > 0 and trs[i - 1].state == "running"
            p.time_in.append((acc[0], acc[1], acc[2], acc[3]))
            p.dispatches.append(dispatches)
            p.preemptions.append(preemptions)
        for jr in self._index.journeys:
            if jr.src_task == name:
                p.sent_ks.append(jr.src_k)
            if jr.dst_task == name and jr.dst_k is not None:
                p.received_ks.append(jr.dst_k)
        p.sent_ks.sort()
        p.received_ks.sort()
        self._prefix[name] = p
        return p
