"""The deadlock watch's rule for a task blocked where no probe saw it begin."""

from __future__ import annotations

from pathlib import Path

from sim.real.watch import DeadlockWatch


def _watch(tmp_path: Path, every_wait_seen: bool) -> DeadlockWatch:
    watch = DeadlockWatch(tmp_path, every_wait_seen=every_wait_seen)
    watch._user.update({10: 10, 11: 11})  # main and one child
    watch._open[10] = ("join", False)  # main joins the child
    return watch


def test_a_task_blocked_without_a_span_is_stuck_only_in_a_scenario_run(tmp_path: Path) -> None:
    # The child is asleep in the kernel, but no probe recorded a blocking call:
    # in a scenario run that is a read of a garbled message; in a traced
    # program it may be a socket or stdin, which can still move.
    assert _watch(tmp_path, every_wait_seen=True)._all_stuck({10, 11})
    assert not _watch(tmp_path, every_wait_seen=False)._all_stuck({10, 11})


def test_a_sleep_or_a_timed_wait_is_never_stuck(tmp_path: Path) -> None:
    watch = _watch(tmp_path, every_wait_seen=True)
    watch._open[11] = ("sleep", False)
    assert not watch._all_stuck({10, 11})
    watch._open[11] = ("recv", True)  # with a timeout
    assert not watch._all_stuck({10, 11})
    watch._open[11] = ("recv", False)
    assert watch._all_stuck({10, 11})
