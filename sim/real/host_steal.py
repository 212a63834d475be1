"""The host's steal time: CPU time a virtual machine's hypervisor gave to others.

On a VM, a CPU the guest is running a task on can be taken away by the host for
a while; the guest's kernel sees the task running all along, but its CPU clock
does not advance (Linux leaves steal out of a task's CPU time), so every step
of the run takes longer in wall time, ready tasks wait longer, and the real
makespan grows by an amount that has nothing to do with the program. The model
knows nothing of it. Measured on this machine kind, the host took 0-2% of the
busy time in some spells and 8-42% in others, the reference Pool example's
bare makespan following it (466-760 ms in one spell of twelve runs).

Linux counts steal per CPU in /proc/stat (the eighth figure of a `cpuN` line),
in USER_HZ ticks (10 ms): a run of a few tens of milliseconds cannot tell a
little steal from none, one of a second or more can. A kernel-traced run has a
finer count too, its tasks' running time beyond their CPU clocks (see
`disturbance`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

STAT_PATH = "/proc/stat"
# Above this share of the busy time, a real run's timing is marked as disturbed
# by the host: the run-to-run spread of the shipped scenarios' makespans is a
# few per cent when the host takes nothing.
NOTICE_SHARE = 0.05

# /proc/stat's cpuN fields: user nice system idle iowait irq softirq steal ...
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)
_STEAL_FIELD = 7


@dataclass(frozen=True)
class CpuTimes:
    """Ticks per CPU since boot: (busy, steal), busy counting steal."""

    ticks: dict[int, tuple[int, int]]


def sample(cpus: Iterable[int] | None = None, path: str = STAT_PATH) -> CpuTimes | None:
    """The CPUs' busy and steal ticks now (all CPUs if `cpus` is None); None
    where there is no /proc/stat or it has no steal figure (not Linux, or a
    kernel older than 2.6.11)."""
    wanted = None if cpus is None else set(cpus)
    ticks: dict[int, tuple[int, int]] = {}
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if not line.startswith("cpu") or line.startswith("cpu "):
                    continue
                name, *fields = line.split()
                cpu = int(name[3:])
                if wanted is not None and cpu not in wanted:
                    continue
                if len(fields) <= _STEAL_FIELD:
                    return None
                values = [int(v) for v in fields]
                ticks[cpu] = (sum(values[i] for i in _BUSY_FIELDS), values[_STEAL_FIELD])
    except (OSError, ValueError):
        return None
    return CpuTimes(ticks) if ticks else None


def between(before: CpuTimes | None, after: CpuTimes | None) -> dict[str, Any] | None:
    """What the host took from these CPUs between two samples, as the trace
    header records it: steal and busy time in ms, the share of the busy time
    that was steal, and the tick in ms (the figures' resolution)."""
    if before is None or after is None:
        return None
    cpus = sorted(before.ticks.keys() & after.ticks.keys())
    if not cpus:
        return None
    busy = sum(after.ticks[c][0] - before.ticks[c][0] for c in cpus)
    steal = sum(after.ticks[c][1] - before.ticks[c][1] for c in cpus)
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    return {
        "cpus": cpus,
        "steal_ms": round(steal * tick_ms, 1),
        "busy_ms": round(busy * tick_ms, 1),
        "share": round(steal / busy, 3) if busy > 0 else 0.0,
        "resolution_ms": round(tick_ms, 1),
    }


def describe(steal: dict[str, Any]) -> str:
    """One line for a person: how much the host took."""
    cpus = steal.get("cpus") or []
    where = f"CPU {cpus[0]}" if len(cpus) == 1 else f"CPUs {','.join(map(str, cpus))}"
    return (
        f"the host took {steal['share']:.0%} of the busy time of {where} "
        f"(steal {steal['steal_ms']:g} of {steal['busy_ms']:g} ms, counted in "
        f"{steal['resolution_ms']:g} ms ticks)"
    )


def least_share(steal: dict[str, Any]) -> float:
    """The smallest share of the busy time the host can have taken, given the
    figures' resolution: each CPU's two readings may each be short by up to a
    tick, so a short run's one tick of steal in two of busy time says nothing."""
    slack = float(steal["resolution_ms"]) * len(steal["cpus"])
    return max(0.0, float(steal["steal_ms"]) - slack) / (float(steal["busy_ms"]) + slack)


def disturbance(notes: dict[str, Any]) -> str | None:
    """What the host surely took from a real run, as one line, if it took at
    least NOTICE_SHARE by either count in its trace header: /proc/stat's steal
    on the run's CPUs (`host_steal`), or the running time the kernel trace saw
    of the run's tasks beyond what their CPU clocks counted
    (`schedstat_check.running_beyond_cpu_ns`, with kernel tracing: to the
    nanosecond, so it tells on short runs too; 0.3-1.7% in six runs the host took
    nothing from, from the trace's own gaps). None if neither did."""
    steal = notes.get("host_steal")
    if isinstance(steal, dict):
        try:
            if least_share(steal) >= NOTICE_SHARE:
                return describe(steal)
        except (KeyError, TypeError, ValueError, ZeroDivisionError):  # written elsewhere
            pass
    check = notes.get("schedstat_check")
    if isinstance(check, dict):
        cpu, beyond = check.get("cpu_ns"), check.get("running_beyond_cpu_ns")
        if isinstance(cpu, int) and isinstance(beyond, int) and beyond >= NOTICE_SHARE * cpu > 0:
            return (
                f"its tasks ran {beyond / 1e6:.1f} ms ({beyond / cpu:.0%}) longer in the "
                "kernel's trace than their CPU clocks counted: time the host took from them"
            )
    return None
