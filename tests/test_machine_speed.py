"""Following the machine's speed: the reference loop, scaled costs, and the
comparison's note saying by how much."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from compare_helpers import as_real, queue_trace

import sim.compare_runs as compare_runs
from sim.calibrate import default_profile
from sim.compare import SPEED_NOTE, compare_traces
from sim.kernel import simulate
from sim.machine_speed import loop_ns, scaled
from sim.scenario import load_scenario_text
from sim.trace import MemorySink, read_trace

SCENARIO = """\
name: speed
machine: {cpus: 1}
objects:
  q: {type: queue}
functions:
  producer: [{compute: 2ms}, {put: {queue: q, size: 1KiB}}]
main:
  - spawn: {name: p1, target: producer}
  - get: q
  - print: got it
  - join: p1
"""


def test_the_reference_loop_gives_a_plausible_speed() -> None:
    speed = loop_ns()
    assert 1 < speed < 1_000  # ns per iteration of a pure-Python loop


def test_the_shipped_profile_says_how_fast_the_machine_ran() -> None:
    machine = default_profile().machine()
    assert machine.costs_loop_ns is not None and machine.costs_loop_ns > 0


def test_scaling_multiplies_the_costs_of_work_and_no_setting() -> None:
    machine = load_scenario_text(SCENARIO).machine
    machine = dataclasses.replace(machine, context_switch_ns=2_000)
    double = scaled(machine, 2.0)
    costs, twice = machine.costs, double.costs
    assert twice.start_cpu_ns == {m: 2 * v for m, v in costs.start_cpu_ns.items()}
    assert twice.exit_cpu_ns == {m: 2 * v for m, v in costs.exit_cpu_ns.items()}
    for name in ("start_call_ns", "queue_put_ns", "pool_result_ns", "print_ns", "shutdown_ns"):
        assert getattr(twice, name) == 2 * getattr(costs, name), name
    assert twice.per_byte_ns == pytest.approx(2 * costs.per_byte_ns)
    assert double.context_switch_ns == 4_000
    # Settings are not work: the switch interval, the policies' slices.
    assert twice.gil_switch_interval_ns == costs.gil_switch_interval_ns
    assert double.settings == machine.settings
    assert scaled(machine, 1.0) == machine


def test_a_slower_machine_makes_the_model_slower_but_not_its_computes() -> None:
    scenario = load_scenario_text(SCENARIO)
    slow = dataclasses.replace(scenario, machine=scaled(scenario.machine, 1.5))
    base, slower = (simulate(s, MemorySink()).makespan_ns for s in (scenario, slow))
    # One CPU: every cost is on the critical path, and the 2 ms compute is CPU time.
    overhead = base - 2_000_000
    assert overhead > scenario.machine.costs.start_cpu_ns["fork"]
    assert slower - 2_000_000 == pytest.approx(1.5 * overhead, rel=0.01)


def test_the_comparison_scales_the_model_and_says_by_how_much(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = load_scenario_text(SCENARIO)
    profile_speed = scenario.machine.costs_loop_ns
    assert profile_speed is not None
    monkeypatch.setattr(compare_runs, "loop_ns", lambda: 2 * profile_speed)
    followed = compare_runs.record_runs(scenario, tmp_path / "followed", 0)
    fixed = compare_runs.record_runs(scenario, tmp_path / "fixed", 0, follow_speed=False)
    slow, plain = read_trace(followed.sim_path), read_trace(fixed.sim_path)
    assert slow.header.notes[SPEED_NOTE] == {
        "factor": 2.0,
        "loop_ns_now": round(2 * profile_speed, 2),
        "loop_ns_profile": profile_speed,
    }
    assert SPEED_NOTE not in plain.header.notes
    assert slow.end.t > plain.end.t
    report = compare_traces(slow, [as_real(queue_trace())])
    assert any("scaled ×2.0 to the machine's speed" in note for note in report.notes)


def test_a_machine_without_a_measured_speed_is_not_scaled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = load_scenario_text(SCENARIO)
    unknown = dataclasses.replace(
        scenario, machine=dataclasses.replace(scenario.machine, costs_loop_ns=None)
    )
    monkeypatch.setattr(compare_runs, "loop_ns", lambda: pytest.fail("measured for nothing"))
    recorded = compare_runs.record_runs(unknown, tmp_path, 0)
    assert SPEED_NOTE not in read_trace(recorded.sim_path).header.notes
