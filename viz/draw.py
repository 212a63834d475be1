"""Painting scenes, the heads-up line, the log, the timeline and the overlays.

Drawing reads what it is given and changes nothing but the target surface.
The `Painter` keeps caches only (fonts, rendered text, token images, the
timeline image): pygame's text rendering is the slow part of a frame, and
almost every label is the same from one frame to the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pygame

from sim.trace import TaskKind, TaskState
from viz import theme
from viz.layout import Box, Dot, Frame, Scene, Sprite
from viz.timeline import PixelRun

_TEXT_CACHE_LIMIT = 4000


@dataclass(frozen=True, slots=True)
class TimelineGeom:
    """The Gantt chart's parts: the label column, the plot, the time axis."""

    box: Box
    labels: Box
    plot: Box
    axis: Box
    row_h: int
    first_row: int
    rows_shown: int
    rows_total: int


CARD_KEY_W = 170  # the key column of a two-column card
MIN_ROW_H = 2
MAX_ROW_H = 18
LABEL_W = 130
AXIS_H = 18
LEGEND_H = 20


def timeline_geom(box: Box, rows_total: int, first_row: int = 0) -> TimelineGeom:
    """Rows as tall as fits (2 to 18 px); beyond that many rows, a window of
    them starting at `first_row` (scrolled with the mouse wheel)."""
    labels = Box(box.x, box.y + LEGEND_H, LABEL_W, box.h - LEGEND_H - AXIS_H)
    plot = Box(box.x + LABEL_W, labels.y, box.w - LABEL_W, labels.h)
    axis = Box(plot.x, plot.bottom, plot.w, AXIS_H)
    n = max(1, rows_total)
    row_h = max(MIN_ROW_H, min(MAX_ROW_H, plot.h // n))
    shown = min(n, max(1, plot.h // row_h))
    first = max(0, min(first_row, n - shown))
    return TimelineGeom(box, labels, plot, axis, row_h, first, shown, rows_total)


def time_to_x(geom: TimelineGeom, t: int, span: tuple[int, int]) -> int:
    """The column of time t on a timeline showing `span` (clamped to the plot)."""
    t0, t1 = span
    frac = max(0.0, min(1.0, (t - t0) / max(1, t1 - t0)))
    return geom.plot.x + round(frac * geom.plot.w)


def x_to_time(geom: TimelineGeom, x: float, span: tuple[int, int]) -> int:
    t0, t1 = span
    frac = (x - geom.plot.x) / max(1, geom.plot.w)
    return t0 + round(max(0.0, min(1.0, frac)) * (t1 - t0))


class Painter:
    """Draws onto any surface; holds caches keyed by what they depend on."""

    def __init__(self) -> None:
        if not pygame.font.get_init():
            pygame.font.init()
        self._fonts: dict[int, pygame.font.Font] = {}
        self._text: dict[tuple[str, int, tuple[int, int, int]], pygame.Surface] = {}
        self._tokens: dict[tuple[str, TaskKind, int, int, int, str, bool], pygame.Surface] = {}
        self._gantt: dict[tuple[int, int, int, int], pygame.Surface] = {}
        self._veils: dict[tuple[int, int], pygame.Surface] = {}

    # -- text ---------------------------------------------------------------

    def font(self, size: int) -> pygame.font.Font:
        f = self._fonts.get(size)
        if f is None:
            # The font bundled with pygame: the same pixels on every machine.
            f = self._fonts[size] = pygame.font.Font(None, size)
        return f

    def text(self, text: str, size: int, colour: theme.RGB = theme.TEXT) -> pygame.Surface:
        key = (text, size, colour)
        surf = self._text.get(key)
        if surf is None:
            if len(self._text) >= _TEXT_CACHE_LIMIT:
                self._text.clear()
            surf = self._text[key] = self.font(size).render(text, True, colour)
        return surf

    def fit(self, text: str, size: int, width: int) -> str:
        """The text, shortened with an ellipsis to fit `width` pixels."""
        font = self.font(size)
        if font.size(text)[0] <= width:
            return text
        while len(text) > 1 and font.size(text + "…")[0] > width:
            text = text[:-1]
        return text + "…"

    def blit_text(
        self,
        surface: pygame.Surface,
        text: str,
        size: int,
        pos: tuple[int, int],
        colour: theme.RGB = theme.TEXT,
        anchor: str = "topleft",
    ) -> pygame.Rect:
        surf = self.text(text, size, colour)
        rect = surf.get_rect(**{anchor: pos})
        surface.blit(surf, rect)
        return rect

    # -- the stage ------------------------------------------------------------

    def scene(self, surface: pygame.Surface, scene: Scene, selected: str | None = None) -> None:
        s = scene.sizes
        for frame in scene.frames:
            self._frame(surface, frame, s.font_title)
        for label in scene.labels:
            self.blit_text(
                surface, label.text, s.font_title, (label.x, label.y), theme.MUTED, "midleft"
            )
        for box, text in scene.more:
            pygame.draw.rect(surface, theme.RULE, box, border_radius=6)
            self.blit_text(surface, text, s.font_token, box.center, theme.TEXT, "center")
        for row in scene.mailboxes:
            self._mailbox(surface, row.box, row.name, row.count, s.font_token)
        for sprite in scene.sprites:
            self._sprite(surface, sprite, s.font_token)
            if sprite.name == selected:
                pygame.draw.rect(
                    surface, theme.SELECTED, _inflate(sprite.box, 4), 3, border_radius=9
                )
        for dot in scene.dots:
            self._dot(surface, dot)

    def _frame(self, surface: pygame.Surface, frame: Frame, font_size: int) -> None:
        box = frame.box
        if frame.heading:
            self.blit_text(surface, frame.title, font_size, (box.x + 2, box.y + 3))
            return
        if frame.title or frame.note:
            pygame.draw.rect(surface, theme.PLACE_TINTS[frame.state], box, border_radius=8)
            pygame.draw.rect(
                surface, _darker(theme.PLACE_TINTS[frame.state]), box, 1, border_radius=8
            )
        if frame.title:
            title = self.fit(frame.title, font_size, box.w - 12)
            self.blit_text(surface, title, font_size, (box.x + 7, box.y + 5))
        if frame.note:
            centre = (box.x + box.w // 2, box.y + (box.h + 18) // 2)
            self.blit_text(surface, frame.note, font_size - 2, centre, theme.MUTED, "center")

    def _sprite(self, surface: pygame.Surface, sp: Sprite, font_size: int) -> None:
        img = self._token(sp.label, sp.kind, sp.box.w, sp.box.h, font_size, sp.badge, sp.killed)
        surface.blit(img, (sp.box.x, sp.box.y))

    def _token(
        self,
        label: str,
        kind: TaskKind,
        w: int,
        h: int,
        font_size: int,
        badge: str,
        killed: bool,
    ) -> pygame.Surface:
        key = (label, kind, w, h, font_size, badge, killed)
        surf = self._tokens.get(key)
        if surf is not None:
            return surf
        surf = pygame.Surface((w, h), pygame.SRCALPHA)
        rect = surf.get_rect()
        pygame.draw.rect(surf, theme.KIND_COLOURS[kind], rect, border_radius=8)
        text_area = rect.inflate(-10, 0)
        if badge:
            # The exit code sits in the token's right end: red for a killed daemon.
            code = self.text(badge, font_size - 1, theme.TOKEN_TEXT)
            chip = pygame.Rect(0, 0, code.get_width() + 10, h - 8)
            chip.midright = (w - 4, h // 2)
            colour = theme.KILLED if killed else theme.BADGE
            pygame.draw.rect(surf, colour, chip, border_radius=5)
            surf.blit(code, code.get_rect(center=chip.center))
            text_area = pygame.Rect(5, 0, chip.left - 7, h)
        if killed:
            pygame.draw.rect(surf, theme.KILLED, rect, 3, border_radius=8)
        img = self.text(self.fit(label, font_size, text_area.w), font_size, theme.TOKEN_TEXT)
        surf.blit(img, img.get_rect(center=text_area.center))
        self._tokens[key] = surf
        return surf

    def _mailbox(
        self, surface: pygame.Surface, box: Box, name: str, count: int, font_size: int
    ) -> None:
        cy = box.y + box.h // 2
        name_rect = self.blit_text(
            surface,
            self.fit(name, font_size, box.w // 2),
            font_size,
            (box.x + 2, cy),
            theme.TEXT,
            "midleft",
        )
        count_rect = self.blit_text(
            surface, f"{count:,}", font_size, (box.right - 2, cy), theme.TEXT, "midright"
        )
        # Up to ten dots show a small count at a glance, where there is room.
        room = (count_rect.left - name_rect.right - 12) // 11
        for i in range(min(count, 10, room)):
            pygame.draw.circle(surface, theme.MESSAGE_DOT, (count_rect.left - 12 - i * 11, cy), 4)

    def _dot(self, surface: pygame.Surface, dot: Dot) -> None:
        pygame.draw.circle(
            surface, theme.JOURNEY_COLOURS[dot.kind], (dot.x, dot.y), theme.DOT_RADIUS
        )
        pygame.draw.circle(surface, theme.PANEL, (dot.x, dot.y), theme.DOT_RADIUS, 1)

    # -- the heads-up line and the log ----------------------------------------

    def hud(self, surface: pygame.Surface, box: Box, playing: bool, parts: Sequence[str]) -> None:
        pygame.draw.rect(surface, theme.PANEL, box)
        pygame.draw.line(surface, theme.RULE, (box.x, box.bottom - 1), (box.right, box.bottom - 1))
        cy = box.y + box.h // 2
        _play_icon(surface, (box.x + 22, cy), playing)
        x = box.x + 44
        for i, part in enumerate(parts):
            room = box.right - 10 - x
            if room < 60:
                break  # a narrow window drops the last parts rather than overlap
            colour = theme.TEXT if i == 0 else theme.MUTED
            text = self.fit(part, theme.FONT_HUD, room)
            rect = self.blit_text(surface, text, theme.FONT_HUD, (x, cy), colour, "midleft")
            x = rect.right + 26

    def legend(self, surface: pygame.Surface, box: Box) -> int:
        """What the token colours mean, at the right of `box`: two columns when
        it has room for two lines, else one line. Returns the legend's left edge."""
        size = theme.FONT_SMALL + 2
        item_w = max(self.font(size).size(name)[0] for name, _ in theme.LEGEND) + 34
        two_rows = box.h >= 2 * theme.LOG_LINE_H
        rows = 2 if two_rows else 1
        cols = (len(theme.LEGEND) + rows - 1) // rows
        x0 = box.right - cols * item_w
        pitch = theme.LOG_LINE_H + 2
        for i, (name, kind) in enumerate(theme.LEGEND):
            col, row = (i // rows, i % rows) if two_rows else (i, 0)
            x = x0 + col * item_w
            cy = box.y + pitch // 2 + row * pitch + 2
            pygame.draw.rect(
                surface, theme.KIND_COLOURS[kind], (x, cy - 8, 18, 17), border_radius=4
            )
            self.blit_text(surface, name, size, (x + 24, cy), theme.TEXT, "midleft")
        return x0

    def log(
        self, surface: pygame.Surface, box: Box, lines: Sequence[str], alert: bool = False
    ) -> None:
        """The latest events, newest first, as many as fit; with `alert` the
        first line (how the run ended) is in red."""
        fits = max(1, (box.h - 3) // theme.LOG_LINE_H)
        for i, line in enumerate(lines[:fits]):
            colour = (theme.KILLED if alert else theme.TEXT) if i == 0 else theme.MUTED
            text = self.fit(line, theme.FONT_LOG, box.w - 8)
            self.blit_text(
                surface, text, theme.FONT_LOG, (box.x + 4, box.y + 3 + i * theme.LOG_LINE_H), colour
            )

    # -- the timeline -----------------------------------------------------------

    def timeline(
        self,
        surface: pygame.Surface,
        geom: TimelineGeom,
        key: int,
        rows: Sequence[tuple[str, Sequence[PixelRun]]],
        playhead_x: int,
        ticks: Sequence[tuple[int, str]],
        title: str,
    ) -> None:
        """`key` identifies the trace the rows come from (for the cache)."""
        box = geom.box
        pygame.draw.rect(surface, theme.PANEL, box, border_radius=6)
        self.blit_text(surface, title, theme.FONT_SMALL + 1, (box.x + 6, box.y + 3), theme.MUTED)
        self._state_legend(surface, box.right - 8, box.y + LEGEND_H // 2)
        gkey = (key, geom.plot.w, geom.plot.h, geom.first_row)
        img = self._gantt.get(gkey)
        if img is None:
            img = self._gantt[gkey] = self._render_gantt(geom, rows)
        surface.blit(img, (geom.labels.x, geom.labels.y))
        # What has not happened yet is faded, so "so far" reads at a glance.
        future = geom.plot.right - playhead_x
        if future > 0:
            veil = self._veil(geom.plot.w, geom.plot.h)
            surface.blit(veil, (playhead_x, geom.plot.y), pygame.Rect(0, 0, future, geom.plot.h))
        for x, text in ticks:
            pygame.draw.line(surface, theme.RULE, (x, geom.plot.y), (x, geom.axis.y + 3))
            img = self.text(text, theme.FONT_SMALL, theme.MUTED)
            rect = img.get_rect(midtop=(x, geom.axis.y + 3))
            rect.right = min(rect.right, box.right - 2)  # the last label stays on screen
            surface.blit(img, rect)
        pygame.draw.line(
            surface,
            theme.PLAYHEAD,
            (playhead_x, geom.plot.y - 4),
            (playhead_x, geom.plot.bottom + 2),
            3,
        )
        if geom.rows_shown < geom.rows_total:
            more = (
                f"rows {geom.first_row + 1}–{geom.first_row + geom.rows_shown} of {geom.rows_total}"
            )
            self.blit_text(
                surface, more, theme.FONT_SMALL, (box.x + 6, geom.axis.y + 3), theme.MUTED
            )

    def _veil(self, w: int, h: int) -> pygame.Surface:
        veil = self._veils.get((w, h))
        if veil is None:
            veil = pygame.Surface((w, h), pygame.SRCALPHA)
            veil.fill((*theme.PANEL, 150))
            self._veils[(w, h)] = veil
        return veil

    def _render_gantt(
        self, geom: TimelineGeom, rows: Sequence[tuple[str, Sequence[PixelRun]]]
    ) -> pygame.Surface:
        img = pygame.Surface((geom.labels.w + geom.plot.w, geom.plot.h))
        img.fill(theme.PANEL)
        show_labels = geom.row_h >= 9
        window = rows[geom.first_row : geom.first_row + geom.rows_shown]
        for r, (label, runs) in enumerate(window):
            y = r * geom.row_h
            h = max(1, geom.row_h - (1 if geom.row_h >= 4 else 0))
            if show_labels:
                size = min(theme.FONT_SMALL, geom.row_h + 4)
                text = self.fit(label, size, geom.labels.w - 8)
                img.blit(
                    self.text(text, size, theme.TEXT), (4, y + (geom.row_h - size * 3 // 4) // 2)
                )
            for run in runs:
                img.fill(
                    theme.STATE_COLOURS[run.state], (geom.labels.w + run.x0, y, run.x1 - run.x0, h)
                )
        return img

    def _state_legend(self, surface: pygame.Surface, right: int, cy: int) -> None:
        x = right
        states: tuple[TaskState, ...] = ("new", "blocked", "ready", "running")
        for state in states:
            img = self.text(state, theme.FONT_SMALL, theme.TEXT)
            x -= img.get_width()
            surface.blit(img, img.get_rect(midleft=(x, cy)))
            x -= 18
            pygame.draw.rect(surface, theme.STATE_COLOURS[state], (x, cy - 6, 13, 13))
            x -= 16

    # -- overlays ---------------------------------------------------------------

    def card(self, surface: pygame.Surface, box: Box, title: str, lines: Sequence[str]) -> None:
        """A boxed panel of text: the help, a token's details."""
        shadow = Box(box.x + 4, box.y + 4, box.w, box.h)
        pygame.draw.rect(surface, theme.RULE, shadow, border_radius=10)
        pygame.draw.rect(surface, theme.OVERLAY, box, border_radius=10)
        pygame.draw.rect(surface, theme.TEXT, box, 2, border_radius=10)
        self.blit_text(
            surface,
            self.fit(title, theme.FONT_PANEL + 4, box.w - 24),
            theme.FONT_PANEL + 4,
            (box.x + 14, box.y + 10),
        )
        y = box.y + 42
        for line in lines:
            if y + theme.FONT_PANEL > box.bottom - 6:
                break
            # "key\twhat it does": two columns.
            head, tab, rest = line.partition("\t")
            if tab:
                self.blit_text(surface, head, theme.FONT_PANEL, (box.x + 14, y))
                x = box.x + 14 + CARD_KEY_W
                text = self.fit(rest, theme.FONT_PANEL, box.right - 14 - x)
                self.blit_text(surface, text, theme.FONT_PANEL, (x, y), theme.MUTED)
            elif line:
                text = self.fit(line, theme.FONT_PANEL, box.w - 28)
                self.blit_text(surface, text, theme.FONT_PANEL, (box.x + 14, y))
            y += theme.FONT_PANEL + 4

    def message(self, surface: pygame.Surface, box: Box, text: str) -> None:
        """A one-line notice (a saved screenshot) at the bottom of a box."""
        img = self.text(text, theme.FONT_PANEL, theme.TOKEN_TEXT)
        rect = img.get_rect(midbottom=(box.x + box.w // 2, box.bottom - 10))
        pygame.draw.rect(surface, theme.PLAYHEAD, rect.inflate(20, 10), border_radius=8)
        surface.blit(img, rect)


def _play_icon(surface: pygame.Surface, centre: tuple[int, int], playing: bool) -> None:
    x, y = centre
    if playing:
        pygame.draw.polygon(surface, theme.TEXT, [(x - 7, y - 10), (x - 7, y + 10), (x + 10, y)])
    else:
        pygame.draw.rect(surface, theme.TEXT, (x - 8, y - 10, 6, 20))
        pygame.draw.rect(surface, theme.TEXT, (x + 2, y - 10, 6, 20))


def _inflate(box: Box, d: int) -> Box:
    return Box(box.x - d, box.y - d, box.w + 2 * d, box.h + 2 * d)


def _darker(c: theme.RGB) -> theme.RGB:
    return (c[0] * 4 // 5, c[1] * 4 // 5, c[2] * 4 // 5)
