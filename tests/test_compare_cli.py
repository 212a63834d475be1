"""`procsim compare SIM.jsonl REAL.jsonl …`: exit codes, the table, --json, --png."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from compare_helpers import as_real, edit, pool_trace, queue_trace, replacing
from typer.testing import CliRunner

from sim.cli.app import app
from sim.trace import StateChanged, Trace, write_trace


def invoke(*args: object) -> object:
    return CliRunner().invoke(app, ["compare", *map(str, args)])


@pytest.fixture
def traces(tmp_path: Path) -> tuple[Path, Path, Path]:
    sim = queue_trace()
    sim_path = write_trace(tmp_path / "sim.jsonl", sim)
    good = write_trace(tmp_path / "real.jsonl", as_real(sim, 1.02))
    crashed = edit(
        as_real(sim),
        replacing(
            StateChanged, {"task": "C", "state": "terminated"}, exit_code=1, cause="exception"
        ),
    )
    bad = write_trace(tmp_path / "bad.jsonl", crashed)
    return sim_path, good, bad


def test_agreeing_traces_exit_0_and_print_every_level(traces: tuple[Path, Path, Path]) -> None:
    sim, good, _bad = traces
    result = invoke(sim, good)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    out = result.stdout  # type: ignore[attr-defined]
    for name in ("put before get", "exit codes and causes", "makespan", "state sequences"):
        assert name in out
    assert "Verdict: PASS (outcome pass, order pass, timing pass)" in out


def test_each_real_run_shows_what_the_host_took(tmp_path: Path) -> None:
    sim = queue_trace()
    real = as_real(sim, 1.02)
    steal = {"cpus": [0, 1], "steal_ms": 250.0, "busy_ms": 900.0, "share": 0.278}
    notes = {**real.header.notes, "host_steal": {**steal, "resolution_ms": 10.0}}
    taken = Trace(dataclasses.replace(real.header, notes=notes), real.events, real.end)
    result = invoke(
        write_trace(tmp_path / "sim.jsonl", sim),
        write_trace(tmp_path / "real.jsonl", taken),
        write_trace(tmp_path / "calm.jsonl", as_real(sim)),
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    out = " ".join(result.stdout.split())  # type: ignore[attr-defined]
    assert "complete, kernel trace on, host steal 250.0 of 900.0 ms busy" in out
    assert "note: real 1: the host took 28% of the busy time of CPUs 0,1" in out
    assert "real 2:" in out and "real 2: the host" not in out


def test_a_failed_check_exits_5_and_names_the_problem(traces: tuple[Path, Path, Path]) -> None:
    sim, good, bad = traces
    result = invoke(sim, good, bad)
    assert result.exit_code == 5  # type: ignore[attr-defined]
    out = result.stdout  # type: ignore[attr-defined]
    assert "real 2: C exit 1 (exception), model exit 0 (returned)" in out
    assert "Verdict: FAIL (outcome fail, order pass, timing pass)" in out


def test_json_and_png_outputs(traces: tuple[Path, Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    sim, good, bad = traces
    report, picture = tmp_path / "out" / "report.json", tmp_path / "out" / "picture.png"
    result = invoke(sim, good, bad, "--json", report, "--png", picture)
    assert result.exit_code == 5  # type: ignore[attr-defined]
    data = json.loads(report.read_text())
    assert data["passed"] is False
    assert [r["path"] for r in data["reals"]] == [str(good), str(bad)]
    outcome = next(lv for lv in data["levels"] if lv["level"] == "outcome")
    assert outcome["status"] == "fail"
    from PIL import Image

    with Image.open(picture) as image:
        assert image.format == "PNG"
        assert image.size[0] == 1600


def test_the_picture_marks_where_the_states_differ(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    from sim.compare import compare_traces
    from sim.compare_picture import draw_comparison

    sim = pool_trace()
    same = draw_comparison(
        sim, as_real(sim), compare_traces(sim, [as_real(sim)]), tmp_path / "same.png"
    )
    slower = as_real(sim, 1.3)
    differs = draw_comparison(sim, slower, compare_traces(sim, [slower]), tmp_path / "differs.png")
    from PIL import Image

    def red_pixels(path: Path) -> int:
        with Image.open(path) as image:
            return sum(n for n, c in image.getcolors(1 << 20) or [] if c == (210, 40, 40))

    # The legend's sample is the only red in a picture of two identical runs.
    assert red_pixels(differs) > red_pixels(same) + 100


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("single-trace", "a single input must be a scenario"),
        ("swapped", "expected the simulated trace first"),
        ("two-sims", "expected a real trace"),
        ("other-scenario", "records scenario 'other'"),
        ("not-a-trace", "junk.jsonl:1: not valid JSON"),
        ("missing", "cannot open"),
        ("bad-kernel", "--kernel must be one of auto, on, off"),
        ("machine-with-traces", "--machine applies to a scenario"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(
    traces: tuple[Path, Path, Path], tmp_path: Path, case: str, message: str
) -> None:
    sim, good, _bad = traces
    other = queue_trace()
    other_real = as_real(other)
    renamed = Trace(
        dataclasses.replace(other_real.header, scenario="other"), other_real.events, other_real.end
    )
    junk = tmp_path / "junk.jsonl"
    junk.write_text("hello\n")
    args: dict[str, tuple[object, ...]] = {
        "single-trace": (sim,),
        "swapped": (good, sim),
        "two-sims": (sim, sim),
        "other-scenario": (sim, write_trace(tmp_path / "o.jsonl", renamed)),
        "not-a-trace": (sim, junk),
        "missing": (sim, tmp_path / "nowhere.jsonl"),
        "bad-kernel": (sim, good, "--kernel", "maybe"),
        "machine-with-traces": (sim, good, "--machine", tmp_path / "m.yaml"),
    }
    result = invoke(*args[case])
    assert result.exit_code == 2  # type: ignore[attr-defined]
    err = result.stderr  # type: ignore[attr-defined]
    assert message in err
    assert "Traceback" not in err
    assert err.startswith("procsim: error: ")


def test_a_bad_scenario_exits_2_with_its_report(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("name: bad\nmain:\n  - compute: 5\n")
    result = invoke(scenario)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert f"{scenario}:3:14: main[0].compute" in result.stderr  # type: ignore[attr-defined]
