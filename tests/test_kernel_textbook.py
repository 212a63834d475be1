"""The shipped textbook scenarios reproduce their published Gantt charts and averages."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.kernel import simulate
from sim.scenario import load_scenario
from sim.trace import MemorySink, StateChanged

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
MS = 1_000_000

# scenario: (waiting time per task in ms, Gantt: (task, start ms, end ms, cpu) per run)
EXPECTED: dict[str, tuple[dict[str, float], list[tuple[str, float, float, int]]]] = {
    "textbook_fcfs": (
        {"P1": 0, "P2": 24, "P3": 27},
        [("P1", 0, 24, 0), ("P2", 24, 27, 0), ("P3", 27, 30, 0)],
    ),
    "textbook_fcfs_2cpu": (
        {"P1": 0, "P2": 0, "P3": 3},
        [("P1", 0, 24, 0), ("P2", 0, 3, 1), ("P3", 3, 6, 1)],
    ),
    "textbook_sjf": (
        {"P1": 3, "P2": 16, "P3": 9, "P4": 0},
        [("P4", 0, 3, 0), ("P1", 3, 9, 0), ("P3", 9, 16, 0), ("P2", 16, 24, 0)],
    ),
    "textbook_sjf_2cpu": (
        {"P1": 0, "P2": 6, "P3": 3, "P4": 0},
        [("P4", 0, 3, 0), ("P1", 0, 6, 1), ("P3", 3, 10, 0), ("P2", 6, 14, 1)],
    ),
    "textbook_srtf": (
        {"P1": 9, "P2": 0, "P3": 15, "P4": 2},
        [("P1", 0, 1, 0), ("P2", 1, 5, 0), ("P4", 5, 10, 0), ("P1", 10, 17, 0), ("P3", 17, 26, 0)],
    ),
    "textbook_srtf_2cpu": (
        {"P1": 0, "P2": 0, "P3": 6, "P4": 2},
        [("P1", 0, 8, 0), ("P2", 1, 5, 1), ("P4", 5, 10, 1), ("P3", 8, 17, 0)],
    ),
    "textbook_rr": (
        {"P1": 6, "P2": 4, "P3": 7},
        # P1's quantum expires at 14, 18, ... with nobody waiting: it keeps the CPU.
        [("P1", 0, 4, 0), ("P2", 4, 7, 0), ("P3", 7, 10, 0), ("P1", 10, 30, 0)],
    ),
    "textbook_rr_2cpu": (
        {"P1": 0, "P2": 0, "P3": 3},
        [("P1", 0, 24, 0), ("P2", 0, 3, 1), ("P3", 3, 6, 1)],
    ),
    "textbook_priority": (
        {"P1": 6, "P2": 0, "P3": 16, "P4": 18, "P5": 1},
        [("P2", 0, 1, 0), ("P5", 1, 6, 0), ("P1", 6, 16, 0), ("P3", 16, 18, 0), ("P4", 18, 19, 0)],
    ),
    "textbook_priority_2cpu": (
        {"P1": 1, "P2": 0, "P3": 5, "P4": 7, "P5": 0},
        [("P2", 0, 1, 0), ("P5", 0, 5, 1), ("P1", 1, 11, 0), ("P3", 5, 7, 1), ("P4", 7, 8, 1)],
    ),
    "textbook_mlfq": (
        {"A": 26, "B": 0, "C": 18},
        [
            ("A", 0, 10, 0),
            ("B", 10, 16, 0),
            ("C", 16, 24, 0),
            ("A", 24, 38, 0),
            ("C", 38, 50, 0),
            ("A", 50, 56, 0),
        ],
    ),
    "textbook_mlfq_2cpu": (
        {"A": 4, "B": 0, "C": 0},
        [("A", 0, 12, 0), ("B", 10, 16, 1), ("C", 12, 32, 0), ("A", 16, 34, 1)],
    ),
}


def simulate_file(name: str) -> list[StateChanged]:
    sink = MemorySink()
    result = simulate(load_scenario(SCENARIOS / f"{name}.yaml"), sink)
    assert result.end.status == "complete"
    return [e for e in sink.events if isinstance(e, StateChanged)]


def waiting_ms(changes: list[StateChanged]) -> dict[str, float]:
    waiting: dict[str, int] = {}
    since: dict[str, int] = {}
    for change in changes:
        if change.task in since:
            waiting[change.task] = waiting.get(change.task, 0) + change.t - since.pop(change.task)
        if change.state == "ready":
            since[change.task] = change.t
    return {task: ns / MS for task, ns in waiting.items()}


def gantt(changes: list[StateChanged]) -> list[tuple[str, float, float, int]]:
    runs: list[tuple[str, float, float, int]] = []
    started: dict[str, tuple[int, int]] = {}
    for change in changes:
        if change.task in started:
            start, cpu = started.pop(change.task)
            if change.t > start:
                runs.append((change.task, start / MS, change.t / MS, cpu))
        if change.state == "running" and change.task != "main":
            assert change.cpu is not None
            started[change.task] = (change.t, change.cpu)
    return sorted(runs, key=lambda r: (r[1], r[3]))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_textbook_waiting_times_and_gantt(name: str) -> None:
    expected_waits, expected_gantt = EXPECTED[name]
    changes = simulate_file(name)
    waits = waiting_ms(changes)
    assert {task: waits.get(task, 0.0) for task in expected_waits} == expected_waits
    assert gantt(changes) == sorted(expected_gantt, key=lambda r: (r[1], r[3]))


@pytest.mark.parametrize(
    ("name", "average"),
    [
        ("textbook_fcfs", 17.0),
        ("textbook_sjf", 7.0),
        ("textbook_srtf", 6.5),
        ("textbook_rr", 17 / 3),
        ("textbook_priority", 8.2),
        ("textbook_mlfq", 44 / 3),
    ],
)
def test_published_average_waiting_time(name: str, average: float) -> None:
    waits = waiting_ms(simulate_file(name))
    del waits["main"]
    assert sum(waits.values()) / len(waits) == pytest.approx(average, abs=1e-9)
