"""The result of comparing a simulated trace with real ones: checks, levels, verdict.

A `Check` is one rule or measurement with its figures and a status; a level
(outcome, order, timing) passes when none of its checks fails, or is skipped
when the scenario exempts itself (with the reason it gives); the comparison
passes when no level fails. `to_json()` is the `--json` report; its keys:

  scenario, passed, sim: {label, makespan_ns, span_ns}, reals: [{label, ...}],
  tolerance: {...}, notes: [...],
  levels: [{level, status ("pass", "fail", "skipped"), why,
            checks: [{name, status ("pass", "fail", "n/a"), summary, problems, figures}]}]
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Level = Literal["outcome", "order", "timing"]
LEVELS: tuple[Level, ...] = ("outcome", "order", "timing")
CheckStatus = Literal["pass", "fail", "n/a"]
LevelStatus = Literal["pass", "fail", "skipped"]


@dataclass(frozen=True)
class Tolerance:
    """How far the simulation may stray from the real runs and still pass.

    A simulated figure passes when it lies in the real runs' band, widened:
    [min × (1 − rel) − abs, max × (1 + rel) + abs]. The relative part is the
    accuracy aimed at; the absolute part absorbs what a shared machine adds to
    short intervals (a wake-up, another program's time slice)."""

    makespan_rel: float = 0.10
    makespan_abs_ns: int = 5_000_000
    running_rel: float = 0.10
    running_abs_ns: int = 5_000_000
    ready_rel: float = 0.20
    ready_abs_ns: int = 10_000_000
    blocked_rel: float = 0.20
    blocked_abs_ns: int = 10_000_000
    pool_rel: float = 0.25
    pool_abs_ns: int = 10_000_000

    def band(self, values: list[int], rel: float, abs_ns: int) -> tuple[float, float]:
        return min(values) * (1 - rel) - abs_ns, max(values) * (1 + rel) + abs_ns


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    summary: str  # the figures, in one line
    problems: tuple[str, ...] = ()  # each thing that failed, for the reader
    figures: Mapping[str, Any] = field(default_factory=dict)  # machine-readable

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "problems": list(self.problems),
            "figures": dict(self.figures),
        }


def verdict(name: str, problems: list[str], summary: str, **figures: Any) -> Check:
    """A check that fails when it found problems."""
    status: CheckStatus = "fail" if problems else "pass"
    return Check(name, status, summary, tuple(problems), figures)


def not_applicable(name: str, why: str) -> Check:
    return Check(name, "n/a", why)


@dataclass(frozen=True)
class LevelReport:
    level: Level
    status: LevelStatus
    checks: tuple[Check, ...] = ()
    why: str = ""  # for a skipped level: the scenario's reason

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "status": self.status,
            "why": self.why,
            "checks": [c.to_json() for c in self.checks],
        }


def level_report(level: Level, checks: list[Check]) -> LevelReport:
    failed = any(c.status == "fail" for c in checks)
    return LevelReport(level, "fail" if failed else "pass", tuple(checks))


@dataclass(frozen=True)
class RunInfo:
    """One trace of the comparison, as the report names it."""

    label: str
    path: str
    makespan_ns: int
    span_ns: int
    status: str
    notes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ComparisonReport:
    scenario: str
    sim: RunInfo
    reals: tuple[RunInfo, ...]
    levels: tuple[LevelReport, ...]
    tolerance: Tolerance
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(level.status != "fail" for level in self.levels)

    def level(self, level: Level) -> LevelReport:
        return next(r for r in self.levels if r.level == level)

    def check(self, name: str) -> Check:
        """The check of that name, whatever its level (KeyError if none)."""
        for level in self.levels:
            for check in level.checks:
                if check.name == name:
                    return check
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "passed": self.passed,
            "sim": asdict(self.sim),
            "reals": [asdict(r) for r in self.reals],
            "tolerance": asdict(self.tolerance),
            "notes": list(self.notes),
            "levels": [level.to_json() for level in self.levels],
        }


def write_report(report: ComparisonReport, path: str | Path) -> Path:
    """Write `report.to_json()` atomically (a temporary file renamed into place)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(report.to_json(), f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
