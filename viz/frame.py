"""One whole picture: the heads-up line, each trace's stage, log and timeline,
and the overlays, for a given playhead. The window and the headless renderer
both draw through `Composer.compose`, so they show the same pixels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pygame

from viz import theme
from viz.cursor import Cursor
from viz.draw import Painter, TimelineGeom, time_to_x, timeline_geom
from viz.history import History
from viz.index import TraceIndex
from viz.layout import Box, Scene, Screen, screen_layout, stage_scene
from viz.text import describe, end_words, format_short, format_speed, format_time, time_unit
from viz.timeline import PixelRun, timeline_rows
from viz.viewstate import Motion, View, view_at

HELP = (
    "space\tplay / pause",
    "Right / Left\tnext / previous event",
    "Up / Down\tfaster / slower",
    "Home / End\tstart / end",
    "click timeline\tseek (drag to scrub)",
    "wheel on timeline\tscroll its rows",
    "click a token\tits history and figures",
    "s\tsave a screenshot",
    "c\tside by side / one trace / the other",
    "h\tshow / hide this help",
    "q or Esc\tquit",
)


@dataclass(frozen=True, slots=True)
class FrameSpec:
    """Everything a picture depends on besides the traces."""

    cursor: Cursor
    speed: float
    playing: bool = False
    panels: tuple[int, ...] = (0,)  # which traces are shown, top to bottom
    selected: tuple[int, str] | None = None  # (trace, task) whose details are open
    first_rows: tuple[int, ...] = ()  # timeline scroll per trace
    show_help: bool = False
    notice: str = ""
    # Token positions drawn before a jump (per shown panel), and how far the
    # tokens have come from them: a step glides instead of snapping.
    tween_from: tuple[dict[str, tuple[int, int]], ...] = ()
    tween: float = 1.0


@dataclass(frozen=True, slots=True)
class Composed:
    """What was drawn where, for hit-testing clicks."""

    screen: Screen
    panels: tuple[int, ...]
    scenes: tuple[Scene, ...]
    timelines: tuple[TimelineGeom, ...]


class Composer:
    def __init__(
        self,
        indexes: Sequence[TraceIndex],
        titles: Sequence[str],
        painter: Painter | None = None,
        span: tuple[int, int] | None = None,
    ) -> None:
        self.indexes = list(indexes)
        self.titles = list(titles)
        self.painter = painter or Painter()
        self.histories = [History(ix) for ix in self.indexes]
        self._labels: list[dict[str, str]] = [{} for _ in self.indexes]
        self._rows: dict[tuple[int, int], list[tuple[str, list[PixelRun]]]] = {}
        self.end_t = max((ix.end_t for ix in self.indexes), default=0)
        # The stretch of time the timelines show: the whole trace, or the
        # range a render was asked for.
        self.span = span or (0, self.end_t)
        # One clock unit for the whole show, so the digits do not change width;
        # a renderer asks for more decimals when frames are closer than 1 µs.
        self.unit = time_unit(self.end_t)
        self.decimals = 3

    def timeline_rows(self, i: int, width: int) -> list[tuple[str, list[PixelRun]]]:
        key = (i, width)
        rows = self._rows.get(key)
        if rows is None:
            rows = [
                (info.name, runs)
                for info, runs in timeline_rows(self.indexes[i], *self.span, width)
            ]
            self._rows[key] = rows
        return rows

    def compose(self, surface: pygame.Surface, spec: FrameSpec) -> Composed:
        p = self.painter
        width, height = surface.get_size()
        screen = screen_layout(width, height, len(spec.panels))
        surface.fill(theme.BACKGROUND)
        motion = Motion.for_speed(spec.speed)
        scenes: list[Scene] = []
        geoms: list[TimelineGeom] = []
        for panel, i in zip(screen.panels, spec.panels, strict=True):
            ix = self.indexes[i]
            view = view_at(ix, spec.cursor.t, spec.cursor.ks[i], motion)
            scene = stage_scene(view, panel.stage, self._labels[i])
            if spec.tween < 1.0 and len(spec.tween_from) == len(spec.panels):
                scene = _tweened(scene, spec.tween_from[len(scenes)], spec.tween)
            selected = spec.selected[1] if spec.selected and spec.selected[0] == i else None
            p.scene(surface, scene, selected)
            log = panel.log
            if panel is screen.panels[-1]:
                left = p.legend(surface, log)
                log = Box(log.x, log.y, left - log.x - 12, log.h)
            lines, alert = self._log_lines(i, view, len(spec.panels))
            p.log(surface, log, lines, alert)
            geom = self._timeline(surface, i, panel.timeline, spec)
            scenes.append(scene)
            geoms.append(geom)
        p.hud(surface, screen.hud, spec.playing, self._hud_parts(spec))
        if spec.selected is not None and spec.selected[0] in spec.panels:
            k = spec.panels.index(spec.selected[0])
            self._details(surface, screen.panels[k].stage, spec)
        if spec.show_help:
            w, h = 560, 52 + 22 * len(HELP)
            box = Box((width - w) // 2, max(0, (height - h) // 2), w, h)
            p.card(surface, box, "Keys", HELP)
        if spec.notice:
            p.message(surface, screen.panels[-1].stage, spec.notice)
        return Composed(screen, spec.panels, tuple(scenes), tuple(geoms))

    # -- parts ----------------------------------------------------------------

    def _hud_parts(self, spec: FrameSpec) -> list[str]:
        header = self.indexes[spec.panels[0]].header
        machine = header.machine
        policy = str(machine.get("policy", "?"))
        settings = machine.get("settings")
        quantum = machine.get(
            "quantum_ns", settings.get("quantum_ns") if isinstance(settings, dict) else None
        )
        if policy == "rr" and isinstance(quantum, int):
            policy += f" (quantum {format_short(quantum)})"
        cpus = max(self.indexes[i].cpu_count for i in spec.panels)
        clock = (
            f"{format_time(spec.cursor.t, self.unit, self.decimals)} / "
            f"{format_time(self.end_t, self.unit, self.decimals)}"
        )
        sources = " + ".join(self.titles[i] for i in spec.panels)
        return [
            clock,
            f"speed {format_speed(spec.speed)}",
            f"{policy} · {cpus} CPU{'s' if cpus != 1 else ''}",
            f"{header.scenario} ({sources})",
        ]

    def _log_lines(self, i: int, view: View, n_panels: int) -> tuple[list[str], bool]:
        """The log's lines, newest first, and whether the first is an alarm (a
        run that ended in deadlock or timeout, at its end)."""
        ix = self.indexes[i]
        lines = [
            f"{format_time(ix.events[k].t, self.unit)}   {describe(ix.events[k])}"
            for k in reversed(view.recent)
        ]
        alert = view.k == len(ix.events) and ix.end.status != "complete"
        if alert:
            lines.insert(0, f"{format_time(ix.end.t, self.unit)}   {end_words(ix.end)}")
        if n_panels > 1:
            head = f"{self.titles[i]}:  "
            return [head + (lines[0] if lines else "(nothing yet)")], alert
        return lines or ["(press space to play, Right to step one event)"], alert

    def _timeline(self, surface: pygame.Surface, i: int, box: Box, spec: FrameSpec) -> TimelineGeom:
        ix = self.indexes[i]
        first = spec.first_rows[i] if i < len(spec.first_rows) else 0
        geom = timeline_geom(box, len(ix.order), first)
        rows = self.timeline_rows(i, geom.plot.w)
        ticks = [
            (time_to_x(geom, t, self.span), format_short(t) if t else "0")
            for t in _tick_times(*self.span, max(2, geom.plot.w // 110))
        ]
        title = f"Timeline · {self.titles[i]}" if len(spec.panels) > 1 else "Timeline"
        self.painter.timeline(
            surface,
            geom,
            i,
            rows,
            time_to_x(geom, spec.cursor.t, self.span),
            ticks,
            f"{title} · one row per task",
        )
        return geom

    def _details(self, surface: pygame.Surface, stage: Box, spec: FrameSpec) -> None:
        assert spec.selected is not None
        i, name = spec.selected
        summary = self.histories[i].summary(name, spec.cursor.t, spec.cursor.ks[i])
        if summary is None:
            return
        info = summary.info
        u = self.unit
        lines = [
            f"{info.kind} · process {info.process}"
            + (f" · started by {info.parent}" if info.parent else "")
            + (" · daemon" if info.daemon else "")
        ]
        cur = summary.current
        if cur is None:
            lines.append("not created yet")
        else:
            lines.append(
                f"now {_state_words(cur.state, cur.cpu, cur.reason)} since {format_time(cur.t, u)}"
            )
        ti = summary.time_in
        lines.append(
            f"running {format_short(ti['running'])} · ready {format_short(ti['ready'])}"
            f" · blocked {format_short(ti['blocked'])}"
        )
        lines.append(
            f"dispatched {summary.dispatches}× · preempted {summary.preemptions}× · "
            f"sent {summary.sent} · received {summary.received}"
        )
        lines.append("")
        for tr in reversed(summary.recent):
            lines.append(
                f"{format_time(tr.t, u)}  {_state_words(tr.state, tr.cpu, tr.reason)}"
                + (f" (exit {tr.exit_code}, {tr.cause})" if tr.state == "terminated" else "")
            )
        w = min(560, stage.w // 2)
        box = Box(stage.right - w - 6, stage.y + 6, w, min(stage.h - 12, 52 + 22 * len(lines)))
        self.painter.card(surface, box, info.name, lines)


def sprite_positions(scene: Scene) -> dict[str, tuple[int, int]]:
    return {sp.name: (sp.box.x, sp.box.y) for sp in scene.sprites}


def _tweened(scene: Scene, before: dict[str, tuple[int, int]], frac: float) -> Scene:
    p = frac * frac * (3 - 2 * frac)
    sprites = []
    for sp in scene.sprites:
        old = before.get(sp.name)
        if old is not None:
            x = round(old[0] + (sp.box.x - old[0]) * p)
            y = round(old[1] + (sp.box.y - old[1]) * p)
            sp = replace(sp, box=Box(x, y, sp.box.w, sp.box.h))
        sprites.append(sp)
    return replace(scene, sprites=tuple(sprites))


def _state_words(state: str, cpu: int | None, reason: str | None) -> str:
    if state == "running":
        return f"running on CPU {cpu}" if cpu is not None else "running"
    if state == "blocked":
        return f"blocked on {reason}"
    return state


def _tick_times(t0: int, t1: int, max_ticks: int) -> list[int]:
    """Round times for the axis: multiples of 1, 2 or 5 times a power of ten."""
    if t1 <= t0:
        return [t0]
    raw = (t1 - t0) / max_ticks
    step = 1
    while step * 10 <= raw:
        step *= 10
    for m in (1, 2, 5, 10):
        if step * m >= raw:
            step *= m
            break
    first = -(-t0 // step) * step
    return list(range(first, t1 + 1, step))
