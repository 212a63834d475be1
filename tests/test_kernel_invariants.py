"""Properties every simulated run must have, over random workloads and every policy."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import program as p
from sim.kernel import simulate
from sim.policies import POLICIES
from sim.scenario import load_scenario
from sim.trace import Event, MemorySink, StateChanged

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"

MS = 1_000_000
ALLOWED = {
    ("new", "ready"),
    ("ready", "running"),
    ("running", "ready"),
    ("running", "blocked"),
    ("running", "terminated"),
    ("blocked", "ready"),
}

steps = st.one_of(
    st.builds(lambda d: p.Compute(duration=p.Constant(d)), st.integers(1, 20 * MS)),
    st.builds(lambda d: p.Sleep(duration=p.Constant(d)), st.integers(0, 10 * MS)),
)
programs = st.lists(steps, min_size=1, max_size=5)


@st.composite
def workloads(draw: st.DrawFn) -> p.Scenario:
    bodies = draw(st.lists(programs, min_size=1, max_size=6))
    functions = {f"f{i}": p.FunctionDef(f"f{i}", tuple(body)) for i, body in enumerate(bodies)}
    spawns = tuple(
        p.Spawn(
            name=f"p{i}",
            target=f"f{i}",
            priority=draw(st.integers(-3, 3)),
            arrive_at=draw(st.one_of(st.none(), st.integers(0, 30 * MS))),
        )
        for i in range(len(bodies))
    )
    machine = p.Machine(
        cpus=draw(st.integers(1, 4)),
        policy=draw(st.sampled_from(sorted(POLICIES))),
        settings=p.PolicySettings(
            quantum_ns=draw(st.integers(1, 10)) * MS,
            preemptive=draw(st.booleans()),
            mlfq_boost_ns=draw(st.integers(5, 100)) * MS,
        ),
        costs=p.Costs(
            start_cpu_ns={"fork": draw(st.integers(0, 2 * MS)), "spawn": 0, "forkserver": 0},
            exit_cpu_ns={"fork": draw(st.integers(0, 1 * MS)), "spawn": 0, "forkserver": 0},
            start_call_ns=0,
            first_start_ns=0,
            shutdown_ns=0,
            # A sleep's wake-up, and a join's return after a wait, are CPU time
            # no compute step accounts for.
            sleep_ns=0,
            join_wait_ns=0,
            # A CPU being woken for a task would look idle while the task is ready.
            wake_up_ns=0,
        ),
    )
    main = (*spawns, p.Join(names=tuple(s.name for s in spawns)))
    return p.Scenario("random", "", draw(st.integers(0, 99)), machine, {}, functions, main)


def run(scenario: p.Scenario) -> list[Event]:
    sink = MemorySink()
    result = simulate(scenario, sink)
    assert result.end.status == "complete"
    return sink.events


def states(events: list[Event]) -> list[StateChanged]:
    return [e for e in events if isinstance(e, StateChanged)]


@settings(max_examples=150, deadline=None)
@given(workloads())
def test_time_never_goes_backwards(scenario: p.Scenario) -> None:
    times = [e.t for e in run(scenario)]
    assert times == sorted(times)


@settings(max_examples=150, deadline=None)
@given(workloads())
def test_each_task_is_in_one_state_at_a_time(scenario: p.Scenario) -> None:
    current: dict[str, str] = {}
    for change in states(run(scenario)):
        before = current.get(change.task, "new")
        assert (before, change.state) in ALLOWED, (change.task, before, change.state)
        current[change.task] = change.state
    assert set(current.values()) == {"terminated"}


@settings(max_examples=150, deadline=None)
@given(workloads())
def test_no_cpu_runs_two_tasks_and_cpu_time_matches_compute(scenario: p.Scenario) -> None:
    on_cpu: dict[int, str] = {}
    cpu_of: dict[str, int] = {}
    since: dict[str, int] = {}
    used: dict[str, int] = defaultdict(int)
    for change in states(run(scenario)):
        task = change.task
        if task in cpu_of:  # leaving the CPU
            cpu = cpu_of.pop(task)
            del on_cpu[cpu]
            used[task] += change.t - since.pop(task)
        if change.state == "running":
            assert change.cpu is not None and 0 <= change.cpu < scenario.machine.cpus
            assert change.cpu not in on_cpu, f"CPU {change.cpu} runs {on_cpu.get(change.cpu)}"
            on_cpu[change.cpu] = task
            cpu_of[task] = change.cpu
            since[task] = change.t
    for name, function in scenario.functions.items():
        requested = sum(
            op.duration.ns
            for op in function.body
            if isinstance(op, p.Compute) and isinstance(op.duration, p.Constant)
        )
        costs = scenario.machine.costs
        start_and_exit = costs.start_cpu_ns["fork"] + costs.exit_cpu_ns["fork"]
        assert used[f"p{name[1:]}"] == requested + start_and_exit
    assert used["main"] == 0


@settings(max_examples=150, deadline=None)
@given(workloads())
def test_no_cpu_idles_while_a_task_is_ready(scenario: p.Scenario) -> None:
    """Every policy here is work-conserving, but for `linux`'s per-CPU queues: a
    task may wait for the busy CPU it last ran on while another idles, until it
    has not run for the balance delay; a forked child that has not run yet, for
    the busy CPU it was placed on, until the balance delay after it became
    ready. Decisions are taken at the end of an instant, so the check is made
    between instants."""
    events = states(run(scenario))
    delay = scenario.machine.settings.linux_balance_delay_ns
    per_cpu = scenario.machine.policy == "linux" and delay > 0
    ready: set[str] = set()
    cpu_of: dict[str, int] = {}  # the running tasks' CPUs
    last_cpu: dict[str, int] = {}
    left_at: dict[str, int] = {}
    for i, change in enumerate(events):
        ready.discard(change.task)
        if change.task in cpu_of:
            left_at[change.task] = change.t
            del cpu_of[change.task]
        if change.state == "ready":
            ready.add(change.task)
            left_at.setdefault(change.task, change.t)  # placed at its fork
        elif change.state == "running":
            assert change.cpu is not None
            cpu_of[change.task] = last_cpu[change.task] = change.cpu
        last_of_instant = i + 1 == len(events) or events[i + 1].t > change.t
        if not last_of_instant or len(cpu_of) == scenario.machine.cpus:
            continue
        busy = set(cpu_of.values())
        for task in ready:
            placed_on = last_cpu[task] if task in last_cpu else next(iter(busy), None)
            waits_for_its_cpu = per_cpu and placed_on in busy and change.t - left_at[task] < delay
            assert waits_for_its_cpu, (change.t, task, ready, cpu_of)


def taken_off_and_moved_early(events: list[StateChanged], delay: int) -> list[StateChanged]:
    """The runs of tasks taken off their CPU while ready (preempted, or their
    slice over) on another CPU before the balance delay had passed."""
    on: dict[str, int] = {}  # running task -> its CPU
    off: dict[str, tuple[int, int]] = {}  # task taken off -> (its CPU, when)
    early = []
    for change in events:
        if change.state == "running":
            assert change.cpu is not None
            if change.task in off:
                cpu, t = off.pop(change.task)
                if change.cpu != cpu and change.t - t < delay:
                    early.append(change)
            on[change.task] = change.cpu
        elif change.state == "ready" and change.task in on:
            off[change.task] = (on.pop(change.task), change.t)
        else:
            on.pop(change.task, None)
            off.pop(change.task, None)
    return early


@settings(max_examples=300, deadline=None)
@given(workloads())
def test_a_task_taken_off_its_cpu_waits_for_it_until_the_balance_delay(
    scenario: p.Scenario,
) -> None:
    """Under `linux`'s per-CPU queues a task taken off its CPU while ready
    (preempted, or its slice over) stays in that CPU's queue: it runs next on
    that CPU, or on another only once it has not run for the balance delay.
    The kernel moves no cache-hot task at once, whatever idles; only a task
    waking up may take another idle CPU straight away."""
    delay = scenario.machine.settings.linux_balance_delay_ns
    if scenario.machine.policy == "linux" and delay > 0:
        assert taken_off_and_moved_early(states(run(scenario)), delay) == []


LINUX_SCENARIOS = sorted(
    path.name for path in SCENARIOS.glob("*.yaml") if load_scenario(path).machine.policy == "linux"
)


@pytest.mark.parametrize("name", LINUX_SCENARIOS)
def test_no_shipped_scenario_moves_a_task_taken_off_its_cpu_early(name: str) -> None:
    # As `procsim simulate` runs them, with the shipped profile: in
    # reference_joinable_queue the feeder preempts the consumer while the
    # producer's CPU idles, and the consumer must wait for its own CPU.
    scenario = load_scenario(SCENARIOS / name)
    delay = scenario.machine.settings.linux_balance_delay_ns
    sink = MemorySink()
    simulate(scenario, sink)
    assert taken_off_and_moved_early(states(sink.events), delay) == []
