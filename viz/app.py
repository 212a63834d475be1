"""The window: the event loop and its controls.

The loop owns the only mutable state (playhead, speed, selection, mode);
everything it shows is drawn by `Composer.compose` from that state. The window
title carries the event index ("event 12/40"), so scripts driving the window
can see exactly where the playhead is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pygame

from sim.trace import Trace
from viz import cursor
from viz.cursor import Cursor
from viz.draw import x_to_time
from viz.frame import Composed, Composer, FrameSpec, sprite_positions
from viz.index import TraceIndex
from viz.speed import faster, slower, watch_speed
from viz.text import format_short, format_speed

DEFAULT_SIZE = (1280, 720)
# Below this the stage cannot be laid out legibly: draw at this size and scale down.
MIN_SIZE = (800, 450)
TWEEN_S = 0.25
# Playing never waits longer than this for the next event: a quiet stretch
# (a process starting up) is fast-forwarded to this long before its end.
QUIET_S = 1.0
NOTICE_S = 2.5
FPS_ACTIVE = 60
FPS_IDLE = 20


@dataclass
class _State:
    cur: Cursor
    speed: float
    playing: bool = True
    panels: tuple[int, ...] = (0,)
    selected: tuple[int, str] | None = None
    first_rows: list[int] = field(default_factory=list)
    show_help: bool = False
    notice: str = ""
    notice_until: float = 0.0
    tween_from: tuple[dict[str, tuple[int, int]], ...] = ()
    tween_start: float = -1.0
    dragging: int | None = None  # the timeline being dragged


class App:
    def __init__(
        self,
        traces: Sequence[Trace],
        titles: Sequence[str],
        speed: float | None,
        screenshot_dir: Path,
    ) -> None:
        self.indexes = [TraceIndex(t) for t in traces]
        self.titles = list(titles)
        self.composer = Composer(self.indexes, titles)
        self.screenshot_dir = screenshot_dir
        end = cursor.end_time(self.indexes)
        self.state = _State(
            cur=cursor.start(self.indexes),
            speed=speed if speed is not None else watch_speed(self._all_times(), end),
            panels=tuple(range(len(self.indexes))),
            first_rows=[0] * len(self.indexes),
        )
        self._composed: Composed | None = None
        self._title = ""
        self._scale = 1.0

    # -- the loop ---------------------------------------------------------------

    def run(self) -> int:
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        pygame.display.init()
        pygame.font.init()
        try:
            info = pygame.display.Info()
            size = (
                min(DEFAULT_SIZE[0], info.current_w or DEFAULT_SIZE[0]),
                min(DEFAULT_SIZE[1], info.current_h or DEFAULT_SIZE[1]),
            )
            window = pygame.display.set_mode(size, pygame.RESIZABLE)
            pygame.key.set_repeat(300, 40)
            clock = pygame.time.Clock()
            now = 0.0
            while True:
                busy = self.state.playing or self.state.dragging is not None or self._tweening(now)
                # A stall (the window being dragged, a slow disk) must not
                # make the playhead leap: at most a tenth of a second per frame.
                dt = min(0.1, clock.tick(FPS_ACTIVE if busy else FPS_IDLE) / 1000.0)
                now += dt
                for event in pygame.event.get():
                    if not self._handle(event, now):
                        return 0
                self._advance(dt, now)
                self._draw(window, now)
                pygame.display.flip()
        finally:
            pygame.display.quit()

    def _tweening(self, now: float) -> bool:
        return self.state.tween_start >= 0 and now - self.state.tween_start < TWEEN_S

    def _all_times(self) -> list[int]:
        return [t for ix in self.indexes for t in ix.times]

    def _advance(self, dt: float, now: float) -> None:
        st = self.state
        if not st.playing or st.dragging is not None:
            return
        end = cursor.end_time(self.indexes)
        t = st.cur.t + round(dt * st.speed * 1e9)
        quiet = round(QUIET_S * st.speed * 1e9)
        upcoming = [
            n for ix in self.indexes if (n := cursor.next_event_time(ix, st.cur.t)) is not None
        ]
        if upcoming and min(upcoming) - t > quiet:
            skipped = min(upcoming) - quiet - t
            t += skipped
            self._notify(f"fast-forward: nothing happens for {format_short(skipped)}", now)
        if t >= end:
            t, st.playing = end, False
        st.cur = cursor.at_time(self.indexes, t)

    def _spec(self, now: float) -> FrameSpec:
        st = self.state
        tween = (now - st.tween_start) / TWEEN_S if self._tweening(now) else 1.0
        return FrameSpec(
            cursor=st.cur,
            speed=st.speed,
            playing=st.playing,
            panels=st.panels,
            selected=st.selected,
            first_rows=tuple(st.first_rows),
            show_help=st.show_help,
            notice=st.notice if now < st.notice_until else "",
            tween_from=st.tween_from if tween < 1.0 else (),
            tween=tween,
        )

    def _draw(self, window: pygame.Surface, now: float) -> None:
        w, h = window.get_size()
        if w >= MIN_SIZE[0] and h >= MIN_SIZE[1]:
            self._composed = self.composer.compose(window, self._spec(now))
            self._scale = 1.0
        else:
            scale = max(MIN_SIZE[0] / w, MIN_SIZE[1] / h)
            canvas = pygame.Surface((round(w * scale), round(h * scale)))
            self._composed = self.composer.compose(canvas, self._spec(now))
            pygame.transform.smoothscale(canvas, (w, h), window)
            self._scale = scale
        self._set_title()

    def _set_title(self) -> None:
        st = self.state
        events = " · ".join(f"{st.cur.ks[i]}/{len(self.indexes[i].events)}" for i in st.panels)
        name = self.indexes[0].header.scenario
        title = f"procsim — {name} — event {events} — speed {format_speed(st.speed)}"
        if title != self._title:
            pygame.display.set_caption(title)
            self._title = title

    # -- input ------------------------------------------------------------------

    def _handle(self, event: pygame.event.Event, now: float) -> bool:
        """Apply one input event; False to quit."""
        if event.type == pygame.QUIT:
            return False
        if event.type == pygame.KEYDOWN:
            return self._key(event.key, now)
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            self._press(self._point(event.pos))
        elif event.type == pygame.MOUSEMOTION and self.state.dragging is not None:
            self._seek_timeline(self.state.dragging, self._point(event.pos)[0])
        elif event.type == pygame.MOUSEBUTTONUP and event.button == 1:
            self.state.dragging = None
        elif event.type == pygame.MOUSEWHEEL:
            self._scroll(self._point(pygame.mouse.get_pos()), -event.y * 3)
        return True

    def _key(self, key: int, now: float) -> bool:
        st = self.state
        if key in (pygame.K_q, pygame.K_ESCAPE):
            return False
        if key == pygame.K_SPACE:
            if not st.playing and st.cur.t >= cursor.end_time(self.indexes):
                st.cur = cursor.start(self.indexes)
            st.playing = not st.playing
        elif key == pygame.K_RIGHT:
            self._jump(cursor.step_forward(self.indexes, st.cur), now)
        elif key == pygame.K_LEFT:
            self._jump(cursor.step_back(self.indexes, st.cur), now)
        elif key == pygame.K_HOME:
            self._jump(cursor.start(self.indexes), now)
        elif key == pygame.K_END:
            self._jump(cursor.finish(self.indexes), now)
        elif key == pygame.K_UP:
            st.speed = faster(st.speed)
            self._notify(f"speed {format_speed(st.speed)}", now)
        elif key == pygame.K_DOWN:
            st.speed = slower(st.speed)
            self._notify(f"speed {format_speed(st.speed)}", now)
        elif key == pygame.K_h:
            st.show_help = not st.show_help
        elif key == pygame.K_s:
            self._screenshot(now)
        elif key == pygame.K_c:
            self._cycle_panels(now)
        return True

    def _jump(self, to: Cursor, now: float) -> None:
        """Move the playhead by a step (pausing), the tokens gliding there."""
        st = self.state
        st.playing = False
        if self._composed is not None and self._composed.panels == st.panels:
            st.tween_from = tuple(sprite_positions(s) for s in self._composed.scenes)
            st.tween_start = now
        st.cur = to

    def _notify(self, text: str, now: float) -> None:
        self.state.notice = text
        self.state.notice_until = now + NOTICE_S

    def _cycle_panels(self, now: float) -> None:
        st = self.state
        if len(self.indexes) < 2:
            self._notify("c: start with --compare to see sim and real side by side", now)
            return
        modes = [tuple(range(len(self.indexes)))] + [(i,) for i in range(len(self.indexes))]
        st.panels = modes[(modes.index(st.panels) + 1) % len(modes)]
        st.tween_from = ()
        shown = " and ".join(self.titles[i] for i in st.panels)
        self._notify(f"showing {shown}", now)

    def _screenshot(self, now: float) -> None:
        surface = pygame.display.get_surface()
        if surface is None:
            return
        name = (
            "".join(c if c.isalnum() or c in "-_" else "_" for c in self.indexes[0].header.scenario)
            or "trace"
        )
        self.screenshot_dir.mkdir(parents=True, exist_ok=True)
        n = 1
        while (path := self.screenshot_dir / f"procsim-{name}-{n:03d}.png").exists():
            n += 1
        tmp = path.with_name(f".{path.name}.partial.png")
        pygame.image.save(surface, str(tmp))
        os.replace(tmp, path)
        self._notify(f"saved {path}", now)

    def _point(self, pos: tuple[int, int]) -> tuple[float, float]:
        """A window position in the coordinates the picture was laid out in."""
        return pos[0] * self._scale, pos[1] * self._scale

    def _press(self, pos: tuple[float, float]) -> None:
        composed = self._composed
        if composed is None:
            return
        for i, geom in enumerate(composed.timelines):
            if geom.box.contains(*pos):
                self.state.dragging = composed.panels[i]
                self._seek_timeline(composed.panels[i], pos[0])
                return
        for i, scene in enumerate(composed.scenes):
            sprite = scene.sprite_at(*pos)
            if sprite is not None:
                self.state.selected = (composed.panels[i], sprite.name)
                return
        self.state.selected = None

    def _seek_timeline(self, trace: int, x: float) -> None:
        composed = self._composed
        if composed is None or trace not in composed.panels:
            return
        geom = composed.timelines[composed.panels.index(trace)]
        t = x_to_time(geom, x, self.composer.span)
        self.state.cur = cursor.at_time(self.indexes, t)
        self.state.tween_from = ()

    def _scroll(self, pos: tuple[float, float], rows: int) -> None:
        composed = self._composed
        if composed is None:
            return
        for i, geom in enumerate(composed.timelines):
            if geom.box.contains(*pos):
                trace = composed.panels[i]
                top = max(0, geom.rows_total - geom.rows_shown)
                self.state.first_rows[trace] = max(0, min(top, geom.first_row + rows))


def run_window(
    traces: Sequence[Trace], titles: Sequence[str], speed: float | None, screenshot_dir: Path
) -> int:
    """Open the window and play until the user quits; the exit code."""
    return App(traces, titles, speed, screenshot_dir).run()
