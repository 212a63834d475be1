"""Which objects each program can act on, read statically from the scenario.

The deadlock verdict uses it to say who could have ended a wait: a task blocked
in `q.get` waits for the live tasks whose programs put to `q`.
"""

from __future__ import annotations

from collections.abc import Iterator

from sim import program as p

# (what a program does, to which object) pairs that can end another task's wait.
Action = tuple[str, str]


def _actions(ops: p.Block) -> Iterator[Action]:
    for op in p.walk(ops):
        match op:
            case p.Put(queue=q):
                yield ("put", q)
            case p.Get(queue=q):
                yield ("get", q)
            case p.TaskDone(queue=q):
                yield ("task_done", q)
            case p.Send(end=end):
                yield ("send", end)
            case p.Recv(end=end):
                yield ("recv", end)
            case p.Close(end=end):
                yield ("close", end)
            case p.Release(obj=obj) | p.Locked(obj=obj):
                yield ("release", obj)
            case p.SetEvent(event=ev):
                yield ("set", ev)
            case p.Notify(condition=cv):
                yield ("notify", cv)
            case p.BarrierWait(barrier=b):
                yield ("barrier", b)
            case p.Apply(pool=pool) | p.ApplyAsync(pool=pool) | p.Map(pool=pool):
                yield ("submit", pool)


class Usage:
    def __init__(self, scenario: p.Scenario) -> None:
        self._by_program: dict[str, frozenset[Action]] = {
            name: frozenset(_actions(fn.body)) for name, fn in scenario.functions.items()
        }
        self._by_program[MAIN] = frozenset(_actions(scenario.main))

    def of(self, program: str) -> frozenset[Action]:
        return self._by_program.get(program, frozenset())

    def declare(self, program: str, actions: frozenset[Action]) -> None:
        """Programs the model runs itself (a feeder thread, a pool worker)."""
        self._by_program[program] = actions


MAIN = "<main>"
