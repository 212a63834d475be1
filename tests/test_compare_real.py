"""Every shipped scenario, simulated with the shipped default profile and run for
real (kernel tracing when available), must pass all three comparison levels —
or say in its file which level its nature makes meaningless.

Each scenario runs 3 times for real (the CLI's default is 5): enough for a
band, and the whole file stays within a few minutes on two cores; once more
if its timing fails while the host (the machine is a virtual one) took CPU
time from those runs. Skips, with the reason, when the real runner cannot be
imported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli.app import app
from sim.scenario import load_scenario

pytestmark = pytest.mark.real

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
RUNS = 3

try:
    import sim.real  # noqa: F401
except ImportError as exc:  # the real runner is optional for the model's tests
    pytestmark = [pytestmark, pytest.mark.skip(reason=f"sim.real cannot be imported: {exc}")]


def _explain(report: object) -> str:
    from sim.compare_report import ComparisonReport

    assert isinstance(report, ComparisonReport)
    lines = []
    for level in report.levels:
        for check in level.checks:
            if check.status == "fail":
                lines.append(f"[{level.level}] {check.name}: {check.summary}")
                lines += [f"    {problem}" for problem in check.problems]
    return "\n".join(lines)


# Timing is asserted for every scenario but those listed here, whose gap is
# measured in benchmarks/accuracy/results.md (issue 5, open). A timing failure
# there is reported and expected; outcome and order are asserted for all.
TIMING_GAPS = {
    "reference_pool_apply_async": (
        "known timing gap (issue 5): the real runs' median moves between 428 and 890 ms "
        "with the host's speed (the model's: 622 ms); the workers' running and ready "
        "times (model 286 and 646 ms, for real 172-290 and 341-614 ms over the runs of "
        "2026-11-27 and 28), main's running time and the tasks' waiting in the queue can fall "
        "outside the band"
    ),
}


def _taken_by_the_host(paths: list[Path]) -> list[str]:
    """The real runs the host surely took CPU time from (steal), as their
    trace headers say."""
    from sim.real import host_steal
    from sim.trace import read_trace

    taken = []
    for i, path in enumerate(paths, start=1):
        what = host_steal.disturbance(read_trace(path).header.notes)
        if what is not None:
            taken.append(f"real {i}: {what}")
    return taken


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_scenario_agrees_with_real_runs(path: Path, tmp_path: Path) -> None:
    from sim.compare_runs import compare_scenario

    scenario = load_scenario(path)
    report, recorded = compare_scenario(scenario, tmp_path / "first", RUNS, kernel="auto")
    assert len(recorded.real_paths) == RUNS
    if report.level("timing").status == "fail":
        # The model has no host to lose CPU time to: timing measured while the
        # host took some says nothing about it. The runs are made once more.
        taken = _taken_by_the_host(recorded.real_paths)
        if taken:
            print("timing failed while the host took CPU time; runs made again:", *taken)
            report, recorded = compare_scenario(scenario, tmp_path / "again", RUNS, kernel="auto")
            assert len(recorded.real_paths) == RUNS
    for level in report.levels:
        if level.level in scenario.compare.skip:
            assert level.status == "skipped" and level.why == scenario.compare.why
    for name in ("outcome", "order"):
        assert report.level(name).status != "fail", _explain(report)
    if not report.passed and path.stem in TIMING_GAPS:
        pytest.xfail(f"{TIMING_GAPS[path.stem]}\n{_explain(report)}")
    assert report.passed, _explain(report)


def test_compare_a_scenario_from_the_command_line(tmp_path: Path) -> None:
    keep, out = tmp_path / "traces", tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            str(SCENARIOS / "textbook_fcfs_2cpu.yaml"),
            "--runs",
            "2",
            "--keep",
            str(keep),
            "--json",
            str(out),
        ],
    )
    assert result.exit_code in (0, 5), result.output
    assert sorted(p.name for p in keep.iterdir()) == ["real-1.jsonl", "real-2.jsonl", "sim.jsonl"]
    data = json.loads(out.read_text())
    assert data["scenario"] == "textbook-fcfs-2cpu"
    assert len(data["reals"]) == 2
    assert (result.exit_code == 0) == data["passed"]
    assert "Verdict:" in result.stdout
