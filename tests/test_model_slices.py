"""When the `linux` policy's slice ends: Linux notices it only when it accounts
the running task's time. A `compute` step reads its CPU clock all along, so its
slice ends on time; other work (here a `print` made to cost milliseconds) runs
on until the timer tick (4 ms) or a wake-up on its CPU."""

from __future__ import annotations

from model_helpers import MS, Run, machine, run_text

from sim.kernel.scheduler import LINUX_TICK_NS


def two_children(p1: str, p2: str, print_cost: str = "0ns") -> Run:
    return run_text(
        f"""
name: slices
{machine(1, print=print_cost, first_print="0ns")}
functions:
  a: {p1}
  b: {p2}
main:
  - spawn: {{name: p1, target: a}}
  - spawn: {{name: p2, target: b}}
  - join: [p1, p2]
"""
    )


def first_run(run: Run, task: str) -> tuple[int, int]:
    start, end, _reason = run.intervals(task, "running")[0]
    return start, end


def slice_ns(run: Run) -> int:
    return run.scenario.machine.settings.linux_base_slice_ns


def test_a_compute_step_gives_up_the_cpu_when_its_slice_ends() -> None:
    run = two_children("[{compute: 3ms}]", "[{compute: 3ms}]")
    assert slice_ns(run) < 3 * MS
    assert first_run(run, "p1") == (0, slice_ns(run))
    assert first_run(run, "p2") == (slice_ns(run), 2 * slice_ns(run))


def test_other_work_runs_past_its_slice_when_nothing_else_happens() -> None:
    # p1's 3 ms print ends before the first tick: nothing made the kernel look.
    run = two_children("[{print: x}]", "[{compute: 3ms}]", print_cost="3ms")
    assert first_run(run, "p1") == (0, 3 * MS)
    assert run.first("p2", "running").t == 3 * MS


def test_the_timer_tick_ends_a_slice_that_ran_out_during_other_work() -> None:
    run = two_children("[{print: x}]", "[{compute: 3ms}]", print_cost="6ms")
    assert first_run(run, "p1") == (0, LINUX_TICK_NS)
    assert run.first("p2", "running").t == LINUX_TICK_NS


def test_a_wake_up_ends_a_slice_that_ran_out_during_other_work() -> None:
    # p1 goes to sleep at once; p2 prints. p1 wakes at 2 ms, past p2's slice: the
    # kernel accounts p2's time then, and p2 gives way.
    run = two_children("[{sleep: 2ms}, {compute: 1ms}]", "[{print: x}]", print_cost="3ms")
    assert first_run(run, "p2") == (0, 2 * MS)
    assert run.intervals("p1", "running")[1][:2] == (2 * MS, 3 * MS)


def test_a_wake_up_within_the_slice_preempts_nobody() -> None:
    run = two_children("[{sleep: 500us}, {compute: 1ms}]", "[{print: x}]", print_cost="1ms")
    assert slice_ns(run) > MS
    assert first_run(run, "p2") == (0, MS)
    assert run.intervals("p1", "running")[1][0] == MS


def test_a_compute_step_after_other_work_past_the_slice_gives_way_at_once() -> None:
    # The print ran past the slice unnoticed; the compute's first clock read notices.
    run = two_children("[{print: x}, {compute: 2ms}]", "[{compute: 1ms}]", print_cost="2ms")
    assert first_run(run, "p1") == (0, 2 * MS)
    assert run.intervals("p2", "running")[0][:2] == (2 * MS, 3 * MS)
