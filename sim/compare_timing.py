"""Level 3, timing: does the model take as long as the real runs, in the same places?

Every simulated figure is set against the band of the real runs' figures,
widened by the stated `Tolerance`, and its error relative to their median is
reported:

- makespan: the runs' spans (see `sim.compare_facts`: the real root process's
  interpreter shutdown is left out, as the model does not simulate it);
- per task, time running, ready and blocked up to that span, for the main
  process, the child processes and the user threads; pool workers are taken
  together per pool (which worker ran which task is up to the kernel), and a
  process's helper threads (queue feeders, pool handlers) are machinery whose
  time shows in their owners';
- per pool, the distribution of task waiting times (submitted → started) and
  turnaround times (submitted → finished), by their median and 90th percentile.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from sim.compare_facts import Facts, time_in_states
from sim.compare_report import Check, Tolerance, not_applicable, verdict

_TIMED_KINDS = frozenset({"main", "child", "thread"})


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.3f}"


def _error(sim: float, reals: list[int]) -> float | None:
    median = statistics.median(reals)
    return None if median == 0 else (sim - median) / median


def _percent(error: float | None) -> str:
    return "—" if error is None else f"{error * 100:+.1f}%"


def timing_checks(
    sim: Facts,
    reals: list[Facts],
    tol: Tolerance,
    *,
    kernel_states: bool = True,
    other_policy: str | None = None,
) -> list[Check]:
    """`kernel_states`: every real trace has the kernel's scheduler events; a
    probe-only trace cannot tell ready from running, so those are not compared.
    `other_policy`: why a real run ran under another scheduler than the model's
    policy (sjf, srtf and mlfq have no kernel counterpart; SCHED_RR has the
    kernel's time slice, not the scenario's quantum); who waits for a CPU then
    differs, so running and ready times are not compared either — the
    makespan still is, as every policy keeps the CPUs busy."""
    per_state = [_state_time(sim, reals, tol, "blocked")]
    why = None
    if not kernel_states:
        why = "a real run has no kernel scheduler events: ready and running look alike"
    elif other_policy is not None:
        why = other_policy
    if why is None:
        per_state[:0] = [_state_time(sim, reals, tol, s) for s in ("running", "ready")]
    else:
        per_state[:0] = [not_applicable(f"time {s} per task", why) for s in ("running", "ready")]
    return [_makespan(sim, reals, tol), *per_state, *_pool_distributions(sim, reals, tol)]


def _makespan(sim: Facts, reals: list[Facts], tol: Tolerance) -> Check:
    values = [r.span_ns for r in reals]
    lo, hi = tol.band(values, tol.makespan_rel, tol.makespan_abs_ns)
    error = _error(sim.span_ns, values)
    inside = lo <= sim.span_ns <= hi
    summary = (
        f"model {_ms(sim.span_ns)} ms, real {_ms(min(values))}–{_ms(max(values))} ms "
        f"(median {_ms(statistics.median(values))}), band {_ms(max(lo, 0))}–{_ms(hi)} ms, "
        f"error {_percent(error)}"
    )
    problems = [] if inside else [f"model {_ms(sim.span_ns)} ms is outside the band"]
    return verdict(
        "makespan",
        problems,
        summary,
        sim_ns=sim.span_ns,
        real_ns=values,
        band_ns=[lo, hi],
        error=error,
        inside_band=inside,
    )


def _groups(facts: Facts) -> dict[str, list[str]]:
    """What is timed: each main/child/thread task alone, each pool's workers together."""
    groups: dict[str, list[str]] = {}
    for task, created in facts.tasks.items():
        if created.kind in _TIMED_KINDS:
            groups[task] = [task]
        elif created.kind == "worker":
            pool = task.rsplit(".worker", 1)[0]
            groups.setdefault(f"{pool} workers", []).append(task)
    return groups


def _group_time(facts: Facts, tasks: list[str], state: str) -> int:
    return sum(time_in_states(facts, task, facts.span_ns)[state] for task in tasks)


def _state_time(sim: Facts, reals: list[Facts], tol: Tolerance, state: str) -> Check:
    rel, abs_ns = {
        "running": (tol.running_rel, tol.running_abs_ns),
        "ready": (tol.ready_rel, tol.ready_abs_ns),
        "blocked": (tol.blocked_rel, tol.blocked_abs_ns),
    }[state]
    sim_groups = _groups(sim)
    real_groups = [_groups(r) for r in reals]
    problems = []
    figures: dict[str, dict[str, object]] = {}
    worst: tuple[float, str] | None = None
    for name, tasks in sim_groups.items():
        if any(name not in g for g in real_groups):
            continue  # a missing task is the outcome level's finding
        want = _group_time(sim, tasks, state)
        got = [_group_time(r, g[name], state) for r, g in zip(reals, real_groups, strict=True)]
        lo, hi = tol.band(got, rel, abs_ns)
        error = _error(want, got)
        figures[name] = {"sim_ns": want, "real_ns": got, "band_ns": [lo, hi], "error": error}
        if not lo <= want <= hi:
            problems.append(
                f"{name}: model {_ms(want)} ms, real {_ms(min(got))}–{_ms(max(got))} ms "
                f"(error {_percent(error)})"
            )
        # Relative errors of intervals shorter than the absolute tolerance say
        # little (0.1 ms against 0.3 ms is -67%); the largest is shown among the rest.
        sizable = statistics.median(got) >= abs_ns
        if sizable and error is not None and (worst is None or abs(error) > abs(worst[0])):
            worst = (error, name)
    summary = f"{len(figures)} tasks within ±{rel * 100:.0f}% + {_ms(abs_ns)} ms of the real band"
    if worst is not None:
        summary += f"; largest error over {_ms(abs_ns)} ms: {_percent(worst[0])} ({worst[1]})"
    return verdict(f"time {state} per task", problems, summary, tasks=figures)


def _pool_times(facts: Facts) -> dict[str, dict[str, list[int]]]:
    """Per pool: waiting and turnaround time of every chunk."""
    submitted: dict[tuple[str, int], int] = {}
    out: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"waiting": [], "turnaround": []})
    for job in facts.jobs:
        key = (job.pool, job.job)
        if job.op == "submit":
            submitted.setdefault(key, job.t)
        elif job.op == "start" and key in submitted:
            out[job.pool]["waiting"].append(job.t - submitted[key])
        elif job.op in ("finish", "error") and key in submitted:
            out[job.pool]["turnaround"].append(job.t - submitted[key])
    return dict(out)


def _pool_distributions(sim: Facts, reals: list[Facts], tol: Tolerance) -> list[Check]:
    sim_pools = _pool_times(sim)
    if not sim_pools:
        return [not_applicable("pool task times", "no pool in the scenario")]
    real_pools = [_pool_times(r) for r in reals]
    checks = []
    for measure in ("waiting", "turnaround"):
        problems = []
        figures: dict[str, object] = {}
        parts = []
        for pool, times in sim_pools.items():
            if not times[measure] or any(not rp.get(pool, {}).get(measure) for rp in real_pools):
                problems.append(f"{pool}: no {measure} times in some real run")
                continue
            for name, pick in (("median", _median), ("p90", _p90)):
                want = pick(times[measure])
                got = [pick(rp[pool][measure]) for rp in real_pools]
                lo, hi = tol.band(got, tol.pool_rel, tol.pool_abs_ns)
                error = _error(want, got)
                figures[f"{pool} {name}"] = {
                    "sim_ns": want,
                    "real_ns": got,
                    "band_ns": [lo, hi],
                    "error": error,
                }
                parts.append(f"{pool} {name} {_ms(want)} ms ({_percent(error)})")
                if not lo <= want <= hi:
                    problems.append(
                        f"{pool} {name}: model {_ms(want)} ms, real "
                        f"{_ms(min(got))}–{_ms(max(got))} ms"
                    )
        checks.append(
            verdict(f"pool task {measure}", problems, "; ".join(parts), distributions=figures)
        )
    return checks


def _median(values: list[int]) -> int:
    return round(statistics.median(values))


def _p90(values: list[int]) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
