"""Every shipped scenario run for real, and the behaviours issue 4 checks.

Each scenario runs once per test session (with the kernel scheduler trace when
perf works here, with the probes alone otherwise); the behaviour tests read
the traces of those runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.real import run_scenario
from sim.real.policy import rr_timeslice_ns
from sim.scenario import load_scenario
from sim.trace import (
    JobEvent,
    MessageEvent,
    OutputEvent,
    StateChanged,
    TaskCreated,
    Trace,
    WarningEvent,
)
from tests.real_checks import (
    kernel_missing,
    load_checked,
    realtime_missing,
    running_runs,
    stray_children,
    terminations,
)

pytestmark = pytest.mark.real
ROOT = Path(__file__).resolve().parents[1]
MS = 1_000_000
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
_RUNS: dict[Path, tuple[Trace, int]] = {}


def run(path: Path, tmp_dir: Path, **options: object) -> tuple[Trace, int]:
    """The trace (structurally checked) and exit code of one real run, cached."""
    if path not in _RUNS or options:
        kernel = "off" if kernel_missing() else "on"
        out = tmp_dir / f"{path.stem}.jsonl"
        result = run_scenario(load_scenario(path), out, kernel=kernel, timeout_s=90, **options)  # type: ignore[arg-type]
        assert result.trace_path == out
        value = (load_checked(out), result.exit_code)
        if options:
            return value
        _RUNS[path] = value
    return _RUNS[path]


def _reasons(trace: Trace, task: str) -> set[str | None]:
    return {e.reason for e in trace.events if isinstance(e, StateChanged) and e.task == task}


@pytest.fixture(scope="module")
def tmp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_shipped_scenario_runs_for_real(path: Path, tmp_dir: Path) -> None:
    trace, code = run(path, tmp_dir)
    expected = {"deadlock"} if path.stem == "queue_deadlock" else {"complete"}
    if path.stem == "pipe_race":
        # When the two writers' messages do interleave, the reader reads a
        # garbled length and waits forever for bytes while main holds the end.
        expected.add("deadlock")
    assert trace.end.status in expected
    assert code == (3 if trace.end.status == "deadlock" else 0)
    assert trace.header.source == "real"
    assert trace.header.clock_origin.startswith("CLOCK_MONOTONIC ")
    if Path("/proc/stat").exists():  # what the host took from the run's CPUs
        steal = trace.header.notes["host_steal"]
        assert steal["cpus"] == trace.header.machine["enforced"]["affinity"]
        assert 0 <= steal["steal_ms"] <= steal["busy_ms"]
    if not kernel_missing():
        assert trace.header.notes["kernel_trace"] == "on"
        assert trace.header.notes["kernel_tasks"] == trace.header.notes["tasks"]
        check = trace.header.notes.get("schedstat_check")
        if path.stem == "three_states":  # three children of 10 ms of CPU each
            assert check is not None and check["tasks"] >= 3 and check["cpu_ns"] >= 30_000_000
        if check is not None:  # the trace never shows much less running than was counted
            assert check["running_beyond_cpu_ns"] >= -0.05 * check["cpu_ns"]
    assert stray_children() == []


def test_the_daemon_dies_when_the_main_code_ends_and_the_child_runs_on(tmp_dir: Path) -> None:
    trace, _ = run(ROOT / "scenarios" / "reference_daemon.yaml", tmp_dir)
    ends = terminations(trace)
    daemon, child, helper, main = ends["daemon"], ends["child"], ends["main.helper"], ends["main"]
    assert (daemon.exit_code, daemon.cause) == (-15, "killed_as_daemon")
    assert (child.exit_code, child.cause) == (0, "returned")
    # The main code ends at once; its non-daemon thread is joined (0.3 s), then
    # the daemon is killed straight away, and the child ends about 0.2 s later.
    times = {name: e.t for name, e in ends.items()}
    reasons = [e.reason for e in trace.events if isinstance(e, StateChanged) and e.task == "main"]
    assert reasons.index("join main.helper") < reasons.index("join child"), reasons
    assert 0 <= daemon.t - helper.t < 100_000_000, times
    assert 100_000_000 < child.t - daemon.t < 450_000_000, times
    assert main.t >= child.t and main.exit_code == 0, times


def test_joinable_queue_join_returns_after_the_last_task_done(tmp_dir: Path) -> None:
    trace, _ = run(ROOT / "scenarios" / "reference_joinable_queue.yaml", tmp_dir)
    gets = [e.t for e in trace.events if isinstance(e, MessageEvent) and e.op == "get"]
    assert len(gets) == 5
    producer = [e for e in trace.events if isinstance(e, StateChanged) and e.task == "producer"]
    join_at = next(i for i, e in enumerate(producer) if e.reason == "jq.join")
    returned = producer[join_at + 1].t
    # The fifth task_done follows the fifth get and 3 ms of CPU time.
    assert returned >= gets[-1] + 3_000_000
    done = next(e for e in trace.events if isinstance(e, OutputEvent))
    assert done.text == "all items processed" and done.task == "producer" and done.t >= returned


@pytest.mark.parametrize("name", ["reference_pool_apply_async", "slow_callback"])
def test_pool_callbacks_run_in_the_parents_result_handler(name: str, tmp_dir: Path) -> None:
    trace, _ = run(ROOT / "scenarios" / f"{name}.yaml", tmp_dir)
    jobs = [e for e in trace.events if isinstance(e, JobEvent)]
    submitted = [e for e in jobs if e.op == "submit"]
    callbacks = [e for e in jobs if e.op == "callback"]
    assert len(submitted) == len(callbacks) == (10_000 if name.startswith("reference") else 6)
    assert {e.task for e in callbacks} == {"main.p.result_handler"}
    assert {e.task for e in submitted} == {"main"}
    started = [e for e in jobs if e.op == "start"]
    assert sorted(e.job for e in started) == sorted(e.job for e in submitted)
    assert all(e.task.startswith("p.worker") for e in started)


def test_the_bounded_queue_producer_blocks_on_put(tmp_dir: Path) -> None:
    trace, _ = run(ROOT / "scenarios" / "bounded_queue.yaml", tmp_dir)
    assert "q.put" in _reasons(trace, "producer")


def test_a_get_that_waits_for_its_item_is_recorded_blocked_on_get(tmp_dir: Path) -> None:
    # p1 gets before p2, started after it, has put; the probes' get reads at once
    # only what is there, and records a wait for anything else.
    trace, _ = run(ROOT / "scenarios" / "reference_queue.yaml", tmp_dir)
    assert "q.get" in _reasons(trace, "p1")


def test_the_queue_deadlock_names_both_processes_and_their_queues(tmp_dir: Path) -> None:
    trace, code = run(ROOT / "scenarios" / "queue_deadlock.yaml", tmp_dir)
    assert code == 3
    blocked = {(b.task, b.reason) for b in trace.end.blocked}
    assert {("p1", "q1.get"), ("p2", "q2.get"), ("main", "join p1")} <= blocked


def test_an_unlocked_shared_pipe_end_is_flagged_and_a_locked_one_is_not(tmp_dir: Path) -> None:
    race, _ = run(ROOT / "scenarios" / "pipe_race.yaml", tmp_dir)
    locked, _ = run(ROOT / "scenarios" / "pipe_locked.yaml", tmp_dir)
    races = [e for e in race.events if isinstance(e, WarningEvent) and e.kind == "race"]
    assert races and "tx" in races[0].text and "without a lock" in races[0].text
    assert not [e for e in locked.events if isinstance(e, WarningEvent) and e.kind == "race"]


def test_fcfs_under_sched_fifo_dispatches_in_arrival_order(tmp_dir: Path) -> None:
    for missing in (kernel_missing(), realtime_missing()):
        if missing:
            pytest.skip(missing)
    trace, _ = run(ROOT / "scenarios" / "textbook_fcfs.yaml", tmp_dir)
    assert trace.header.machine["enforced"]["scheduler"] == "SCHED_FIFO"
    assert trace.header.machine["enforced"]["affinity"] == [0]
    runs = running_runs(trace, {"P1", "P2", "P3"})
    # Each runs to its end once dispatched: exactly one stretch each, in order.
    assert [task for task, _, _ in runs] == ["P1", "P2", "P3"]


def test_rr_tasks_alternate_at_the_kernels_time_slice(tmp_dir: Path) -> None:
    for missing in (kernel_missing(), realtime_missing()):
        if missing:
            pytest.skip(missing)
    trace, _ = run(ROOT / "tests" / "data" / "real" / "rr_alternate.yaml", tmp_dir)
    slice_ns = rr_timeslice_ns()
    assert slice_ns is not None
    assert trace.header.machine["enforced"]["rr_timeslice_ns"] == slice_ns
    # Main is in the same RR class: if its own slice runs out while it starts
    # B, A gets a slice before B exists. So main's stretches stay in the list.
    runs = running_runs(trace, {"A", "B", "main"})
    stretches = {task: [end - start for t, start, end in runs if t == task] for task in "AB"}
    assert all(len(durations) >= 2 for durations in stretches.values()), runs
    # A task leaves the CPU only when its slice runs out or its 250 ms are
    # done; a stretch holds several slices when no other task was ready.
    for durations in stretches.values():
        for d in durations[:-1]:
            slices = round(d / slice_ns)
            assert slices >= 1 and abs(d - slices * slice_ns) < 0.15 * slice_ns, runs


def test_threads_of_one_process_wait_for_the_gil(tmp_dir: Path) -> None:
    if kernel_missing():
        pytest.skip(f"needs the kernel scheduler trace: {kernel_missing()}")
    trace, _ = run(ROOT / "scenarios" / "gil_threads.yaml", tmp_dir)
    reasons = {
        e.reason for e in trace.events if isinstance(e, StateChanged) and e.task == "main.t1"
    }
    assert "gil" in reasons
    # Thread.start() returns only once main has the GIL back, which t1, computing
    # from its start, gives up at the first forced switch (5 ms): as the model has it.
    t1_runs = next(
        e.t for e in trace.events
        if isinstance(e, StateChanged) and e.task == "main.t1" and e.state == "running"
    )  # fmt: skip
    t2_made = next(e.t for e in trace.events if isinstance(e, TaskCreated) and e.task == "main.t2")
    assert t2_made - t1_runs >= 4 * MS, (t1_runs, t2_made)


def test_an_arriving_process_waits_until_its_arrival_time(tmp_path: Path) -> None:
    from sim.program import Compute, Constant, FunctionDef, Join, Machine, Scenario, Spawn

    scenario = Scenario(
        name="arrival",
        description="",
        seed=1,
        machine=Machine(cpus=2),
        objects={},
        functions={"work": FunctionDef("work", (Compute(duration=Constant(2_000_000)),))},
        main=(Spawn(name="late", target="work", arrive_at=200_000_000), Join(names=("late",))),
    )
    out = tmp_path / "arrival.jsonl"
    assert run_scenario(scenario, out, kernel="off", timeout_s=60).exit_code == 0
    trace = load_checked(out)
    late = [e for e in trace.events if isinstance(e, StateChanged) and e.task == "late"]
    arrival = next(i for i, e in enumerate(late) if e.reason == "arrival")
    assert 195_000_000 <= late[arrival + 1].t < 300_000_000
    assert "ready and running are not told apart" in trace.header.notes["states"]


def test_pool_workers_are_named_after_the_pool_under_spawn(tmp_path: Path) -> None:
    trace, code = run(ROOT / "scenarios" / "reference_pool_map.yaml", tmp_path,
                      start_method="spawn")  # fmt: skip
    assert code == 0 and trace.header.machine["start_method"] == "spawn"
    workers = {e.task for e in trace.events if isinstance(e, JobEvent) and e.op == "start"}
    assert workers and workers <= {"p.worker1", "p.worker2"}
