"""Runs that do not end well: deadlock, timeout, Ctrl-C, missing perf, bad input.
Whatever happens, no process of the run is left and no half-written file."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sim.program import Constant, FunctionDef, Join, Machine, Scenario, Sleep, Spawn
from sim.real import RealRunError, run_scenario, trace_program
from sim.real.runtime.recorder import RUN_ENV
from sim.real.watch import DeadlockWatch
from sim.trace import OutputEvent
from tests.real_checks import load_checked, stray_children

pytestmark = pytest.mark.real
PROGRAMS = Path(__file__).resolve().parent / "data" / "real"
ROOT = Path(__file__).resolve().parents[1]
PROCSIM = [sys.executable, "-c", "from sim.cli import main; main()"]


def _run_processes() -> list[psutil.Process]:
    """Live processes carrying a run id: what a real run could have left behind."""
    found = []
    for proc in psutil.process_iter():
        try:
            if RUN_ENV in proc.environ() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def test_a_run_past_its_timeout_is_stopped_and_says_what_waited(tmp_path: Path) -> None:
    scenario = Scenario(
        name="long-sleep",
        description="",
        seed=1,
        machine=Machine(cpus=2),
        objects={},
        functions={"nap": FunctionDef("nap", (Sleep(duration=Constant(60_000_000_000)),))},
        main=(Spawn(name="napper", target="nap"), Join(names=("napper",))),
    )
    out = tmp_path / "timeout.jsonl"
    started = time.monotonic()
    result = run_scenario(scenario, out, kernel="off", timeout_s=1.0)
    assert time.monotonic() - started < 20
    assert result.exit_code == 4 and result.end.status == "timeout"
    trace = load_checked(out)
    assert {(b.task, b.reason) for b in trace.end.blocked} == {
        ("main", "join napper"),
        ("napper", "sleep"),
    }
    # The timeout counts from the launch; the trace's 0 is main's start, which
    # comes after the interpreter has started (0.1 s and more on a busy machine).
    assert 0.5e9 < trace.end.t < 3e9
    assert stray_children() == []


def test_the_deadlock_watch_leaves_a_short_run_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each look reads /proc for every thread of the run, on the CPUs the run is
    # measured on: none in the first 125 ms of a run (most scenarios are over
    # by then), and then one every 125 ms.
    looks: list[int] = []
    original = DeadlockWatch.check

    def counted(self: DeadlockWatch, root_pid: int, now_ns: int) -> bool:
        looks.append(now_ns)
        return original(self, root_pid, now_ns)

    monkeypatch.setattr(DeadlockWatch, "check", counted)

    def napping(ns: int) -> Scenario:
        nap = FunctionDef("nap", (Sleep(duration=Constant(ns)),))
        main = (Spawn(name="napper", target="nap"), Join(names=("napper",)))
        return Scenario(
            name="nap", description="", seed=1, machine=Machine(cpus=2), objects={},
            functions={"nap": nap}, main=main,
        )  # fmt: skip

    for ns in (1_000_000, 900_000_000):
        looks.clear()
        started = time.monotonic_ns()
        assert run_scenario(napping(ns), tmp_path / f"{ns}.jsonl", kernel="off").exit_code == 0
        assert all(t - started >= 125_000_000 for t in looks)
    assert len(looks) >= 3
    assert min(b - a for a, b in itertools.pairwise(looks)) >= 125_000_000


def test_ctrl_c_stops_the_run_and_keeps_a_trace_marked_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "interrupted.jsonl"
    program = str(PROGRAMS / "sleeper_program.py")
    cli = subprocess.Popen(
        [*PROCSIM, "trace", "-o", str(out), "--kernel", "off", "--",
         sys.executable, program],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        sleeper = None
        while sleeper is None and time.monotonic() < deadline:  # until the child sleeps
            time.sleep(0.1)
            sleeper = next(
                (p for p in psutil.Process(cli.pid).children(recursive=True)
                 if program in " ".join(p.cmdline()) and p.ppid() != cli.pid),
                None,
            )  # fmt: skip
        assert sleeper is not None, "the traced program never started its child"
        cli.send_signal(signal.SIGINT)
        cli.wait(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 130, cli.stderr.read() if cli.stderr else ""
    trace = load_checked(out)
    assert trace.end.status == "interrupted"
    assert ("sleeper", "sleep") in {(b.task, b.reason) for b in trace.end.blocked}
    assert not psutil.pid_exists(sleeper.pid) or sleeper.status() == psutil.STATUS_ZOMBIE
    assert _run_processes() == []
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left beside it


def test_kernel_on_without_perf_names_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no perf here (python is called by path)
    out = tmp_path / "x.jsonl"
    argv = [sys.executable, str(PROGRAMS / "daemon_program.py")]
    with pytest.raises(RealRunError, match="perf is not installed"):
        trace_program(argv, out, kernel="on", timeout_s=30)
    assert not out.exists()
    result = trace_program(argv, out, kernel="auto", timeout_s=30)
    assert result.kernel_status.startswith("unavailable: perf is not installed")
    trace = load_checked(out)
    assert "ready and running are not told apart" in trace.header.notes["states"]


def test_a_program_that_is_not_python_or_not_found_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    with pytest.raises(RealRunError, match="no such program"):
        trace_program(["definitely-not-a-program-here"], out, kernel="off")
    with pytest.raises(RealRunError, match="no probe records"):
        trace_program(["true"], out, kernel="off")
    assert not out.exists() and _run_processes() == []


def test_the_cli_reports_an_invalid_scenario_with_its_location(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmain:\n  - sleep: forever\n")
    cli = subprocess.run([*PROCSIM, "real", str(bad), "-o",
                          str(tmp_path / "t.jsonl")], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert cli.returncode == 2
    assert f"{bad}:3:" in cli.stderr and "Traceback" not in cli.stderr
    assert not (tmp_path / "t.jsonl").exists()


def test_the_cli_exit_code_is_3_on_a_deadlock(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    cli = subprocess.run([*PROCSIM, "real",
                          str(ROOT / "scenarios" / "queue_deadlock.yaml"), "-o", str(out),
                          "--kernel", "off", "--timeout", "60"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert cli.returncode == 3, cli.stderr
    assert "p1 is blocked on q1.get" in cli.stdout
    assert load_checked(out).end.status == "deadlock"


def test_a_reader_that_goes_away_leaves_the_run_to_finish(tmp_path: Path) -> None:
    """`procsim real ... | head -1`: the scenario's later prints find no reader.
    Each process then prints to nowhere and runs on; before, the pool's result
    handler died of the broken pipe and the pool waited for it forever."""
    scenario = tmp_path / "pool_prints.yaml"
    scenario.write_text(
        "name: pool-prints\n"
        "machine: {cpus: 2}\n"
        "objects:\n  p: {type: pool, workers: 2}\n"
        "functions:\n  f: [{compute: 100us}]\n  shout: [{print: done}]\n"
        "main:\n  - print: main\n"
        "  - apply_async: {pool: p, function: f, times: 200, callback: shout}\n"
        "  - close_pool: p\n  - join_pool: p\n"
    )
    out, errors = tmp_path / "p.jsonl", tmp_path / "stderr.txt"
    with errors.open("w") as err:
        cli = subprocess.Popen([*PROCSIM, "real", str(scenario), "-o", str(out),
                                "--kernel", "off", "--timeout", "30"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=err)  # fmt: skip
        assert cli.stdout is not None
        assert cli.stdout.readline() == b"main\n"
        cli.stdout.close()  # as `head -1` does
        cli.wait(timeout=120)
    trace = load_checked(out)
    assert trace.end.status == "complete"  # not stopped at its --timeout
    assert sum(isinstance(e, OutputEvent) for e in trace.events) == 201
    assert "Traceback" not in errors.read_text()
    assert stray_children() == [] and _run_processes() == []
