"""Scheduling policies, one per module, registered by name."""

from __future__ import annotations

from typing import Any

from sim.policies.base import Policy, Schedulable, Why
from sim.policies.fcfs import Fcfs
from sim.policies.linux import Linux
from sim.policies.mlfq import Mlfq
from sim.policies.priority import Priority
from sim.policies.rr import RoundRobin
from sim.policies.sjf import Sjf
from sim.policies.srtf import Srtf
from sim.program import PolicySettings

POLICIES: dict[str, type[Policy[Any]]] = {
    cls.name: cls for cls in (Fcfs, Sjf, Srtf, RoundRobin, Priority, Mlfq, Linux)
}


def make_policy(name: str, settings: PolicySettings) -> Policy[Any]:
    """The policy registered under `name`; KeyError names the known ones."""
    try:
        cls = POLICIES[name]
    except KeyError:
        raise KeyError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}") from None
    return cls(settings)


__all__ = ["POLICIES", "Policy", "Schedulable", "Why", "make_policy"]
