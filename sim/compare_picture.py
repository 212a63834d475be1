"""The comparison as a picture: the model's Gantt chart above a real run's.

Both charts share one time axis and one row per task. Under each real row a
thin strip is red where the real task was in another state than the model's
at that moment (or alive where the model's was not); a task named in a failed
check has its name in red; each chart marks its span (the makespan the timing
level compares) with a vertical line, and the gap between the two is shaded.
The real run drawn is the one whose span is the median of the runs.

Each pixel column shows the state the task spent most of that column's time
in, so a trace of any length draws in one pass over its intervals. Pillow is
imported when a picture is asked for: it is part of the `viz` extra.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.compare_facts import Facts, facts_of
from sim.compare_report import ComparisonReport
from sim.metrics import TIMED_STATES as STATES
from sim.trace import Trace

if TYPE_CHECKING:
    from PIL import ImageDraw, ImageFont

COLOURS: dict[str, tuple[int, int, int]] = {
    "new": (200, 200, 205),
    "ready": (240, 180, 60),
    "running": (70, 160, 90),
    "blocked": (120, 140, 200),
}
BACKGROUND = (255, 255, 255)
INK = (30, 30, 35)
FAINT = (215, 215, 220)
RED = (210, 40, 40)
SHADE = (255, 225, 225)

ROW = 18  # pixels per task row
BAR = 12
STRIP = 4  # the difference strip under a real row
LABELS = 220  # width of the task-name column
MARGIN = 16


class PictureError(Exception):
    """The picture cannot be drawn (Pillow missing, file not writable)."""


@dataclass(frozen=True)
class _Layout:
    width: int
    scale: float  # pixels per ns
    tasks: tuple[str, ...]

    @property
    def plot(self) -> int:
        return self.width - LABELS - 2 * MARGIN

    def x(self, t: int) -> float:
        return MARGIN + LABELS + t * self.scale


def median_run(report: ComparisonReport) -> int:
    """Index (0-based) of the real run whose span is the median."""
    spans = [r.span_ns for r in report.reals]
    target = statistics.median_low(spans)
    return spans.index(target)


def draw_comparison(
    sim: Trace, real: Trace, report: ComparisonReport, path: str | Path, width: int = 1600
) -> Path:
    """Write the picture of `sim` against `real` to `path` (PNG)."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        raise PictureError(
            "the picture needs Pillow, which is not installed: pip install 'procsim[viz]'"
        ) from None
    model, actual = facts_of(sim, "model"), facts_of(real, "real")
    tasks = tuple(dict.fromkeys([*model.intervals, *actual.intervals]))
    horizon = max(model.end.t, actual.end.t, 1)
    layout = _Layout(width, (width - LABELS - 2 * MARGIN) / horizon, tasks)
    flagged = _flagged(report, tasks)
    panel = len(tasks) * ROW
    height = MARGIN * 2 + 40 + panel + 30 + len(tasks) * (ROW + STRIP) + 60
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font(12)
    verdict = "PASS" if report.passed else "FAIL"
    draw.text(
        (MARGIN, MARGIN),
        f"{report.scenario}: model vs real ({verdict})",
        fill=RED if not report.passed else INK,
        font=_font(16),
    )
    top = MARGIN + 30
    draw.text((MARGIN, top), "model", fill=INK, font=font)
    model_cols = _columns(model, layout)
    _panel(draw, font, layout, model_cols, top + 14, ROW, flagged, model.span_ns, None)
    second = top + 14 + panel + 20
    draw.text((MARGIN, second), "real (the run of median makespan)", fill=INK, font=font)
    real_cols = _columns(actual, layout)
    _panel(
        draw, font, layout, real_cols, second + 14, ROW + STRIP, flagged, actual.span_ns, model_cols
    )
    _span_gap(draw, layout, model.span_ns, actual.span_ns, top + 14)
    _axis(draw, font, layout, height - 40, horizon)
    _legend(draw, font, height - 20)
    target = Path(path)
    try:
        image.save(target, format="PNG")
    except OSError as exc:
        raise PictureError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _flagged(report: ComparisonReport, tasks: tuple[str, ...]) -> set[str]:
    """Tasks a failed check names in its problems."""
    text = " ".join(
        problem
        for level in report.levels
        for check in level.checks
        if check.status == "fail"
        for problem in check.problems
    )
    words = set(text.replace(",", " ").replace(":", " ").split())
    return {t for t in tasks if t in words}


def _columns(facts: Facts, layout: _Layout) -> dict[str, list[str | None]]:
    """Per task, the state each pixel column spent most time in (None: not alive)."""
    out: dict[str, list[str | None]] = {}
    width = layout.plot
    for task in layout.tasks:
        time_in = {s: [0.0] * width for s in STATES}
        for iv in facts.intervals.get(task, ()):
            x0, x1 = iv.start_ns * layout.scale, iv.end_ns * layout.scale
            acc = time_in[iv.state]
            for px in range(int(x0), min(width, int(x1) + 1)):
                acc[px] += max(0.0, min(x1, px + 1) - max(x0, px))
        column: list[str | None] = []
        for px in range(width):
            best = max(STATES, key=lambda s: time_in[s][px])
            column.append(best if time_in[best][px] >= 0.25 else None)
        out[task] = column
    return out


def _panel(
    draw: ImageDraw.ImageDraw,
    font: Any,
    layout: _Layout,
    columns: dict[str, list[str | None]],
    top: int,
    row: int,
    flagged: set[str],
    span_ns: int,
    against: dict[str, list[str | None]] | None,
) -> None:
    left = MARGIN + LABELS
    for i, task in enumerate(layout.tasks):
        y = top + i * row
        draw.line([(left, y + ROW - 1), (left + layout.plot, y + ROW - 1)], fill=FAINT)
        draw.text((MARGIN, y + 2), task, fill=RED if task in flagged else INK, font=font)
        states = columns[task]
        _runs(draw, left, y + (ROW - BAR) // 2, BAR, states, lambda s: COLOURS[s] if s else None)
        if against is not None:
            model = against[task]
            diff = [a != b for a, b in zip(model, states, strict=True)]
            _runs(draw, left, y + ROW, STRIP - 1, diff, lambda d: RED if d else None)
    x = layout.x(span_ns)
    bottom = top + len(layout.tasks) * row
    draw.line([(x, top - 4), (x, bottom)], fill=INK, width=2)


def _runs(
    draw: ImageDraw.ImageDraw, left: int, y: int, height: int, values: list[Any], colour: Any
) -> None:
    """Draw runs of equal values as one rectangle each."""
    start = 0
    for px in range(1, len(values) + 1):
        if px < len(values) and values[px] == values[start]:
            continue
        fill = colour(values[start])
        if fill is not None:
            draw.rectangle([left + start, y, left + px - 1, y + height - 1], fill=fill)
        start = px


def _span_gap(
    draw: ImageDraw.ImageDraw, layout: _Layout, model_ns: int, real_ns: int, top: int
) -> None:
    """Shade the gap between the two spans above the model's chart."""
    if model_ns == real_ns:
        return
    x0, x1 = sorted((layout.x(model_ns), layout.x(real_ns)))
    draw.rectangle([x0, top - 12, x1, top - 6], fill=SHADE, outline=RED)
    label = f"makespan: real {(real_ns - model_ns) / 1e6:+.2f} ms"
    font = _font(11)
    x = x1 + 4
    if x + draw.textlength(label, font=font) > layout.width - MARGIN:
        x = x0 - 4 - draw.textlength(label, font=font)  # no room on the right
    draw.text((x, top - 16), label, fill=RED, font=font)


def _axis(draw: ImageDraw.ImageDraw, font: Any, layout: _Layout, y: int, horizon: int) -> None:
    left = MARGIN + LABELS
    draw.line([(left, y), (left + layout.plot, y)], fill=INK)
    step = _tick_step(horizon)
    t = 0
    while t <= horizon:
        x = layout.x(t)
        draw.line([(x, y), (x, y + 4)], fill=INK)
        draw.text((x - 10, y + 6), f"{t / 1e6:g} ms", fill=INK, font=font)
        t += step


def _tick_step(horizon: int) -> int:
    """A round step giving 5 to 10 ticks."""
    step = 1
    while horizon / step > 10:
        for factor in (2, 5, 10):
            if horizon / (step * factor) <= 10:
                return step * factor
        step *= 10
    return step


def _legend(draw: ImageDraw.ImageDraw, font: Any, y: int) -> None:
    x = MARGIN
    for state in STATES:
        draw.rectangle([x, y, x + 12, y + 10], fill=COLOURS[state])
        draw.text((x + 16, y - 2), state, fill=INK, font=font)
        x += 90
    draw.rectangle([x, y + 3, x + 12, y + 6], fill=RED)
    draw.text((x + 16, y - 2), "real differs from the model", fill=INK, font=font)
