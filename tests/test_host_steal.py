"""The host's steal time: read from /proc/stat, turned into the figures a trace
header keeps, and judged with the figures' 10 ms resolution in mind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sim.real import host_steal

# user nice system idle iowait irq softirq steal guest guest_nice
STAT = """cpu  300 0 60 900 5 0 2 40 0 0
cpu0 100 0 20 400 2 0 1 10 0 0
cpu1 200 0 40 500 3 0 1 30 0 0
intr 12345
"""
LATER = """cpu  500 0 100 1000 5 0 2 140 0 0
cpu0 150 0 30 450 2 0 1 20 0 0
cpu1 350 0 70 550 3 0 1 120 0 0
"""
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def write(tmp_path: Path, text: str, name: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_sample_reads_busy_and_steal_ticks_of_the_cpus_asked_for(tmp_path: Path) -> None:
    path = write(tmp_path, STAT, "stat")
    assert host_steal.sample(path=path) == host_steal.CpuTimes({0: (131, 10), 1: (271, 30)})
    assert host_steal.sample([1], path=path) == host_steal.CpuTimes({1: (271, 30)})


def test_no_steal_figure_or_no_file_is_not_measured(tmp_path: Path) -> None:
    old = write(tmp_path, "cpu  1 2 3 4\ncpu0 1 2 3 4\n", "old")
    assert host_steal.sample(path=old) is None
    assert host_steal.sample(path=str(tmp_path / "missing")) is None
    assert host_steal.sample([7], path=write(tmp_path, STAT, "stat")) is None
    assert host_steal.between(None, host_steal.sample(path=write(tmp_path, STAT, "s"))) is None


def test_between_gives_the_share_of_the_busy_time_the_host_took(tmp_path: Path) -> None:
    before = host_steal.sample(path=write(tmp_path, STAT, "before"))
    after = host_steal.sample(path=write(tmp_path, LATER, "after"))
    steal = host_steal.between(before, after)
    # cpu0: busy 131 -> 201 (70 ticks), steal 10; cpu1: busy 271 -> 541 (270), steal 90.
    assert steal == {
        "cpus": [0, 1],
        "steal_ms": round(100 * TICK_MS, 1),
        "busy_ms": round(340 * TICK_MS, 1),
        "share": round(100 / 340, 3),
        "resolution_ms": round(TICK_MS, 1),
    }
    taken = host_steal.disturbance({"host_steal": steal})
    assert taken is not None and taken.startswith("the host took 29% of the busy time of CPUs 0,1")


def test_a_tick_of_steal_in_a_short_run_says_nothing() -> None:
    # Two readings per CPU, each up to a tick short: 10 ms of steal in 20 ms
    # of busy time may be none at all.
    short = {"cpus": [0, 1], "steal_ms": 10.0, "busy_ms": 20.0, "share": 0.5, "resolution_ms": 10}
    assert host_steal.least_share(short) == 0.0
    assert host_steal.disturbance({"host_steal": short}) is None
    # 200 ms in 1000 ms is at least (200 - 20) / (1000 + 20).
    long = {**short, "steal_ms": 200.0, "busy_ms": 1000.0, "share": 0.2}
    assert host_steal.least_share(long) == pytest.approx(180 / 1020)
    assert host_steal.disturbance({"host_steal": long}) is not None
    calm = {**long, "steal_ms": 60.0, "share": 0.06}  # at least 40 / 1020: under 5%
    assert host_steal.disturbance({"host_steal": calm}) is None


def test_the_kernel_trace_tells_on_a_short_run() -> None:
    # /proc/stat saw nothing in 30 ms; the trace saw the tasks running 4 ms
    # longer than their CPU clocks counted in 40 ms of CPU time.
    calm = {"cpus": [0, 1], "steal_ms": 0.0, "busy_ms": 30.0, "share": 0.0, "resolution_ms": 10}
    check = {"tasks": 3, "cpu_ns": 40_000_000, "running_beyond_cpu_ns": 4_000_000}
    taken = host_steal.disturbance({"host_steal": calm, "schedstat_check": check})
    assert taken is not None and "ran 4.0 ms (10%) longer in the kernel's trace" in taken
    # The trace's own gaps put it 0.3-2% off in runs the host took nothing from.
    check = {**check, "running_beyond_cpu_ns": 800_000}
    assert host_steal.disturbance({"host_steal": calm, "schedstat_check": check}) is None
    check = {**check, "running_beyond_cpu_ns": -3_000_000}
    assert host_steal.disturbance({"schedstat_check": check}) is None


def test_figures_written_elsewhere_are_not_trusted() -> None:
    assert host_steal.disturbance({}) is None
    assert host_steal.disturbance({"host_steal": "a lot"}) is None
    assert host_steal.disturbance({"host_steal": {"share": 0.9}}) is None
    assert host_steal.disturbance({"host_steal": [{"share": 0.9}]}) is None
    assert host_steal.disturbance({"schedstat_check": {"cpu_ns": "40", "tasks": 1}}) is None
    assert (
        host_steal.disturbance({"schedstat_check": {"cpu_ns": 0, "running_beyond_cpu_ns": 5}})
        is None
    )


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="no /proc/stat (not Linux)")
def test_this_machine_counts_steal() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    now = host_steal.sample(cpus)
    assert now is not None and sorted(now.ticks) == cpus
    steal = host_steal.between(now, host_steal.sample(cpus))
    assert steal is not None and 0 <= steal["steal_ms"] <= steal["busy_ms"]
