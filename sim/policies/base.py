"""The interface every scheduling policy implements.

A policy decides; it never yields, never touches the SimPy environment and never
changes a task's state. The kernel tells it when a task becomes ready (`add`),
asks it which task to run next (`pick`), how long that task may run before the
kernel asks again (`time_slice`), whether a task that just became ready should
preempt a running one (`victim`), and reports the CPU time each task used
(`charge`). Ready queues live here, so their order is the policy's order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar, Generic, Literal, Protocol, TypeVar

from sim.program import PolicySettings

# Why a task joins the ready queue: it was just started, it woke from a block,
# it was preempted by another task, or its time slice ran out.
Why = Literal["new", "wake", "preempted", "expired"]


class Schedulable(Protocol):
    """What a policy may read of a task."""

    name: str
    seq: int  # creation order: the tie-breaker that keeps every policy deterministic
    priority: int  # lower is more urgent; the nice value for `linux`
    burst_ns: int  # the CPU time the task is expected to use before it next blocks


T = TypeVar("T", bound=Schedulable)


class Policy(ABC, Generic[T]):
    name: ClassVar[str]

    def __init__(self, settings: PolicySettings) -> None:
        self.settings = settings

    @abstractmethod
    def add(self, task: T, now: int, why: Why) -> None:
        """`task` is ready."""

    @abstractmethod
    def pick(self, now: int) -> T | None:
        """Remove and return the task to run next, or None when none is ready."""

    def pick_where(self, now: int, allowed: Callable[[T], bool]) -> T | None:
        """`pick`, among the tasks `allowed` says may run (on the CPU asking)."""
        task = next((t for t in self.ordered() if allowed(t)), None)
        if task is not None:
            self.remove(task)
        return task

    @abstractmethod
    def remove(self, task: T) -> None:
        """Take a ready task out of the queue (it was killed while ready)."""

    @abstractmethod
    def ordered(self) -> list[T]:
        """The ready tasks, the one `pick` would return first at the head."""

    @abstractmethod
    def __len__(self) -> int: ...

    def time_slice(self, task: T, now: int) -> int | None:
        """How long `task`, just dispatched or continuing, may run before the kernel
        puts it back with `add(..., "expired")` and picks again; None: until it blocks."""
        return None

    def charge(self, task: T, ran_ns: int) -> None:
        """`task` used `ran_ns` of CPU time since it was last charged."""

    def victim(self, candidate: T, running: Sequence[T]) -> T | None:
        """The running task that `candidate`, just ready, preempts, if any."""
        return None
