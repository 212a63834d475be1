"""The trace-level commands: `procsim metrics`, `procsim export`, `procsim simulate`.
Exit codes, output, and no traceback on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from trace_helpers import deadlock_trace, fcfs_trace, ipc_trace, write
from typer.testing import CliRunner, Result

from sim.cli.app import app
from sim.trace import read_trace

runner = CliRunner()


def run(*args: str | Path) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr
    # A SystemExit is how typer ends; anything else escaped a command.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_metrics_prints_the_table(tmp_path: Path) -> None:
    result = run("metrics", write(tmp_path, fcfs_trace()))
    assert result.exit_code == 0
    out = result.stdout
    for line_start in ("P1 ", "P2 ", "P3 ", "main "):
        assert any(line.startswith(line_start) for line in out.splitlines()), line_start
    p3 = next(line for line in out.splitlines() if line.startswith("P3 "))
    # running, ready, blocked, turnaround, response, dispatches, preemptions, exit
    assert p3.split() == [
        "P3",
        "child",
        "3.000",
        "27.000",
        "0.000",
        "30.000",
        "27.000",
        "1",
        "0",
        "0",
        "returned",
    ]
    assert "waiting 17.000 ms, turnaround 27.000 ms, response 17.000 ms" in out
    assert "Makespan 30.000 ms" in out
    assert "cpu0 100.0%" in out
    assert "Verdict: complete" in out


def test_metrics_json(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    result = run("metrics", write(tmp_path, ipc_trace()), "--json", out)
    assert result.exit_code == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["makespan_ns"] == 9_000_000
    assert data["tasks"]["p1"]["time_ns"]["blocked"] == 4_000_000


def test_metrics_of_a_deadlocked_trace_reports_it(tmp_path: Path) -> None:
    result = run("metrics", write(tmp_path, deadlock_trace()))
    assert result.exit_code == 0  # reading a trace succeeded; the verdict is data
    assert "DEADLOCK" in result.stdout
    assert "a is blocked on ab.recv" in result.stdout
    assert "wait-for cycle: a → b → a" in result.stdout
    assert "nothing else can happen" in result.stdout  # the recorder's detail


@pytest.mark.parametrize(
    "content",
    ["", "not json at all\n", "[1, 2, 3]\n", '{"format": "something-else"}\n'],
    ids=["empty", "text", "json-list", "foreign-json"],
)
def test_metrics_bad_trace_is_exit_2_one_line(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content, encoding="utf-8")
    result = run("metrics", bad)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"procsim: error: {bad}:1: ")


def test_metrics_truncated_trace_names_the_line(tmp_path: Path) -> None:
    lines = write(tmp_path, fcfs_trace()).read_text(encoding="utf-8").splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    result = run("metrics", cut)
    assert result.exit_code == 2
    assert f"{cut}:{len(lines) - 1}: truncated" in result.stderr


def test_metrics_missing_file(tmp_path: Path) -> None:
    result = run("metrics", tmp_path / "nope.jsonl")
    assert result.exit_code == 2
    assert "cannot open" in result.stderr


def test_export_both(tmp_path: Path) -> None:
    trace = write(tmp_path, ipc_trace())
    pf, cs = tmp_path / "out" / "t.json", tmp_path / "out" / "t.csv"
    result = run("export", trace, "--perfetto", pf, "--csv", cs)
    assert result.exit_code == 0
    assert json.loads(pf.read_text(encoding="utf-8"))["traceEvents"]
    assert cs.read_text(encoding="utf-8").startswith("task,process,kind,state,")
    assert f"wrote {pf}" in result.stdout


def test_export_needs_a_format(tmp_path: Path) -> None:
    result = run("export", write(tmp_path, ipc_trace()))
    assert result.exit_code == 2
    assert "--perfetto" in result.stderr


def test_export_bad_trace_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("nonsense\n", encoding="utf-8")
    out = tmp_path / "o.json"
    result = run("export", bad, "--perfetto", out)
    assert result.exit_code == 2
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


def test_export_unwritable_output(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    result = run("export", write(tmp_path, ipc_trace()), "--csv", blocker / "o.csv")
    assert result.exit_code == 2
    assert "cannot write" in result.stderr


def test_roundtrip_through_files_is_stable(tmp_path: Path) -> None:
    """metrics --json of a trace equals the metrics of its re-read copy."""
    path = write(tmp_path, fcfs_trace())
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    run("metrics", path, "--json", first)
    copy = write(tmp_path, read_trace(path), "copy.jsonl")
    run("metrics", copy, "--json", second)
    assert first.read_text(encoding="utf-8") == second.read_text(encoding="utf-8")


# --- procsim simulate (needs the scenario loader and the kernel) ----------------

TEXTBOOK = """\
name: fcfs-24-3-3
description: Three CPU bursts of 24, 3 and 3 ms arriving together.
machine:
  cpus: 1
  policy: fcfs
  start_cost: {fork: 0ns}
  exit_cost: {fork: 0ns}
  costs: {start_call: 0ns, first_start: 0ns, join_wait: 0ns, shutdown: 0ns}
functions:
  long: [{compute: 24ms}]
  short: [{compute: 3ms}]
main:
  - spawn: {name: P1, target: long}
  - spawn: {name: P2, target: short}
  - spawn: {name: P3, target: short}
  - join: [P1, P2, P3]
"""

STUCK = """\
name: stuck
objects:
  q: {type: queue}
functions:
  consumer: [{get: q}]
main:
  - spawn: {name: c, target: consumer}
  - join: c
"""


def scenario(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("options", "avg_wait_ms"),
    [((), 17.0), (("--policy", "sjf"), 3.0), (("--policy", "rr", "--quantum", "4ms"), 17 / 3)],
    ids=["fcfs", "sjf", "rr-4ms"],
)
def test_simulate_textbook_averages(
    tmp_path: Path, options: tuple[str, ...], avg_wait_ms: float
) -> None:
    summary = tmp_path / "summary.json"
    result = run("simulate", scenario(tmp_path, TEXTBOOK), "--summary-json", summary, *options)
    assert result.exit_code == 0, result.stderr
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert data["averages"]["waiting_ns"] == pytest.approx(avg_wait_ms * 1e6)
    assert data["makespan_ns"] == 30_000_000
    assert set(data["tasks"]) >= {"main", "P1", "P2", "P3"}
    assert f"waiting {avg_wait_ms:.3f} ms" in result.stdout
    assert "Makespan 30.000 ms" in result.stdout
    # No -o: no trace file anywhere.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml", "summary.json"]


def test_simulate_trace_matches_its_metrics(tmp_path: Path) -> None:
    trace, summary, again = tmp_path / "t.jsonl", tmp_path / "a.json", tmp_path / "b.json"
    args = ("simulate", scenario(tmp_path, TEXTBOOK), "-o", trace, "--summary-json", summary)
    result = run(*args, "--cpus", "2", "--seed", "7")
    assert result.exit_code == 0, result.stderr
    read = read_trace(trace)
    assert read.header.machine["cpus"] == 2
    assert read.header.seed == 7
    assert read.end.status == "complete"
    assert run("metrics", trace, "--json", again).exit_code == 0
    assert json.loads(summary.read_text(encoding="utf-8")) == json.loads(
        again.read_text(encoding="utf-8")
    )


def test_simulate_deadlock_exit_3(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    result = run("simulate", scenario(tmp_path, STUCK), "-o", trace)
    assert result.exit_code == 3
    assert "DEADLOCK" in result.stdout
    assert "c is blocked on q.get" in result.stdout
    assert "main is blocked on join c" in result.stdout
    assert read_trace(trace).end.status == "deadlock"  # the trace is still complete


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--policy", "lottery"), "--policy must be one of fcfs, sjf"),
        (("--cpus", "0"), "--cpus must be a whole number of at least 1"),
        (("--quantum", "5"), "needs a unit"),
        (("--quantum", "0ms"), "positive"),
        (("--cpus", "two"), "'--cpus'"),
    ],
    ids=["policy", "cpus-0", "quantum-unitless", "quantum-zero", "cpus-text"],
)
def test_simulate_bad_options_exit_2(
    tmp_path: Path, options: tuple[str, ...], message: str
) -> None:
    result = run("simulate", scenario(tmp_path, TEXTBOOK), *options)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_simulate_bad_scenario_exit_2(tmp_path: Path) -> None:
    bad = scenario(
        tmp_path, TEXTBOOK.replace("  cpus: 1\n", "  cpus: 1\n  colour: red\n"), "bad.yaml"
    )
    trace = tmp_path / "t.jsonl"
    result = run("simulate", bad, "-o", trace)
    assert result.exit_code == 2
    assert f"{bad}:5:3: machine.colour" in result.stderr
    assert "colour" in result.stderr
    assert not trace.exists()


def test_simulate_missing_scenario_exit_2(tmp_path: Path) -> None:
    result = run("simulate", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "nope.yaml" in result.stderr


def test_simulate_unwritable_trace_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    result = run("simulate", scenario(tmp_path, TEXTBOOK), "-o", blocker / "t.jsonl")
    assert result.exit_code == 2
    assert f"cannot write {blocker / 't.jsonl'}" in result.stderr


def test_real_process_bad_trace_no_traceback(tmp_path: Path) -> None:
    """Through the real entry point, not the test runner: stderr is one line."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ev": "state"}\n', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", "from sim.cli import main; main()", "metrics", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
    assert f"{bad}:1: not a procsim trace" in proc.stderr
