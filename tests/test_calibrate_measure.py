"""`procsim calibrate`: the measurements on this machine, and the command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.calibrate import MachineProfile, read_profile, read_profile_text
from sim.cli.app import app
from tests.real_checks import kernel_missing

MS = 1_000_000


@pytest.mark.real
def test_measure_gives_plausible_figures_and_reports_progress() -> None:
    from sim.real.calibration import measure

    seen: list[tuple[str, float]] = []
    profile = measure(lambda label, done: seen.append((label, done)))

    fractions = [done for _label, done in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert any("Pool" in label for label, _ in seen)

    assert profile.cpus == len(os.sched_getaffinity(0))
    start, exit_ = profile.start_cpu_ns, profile.exit_cpu_ns
    # A fork is cheaper to start than a new interpreter, and to end.
    assert 0 < start["fork"] < 50 * MS
    assert start["fork"] < start["spawn"] < 2_000 * MS
    assert 0 < exit_["fork"] < exit_["spawn"] < 500 * MS
    assert exit_["forkserver"] == exit_["fork"]
    costs = profile.costs
    for name in ("queue_put_ns", "queue_get_ns", "pipe_send_ns", "pipe_recv_ns", "pool_submit_ns"):
        assert 0 < costs[name] < 5 * MS, name
    assert 0 < costs["per_byte_ns"] < 100
    assert costs["gil_switch_interval_ns"] == 5 * MS
    assert profile.context_switch_ns is not None and 0 < profile.context_switch_ns < MS
    assert profile.linux_base_slice_ns is not None and 0 < profile.linux_base_slice_ns < 100 * MS
    assert profile.rr_timeslice_ns is not None and profile.rr_timeslice_ns > 0
    details = profile.measured["details"]
    latency = details["queue_latency_ns"]
    assert latency["1048576"] > latency["64"]  # a megabyte takes longer than a few bytes
    # The Pool workload, run for real and by the model with the measured costs.
    assert details["pool_run_ns"]["real"] > 0 and details["pool_run_ns"]["model"] > 0
    # Measured as real runs run: with the probes, children started as the executor does.
    assert profile.measured["probes"].startswith("on")
    if Path("/proc/stat").exists():  # what the host took from the CPUs meanwhile
        steal = profile.measured["host_steal"]
        assert set(steal["cpus"]) >= os.sched_getaffinity(0) and steal["busy_ms"] > 0
    # And, where perf can, while the scheduler's events are recorded, as real runs are.
    traced = "on" if kernel_missing() is None else "unavailable"
    assert profile.measured["kernel_trace"].startswith(traced)
    assert 0 < costs["print_ns"] < MS
    assert 0 < costs["shutdown_ns"] < 50 * MS
    # The spawn step as the executor runs it: the fork falls inside start().
    assert 0 < costs["start_return_ns"] < costs["start_call_ns"] < 50 * MS
    assert details["spawn_op_ns"]["call"] == costs["start_call_ns"]
    # A fork child's start-up and exit, as the spawn step's children run them.
    assert start["fork"] == details["spawn_op_ns"]["child_start"] > 0
    assert exit_["fork"] == details["spawn_op_ns"]["child_exit"] > 0
    # A child's calls as the executor makes them: each kind's first costs more
    # than a later one (a first put also starts the feeder thread).
    calls = details["calls_ns"]
    for kind in ("get", "put", "send", "recv", "print"):
        assert 0 < calls[kind] < calls[f"first_{kind}"] < 50 * MS, kind
    assert costs["queue_get_ns"] == calls["get"] and costs["print_ns"] == calls["print"]
    for kind in ("get", "send", "recv", "print"):
        assert costs[f"first_{kind}_ns"] == calls[f"first_{kind}"] - calls[kind], kind
    assert costs["first_put_ns"] == max(
        0, calls["first_put"] - calls["put"] - costs["thread_start_ns"]
    )
    # A feeder's first item: from the put's return to the waiting get's return.
    assert 0 < calls["feed"] < 50 * MS
    assert costs["first_feed_ns"] == max(0, calls["first_feed"] - calls["feed"])
    # A pool worker's first job, an empty function, costs it more than a later one.
    assert 0 < calls["job"] < calls["first_job"] < 50 * MS
    assert costs["first_job_ns"] == calls["first_job"] - calls["job"]
    # So does the child's first thread start; a sleep costs its CPU something.
    assert 0 < calls["thread_start"] < calls["first_thread_start"] < 50 * MS
    assert costs["first_thread_start_ns"] == calls["first_thread_start"] - calls["thread_start"]
    assert 0 < costs["sleep_ns"] == calls["sleep"] < MS
    # A join that waited for its child (thread) runs its wake-up and return
    # cold; one of a child that had ended costs less.
    assert 0 < calls["join"] < costs["join_wait_ns"] == calls["join_waited"] < 50 * MS
    assert 0 < costs["thread_join_wait_ns"] == calls["thread_join_waited"] < 50 * MS
    # A child killed in its sleep is torn down on its own CPU time.
    assert 0 < costs["kill_exit_ns"] < 50 * MS
    # Its exit function's work between closing its Queues and joining their
    # feeders is part of a child's exit.
    assert 0 < costs["exit_function_ns"] == calls["exit_function"] < exit_["fork"]
    # The feeder's share of the latency is reckoned from a bare put().
    bare_put = details["bare_queue_call_ns"]["put"]
    assert costs["feeder_latency_ns"] == max(0, latency["64"] - bare_put)
    # The Pool job as the executor runs it costs its worker more than nothing.
    assert 0 < costs["pool_worker_ns"] < MS
    # Each part of a Pool whose every step waits first (apply after apply)
    # costs more per task than in a busy pool.
    cold, busy = details["pool_per_task_cold_ns"], details["pool_per_task_ns"]
    for part, cost in (
        ("worker", "pool_worker"),
        ("task_handler", "pool_dispatch"),
        ("result_handler", "pool_result"),
        ("worker_handler", "pool_maintain"),
    ):
        assert costs[f"{cost}_cold_ns"] == cold[part] > busy[part], part
    assert costs["pool_wake_cold_ns"] == max(0, cold["caller"] - busy["submit"])
    assert 0 < cold["caller"] < 50 * MS
    # Waking an idle CPU: microseconds, where there is a second CPU to wake.
    if profile.cpus > 1:
        assert 0 < costs["wake_up_ns"] < MS
        assert details["cross_cpu_ping_pong_round_trip_ns"] > 2 * costs["wake_up_ns"]


def _fixed_profile() -> MachineProfile:
    return MachineProfile(
        cpus=2,
        context_switch_ns=2_000,
        start_cpu_ns={"fork": 1_000_000},
        costs={"queue_put_ns": 1_500},
        measured={"host": "test"},
    )


def _fixed_measure(
    progress: object = None, probes: bool = True, kernel: str = "auto"
) -> MachineProfile:
    return _fixed_profile()


def test_calibrate_writes_the_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.real.calibration as calibration

    monkeypatch.setattr(calibration, "measure", _fixed_measure)
    out = tmp_path / "machine.yaml"
    result = CliRunner().invoke(app, ["calibrate", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert read_profile(out).machine() == _fixed_profile().machine()


def test_calibrate_prints_the_profile_without_o(monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.real.calibration as calibration

    monkeypatch.setattr(calibration, "measure", _fixed_measure)
    result = CliRunner().invoke(app, ["calibrate"])
    assert result.exit_code == 0, result.output
    assert read_profile_text(result.stdout).machine() == _fixed_profile().machine()


def test_calibrate_reports_an_unwritable_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sim.real.calibration as calibration

    monkeypatch.setattr(calibration, "measure", _fixed_measure)
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(app, ["calibrate", "-o", str(blocker / "machine.yaml")])
    assert result.exit_code == 2
    assert "cannot write" in result.stderr


def test_calibrate_runs_n_times_and_writes_the_medians(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    import sim.real.calibration as calibration

    puts = iter([5_000, 9_000, 7_000])

    def varying(
        progress: object = None, probes: bool = True, kernel: str = "auto"
    ) -> MachineProfile:
        base = _fixed_profile()
        return dataclasses.replace(base, costs={**base.costs, "queue_put_ns": next(puts)})

    monkeypatch.setattr(calibration, "measure", varying)
    out = tmp_path / "machine.yaml"
    result = CliRunner().invoke(app, ["calibrate", "--runs", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    profile = read_profile(out)
    assert profile.costs["queue_put_ns"] == 7_000
    assert "median of 3 procsim calibrate runs" in profile.measured["combined"]
    assert CliRunner().invoke(app, ["calibrate", "--runs", "0"]).exit_code == 2


def test_calibrate_measures_with_probes_unless_told_not_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sim.real.calibration as calibration

    asked: list[tuple[bool, str]] = []

    def fake(progress: object = None, probes: bool = True, kernel: str = "auto") -> MachineProfile:
        asked.append((probes, kernel))
        return _fixed_profile()

    monkeypatch.setattr(calibration, "measure", fake)
    assert CliRunner().invoke(app, ["calibrate"]).exit_code == 0
    assert CliRunner().invoke(app, ["calibrate", "--no-probes", "--kernel", "off"]).exit_code == 0
    assert asked == [(True, "auto"), (False, "off")]
    result = CliRunner().invoke(app, ["calibrate", "--kernel", "sometimes"])
    assert result.exit_code == 2 and "--kernel must be one of auto, on, off" in result.stderr
    assert len(asked) == 2


def test_a_failed_measuring_process_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probed measurements run in a child process; if it fails, calibrate says so."""
    import sim.real.calibration as calibration

    monkeypatch.setattr(calibration, "_CHILD_CODE", "import sys; sys.exit(7)")
    result = CliRunner().invoke(app, ["calibrate"])
    assert result.exit_code == 1
    assert "the measuring process failed (exit code 7)" in result.stderr
    assert "Traceback" not in result.output


def test_kernel_tracing_required_but_missing_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--kernel on` where perf cannot record: one line, exit 1, nothing measured
    or written."""
    import sim.real.kernel_trace as kernel_trace

    monkeypatch.setattr(kernel_trace, "perf_path", lambda: None)
    out = tmp_path / "machine.yaml"
    result = CliRunner().invoke(app, ["calibrate", "--kernel", "on", "-o", str(out)])
    assert result.exit_code == 1
    assert "kernel tracing unavailable: perf is not installed" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()
