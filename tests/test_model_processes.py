"""Golden tests of processes, daemons, exit codes and the GIL in the model."""

from __future__ import annotations

import itertools

import pytest
from model_helpers import MS, US, machine, run_file, run_text

from sim.program import Sleep, mean_ns
from sim.scenario import ScenarioError, load_scenario_text


def test_daemon_killed_when_main_code_ends_and_its_thread_is_joined() -> None:
    # A fair-scheduler slice longer than the main code and its shutdown: with the
    # profile's costs, main would otherwise be preempted for a waiting child
    # partway through, depending on how those costs add up.
    run = run_file("reference_daemon.yaml", linux_base_slice_ns=20 * MS)
    scenario = run.scenario
    costs = scenario.machine.costs
    start_up, exit_ = costs.start_cpu_ns["fork"], costs.exit_cpu_ns["fork"]
    sleeps = {  # each sleep's wake-up costs `sleep` of CPU after it
        name: mean_ns(op.duration) + costs.sleep_ns  # constants: their value
        for name, fn in scenario.functions.items()
        for op in fn.body
        if isinstance(op, Sleep)
    }
    # The main code: two start() calls, its first thread start and a print.
    # Thread.start() waits for the new thread to start, which takes the GIL
    # and main's CPU, and sleeps at once: main has both back that instant.
    thread_start = costs.thread_start_ns + costs.first_thread_start_ns
    thread_started = 2 * costs.start_call_ns + costs.first_start_ns + thread_start
    code_done = thread_started + costs.print_ns
    # Then the interpreter's shutdown, up to joining the threads, less the part
    # multiprocessing's exit function runs after them (its `active_children()`).
    between = min(costs.exit_function_ns, costs.shutdown_ns)
    main_free = code_done + costs.shutdown_ns - between
    # The child, forked onto the CPU the daemon runs its start-up on, waits
    # for it (then the daemon sleeps).
    # (The daemon exists from the fork, start_return before its start() ends.)
    forked = costs.start_call_ns + costs.first_start_ns - costs.start_return_ns
    child_cpu = daemon_up = forked + start_up
    assert daemon_up < thread_started
    thread_done = thread_started + sleeps["thread_work"]
    # The child runs its start-up, sleeps, then exits.
    child_done = child_cpu + start_up + sleeps["child_work"] + exit_
    # The daemon, asleep when killed, takes the CPU main leaves to be torn down.
    # Each join that waited 1 ms or more runs its return cold.
    killed = thread_done + costs.thread_join_wait_ns + between
    daemon_gone = killed + costs.kill_exit_ns
    daemon_joined = daemon_gone + (costs.join_wait_ns if costs.kill_exit_ns >= MS else 0)
    main_done = child_done + costs.join_wait_ns
    assert [(o.t, o.text) for o in run.outputs("main")] == [(code_done, "main code done")]
    assert run.sequence("main") == [
        (0, "ready", None),
        (0, "running", None),
        (thread_started, "blocked", "gil"),
        (thread_started, "ready", None),
        (thread_started, "running", None),
        (main_free, "blocked", "join main.helper"),  # non-daemon threads first
        (thread_done, "ready", None),
        (thread_done, "running", None),
        # It SIGTERMs the daemon and joins it: the kernel tears it down first.
        (killed, "blocked", "join daemon"),
        (daemon_gone, "ready", None),
        (daemon_gone, "running", None),
        (daemon_joined, "blocked", "join child"),
        (child_done, "ready", None),
        (child_done, "running", None),
        (main_done, "terminated", None),
    ]
    daemon = run.end_of("daemon")
    assert (daemon.t, daemon.exit_code, daemon.cause) == (daemon_gone, -15, "killed_as_daemon")
    # Killed mid-work: it would have run a second (100 x (10 ms + 100 us)).
    assert daemon.t < code_done + 100 * (10 * MS + 100_000)
    # Killed right after the thread is joined, gone before main waits for the child.
    order = [id(e) for e in run.states()]
    helper_end = run.end_of("main.helper")
    assert helper_end.t == thread_done
    join_child = run.first("main", "blocked", "join child")
    assert order.index(id(helper_end)) < order.index(id(daemon)) < order.index(id(join_child))
    # The non-daemon child runs to its end; the main process ends after it.
    child = run.end_of("child")
    assert (child.t, child.exit_code, child.cause) == (child_done, 0, "returned")
    main = run.end_of("main")
    assert (main.t, main.exit_code) == (main_done, 0)
    assert run.states()[-1] is main
    assert run.end.status == "complete"


def test_child_process_runs_its_exit_function_before_joining_its_threads() -> None:
    # CPython's Process._bootstrap: util._exit_function() (daemons SIGTERMed,
    # children joined) comes before threading._shutdown() in a child process;
    # the main process joins its threads first.
    run = run_text(f"""
name: child-exit-order
{machine(4)}
functions:
  forever: [{{sleep: 1s}}]
  helper: [{{sleep: 100ms}}]
  parent_code:
    - spawn: {{name: grandchild, target: forever, daemon: true}}
    - thread: {{name: t, target: helper}}
    - sleep: 10ms
main:
  - spawn: {{name: c, target: parent_code}}
  - join: c
""")
    grandchild = run.end_of("grandchild")
    assert (grandchild.t, grandchild.exit_code, grandchild.cause) == (
        10 * MS,
        -15,
        "killed_as_daemon",
    )
    assert run.intervals("c", "blocked")[-1] == (10 * MS, 100 * MS, "join c.t")
    c_end = run.end_of("c")
    assert (c_end.t, c_end.exit_code) == (100 * MS, 0)


def test_exit_codes_and_causes() -> None:
    run = run_text(f"""
name: exit-codes
{machine(4)}
functions:
  fine: [{{compute: 1ms}}]
  broken: [{{compute: 1ms}}, {{raise: ValueError}}, {{print: never}}]
  quits: [{{compute: 1ms}}, {{exit: 3}}, {{print: never}}]
  forever: [{{sleep: 1s}}]
main:
  - spawn: {{name: ok, target: fine}}
  - spawn: {{name: err, target: broken}}
  - spawn: {{name: ex, target: quits}}
  - spawn: {{name: victim, target: forever}}
  - sleep: 5ms
  - terminate: victim
  - join: [ok, err, ex, victim]
""")
    ends = {name: run.end_of(name) for name in ("ok", "err", "ex", "victim")}
    assert {n: (e.exit_code, e.cause) for n, e in ends.items()} == {
        "ok": (0, "returned"),
        "err": (1, "exception"),
        "ex": (3, "exit"),
        "victim": (-15, "terminated"),
    }
    assert ends["victim"].t == 5 * MS
    assert [w.task for w in run.warnings("exception")] == ["err"]
    assert run.outputs() == []


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_start_and_exit_costs_are_the_childs_cpu_time(method: str) -> None:
    """start() costs the parent its CPU time; the child then runs its start-up
    before the target and its exit after it, each needing a CPU."""
    run = run_text(f"""
name: start-{method}
machine:
  cpus: 1
  policy: fcfs
  context_switch: 0ns
  start_method: {method}
  start_cost: {{{method}: 7ms}}
  exit_cost: {{{method}: 3ms}}
  costs: {{start_call: 1ms, start_return: 0ns, first_start: 0ns, print: 0ns, first_print: 0ns}}
functions:
  work: [{{compute: 2ms}}, {{print: target done}}]
main:
  - spawn: {{name: child, target: work}}
  - compute: 4ms
  - join: child
""")
    created = next(e for e in run.created() if e.task == "child")
    assert created.t == 1 * MS
    # One CPU: the child is ready at once but waits for main's 4 ms.
    assert run.sequence("child") == [
        (1 * MS, "ready", None),
        (5 * MS, "running", None),
        (5 * MS + 12 * MS, "terminated", None),
    ]
    assert [o.t for o in run.outputs("child")] == [5 * MS + 7 * MS + 2 * MS]


@pytest.mark.parametrize(("start_return", "forked_at"), [("400us", 600_000), ("5ms", 0)])
def test_the_child_exists_from_the_fork_before_start_returns(
    start_return: str, forked_at: int
) -> None:
    """The child is ready `start_return` before the parent's start() ends (the
    fork is inside it) and runs on a free CPU meanwhile; `start_return` longer
    than the whole call puts the fork at its beginning."""
    run = run_text(f"""
name: fork-point
machine:
  cpus: 2
  context_switch: 0ns
  start_cost: {{fork: 2ms}}
  exit_cost: {{fork: 0ns}}
  costs: {{start_call: 1ms, start_return: {start_return}, first_start: 0ns, print: 0ns,
          first_print: 0ns, wake_up: 0ns}}
functions:
  work: [{{compute: 1ms}}]
main:
  - spawn: {{name: child, target: work}}
  - print: started
  - join: child
""")
    created = next(e for e in run.created() if e.task == "child")
    assert created.t == forked_at
    assert run.sequence("child") == [
        (forked_at, "ready", None),
        (forked_at, "running", None),
        (forked_at + 3 * MS, "terminated", None),
    ]
    assert [o.t for o in run.outputs("main")] == [1 * MS]


def test_a_started_child_sleeps_until_its_arrival_time() -> None:
    """A scheduling exercise's arrival: the child starts as any other, then is
    blocked (`arrival`) until its arrival time, as the real run's child sleeps."""
    run = run_text("""
name: arrival
machine: {cpus: 1, context_switch: 0ns, start_cost: {fork: 1ms}, exit_cost: {fork: 0ns},
          costs: {start_call: 0ns, first_start: 0ns, wake_up: 0ns}}
functions:
  work: [{compute: 2ms}]
main:
  - spawn: {name: late, target: work, arrive_at: 10ms}
  - join: late
""")
    assert run.sequence("late") == [
        (0, "ready", None),
        (0, "running", None),
        (1 * MS, "blocked", "arrival"),
        (10 * MS, "ready", None),
        (10 * MS, "running", None),
        (12 * MS, "terminated", None),
    ]


@pytest.mark.parametrize(
    ("where", "program"),
    [
        (
            "daemon process 'd'",
            "main: [{spawn: {name: d, target: outer, daemon: true}}, {join: d}]",
        ),
        (
            "workers of pool 'p'",
            "objects: {p: {type: pool, workers: 1}}\nmain: [{apply: {pool: p, function: outer}}]",
        ),
    ],
    ids=["daemon", "pool-task"],
)
def test_a_daemonic_process_may_not_start_children(where: str, program: str) -> None:
    text = f"""name: daemon-children
functions:
  inner: [{{compute: 1ms}}]
  outer: [{{spawn: {{name: g, target: inner}}}}]
{program}
"""
    with pytest.raises(ScenarioError) as caught:
        load_scenario_text(text, "daemon.yaml")
    message = str(caught.value)
    assert "daemon.yaml:4:" in message  # the line of the offending spawn
    assert where in message
    assert "daemonic processes are not allowed to have children" in message


def test_gil_threads_alternate_every_switch_interval() -> None:
    run = run_file("gil_threads.yaml")
    interval = run.scenario.machine.costs.gil_switch_interval_ns
    threads = ("main.t1", "main.t2")
    # A thread's turn: its runs back to back (another's zero-length run between
    # two of them, on the same CPU, does not end it).
    turns: list[tuple[int, int, str]] = []
    runs = sorted((s, e, t) for t in threads for s, e, _ in run.intervals(t, "running"))
    for start, end, thread in runs:
        if end == start:
            continue
        if turns and turns[-1][2] == thread and turns[-1][1] == start:
            start = turns.pop()[0]
        turns.append((start, end, thread))
    # Never on two CPUs at once, though two are free.
    for (_, end, _), (start, _, _) in itertools.pairwise(turns):
        assert end <= start
    # Turns alternate, each one switch interval long; 30 ms each makes 12 turns.
    assert [t for _, _, t in turns] == list(threads) * 6
    assert all(end - start == interval for start, end, _ in turns)
    # While one runs, the other waits for the GIL, blocked, except that t1,
    # woken as main's start() of t2 gives the GIL up, waits behind t2 in its
    # CPU's queue until t2's slice ends (see the next test).
    for i, (start, end, holder) in enumerate(turns):
        other = threads[1 - threads.index(holder)]
        waiting = run.state_at(other, (start + end) // 2)
        if waiting is not None and waiting.state != "terminated":
            assert (waiting.state, waiting.reason) == ("blocked", "gil"), (start, other)
            if i != 1:  # t2's first turn
                assert all(e.t in (start, end) for e in run.states(other) if start <= e.t <= end)
    # Together they take as long as one thread doing both halves, after main has
    # started them (its first thread start costs more); main's join of t1, which
    # waited, returns once t2 has left the GIL; then the main process shuts down.
    costs = run.scenario.machine.costs
    starts = 2 * costs.thread_start_ns + costs.first_thread_start_ns
    joined = costs.thread_join_wait_ns
    assert run.end.t == starts + 2 * 30 * MS + joined + costs.shutdown_ns


def test_thread_start_waits_for_the_new_thread_then_for_the_gil() -> None:
    # CPython's Thread.start() waits until the new thread has started; the new
    # thread takes the GIL and runs on into its target. t1 computes, so main
    # has the GIL back only at the forced switch, a switch interval later, and
    # only then starts t2, which takes the GIL from it (t1 waiting meanwhile).
    run = run_file("gil_threads.yaml")
    costs = run.scenario.machine.costs
    interval = costs.gil_switch_interval_ns
    t1_runs = run.first("main.t1", "running").t
    assert t1_runs == costs.first_thread_start_ns + costs.thread_start_ns
    waiting = run.state_at("main", t1_runs + interval // 2)
    assert waiting is not None and (waiting.state, waiting.reason) == ("blocked", "gil")
    assert run.first("main.t1", "blocked", "gil").t == t1_runs + interval
    t2_made = next(e.t for e in run.created() if e.task == "main.t2")
    assert t2_made == t1_runs + interval + costs.thread_start_ns
    t1_turns = [start for start, end, _ in run.intervals("main.t1", "running") if end > start]
    t2_runs = run.first("main.t2", "running")
    assert t2_runs.t < t1_turns[1]
    # t1, woken as main gives the GIL up (CPython signals a waiter), was placed
    # while main still ran: it waits for its own CPU, which t2 has taken, until
    # t2's slice ends there, then finds the GIL taken and waits again.
    woken = next(
        e for e in run.states("main.t1") if e.t == t2_made and e.state == "ready"
    )  # fmt: skip
    ran = next(e for e in run.states("main.t1") if e.t > woken.t and e.state == "running")
    assert ran.cpu == t2_runs.cpu
    assert ran.t - t2_runs.t == run.scenario.machine.settings.linux_base_slice_ns
    after = run.state_at("main.t1", ran.t)
    assert after is not None and (after.state, after.reason) == ("blocked", "gil")


def test_a_forced_gil_switch_wakes_the_taker_on_the_other_cpu() -> None:
    # CPython's dropper wakes the taker, then waits on its CPU until the taker
    # has the GIL: the kernel places the taker on the other, idle CPU, which
    # takes `wake_up` to wake; each thread keeps a CPU of its own.
    run = run_text(f"""
name: gil-handoff
{machine(2, wake_up="30us")}
functions:
  spin: [{{compute: 30ms}}]
main:
  - thread: {{name: t1, target: spin}}
  - thread: {{name: t2, target: spin}}
  - join: [t1, t2]
""")
    threads = ("main.t1", "main.t2")
    handoffs = 0
    for dropper in threads:
        taker = threads[1 - threads.index(dropper)]
        for e in run.states(dropper):
            after = [x for x in run.states(taker) if x.t >= e.t]
            if e.state != "blocked" or e.reason != "gil" or not after or e.t == 0:
                continue
            if after[0].state != "ready" or after[0].t != e.t:
                continue  # not a hand-over to the other thread at this instant
            was_on = run.state_at(dropper, e.t - 1)
            if was_on is None or was_on.state != "running":
                continue  # woken by a release that gave the GIL to another, it waits again
            runs = after[1]
            assert (runs.state, runs.t) == ("running", e.t + 30_000), (dropper, e.t)
            assert runs.cpu is not None and runs.cpu != was_on.cpu, (dropper, e.t)
            handoffs += 1
    assert handoffs >= 4  # a switch every 5 ms while both have work


def test_a_thread_forced_off_the_gil_wins_it_back_at_the_takers_system_call() -> None:
    # Main computes, holding the GIL; the thread, back from its sleep at 1 ms,
    # waits for it, and gets it at each forced switch (every 5 ms). Its print is
    # a system call: main, forced off just before and waiting again, wins the
    # GIL back there, so the thread prints one line per switch instead of all
    # five at once.
    run = run_text(f"""
name: hot-waiter
{machine(2)}
functions:
  talk:
    - sleep: 1ms
    - repeat: {{times: 5, do: [{{print: hello}}]}}
main:
  - thread: {{name: t, target: talk}}
  - compute: 18ms
  - join: t
""")
    printed = [o.t for o in run.outputs("main.t")]
    assert printed == [6 * MS, 11 * MS, 16 * MS, 18 * MS, 18 * MS]
    # Main waited for the GIL only while the thread printed (no time at all here).
    assert run.time_in("main", "running") == 18 * MS


def test_a_task_given_an_idle_cpu_runs_after_the_wake_up() -> None:
    """A CPU idle before this instant must be woken (`wake_up`, not CPU time)
    before its task runs; one that a task leaves at this instant switches
    straight to the next."""
    run = run_text(f"""
name: wake-up
{machine(2, wake_up="50us")}
functions:
  nap: [{{sleep: 10ms}}, {{compute: 1ms}}]
  spin: [{{compute: 3ms}}]
main:
  - spawn: {{name: napper, target: nap}}
  - spawn: {{name: a, target: spin}}
  - spawn: {{name: b, target: spin}}
  - join: [napper, a, b]
""")
    # At 0, main and napper take the two CPUs at once (idle since 0, no wake-up),
    # napper falls asleep and `a` takes its CPU straight away; `b` waits for main's.
    assert run.sequence("a")[:2] == [(0, "ready", None), (0, "running", None)]
    assert run.sequence("b")[:2] == [(0, "ready", None), (0, "running", None)]
    # At 10 ms both CPUs have idled since `a` and `b` ended at 3 ms.
    us = 1_000
    assert run.sequence("napper") == [
        (0, "ready", None),
        (0, "running", None),
        (0, "blocked", "sleep"),
        (10 * MS, "ready", None),
        (10 * MS + 50 * us, "running", None),
        (11 * MS + 50 * us, "terminated", None),
    ]
    # Main, woken as napper ends, takes the CPU napper leaves at that instant.
    assert run.sequence("main")[-3:] == [
        (11 * MS + 50 * us, "ready", None),
        (11 * MS + 50 * us, "running", None),
        (11 * MS + 50 * us, "terminated", None),
    ]


def test_a_child_forked_while_every_cpu_is_busy_waits_for_another_cpu_than_its_parents() -> None:
    # Linux places a forked child on the idlest CPU: with both busy, not its
    # parent's. p2 waits for p1's CPU (p1's slice ends at 0.5 ms + 2 slices)
    # even when main's slice ends first, on the other CPU.
    run = run_text(
        f"""
name: fork-placement
{machine(2)}
functions:
  long: [{{compute: 10ms}}]
  short: [{{compute: 1ms}}]
main:
  - compute: 500us
  - spawn: {{name: p1, target: long}}
  - compute: 1500us
  - spawn: {{name: p2, target: short}}
  - compute: 3ms
  - join: [p1, p2]
"""
    )
    slice_ns = run.scenario.machine.settings.linux_base_slice_ns
    assert 2 * slice_ns < 2 * MS + run.scenario.machine.settings.linux_balance_delay_ns
    first = run.first("p2", "running")
    assert (first.t, first.cpu) == (MS // 2 + 2 * slice_ns, run.first("p1", "running").cpu)
    assert run.first("main", "running").cpu != first.cpu


def test_a_processs_first_thread_start_costs_more_whichever_thread_it_starts() -> None:
    """Main's first put starts the Queue's feeder: its process's first thread
    start, `thread_start` + `first_thread_start`; the thread started next costs
    `thread_start` alone. A child's first thread start costs more again."""
    run = run_text(f"""
name: thread-starts
{machine(2, thread_start="100us", first_thread_start="300us")}
objects:
  q: {{type: queue}}
functions:
  idle: [{{sleep: 1ms}}]
  child: [{{thread: {{name: t2, target: idle}}}}, {{print: child started its thread}}]
main:
  - put: q
  - thread: {{name: t1, target: idle}}
  - print: main started its threads
  - spawn: {{name: c, target: child}}
  - get: q
  - join: c
""")
    assert [o.t for o in run.outputs("main")] == [400 * US + 100 * US]
    started = next(e.t for e in run.states("c") if e.state == "running")
    assert [o.t - started for o in run.outputs("c")] == [400 * US]


def test_a_sleep_costs_its_task_the_call_and_the_wake_up() -> None:
    run = run_text(f"""
name: sleep-cost
{machine(1, sleep="40us")}
functions:
  nap: [{{sleep: 1ms}}, {{print: awake}}, {{sleep: 2ms}}, {{print: awake again}}]
main:
  - spawn: {{name: c, target: nap}}
  - join: c
""")
    started = next(e.t for e in run.states("c") if e.state == "running")
    outputs = [o.t - started for o in run.outputs("c")]
    assert outputs == [MS + 40 * US, 3 * MS + 2 * 40 * US]
    # Charged as CPU time once awake: the child runs 40 us after each sleep.
    slept = run.intervals("c", "blocked")
    assert [(b - a, reason) for a, b, reason in slept] == [(MS, "sleep"), (2 * MS, "sleep")]


def test_a_killed_process_is_torn_down_before_its_join_returns() -> None:
    """terminate() stops the child's code at once; the kernel's teardown of the
    process (`kill_exit`) then runs on its CPU, and only then has it exited."""
    run = run_text(f"""
name: teardown
{machine(2, kill_exit="300us")}
functions:
  work: [{{compute: 10ms}}]
main:
  - spawn: {{name: c, target: work}}
  - sleep: 2ms
  - terminate: c
  - join: c
  - print: joined
""")
    end = run.end_of("c")
    assert (end.t, end.exit_code, end.cause) == (2 * MS + 300 * US, -15, "terminated")
    assert run.time_in("c", "running") == 2 * MS + 300 * US
    assert [o.t for o in run.outputs("main")] == [2 * MS + 300 * US]


def test_a_join_that_waited_runs_cold_once_it_returns() -> None:
    """A join that waited 1 ms or more costs `join_wait` (a thread's,
    `thread_join_wait`) once it returns; one that finds its process ended, or
    waits less, costs nothing."""
    run = run_text(f"""
name: joins
{machine(2, join_wait="200us", thread_join_wait="50us")}
functions:
  long: [{{compute: 5ms}}]
  short: [{{compute: 500us}}]
  nap: [{{sleep: 3ms}}]
main:
  - spawn: {{name: waited, target: long}}
  - spawn: {{name: ended, target: short}}
  - join: waited
  - print: joined waited
  - join: ended
  - print: joined ended
  - thread: {{name: t, target: nap}}
  - join: t
  - print: joined t
""")
    printed = [o.t for o in run.outputs("main")]
    assert printed[0] == 5 * MS + 200 * US
    assert printed[1] == printed[0]  # `ended` had ended: no wait, no cost
    assert printed[2] == printed[1] + 3 * MS + 50 * US
    assert run.time_in("main", "running") == 200 * US + 50 * US
