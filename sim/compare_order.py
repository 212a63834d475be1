"""Level 2, order: do the happens-before rules hold in every trace?

Each rule is checked in the simulated trace and in every real one, and counts
its violations in each:

- a message is put before it is got, and sent before it is received (the two
  events share a message id);
- a task is created (start() called) before it first runs;
- a JoinableQueue's `join()` returns only once every item put before it
  returned has been got (task_done follows the get, and is not itself in the
  trace, so its get stands in for it);
- a daemon process is killed no earlier than the main program's last action
  and after the main process's non-daemon threads have ended, and never
  outlives the main process;
- a Pool job starts after it is submitted, finishes after it starts, and its
  callback and result come after every chunk has finished; callbacks run in the
  parent's result-handler thread.

Where the scenario is deterministic — one CPU, a policy the real run enforced
exactly, no random durations — the per-task sequence of states must also be
identical, and so must the order in which tasks were dispatched. A sequence
starts at the task's first dispatch (how long it waited for it is timing, and
the dispatch order tells who went first) and leaves out the ready and blocked
states a task only passes through (under 100 µs: the model changes state in
no time where the kernel takes a wake-up's microseconds); a run, however
short, counts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from sim.compare_facts import MAIN, Facts
from sim.compare_report import Check, not_applicable, verdict
from sim.trace import JobEvent

# A ready or blocked state shorter than this is passed through, not waited in: the
# model changes state in no time where the kernel takes a wake-up's microseconds.
PASSING_NS = 100_000
# A real task blocked with no recorded call open, for less than this, waited
# inside the kernel (a page fault, a kernel lock while processes fork and exit):
# not a state of the program, which the model does not have either.
KERNEL_WAIT_NS = 1_000_000
_SHOWN = 5  # problems listed per trace and rule; the count says how many there were
_Finder = Callable[[Facts], list[str]]


@dataclass(frozen=True)
class Determinism:
    """Whether state sequences can be compared, and if not, why."""

    deterministic: bool
    why: str


def order_checks(sim: Facts, reals: list[Facts], determinism: Determinism) -> list[Check]:
    traces = [sim, *reals]
    checks = [
        _rule("put before get", traces, lambda f: _message_order(f, "put", "get")),
        _rule("send before recv", traces, lambda f: _message_order(f, "send", "recv")),
        _rule("start before first run", traces, _start_order),
        _rule("queue join after every get", traces, _queue_joins),
        _rule("daemons end with the main code", traces, _daemons),
        _rule("pool job order", traces, _job_order),
    ]
    if determinism.deterministic:
        checks += [_sequences(sim, reals), _dispatch(sim, reals)]
    else:
        checks += [
            not_applicable("state sequences", determinism.why),
            not_applicable("dispatch order", determinism.why),
        ]
    return checks


def _rule(name: str, traces: list[Facts], find: _Finder) -> Check:
    problems: list[str] = []
    counts: dict[str, int] = {}
    for facts in traces:
        found = find(facts)
        counts[facts.label] = len(found)
        problems += [f"{facts.label}: {p}" for p in found[:_SHOWN]]
        if len(found) > _SHOWN:
            problems.append(f"{facts.label}: … {len(found) - _SHOWN} more")
    total = sum(counts.values())
    summary = "holds in every trace" if not total else f"{total} violation(s)"
    return verdict(name, problems, summary, violations=counts)


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.3f} ms"


def _message_order(facts: Facts, first: str, then: str) -> list[str]:
    sent: dict[int, int] = {}
    found = []
    for m in facts.messages:
        if m.op == first:
            sent.setdefault(m.msg, m.t)
    for m in facts.messages:
        if m.op != then:
            continue
        t = sent.get(m.msg)
        if t is None:
            found.append(f"{m.task} {then} message {m.msg} on {m.obj}, which was never {first}")
        elif t > m.t:
            found.append(f"message {m.msg} on {m.obj}: {then} at {_ms(m.t)}, {first} at {_ms(t)}")
    return found


def _start_order(facts: Facts) -> list[str]:
    found = [
        f"{task} changed state before it was created" for task in facts.states_seen_before_task
    ]
    for task, created in facts.tasks.items():
        first = facts.first_run.get(task)
        if first is not None and first < created.t:
            found.append(f"{task} ran at {_ms(first)}, created at {_ms(created.t)}")
        parent = facts.tasks.get(created.parent) if created.parent else None
        if parent is not None and parent.t > created.t:
            found.append(f"{task} created at {_ms(created.t)}, before its parent {parent.task}")
    return found


def _queue_joins(facts: Facts) -> list[str]:
    pools = {job.pool for job in facts.jobs}
    puts: dict[str, list[tuple[int, int]]] = defaultdict(list)
    got: dict[int, int] = {}
    for m in facts.messages:
        if m.op == "put":
            puts[m.obj].append((m.t, m.msg))
        elif m.op == "get":
            got.setdefault(m.msg, m.t)
    found = []
    for task, queue, returned in _join_returns(facts, pools):
        for t, msg in puts.get(queue, ()):
            if t < returned and got.get(msg, returned + 1) > returned:
                found.append(
                    f"{task}: {queue}.join returned at {_ms(returned)} before message "
                    f"{msg} (put at {_ms(t)}) was got"
                )
    return found


def _join_returns(facts: Facts, pools: set[str]) -> list[tuple[str, str, int]]:
    """(task, queue, when it returned) of every queue join that returned. The
    kernel can split one join into several blocked stretches (its Condition's
    lock, the GIL, the wait itself), each named after the join: stretches of
    the same join with nothing the task did in between (a message, a pool job)
    are one join, which returned when the last of them ended."""
    actions: dict[str, list[int]] = defaultdict(list)
    for m in facts.messages:
        actions[m.task].append(m.t)
    for job in facts.jobs:
        actions[job.task].append(job.t)
    returns: list[tuple[str, str, int]] = []
    for task, intervals in facts.intervals.items():
        current: tuple[str, int] | None = None  # the join under way: its queue, its last end
        for iv in intervals:
            reason = iv.reason or ""
            if iv.state != "blocked" or reason == "gil" or reason == "":
                continue
            queue = reason.removesuffix(".join")
            is_join = reason.endswith(".join") and " " not in reason and queue not in pools
            if current is not None and not (
                is_join
                and queue == current[0]
                and not any(current[1] <= t < iv.start_ns for t in actions[task])
            ):
                returns.append((task, *current))
                current = None
            if is_join:
                current = (queue, iv.end_ns)
        if current is not None and not (current[1] == facts.end.t and task not in facts.terminated):
            returns.append((task, *current))  # unless still blocked when the run ended
    return returns


def _daemons(facts: Facts) -> list[str]:
    main_end = facts.terminated.get(MAIN)
    # The main process joins its non-daemon threads before it kills daemons. A
    # thread counts as ended when main's join of it returns: CPython marks a
    # thread finished a moment before its OS thread exits.
    user_threads = {
        f"join {task}"
        for task, c in facts.tasks.items()
        if c.kind == "thread" and c.process == MAIN and not c.daemon
    }
    threads_end = max(
        (
            iv.end_ns
            for iv in facts.intervals.get(MAIN, ())
            if iv.state == "blocked" and iv.reason in user_threads
        ),
        default=0,
    )
    found = []
    for task, created in facts.tasks.items():
        if created.kind != "child" or not created.daemon:
            continue
        end = facts.terminated.get(task)
        if end is None or end.cause == "run_stopped":
            if main_end is not None:
                found.append(f"daemon {task} outlived the main process (ended {_ms(main_end.t)})")
            continue
        if main_end is not None and end.t > main_end.t:
            found.append(
                f"daemon {task} ended at {_ms(end.t)}, after the main process ({_ms(main_end.t)})"
            )
        if end.cause != "killed_as_daemon":
            continue
        if end.t < facts.main_code_end_ns:
            found.append(
                f"daemon {task} killed at {_ms(end.t)} while the main code still ran "
                f"(its last action at {_ms(facts.main_code_end_ns)})"
            )
        if end.t < threads_end:
            found.append(
                f"daemon {task} killed at {_ms(end.t)}, before the main process's "
                f"non-daemon threads ended ({_ms(threads_end)})"
            )
    return found


def _job_order(facts: Facts) -> list[str]:
    by_job: dict[tuple[str, int], list[JobEvent]] = defaultdict(list)
    for job in facts.jobs:
        by_job[(job.pool, job.job)].append(job)
    found = []
    for (pool, number), events in by_job.items():
        name = f"{pool} job {number}"
        submitted = min((e.t for e in events if e.op == "submit"), default=None)
        started: dict[int | None, int] = {}
        finished: list[int] = []
        for e in events:
            if e.op == "start":
                started.setdefault(e.chunk, e.t)
                if submitted is None or e.t < submitted:
                    found.append(f"{name} started at {_ms(e.t)} before it was submitted")
            elif e.op in ("finish", "error"):
                finished.append(e.t)
                begun = started.get(e.chunk)
                if begun is None or e.t < begun:
                    found.append(f"{name} chunk {e.chunk} finished without starting first")
        for e in events:
            if e.op not in ("callback", "error_callback", "result"):
                continue
            if not finished or e.t < max(finished):
                found.append(f"{name}: {e.op} at {_ms(e.t)} before every chunk finished")
            if e.op != "result" and not e.task.endswith(f".{pool}.result_handler"):
                found.append(f"{name}: {e.op} ran in {e.task}, not the result-handler thread")
    return found


def _sequence(facts: Facts, task: str) -> list[str]:
    out: list[str] = []
    for iv in facts.intervals.get(task, ()):
        passing = iv.state in ("ready", "blocked") and iv.duration_ns < PASSING_NS
        passing |= iv.state == "blocked" and not iv.reason and iv.duration_ns < KERNEL_WAIT_NS
        if passing or iv.state == "new" or (iv.state == "ready" and not out):
            continue
        name = iv.state if iv.state != "blocked" else f"blocked {iv.reason or '?'}"
        if not out or out[-1] != name:
            out.append(name)
    if task in facts.terminated:
        out.append("terminated")
    return out


def _sequences(sim: Facts, reals: list[Facts]) -> Check:
    problems = []
    for real in reals:
        for task in sim.tasks:
            if task not in real.tasks:
                continue
            want, got = _sequence(sim, task), _sequence(real, task)
            if want != got:
                problems.append(f"{real.label}: {task}: {_first_difference(want, got)}")
    return verdict("state sequences", problems, f"{len(sim.tasks)} tasks compared")


def _first_difference(want: list[str], got: list[str]) -> str:
    for i, (a, b) in enumerate(zip(want, got, strict=False)):
        if a != b:
            return f"state {i + 1} is {b}, model {a} (model: {' → '.join(want)})"
    if len(got) > len(want):
        return f"goes on with {' → '.join(got[len(want) :])} after the model's last state"
    return f"stops before the model's {' → '.join(want[len(got) :])}"


def dispatch_order(facts: Facts, tasks: set[str]) -> list[str]:
    """The order in which the given tasks were put on a CPU, repeats merged."""
    runs = sorted(
        (iv.start_ns, task)
        for task in tasks
        for iv in facts.intervals.get(task, ())
        if iv.state == "running" and iv.duration_ns > 0
    )
    out: list[str] = []
    for _t, task in runs:
        if not out or out[-1] != task:
            out.append(task)
    return out


def _dispatch(sim: Facts, reals: list[Facts]) -> Check:
    workload = {t for t, c in sim.tasks.items() if c.kind in ("child", "worker", "thread")}
    want = dispatch_order(sim, workload)
    problems = [
        f"{real.label}: {' → '.join(got)}"
        for real in reals
        if (got := dispatch_order(real, workload)) != want
    ]
    return verdict("dispatch order", problems, " → ".join(want) or "nothing dispatched")
