"""The verdict when the model can go no further: tasks blocked, nothing pending.

Each blocked task knows the tasks that could end its wait (`Task.waits_for`):
the process it joins, the holder of the lock it wants, the tasks whose programs
put to the queue it reads. A cycle in that wait-for graph is named when there is
one; a wait nobody can end (a get on a queue no live task writes) has none.
"""

from __future__ import annotations

from collections.abc import Iterable

from sim.kernel.tasks import Task
from sim.trace import BlockedTask


def blocked_tasks(tasks: Iterable[Task]) -> tuple[BlockedTask, ...]:
    return tuple(
        BlockedTask(t.name, t.blocked_reason or "?") for t in tasks if t.state == "blocked"
    )


def wait_cycle(tasks: Iterable[Task]) -> tuple[str, ...]:
    """The first cycle of blocked tasks waiting on each other, in creation order."""
    blocked = [t for t in tasks if t.state == "blocked"]
    edges = {
        t: sorted(
            (w for w in (t.waits_for() if t.waits_for else set()) if w.state == "blocked"),
            key=lambda w: w.seq,
        )
        for t in blocked
    }
    done: set[Task] = set()
    for start in sorted(blocked, key=lambda t: t.seq):
        path: list[Task] = []
        on_path: set[Task] = set()
        cycle = _search(start, edges, path, on_path, done)
        if cycle:
            return tuple(t.name for t in cycle)
    return ()


def _search(
    task: Task,
    edges: dict[Task, list[Task]],
    path: list[Task],
    on_path: set[Task],
    done: set[Task],
) -> list[Task]:
    if task in on_path:
        return path[path.index(task) :]
    if task in done:
        return []
    path.append(task)
    on_path.add(task)
    for nxt in edges.get(task, []):
        found = _search(nxt, edges, path, on_path, done)
        if found:
            return found
    path.pop()
    on_path.discard(task)
    done.add(task)
    return []


def describe(blocked: tuple[BlockedTask, ...]) -> str:
    """The headline; the blocked tasks and the cycle are in the End record's fields."""
    return f"{len(blocked)} task(s) blocked and nothing left that could wake them"
