"""Machine profiles: the shipped default, reading and writing, and how a scenario
picks one up (its own values win)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim import program as p
from sim.calibrate import (
    MachineProfile,
    ProfileError,
    default_profile,
    format_duration,
    read_profile,
    read_profile_text,
    render_profile,
    write_profile,
)
from sim.scenario import ScenarioError, load_scenario, load_scenario_text

PLAIN = """
name: plain
main:
  - compute: 1ms
"""

PROFILE = """\
procsim-profile: 1
measured: {host: test}
cpus: 3
context_switch: 7us
base_slice: 2ms
rr_timeslice: 50ms
start_cost: {fork: 3ms, spawn: 90ms}
exit_cost: {fork: 1ms}
costs: {queue_put: 11us, per_byte: 0.25ns, pool_submit: 21us}
"""


def test_default_profile_ships_every_measured_figure() -> None:
    profile = default_profile()
    assert profile.cpus is not None and profile.cpus >= 1
    for per_method in (profile.start_cpu_ns, profile.exit_cpu_ns):
        assert set(per_method) == {"fork", "forkserver", "spawn"}
        assert all(v > 0 for v in per_method.values())
    costs = set(p.Costs.__dataclass_fields__) - {"start_cpu_ns", "exit_cpu_ns"}
    assert set(profile.costs) == costs
    assert profile.rr_timeslice_ns is not None and profile.rr_timeslice_ns > 0
    assert profile.linux_base_slice_ns is not None and profile.linux_base_slice_ns > 0
    assert "details" in profile.measured


def test_a_scenario_without_a_profile_runs_with_the_default() -> None:
    scenario = load_scenario_text(PLAIN)
    assert scenario.machine == default_profile().machine()
    assert scenario.machine.costs.queue_put_ns == default_profile().costs["queue_put_ns"]


def test_profile_values_map_onto_the_machine() -> None:
    machine = read_profile_text(PROFILE).machine()
    assert machine.cpus == 3
    assert machine.context_switch_ns == 7_000
    assert machine.settings.linux_base_slice_ns == 2_000_000
    assert machine.settings.quantum_ns == 50_000_000
    assert machine.costs.start_cpu_ns == {
        "fork": 3_000_000,
        "spawn": 90_000_000,
        "forkserver": p.Costs().start_cpu_ns["forkserver"],
    }
    assert machine.costs.exit_cpu_ns == {**p.Costs().exit_cpu_ns, "fork": 1_000_000}
    assert machine.costs.queue_put_ns == 11_000
    assert machine.costs.per_byte_ns == 0.25
    assert machine.costs.pool_submit_ns == 21_000
    assert machine.costs.queue_get_ns == p.Costs().queue_get_ns  # left out: the default


def test_the_scenarios_own_values_win_over_its_profile(tmp_path: Path) -> None:
    (tmp_path / "machine.yaml").write_text(PROFILE)
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text(
        "name: s\n"
        "machine: {profile: machine.yaml, cpus: 1, quantum: 4ms, start_cost: {fork: 0ns},\n"
        "          costs: {queue_put: 1us}}\n"
        "main: [{compute: 1ms}]\n"
    )
    machine = load_scenario(scenario_file).machine
    assert machine.cpus == 1
    assert machine.settings.quantum_ns == 4_000_000
    assert machine.costs.start_cpu_ns["fork"] == 0
    assert machine.costs.start_cpu_ns["spawn"] == 90_000_000  # from the profile
    assert machine.costs.exit_cpu_ns["fork"] == 1_000_000  # from the profile
    assert machine.costs.queue_put_ns == 1_000
    assert machine.costs.pool_submit_ns == 21_000  # from the profile
    assert machine.context_switch_ns == 7_000


def test_the_command_lines_profile_replaces_the_scenarios(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(PROFILE)
    (tmp_path / "b.yaml").write_text(PROFILE.replace("cpus: 3", "cpus: 5"))
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text("name: s\nmachine: {profile: a.yaml}\nmain: [{compute: 1ms}]\n")
    assert load_scenario(scenario_file).machine.cpus == 3
    assert load_scenario(scenario_file, profile=tmp_path / "b.yaml").machine.cpus == 5


def test_a_missing_profile_is_reported_at_the_scenarios_line(tmp_path: Path) -> None:
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text("name: s\nmachine:\n  profile: nowhere.yaml\nmain: [{compute: 1ms}]\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario_file)
    report = str(caught.value)
    assert f"{scenario_file}:3:12: machine.profile: this machine profile cannot be used" in report
    assert "nowhere.yaml: cannot read: No such file or directory" in report


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cpus: 2\n", "<p>:1:1: missing key 'procsim-profile' (`procsim-profile: 1`)"),
        ("procsim-profile: 2\n", "<p>:1:18: procsim-profile: this procsim reads profile format 1"),
        (
            "procsim-profile: 1\ncosts: {queue_putt: 1us}\n",
            "<p>:2:9: costs.queue_putt: unknown key 'queue_putt' (did you mean 'queue_put'?)",
        ),
        (
            "procsim-profile: 1\nbase_slice: 3\n",
            "<p>:2:13: base_slice: a duration needs a unit: ns, us, ms or s (got 3)",
        ),
        ("procsim-profile: 1\ncpus: 0\n", "<p>:2:7: cpus: "),
        ("procsim-profile: 1\nrr_timeslice: 0ms\n", "<p>:2:15: rr_timeslice: expected a duration"),
        ("", "<p>:1:1: the file is empty"),
        ("procsim-profile: [1\n", "<p>:2:1: "),
        ("- 1\n", "<p>:1:1: expected a mapping of profile keys (got a list)"),
    ],
)
def test_bad_profiles_say_what_and_where(text: str, expected: str) -> None:
    with pytest.raises(ProfileError) as caught:
        read_profile_text(text, "<p>")
    assert expected in str(caught.value)


def test_rendered_profiles_read_back_to_the_same_values(tmp_path: Path) -> None:
    profile = MachineProfile(
        cpus=2,
        context_switch_ns=1_907,
        linux_base_slice_ns=3_980_761,
        rr_timeslice_ns=100_000_000,
        start_cpu_ns={"fork": 877_200, "forkserver": 1_963_190, "spawn": 28_801_184},
        exit_cpu_ns={"fork": 504_032, "spawn": 5_668_684},
        costs={"queue_put_ns": 1_262, "per_byte_ns": 0.872, "pool_result_ns": 13_533},
        measured={"host": "vm", "details": {"ping_pong_round_trip_ns": 5738}},
    )
    path = write_profile(profile, tmp_path / "m.yaml")
    again = read_profile(path)
    assert again.machine() == profile.machine()
    assert dict(again.measured) == dict(profile.measured)
    assert path.read_text().startswith("# procsim machine profile")
    assert not list(tmp_path.glob(".m.yaml.*"))  # no temporary file left


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (1_523_400, "1.5234ms"),
        (877_200, "877.2us"),
        (0.872, "0.872ns"),
        (5_000_000_000, "5s"),
        (0, "0ns"),
    ],
)
def test_durations_are_written_exactly(ns: float, text: str) -> None:
    assert format_duration(ns) == text


def test_the_default_profile_renders_as_it_reads() -> None:
    profile = default_profile()
    assert read_profile_text(render_profile(profile)).machine() == profile.machine()


def _run_profile(
    scale: float, *, spawn: bool = True, pool_real: int = 100_000_000
) -> MachineProfile:
    """A calibration run whose figures are `scale` times a base."""
    start = {"fork": round(1_000_000 * scale)}
    if spawn:
        start["spawn"] = round(50_000_000 * scale)
    return MachineProfile(
        cpus=2,
        context_switch_ns=round(4_000 * scale),
        linux_base_slice_ns=round(1_400_000 * scale),
        rr_timeslice_ns=100_000_000,
        start_cpu_ns=start,
        exit_cpu_ns={"fork": round(800_000 * scale)},
        costs={"queue_put_ns": 7_000 * scale, "per_byte_ns": 1.5 * scale},
        measured={
            "host": f"run {scale}",
            "details": {"pool_run_ns": {"tasks": 40, "workers": 2, "real": pool_real}},
            "host_steal": {"cpus": [0, 1], "steal_ms": 10.0 * scale, "busy_ms": 900.0},
        },
    )


def test_combined_calibrations_take_the_median_of_each_figure() -> None:
    from sim.calibrate_combine import combine_profiles

    runs = [
        _run_profile(1.0, pool_real=90_000_000),
        _run_profile(3.0, spawn=False, pool_real=300_000_000),
        _run_profile(2.0, pool_real=120_000_000),
    ]
    combined = combine_profiles(runs, "three runs")
    assert combined.start_cpu_ns == {"fork": 2_000_000, "spawn": 75_000_000}  # spawn: 2 runs
    assert combined.exit_cpu_ns == {"fork": 1_600_000}
    assert combined.costs == {"queue_put_ns": 14_000, "per_byte_ns": 3.0}
    assert combined.linux_base_slice_ns == 2_800_000
    assert combined.rr_timeslice_ns == 100_000_000 and combined.cpus == 2
    assert combined.context_switch_ns is None  # left out, as in the default profile
    assert combined.measured["host"] == "run 2.0"  # the last run's notes
    assert combined.measured["combined"] == "three runs"
    # What the host took during each run, not the last run's alone.
    assert [s["steal_ms"] for s in combined.measured["host_steal"]] == [10.0, 30.0, 20.0]
    run = combined.measured["details"]["pool_run_ns"]
    assert run["real"] == 120_000_000
    assert run["model"] > 0  # the model's run of the Pool workload under the medians
    assert read_profile_text(render_profile(combined)).machine() == combined.machine()


def test_combining_nothing_is_an_error() -> None:
    from sim.calibrate_combine import combine_profiles

    with pytest.raises(ValueError, match="no profile"):
        combine_profiles([], "none")
