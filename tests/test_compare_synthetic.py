"""The comparator on hand-made traces: identical runs pass, each broken rule fails
the check that names it (and the levels it belongs to)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from compare_helpers import (
    U,
    as_real,
    blocked,
    created,
    daemon_trace,
    edit,
    ended,
    header,
    pool_trace,
    queue_trace,
    ready,
    replacing,
    run,
    without,
)

from sim import program as p
from sim.compare import COSTS_NOTE, compare_traces, determinism
from sim.compare_report import ComparisonReport, write_report
from sim.trace import End, Event, JobEvent, MessageEvent, StateChanged, Trace


def compare(sim: Trace, *reals: Trace, scenario: p.Scenario | None = None) -> ComparisonReport:
    return compare_traces(sim, list(reals) or [as_real(sim)], scenario=scenario)


def failed(report: ComparisonReport) -> set[str]:
    return {c.name for level in report.levels for c in level.checks if c.status == "fail"}


@pytest.mark.parametrize("build", [queue_trace, daemon_trace, pool_trace])
def test_identical_traces_pass_every_level(build: object) -> None:
    sim = build()  # type: ignore[operator]
    report = compare(sim, as_real(sim), as_real(sim, 1.02))
    assert failed(report) == set()
    assert report.passed
    assert [lv.status for lv in report.levels] == ["pass", "pass", "pass"]
    assert report.check("state sequences").status == "pass"
    assert report.check("dispatch order").status == "pass"


def test_put_after_its_get_fails_order() -> None:
    sim = queue_trace()
    late_put = edit(as_real(sim), replacing(MessageEvent, {"op": "put"}, t=round(9.5 * U)))
    report = compare(sim, late_put)
    assert "put before get" in failed(report)
    assert report.level("order").status == "fail"
    assert not report.passed
    (problem,) = report.check("put before get").problems
    assert "message 1 on q" in problem and problem.startswith("real 1:")


def test_get_without_any_put_fails_order() -> None:
    sim = queue_trace()
    report = compare(sim, edit(as_real(sim), without(MessageEvent, op="put")))
    assert "put before get" in failed(report)
    assert "never put" in report.check("put before get").problems[0]


def test_missing_callback_fails() -> None:
    sim = pool_trace()
    report = compare(sim, edit(as_real(sim), without(JobEvent, op="callback")))
    assert "pool jobs" in failed(report)
    assert report.level("outcome").status == "fail"
    assert any("p callback: 0, model 1" in pr for pr in report.check("pool jobs").problems)


def test_callback_before_its_task_finished_fails_order() -> None:
    sim = pool_trace()
    early = edit(as_real(sim), replacing(JobEvent, {"op": "callback"}, t=round(4 * U)))
    assert "pool job order" in failed(compare(sim, early))


def test_callback_outside_the_result_handler_fails_order() -> None:
    sim = pool_trace()
    elsewhere = edit(as_real(sim), replacing(JobEvent, {"op": "callback"}, task="main"))
    report = compare(sim, elsewhere)
    assert any("result-handler" in pr for pr in report.check("pool job order").problems)


def test_wrong_exit_code_fails_outcome() -> None:
    sim = queue_trace()
    crashed = edit(
        as_real(sim),
        replacing(
            StateChanged, {"task": "C", "state": "terminated"}, exit_code=1, cause="exception"
        ),
    )
    report = compare(sim, crashed)
    assert failed(report) == {"exit codes and causes"}
    assert report.level("outcome").status == "fail"
    (problem,) = report.check("exit codes and causes").problems
    assert problem == "real 1: C exit 1 (exception), model exit 0 (returned)"


def test_daemon_that_outlives_the_main_process_fails_order() -> None:
    sim = daemon_trace()

    def outlive(events: list[object]) -> list[object]:
        kept = [e for e in events if not (isinstance(e, StateChanged) and e.task == "D")]
        return [*kept, run(2.5, "D"), blocked(2.8, "D", "sleep"), ended(11.5, "D", 0)]

    report = compare(sim, edit(as_real(sim), outlive))  # type: ignore[arg-type]
    assert "daemons end with the main code" in failed(report)
    problems = report.check("daemons end with the main code").problems
    assert any("after the main process" in pr for pr in problems)


def test_daemon_killed_while_the_main_code_runs_fails_order() -> None:
    sim = daemon_trace()
    early = edit(
        as_real(sim),
        replacing(StateChanged, {"task": "D", "state": "terminated"}, t=round(1.8 * U)),
    )
    problems = compare(sim, early).check("daemons end with the main code").problems
    assert any("while the main code still ran" in pr for pr in problems)


def test_makespan_30_percent_off_fails_timing() -> None:
    sim = queue_trace()
    report = compare(sim, as_real(sim, 1.30), as_real(sim, 1.31), as_real(sim, 1.29))
    assert "makespan" in failed(report)
    assert report.level("timing").status == "fail"
    assert report.level("outcome").status == report.level("order").status == "pass"
    figures = report.check("makespan").figures
    assert figures["inside_band"] is False
    assert figures["error"] == pytest.approx(1 / 1.30 - 1, abs=1e-6)


def test_makespan_within_tolerance_passes() -> None:
    sim = queue_trace()
    report = compare(sim, as_real(sim, 1.05), as_real(sim, 0.97))
    assert report.check("makespan").status == "pass"


def test_swapped_state_sequence_fails_order() -> None:
    sim = queue_trace()
    # In the real run C becomes ready before it blocks: its states swapped.
    swapped = edit(
        as_real(sim),
        lambda events: [
            *[
                e
                for e in events
                if not (
                    isinstance(e, StateChanged)
                    and e.task == "C"
                    and e.state in ("blocked", "ready")
                )
            ],
            ready(round(5 * U) / U, "C"),
            blocked(7, "C", "q.get"),
        ],
    )
    report = compare(sim, swapped)
    assert "state sequences" in failed(report)
    (problem,) = report.check("state sequences").problems
    assert problem.startswith("real 1: C: state 2 is ready, model blocked q.get")


@pytest.mark.parametrize(("units", "passes"), [(0.05, True), (0.2, False)])
def test_a_short_wait_in_the_kernel_is_not_a_state_of_the_program(
    units: float, passes: bool
) -> None:
    """main blocked with no call open: 0.5 ms is the kernel's (a page fault, a
    lock while processes fork); 2 ms is a state the model does not have."""
    sim = queue_trace()
    real = edit(
        as_real(sim),
        lambda events: [
            *events,
            StateChanged(round(1.5 * U), "main", "blocked"),
            run(1.5 + units, "main"),
        ],
    )
    report = compare(sim, real)
    assert report.check("state sequences").status == ("pass" if passes else "fail")


def test_dispatch_order_compares_who_ran_first() -> None:
    sim = queue_trace()
    # C runs before P in the real run.
    first = edit(
        as_real(sim),
        lambda events: [
            run(3, "C")
            if isinstance(e, StateChanged) and e.task == "P" and e.t == 3 * U
            else run(4, "P")
            if isinstance(e, StateChanged) and e.task == "C" and e.t == 4 * U
            else e
            for e in events
        ],
    )
    report = compare(sim, first)
    assert "dispatch order" in failed(report)


def test_sequences_are_not_compared_on_two_cpus() -> None:
    sim = queue_trace()
    two = Trace(
        dataclasses.replace(sim.header, machine={"cpus": 2, "policy": "linux"}),
        sim.events,
        sim.end,
    )
    report = compare(two, as_real(two))
    assert report.check("state sequences").status == "n/a"
    assert "2 CPUs" in report.check("state sequences").summary


def test_randomness_makes_a_scenario_not_deterministic() -> None:
    sim = queue_trace()
    scenario = p.Scenario(
        name="synthetic",
        description="",
        seed=1,
        machine=p.Machine(),
        objects={},
        functions={"f": p.FunctionDef("f", (p.Compute(duration=p.Uniform(1, 2)),))},
        main=(),
    )
    verdict = determinism(sim.header, [as_real(sim).header], scenario)
    assert not verdict.deterministic
    assert "random" in verdict.why


def test_unenforced_policy_makes_sequences_not_applicable() -> None:
    sim = queue_trace()
    real = as_real(sim)
    real = Trace(
        dataclasses.replace(
            real.header, notes={**real.header.notes, "not_enforced": ["policy: sjf"]}
        ),
        real.events,
        real.end,
    )
    report = compare(sim, real)
    assert report.check("state sequences").status == "n/a"
    # Under another scheduler who waits for a CPU differs: running and ready
    # times are not compared; the makespan and blocked times still are.
    for name in ("time running per task", "time ready per task"):
        assert report.check(name).status == "n/a"
        assert "policy: sjf" in report.check(name).summary
    assert report.check("makespan").status == "pass"
    assert report.check("time blocked per task").status == "pass"


def test_a_run_the_host_took_cpu_time_from_is_named_in_the_notes() -> None:
    sim = queue_trace()
    taken = {"cpus": [0, 1], "steal_ms": 300.0, "busy_ms": 1000.0, "share": 0.3}
    tick = {"cpus": [0, 1], "steal_ms": 10.0, "busy_ms": 30.0, "share": 0.333}
    reals = [
        Trace(
            dataclasses.replace(
                real.header,
                notes={**real.header.notes, "host_steal": {**steal, "resolution_ms": 10.0}},
            ),
            real.events,
            real.end,
        )
        for real, steal in ((as_real(sim), taken), (as_real(sim, 1.02), tick))
    ]
    report = compare(sim, *reals)
    (note,) = [n for n in report.notes if "host took" in n]
    assert note.startswith("real 1: the host took 30% of the busy time of CPUs 0,1")
    assert report.reals[0].notes["host_steal"]["share"] == 0.3
    assert report.passed  # a note, not a verdict


def test_deadlock_in_the_model_must_be_a_stopped_run_for_real() -> None:
    sim = queue_trace()
    stuck = Trace(sim.header, sim.events, End(sim.end.t, "deadlock"))
    report = compare(stuck, as_real(sim))
    assert "end of the run" in failed(report)
    stopped = as_real(stuck)
    stopped = Trace(
        stopped.header, stopped.events, dataclasses.replace(stopped.end, status="timeout")
    )
    assert compare(stuck, stopped).check("end of the run").status == "pass"


def test_idle_pool_worker_may_end_either_way_at_terminate() -> None:
    sim = edit(
        pool_trace(),
        replacing(
            StateChanged,
            {"task": "p.worker1", "state": "terminated"},
            exit_code=-15,
            cause="terminated",
        ),
    )
    report = compare(sim, as_real(pool_trace()))
    assert report.check("exit codes and causes").status == "pass"
    # A child process, unlike a pool worker, must end exactly as modelled.
    child = edit(
        queue_trace(),
        replacing(
            StateChanged, {"task": "C", "state": "terminated"}, exit_code=-15, cause="terminated"
        ),
    )
    assert compare(child, as_real(queue_trace())).check("exit codes and causes").status == "fail"


def test_missing_and_extra_tasks_fail_outcome() -> None:
    sim = queue_trace()
    report = compare(sim, edit(as_real(sim), lambda es: [e for e in es if e.task != "C"]))
    assert "processes and threads" in failed(report)
    assert "missing C" in report.check("processes and threads").problems[0]


def test_different_output_fails_outcome() -> None:
    from sim.trace import OutputEvent

    sim = queue_trace()
    other = edit(as_real(sim), replacing(OutputEvent, {"task": "C"}, text="got nothing"))
    assert "outputs" in failed(compare(sim, other))


def test_a_skipped_level_is_reported_and_does_not_count() -> None:
    sim = queue_trace()
    scenario = p.Scenario(
        name="synthetic",
        description="",
        seed=0,
        machine=p.Machine(),
        objects={},
        functions={},
        main=(),
        compare=p.CompareSettings(skip=("timing",), why="it sleeps for a random time"),
    )
    report = compare(sim, as_real(sim, 1.5), scenario=scenario)
    timing = report.level("timing")
    assert timing.status == "skipped"
    assert timing.why == "it sleeps for a random time"
    assert timing.checks == ()
    assert report.passed


def test_json_report_round_trips(tmp_path: object) -> None:
    from pathlib import Path

    sim = queue_trace()
    report = compare(sim, as_real(sim, 1.3))
    path = write_report(report, Path(str(tmp_path)) / "report.json")
    data = json.loads(path.read_text())
    assert data["passed"] is False
    assert [lv["level"] for lv in data["levels"]] == ["outcome", "order", "timing"]
    timing = next(lv for lv in data["levels"] if lv["level"] == "timing")
    makespan = next(c for c in timing["checks"] if c["name"] == "makespan")
    assert makespan["status"] == "fail"
    assert makespan["figures"]["sim_ns"] == report.sim.span_ns == 10 * U
    assert data["tolerance"]["makespan_rel"] == 0.10


def test_span_leaves_out_the_main_tasks_shutdown() -> None:
    sim = queue_trace()
    # For real, main runs on for 30 ms after everything else (interpreter shutdown).
    real = as_real(sim)
    longer = Trace(
        real.header,
        tuple(
            e
            if not (isinstance(e, StateChanged) and e.task == "main" and e.state == "terminated")
            else dataclasses.replace(e, t=e.t + 3 * U)
            for e in real.events
        ),
        dataclasses.replace(real.end, t=real.end.t + 3 * U),
    )
    report = compare(sim, longer)
    assert report.reals[0].makespan_ns == 14 * U
    assert report.reals[0].span_ns == 10 * U == report.sim.span_ns
    assert report.check("makespan").status == "pass"


def test_a_model_simulated_with_the_profiles_costs_says_so() -> None:
    sim = queue_trace()
    notes = {**sim.header.notes, COSTS_NOTE: "free starts give the published figures"}
    sim = dataclasses.replace(sim, header=dataclasses.replace(sim.header, notes=notes))
    report = compare(sim, as_real(sim, 1.0))
    assert any(
        "profile's costs" in note and "free starts give the published figures" in note
        for note in report.notes
    )
    assert not any("profile's costs" in n for n in compare(queue_trace(), as_real(sim, 1.0)).notes)


def _joinable_queue_trace(join_woken_at: float, gets_at: tuple[float, float]) -> Trace:
    """P puts messages 1 and 2 on jq and joins it; the kernel wakes P once in
    the join (its Condition's lock, the GIL) at `join_woken_at`; C gets the
    messages at `gets_at`; P's join returns at 9."""
    events: list[Event] = [
        created(0, "main", "main"),
        run(0, "main"),
        created(1, "P"),
        created(1, "C"),
        blocked(2, "main", "join P"),
        run(2, "P"),
        MessageEvent(round(3 * U), "P", "put", "jq", 1, 64),
        MessageEvent(round(3.5 * U), "P", "put", "jq", 2, 64),
        blocked(4, "P", "jq.join"),
        run(4, "C"),
        ready(join_woken_at, "P"),
        run(join_woken_at + 0.1, "P"),
        blocked(join_woken_at + 0.2, "P", "jq.join"),
        MessageEvent(round(gets_at[0] * U), "C", "get", "jq", 1, 64),
        MessageEvent(round(gets_at[1] * U), "C", "get", "jq", 2, 64),
        blocked(8.5, "C", "jq.get"),
        ready(9, "P"),
        run(9, "P"),
        ended(10, "P"),
        ended(10, "C", -15, "killed_as_daemon"),
        run(10, "main"),
        ended(11, "main"),
    ]
    return Trace(header("real"), tuple(events), End(round(11 * U), "complete"))


def test_a_queue_join_the_kernel_split_returns_at_its_last_stretch() -> None:
    from sim.compare_facts import facts_of
    from sim.compare_order import _queue_joins

    # Woken once inside the join, before either get: still one join, returning at 9.
    assert _queue_joins(facts_of(_joinable_queue_trace(5, (6, 7)), "real")) == []
    # A join that really returns before message 2 is got is still caught.
    early = facts_of(_joinable_queue_trace(5, (6, 9.5)), "real")
    (problem,) = _queue_joins(early)
    assert "jq.join returned at 90.000 ms before message 2" in problem
