"""Where everything goes, in pixels: the screen's regions, the stage's places
and the position of every token, dot and label in a `Scene`.

Pure: a scene is computed from a `View` and a box, nothing is drawn here and
no pygame is imported, so the geometry is tested without a display and
hit-testing (clicking a token) uses exactly what was drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from sim.trace import TaskKind, TaskState
from viz.text import token_label
from viz.theme import COMPACT, HUD_H, LOG_LINE_H, MARGIN, NORMAL, Sizes
from viz.viewstate import Flight, Place, TokenView, View


class Box(NamedTuple):
    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    @property
    def center(self) -> tuple[int, int]:
        return self.x + self.w // 2, self.y + self.h // 2

    def contains(self, px: float, py: float) -> bool:
        return self.x <= px < self.right and self.y <= py < self.bottom


# --- the screen ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PanelBoxes:
    """One trace's share of the screen."""

    stage: Box
    log: Box
    timeline: Box


@dataclass(frozen=True, slots=True)
class Screen:
    width: int
    height: int
    hud: Box
    panels: tuple[PanelBoxes, ...]


LOG_LINES = 3


def screen_layout(width: int, height: int, panels: int) -> Screen:
    """One panel: stage, three log lines and the timeline under it. Two panels
    (sim and real) are stacked so their timelines share one time axis, the
    stages above and their timelines below, each with a one-line log."""
    hud = Box(0, 0, width, HUD_H)
    w = width - 2 * MARGIN
    top = HUD_H + 4
    if panels == 1:
        timeline_h = max(90, round(height * 0.22))
        log_h = LOG_LINES * LOG_LINE_H + 6
        stage_h = height - top - log_h - timeline_h - 3 * MARGIN
        stage = Box(MARGIN, top, w, stage_h)
        log = Box(MARGIN, stage.bottom + MARGIN, w, log_h)
        timeline = Box(MARGIN, log.bottom + MARGIN, w, height - log.bottom - 2 * MARGIN)
        return Screen(width, height, hud, (PanelBoxes(stage, log, timeline),))
    timeline_h = max(60, round(height * 0.13))
    log_h = LOG_LINE_H + 4
    stage_h = (height - top - 2 * timeline_h - 2 * log_h - 6 * MARGIN) // 2
    boxes: list[PanelBoxes] = []
    y = top
    tl_y = top + 2 * (stage_h + log_h + 2 * MARGIN)
    for i in range(panels):
        stage = Box(MARGIN, y, w, stage_h)
        log = Box(MARGIN, stage.bottom + MARGIN // 2, w, log_h)
        timeline = Box(MARGIN, tl_y + i * (timeline_h + MARGIN // 2), w, timeline_h)
        boxes.append(PanelBoxes(stage, log, timeline))
        y = log.bottom + MARGIN + MARGIN // 2
    return Screen(width, height, hud, tuple(boxes))


# --- the scene ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """A place drawn as a box: its title, tint (the state it stands for) and a
    note shown when it is empty."""

    box: Box
    title: str
    state: TaskState
    note: str = ""
    heading: bool = False  # a column heading rather than a box


@dataclass(frozen=True, slots=True)
class Sprite:
    """A token at rest or in flight. `badge` is the exit code in Terminated,
    `killed` marks a daemon killed when the main code ended."""

    name: str
    label: str
    kind: TaskKind
    box: Box
    badge: str = ""
    killed: bool = False


@dataclass(frozen=True, slots=True)
class Label:
    x: int
    y: int
    text: str


@dataclass(frozen=True, slots=True)
class Dot:
    x: int
    y: int
    kind: str  # a journey kind: message, job, result


@dataclass(frozen=True, slots=True)
class MailboxRow:
    box: Box
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class Scene:
    sizes: Sizes
    frames: tuple[Frame, ...]
    labels: tuple[Label, ...]  # ready queue positions
    more: tuple[tuple[Box, str], ...]  # "+N more" badges
    sprites: tuple[Sprite, ...]
    dots: tuple[Dot, ...]
    mailboxes: tuple[MailboxRow, ...]

    def sprite_at(self, px: float, py: float) -> Sprite | None:
        """The token drawn on top at a point (the last drawn wins)."""
        for sprite in reversed(self.sprites):
            if sprite.box.contains(px, py):
                return sprite
        return None


@dataclass(frozen=True, slots=True)
class Grid:
    """Token cells filled row by row. When more tokens than cells belong to
    it, the last cell shows "+N more" instead."""

    x: int
    y: int
    cols: int
    rows: int
    pitch_x: int
    pitch_y: int
    count: int
    # A CPU's single cell keeps its token and shows any overflow in its title.
    single: bool = False

    @property
    def capacity(self) -> int:
        return max(1, self.cols * self.rows)

    @property
    def visible(self) -> int:
        if self.count <= self.capacity or self.single:
            return min(self.count, self.capacity)
        return self.capacity - 1

    def cell(self, i: int) -> tuple[int, int]:
        r, c = divmod(max(0, min(i, self.capacity - 1)), max(1, self.cols))
        return self.x + c * self.pitch_x, self.y + r * self.pitch_y

    def at(self, pos: float) -> tuple[float, float]:
        """Top-left of the token at fractional rank `pos`."""
        last = self.visible if self.count > self.capacity else self.capacity - 1
        if pos >= last:
            x, y = self.cell(last)
            return float(x), float(y)
        i = math.floor(max(0.0, pos))
        f = max(0.0, pos) - i
        x0, y0 = self.cell(i)
        x1, y1 = self.cell(i + 1)
        return x0 + (x1 - x0) * f, y0 + (y1 - y0) * f

    def more_box(self, s: Sizes) -> Box | None:
        if self.count <= self.capacity or self.single:
            return None
        x, y = self.cell(self.capacity - 1)
        return Box(x, y, s.token_w, s.token_h)


def sizes_for(stage: Box) -> Sizes:
    return NORMAL if stage.h >= 380 and stage.w >= 1000 else COMPACT


# Stage columns as shares of its width: New + Ready, CPUs, Blocked, Terminated + Messages.
COLUMNS = (0.16, 0.16, 0.42, 0.26)


def stage_scene(view: View, stage: Box, labels: dict[str, str] | None = None) -> Scene:
    """Everything on one stage at one moment. `labels` caches token labels."""
    s = sizes_for(stage)
    gap = MARGIN
    widths = [round((stage.w - 3 * gap) * share) for share in COLUMNS]
    xs = [stage.x]
    for w in widths[:-1]:
        xs.append(xs[-1] + w + gap)
    cols = [Box(x, stage.y, w, stage.h) for x, w in zip(xs, widths, strict=True)]
    frames: list[Frame] = []
    grids: dict[Place, Grid] = {}
    numbers: list[Label] = []

    # Column 1: New (two rows) above the Ready queue (one column, head first).
    c1 = cols[0]
    new_h = s.title_h + 2 * (s.token_h + s.gap) + s.gap
    new_box = Box(c1.x, c1.y, c1.w, new_h)
    ready_box = Box(c1.x, new_box.bottom + gap, c1.w, c1.h - new_h - gap)
    frames.append(Frame(new_box, _count("New", len(view.new)), "new"))
    frames.append(
        Frame(
            ready_box,
            _count("Ready queue", len(view.ready)),
            "ready",
            "" if view.ready else "empty",
        )
    )
    grids[Place("new")] = _grid(new_box, s, len(view.new), cols=1)
    ready_grid = _grid(ready_box, s, len(view.ready), cols=1, indent=s.number_w)
    grids[Place("ready")] = ready_grid
    for i in range(ready_grid.visible):
        x, y = ready_grid.cell(i)
        numbers.append(Label(x - s.number_w + 2, y + s.token_h // 2, str(i + 1)))

    # Column 2: one box per CPU, plus one for running tasks on an unnamed CPU.
    c2 = cols[1]
    cpu_places = [Place("cpu", i) for i in range(len(view.cpus))]
    if view.unknown_cpu:
        cpu_places.append(Place("cpu", None))
    frames.append(Frame(Box(c2.x, c2.y, c2.w, s.title_h), "Running", "running", heading=True))
    area = Box(c2.x, c2.y + s.title_h, c2.w, c2.h - s.title_h)
    for place, box in zip(cpu_places, _cpu_boxes(area, len(cpu_places), s), strict=True):
        members = view.members(place)
        title = f"CPU {place.key}" if place.key is not None else "CPU ?"
        if len(members) > 1:
            title += f"  +{len(members) - 1}"
        frames.append(Frame(box, title, "running", "" if members else "idle"))
        grids[place] = _grid(box, s, len(members), cols=1, rows=1, center=True, single=True)

    # Column 3: the blocked lanes, one per reason, sharing the rows they need.
    c3 = cols[2]
    frames.append(
        Frame(
            Box(c3.x, c3.y, c3.w, s.title_h),
            _count("Blocked", _blocked(view)),
            "blocked",
            heading=True,
        )
    )
    lanes_area = Box(c3.x, c3.y + s.title_h, c3.w, c3.h - s.title_h)
    hidden_lanes_box = _lanes(view, lanes_area, s, frames, grids)

    # Column 4: Terminated above the mailboxes.
    c4 = cols[3]
    mail_rows = min(len(view.mailboxes), 5)
    mail_h = s.title_h + max(1, mail_rows) * (s.token_h - 2) + 2 * s.gap if view.mailboxes else 0
    term_box = Box(c4.x, c4.y, c4.w, c4.h - (mail_h + gap if mail_h else 0))
    killed = sum(view.tokens[n].cause == "killed_as_daemon" for n in view.terminated)
    term_title = _count("Terminated", len(view.terminated))
    if killed:
        term_title += f" ({killed} daemon{'s' if killed > 1 else ''} killed)"
    frames.append(Frame(term_box, term_title, "terminated"))
    grids[Place("terminated")] = _grid(term_box, s, len(view.terminated))
    mailboxes: list[MailboxRow] = []
    mail_title = Box(c4.x, term_box.bottom + gap, c4.w, mail_h)
    if mail_h:
        frames.append(Frame(mail_title, "Messages waiting", "new"))
        mailboxes = _mailbox_rows(view, mail_title, s, mail_rows)

    more: list[tuple[Box, str]] = []
    for grid in grids.values():
        more_box = grid.more_box(s)
        if more_box is not None:
            more.append((more_box, f"+{grid.count - grid.visible} more"))

    sprites, anchors = _sprites(view, grids, hidden_lanes_box, s, labels)
    # Messages land on the row's dots, clear of its name.
    mail_centres = {m.name: (m.box.right - 70, m.box.center[1]) for m in mailboxes}
    dots = tuple(
        _dot(f, anchors, mail_centres, mail_title.center if mail_h else stage.center)
        for f in view.flights
    )
    return Scene(s, tuple(frames), tuple(numbers), tuple(more), sprites, dots, tuple(mailboxes))


def _count(title: str, n: int) -> str:
    return f"{title} · {n}" if n else title


def _blocked(view: View) -> int:
    return sum(len(lane.members) for lane in view.lanes)


def _grid(
    box: Box,
    s: Sizes,
    count: int,
    *,
    cols: int | None = None,
    rows: int | None = None,
    indent: int = 0,
    center: bool = False,
    cell_w: int | None = None,
    single: bool = False,
) -> Grid:
    inner_w = box.w - 2 * s.gap - indent
    inner_h = box.h - s.title_h - s.gap
    pitch_x = (cell_w or s.token_w) + s.gap
    pitch_y = s.token_h + s.gap
    n_cols = cols or max(1, (inner_w + s.gap) // pitch_x)
    n_rows = rows or max(1, (inner_h + s.gap) // pitch_y)
    x = box.x + s.gap + indent
    if center:
        x = box.x + (box.w - s.token_w) // 2
    return Grid(x, box.y + s.title_h, n_cols, n_rows, pitch_x, pitch_y, count, single)


def _cpu_boxes(area: Box, n: int, s: Sizes) -> list[Box]:
    """CPU boxes stacked, in as many columns as it takes to fit them."""
    box_h = s.title_h + s.token_h + 2 * s.gap
    per_col = max(1, (area.h + s.gap) // (box_h + s.gap))
    n_cols = max(1, math.ceil(n / per_col))
    col_w = (area.w - (n_cols - 1) * s.gap) // n_cols
    out = []
    for i in range(n):
        c, r = divmod(i, per_col)
        out.append(Box(area.x + c * (col_w + s.gap), area.y + r * (box_h + s.gap), col_w, box_h))
    return out


def _lanes(
    view: View, area: Box, s: Sizes, frames: list[Frame], grids: dict[Place, Grid]
) -> Box | None:
    """Lay the blocked lanes out top to bottom. Every shown lane gets one row of
    tokens, spare rows go to the lanes that need them, and lanes that do not
    fit are summed up in a last line. Returns that line's box, if any."""
    if not view.lanes:
        frames.append(
            Frame(
                Box(area.x, area.y, area.w, s.title_h + s.token_h),
                "",
                "blocked",
                "nothing is blocked",
            )
        )
        return None
    pitch_x = s.token_w + s.gap
    per_row = max(1, (area.w - 2 * s.gap + s.gap) // pitch_x)
    row_h = s.token_h + s.gap
    lane_base = s.title_h + s.gap  # a lane's title and bottom padding
    fits = max(1, (area.h + s.gap) // (lane_base + row_h + s.gap))
    shown = list(view.lanes)
    hidden: list[str] = []
    if len(shown) > fits:
        shown, rest = shown[: fits - 1], shown[fits - 1 :]
        hidden = [m for lane in rest for m in lane.members]
    reserved = (s.title_h if hidden else 0) + len(shown) * (lane_base + s.gap)
    rows = [1] * len(shown)
    spare = (area.h - reserved) // row_h - len(shown)
    needs = [max(1, math.ceil(len(lane.members) / per_row)) for lane in shown]
    while spare > 0 and any(r < n for r, n in zip(rows, needs, strict=True)):
        for i in range(len(shown)):
            if spare > 0 and rows[i] < needs[i]:
                rows[i] += 1
                spare -= 1
    y = area.y
    for lane, n_rows in zip(shown, rows, strict=True):
        box = Box(area.x, y, area.w, lane_base + n_rows * row_h)
        frames.append(Frame(box, _count(lane.reason, len(lane.members)), "blocked"))
        grids[Place("blocked", lane.reason)] = _grid(box, s, len(lane.members), rows=n_rows)
        y = box.bottom + s.gap
    if not hidden:
        return None
    n_lanes = len(view.lanes) - len(shown)
    box = Box(area.x, y, area.w, s.title_h)
    frames.append(Frame(box, f"+ {n_lanes} more lanes · {len(hidden)} tasks", "blocked"))
    return box


def _mailbox_rows(view: View, box: Box, s: Sizes, n_rows: int) -> list[MailboxRow]:
    rows = []
    row_h = s.token_h - 2
    items = list(view.mailboxes)
    if len(items) > n_rows:
        rest = sum(c for _, c in items[n_rows - 1 :])
        items = [*items[: n_rows - 1], (f"+{len(view.mailboxes) - n_rows + 1} more", rest)]
    for i, (name, count) in enumerate(items):
        y = box.y + s.title_h + i * row_h
        rows.append(MailboxRow(Box(box.x + s.gap, y, box.w - 2 * s.gap, row_h), name, count))
    return rows


def _smooth(p: float) -> float:
    return p * p * (3 - 2 * p)


def _sprites(
    view: View,
    grids: dict[Place, Grid],
    hidden_lanes_box: Box | None,
    s: Sizes,
    labels: dict[str, str] | None,
) -> tuple[tuple[Sprite, ...], dict[str, tuple[int, int]]]:
    """Sprites at rest first, then those gliding, so movers are drawn on top."""
    resting: list[Sprite] = []
    moving: list[Sprite] = []
    centres: dict[str, tuple[int, int]] = {}
    for name, tv in view.tokens.items():
        x0, y0, shown = _position(tv.place, tv.pos, grids, hidden_lanes_box)
        gliding = tv.dest is not None
        if gliding:
            assert tv.dest is not None
            x1, y1, _ = _position(tv.dest, tv.dest_pos, grids, hidden_lanes_box)
            p = _smooth(tv.progress)
            x0, y0 = x0 + (x1 - x0) * p, y0 + (y1 - y0) * p
        box = Box(round(x0), round(y0), s.token_w, s.token_h)
        # Messages leave and land at the token's right end, clear of its label.
        centres[name] = (box.right - 4, box.y + box.h // 2)
        if not (shown or gliding):
            continue
        label = labels.get(name) if labels is not None else None
        if label is None:
            label = token_label(tv.info)
            if labels is not None:
                labels[name] = label
        sprite = Sprite(name, label, tv.info.kind, box, *_badge(tv))
        (moving if gliding else resting).append(sprite)
    return tuple(resting + moving), centres


def _badge(tv: TokenView) -> tuple[str, bool]:
    if tv.state != "terminated":
        return "", False
    # Threads end without an exit code: no chip.
    code = "" if tv.exit_code is None else str(tv.exit_code)
    return code, tv.cause == "killed_as_daemon"


def _position(
    place: Place, pos: float, grids: dict[Place, Grid], hidden_lanes_box: Box | None
) -> tuple[float, float, bool]:
    """Top-left of a token at rank `pos` in `place`, and whether it has a cell
    of its own (rather than hiding behind a "+N more")."""
    grid = grids.get(place)
    if grid is None:
        box = hidden_lanes_box or Box(0, 0, 0, 0)
        return float(box.x), float(box.y), False
    x, y = grid.at(pos)
    return x, y, pos < grid.visible


def _dot(
    f: Flight,
    centres: dict[str, tuple[int, int]],
    mail_centres: dict[str, tuple[int, int]],
    fallback: tuple[int, int],
) -> Dot:
    j = f.journey
    mailbox = mail_centres.get(j.mailbox, fallback)
    src = centres.get(j.src_task, fallback)
    dst = centres.get(j.dst_task, fallback) if j.dst_task else fallback
    a, b = (src, mailbox) if f.leg == "to_mailbox" else (mailbox, dst)
    p = _smooth(min(1.0, max(0.0, f.progress)))
    return Dot(round(a[0] + (b[0] - a[0]) * p), round(a[1] + (b[1] - a[1]) * p), j.kind)
