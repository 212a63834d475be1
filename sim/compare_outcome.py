"""Level 1, outcome: did the same things happen, whatever their timing?

- the same processes and threads exist;
- each task printed the same lines (as many times);
- the same number of messages went through each object, per operation (a
  Pool's own pipes are machinery the probes do not record, so they are left out);
- the same Pool job events (submitted, started, finished, callbacks, results);
- each task ended the same way: exit code and cause for processes, cause for
  threads (a pool worker at terminate may end 0 or -15 either way: an idle
  worker sometimes exits before the SIGTERM reaches it);
- the same verdict: a deadlock in the model is a deadlock (or a stopped run
  with the same blocked tasks) for real, and a complete run is complete.
"""

from __future__ import annotations

from collections import Counter

from sim.compare_facts import PROCESS_KINDS, Facts, Termination
from sim.compare_report import Check, verdict

# A task the run stopped (deadlock, timeout) did not end by itself.
_STOPPED = frozenset({"run_stopped"})


def outcome_checks(sim: Facts, reals: list[Facts]) -> list[Check]:
    return [
        _tasks(sim, reals),
        _outputs(sim, reals),
        _messages(sim, reals),
        _jobs(sim, reals),
        _endings(sim, reals),
        _verdicts(sim, reals),
    ]


def _names(facts: Facts) -> set[str]:
    return set(facts.tasks) | set(facts.sequences)


def _tasks(sim: Facts, reals: list[Facts]) -> Check:
    problems = []
    expected = _names(sim)
    for real in reals:
        got = _names(real)
        if missing := sorted(expected - got):
            problems.append(f"{real.label}: missing {', '.join(missing)}")
        if extra := sorted(got - expected):
            problems.append(f"{real.label}: not in the model: {', '.join(extra)}")
    return verdict(
        "processes and threads",
        problems,
        f"{len(expected)} tasks in the model",
        tasks=sorted(expected),
    )


def _outputs(sim: Facts, reals: list[Facts]) -> Check:
    problems = []
    for real in reals:
        for task in sorted(set(sim.outputs) | set(real.outputs)):
            want, got = sim.outputs.get(task, Counter()), real.outputs.get(task, Counter())
            if want != got:
                problems.append(f"{real.label}: {task} printed {_lines(got)}, model {_lines(want)}")
    total = sum(sum(c.values()) for c in sim.outputs.values())
    return verdict("outputs", problems, f"{total} lines printed in the model", lines=total)


def _lines(counter: Counter[str]) -> str:
    if not counter:
        return "nothing"
    shown = [f"{text!r}×{n}" if n > 1 else repr(text) for text, n in counter.most_common(3)]
    more = len(counter) - 3
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _pool_names(facts: Facts) -> set[str]:
    return {job.pool for job in facts.jobs}


def _message_counts(facts: Facts, pools: set[str]) -> Counter[str]:
    internal = tuple(f"{pool}." for pool in pools)
    return Counter(
        f"{m.obj} {m.op}" for m in facts.messages if not (internal and m.obj.startswith(internal))
    )


def _messages(sim: Facts, reals: list[Facts]) -> Check:
    pools = _pool_names(sim)
    want = _message_counts(sim, pools)
    problems = []
    for real in reals:
        got = _message_counts(real, pools | _pool_names(real))
        problems += _count_problems(real.label, want, got)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(want.items())) or "no messages"
    return verdict("message counts", problems, summary, counts=dict(want))


def _jobs(sim: Facts, reals: list[Facts]) -> Check:
    want = Counter(f"{j.pool} {j.op}" for j in sim.jobs)
    problems = []
    for real in reals:
        got = Counter(f"{j.pool} {j.op}" for j in real.jobs)
        problems += _count_problems(real.label, want, got)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(want.items())) or "no pool jobs"
    return verdict("pool jobs", problems, summary, counts=dict(want))


def _count_problems(label: str, want: Counter[str], got: Counter[str]) -> list[str]:
    return [
        f"{label}: {key}: {got.get(key, 0)}, model {want.get(key, 0)}"
        for key in sorted(set(want) | set(got))
        if want.get(key, 0) != got.get(key, 0)
    ]


def _ending(end: Termination | None) -> tuple[int | None, str | None]:
    if end is None or end.cause in _STOPPED:
        return (None, None)
    return (end.exit_code, end.cause)


def _describe(kind: str, ending: tuple[int | None, str | None]) -> str:
    code, cause = ending
    if cause is None:
        return "did not end"
    return cause if kind not in PROCESS_KINDS else f"exit {code} ({cause})"


def _same_ending(
    kind: str, want: tuple[int | None, str | None], got: tuple[int | None, str | None]
) -> bool:
    if kind not in PROCESS_KINDS:
        return want[1] == got[1]  # threads have no exit code
    if want == got:
        return True
    # terminate() on a pool: an idle worker may exit 0 before its SIGTERM lands.
    at_terminate = {(0, "returned"), (-15, "terminated")}
    return kind == "worker" and {want, got} <= at_terminate and "terminated" in (want[1], got[1])


def _endings(sim: Facts, reals: list[Facts]) -> Check:
    problems = []
    for real in reals:
        for task, created in sim.tasks.items():
            if task not in _names(real):
                continue  # reported by the task check
            want, got = _ending(sim.terminated.get(task)), _ending(real.terminated.get(task))
            if not _same_ending(created.kind, want, got):
                problems.append(
                    f"{real.label}: {task} {_describe(created.kind, got)}, "
                    f"model {_describe(created.kind, want)}"
                )
    ended = sum(1 for t in sim.terminated.values() if t.cause not in _STOPPED)
    return verdict("exit codes and causes", problems, f"{ended} tasks end in the model")


def _blocked(facts: Facts) -> set[str]:
    return {b.task for b in facts.end.blocked}


def _verdicts(sim: Facts, reals: list[Facts]) -> Check:
    problems = []
    want = sim.end.status
    for real in reals:
        got = real.end.status
        if want == "deadlock":
            if got not in ("deadlock", "timeout"):
                problems.append(f"{real.label}: {got}, model deadlock")
            elif _blocked(real) != _blocked(sim):
                problems.append(
                    f"{real.label}: {got} with {', '.join(sorted(_blocked(real))) or 'none'} "
                    f"blocked, model {', '.join(sorted(_blocked(sim)))}"
                )
        elif got != want:
            detail = f" ({', '.join(sorted(_blocked(real)))} blocked)" if _blocked(real) else ""
            problems.append(f"{real.label}: {got}{detail}, model {want}")
    blocked = f": {', '.join(sorted(_blocked(sim)))} blocked" if _blocked(sim) else ""
    return verdict("end of the run", problems, f"model {want}{blocked}", status=want)
