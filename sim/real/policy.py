"""The scenario's machine, enforced for real where the kernel allows it.

`cpus: N` pins the run to N CPUs (affinity, inherited by every child);
`fcfs` runs it under SCHED_FIFO and `rr` under SCHED_RR (the kernel's RR time
slice, not the scenario's quantum, decides the switches: the header records
it); `priority` uses SCHED_FIFO with each process's real-time priority shifted
by its scenario priority (lower is more urgent); `linux` is the ordinary
scheduler. The other policies (sjf, srtf, mlfq) have no kernel counterpart, nor
has non-preemptive priority where a task can become ready while another runs:
SCHED_FIFO lets the higher priority preempt. On one CPU, with no arrivals, the
children are all started while main runs (it outranks them), so none is.
What cannot be enforced (no such CPUs, no right to a real-time class, another
OS) is left to the ordinary scheduler and listed in the header and the output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from sim.program import Machine

RT_BASE_PRIORITY = 50
_RR_SLICE = "/proc/sys/kernel/sched_rr_timeslice_ms"


@dataclass(frozen=True)
class PolicyPlan:
    affinity: tuple[int, ...] | None = None
    rt_policy: str | None = None  # SCHED_FIFO or SCHED_RR
    priorities: bool = False
    enforced: dict[str, Any] = field(default_factory=dict)
    not_enforced: tuple[str, ...] = ()

    def apply(self) -> None:
        """Give the calling process (the run's root, before exec) its CPUs and class."""
        if self.affinity is not None:
            os.sched_setaffinity(0, self.affinity)
        if self.rt_policy is not None:
            policy = os.SCHED_FIFO if self.rt_policy == "SCHED_FIFO" else os.SCHED_RR
            os.sched_setscheduler(0, policy, os.sched_param(RT_BASE_PRIORITY))


def _can_use_realtime() -> str | None:
    """None if this process may create SCHED_FIFO tasks, else why not."""
    if not hasattr(os, "sched_setscheduler"):
        return "real-time scheduling classes are not available on this OS"
    # Try in a throwaway process, so this one keeps its class.
    code = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))"
    probe = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, timeout=30)
    if probe.returncode == 0:
        return None
    return "no permission for real-time scheduling (needs root or CAP_SYS_NICE)"


def rr_timeslice_ns() -> int | None:
    try:
        with open(_RR_SLICE) as f:
            return int(f.read().strip()) * 1_000_000
    except (OSError, ValueError):
        return None


def plan(machine: Machine, arrivals: bool = False) -> PolicyPlan:
    """What of `machine` this run can enforce (`arrivals`: a process of the
    scenario is held back until an arrival time)."""
    enforced: dict[str, Any] = {}
    missing: list[str] = []
    affinity: tuple[int, ...] | None = None
    if hasattr(os, "sched_getaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        affinity = tuple(allowed[: machine.cpus])
        enforced["affinity"] = list(affinity)
        if machine.cpus > len(allowed):
            missing.append(f"cpus: {machine.cpus} requested, only {len(allowed)} available")
    else:
        missing.append("cpus: CPU affinity is not available on this OS")
    rt_policy = {"fcfs": "SCHED_FIFO", "rr": "SCHED_RR", "priority": "SCHED_FIFO"}.get(
        machine.policy
    )
    if rt_policy is None:
        enforced["scheduler"] = "SCHED_OTHER"
        if machine.policy != "linux":
            missing.append(f"policy: {machine.policy} has no kernel counterpart (ran SCHED_OTHER)")
    else:
        refusal = _can_use_realtime()
        if refusal is None:
            enforced["scheduler"] = rt_policy
            enforced["rt_priority"] = RT_BASE_PRIORITY
            if machine.policy == "priority" and not machine.settings.preemptive:
                where = "several CPUs" if machine.cpus > 1 else "arrivals" if arrivals else ""
                if where:
                    missing.append(
                        f"policy: non-preemptive priority with {where} has no kernel "
                        "counterpart (SCHED_FIFO lets a higher priority preempt a running task)"
                    )
            if rt_policy == "SCHED_RR":
                enforced["rr_timeslice_ns"] = rr_timeslice_ns()
                if enforced["rr_timeslice_ns"] != machine.settings.quantum_ns:
                    missing.append(
                        f"quantum: the kernel's RR time slice ({enforced['rr_timeslice_ns']} ns) "
                        f"is used, not the scenario's {machine.settings.quantum_ns} ns"
                    )
        else:
            enforced["scheduler"] = "SCHED_OTHER"
            missing.append(f"policy: {machine.policy} not enforced: {refusal}")
            rt_policy = None
    return PolicyPlan(
        affinity=affinity,
        rt_policy=rt_policy,
        priorities=rt_policy is not None and machine.policy == "priority",
        enforced=enforced,
        not_enforced=tuple(missing),
    )
