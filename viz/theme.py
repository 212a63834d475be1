"""Every colour and size of the window in one place.

Light background and large bold type so the picture survives a projector.
Token colours (the kind of task) come from the Okabe–Ito palette, darkened so
white labels stay readable, and are distinguishable with the common forms of
colour blindness; state colours (places and the timeline) use a separate set.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.trace import TaskKind, TaskState

RGB = tuple[int, int, int]

BACKGROUND: RGB = (246, 245, 240)
PANEL: RGB = (255, 255, 255)
TEXT: RGB = (33, 33, 38)
MUTED: RGB = (105, 105, 112)
RULE: RGB = (200, 199, 192)
PLAYHEAD: RGB = (20, 20, 24)
SELECTED: RGB = (20, 20, 24)
KILLED: RGB = (200, 30, 30)
BADGE: RGB = (40, 40, 46)  # the exit code chip on a terminated token
OVERLAY: RGB = (252, 252, 248)
MESSAGE_DOT: RGB = (30, 30, 36)

# Token fill by kind of task; the legend names the first four.
KIND_COLOURS: dict[TaskKind, RGB] = {
    "main": (0, 90, 156),
    "child": (196, 78, 0),
    "worker": (0, 128, 100),
    "thread": (150, 70, 130),
    "feeder": (150, 70, 130),
    "handler": (150, 70, 130),
}
LEGEND: tuple[tuple[str, TaskKind], ...] = (
    ("main", "main"),
    ("child", "child"),
    ("pool worker", "worker"),
    ("thread", "thread"),
)
TOKEN_TEXT: RGB = (255, 255, 255)

# State colours: the timeline's rows and the tint of each place on the stage.
STATE_COLOURS: dict[TaskState, RGB] = {
    "new": (170, 170, 176),
    "ready": (240, 176, 0),
    "running": (60, 160, 70),
    "blocked": (210, 70, 60),
    "terminated": (120, 120, 126),
}
PLACE_TINTS: dict[TaskState, RGB] = {
    "new": (236, 236, 238),
    "ready": (253, 244, 214),
    "running": (224, 243, 224),
    "blocked": (250, 228, 224),
    "terminated": (232, 232, 234),
}

# Journeys by kind: messages, Pool jobs going out, results coming back.
JOURNEY_COLOURS: dict[str, RGB] = {
    "message": (30, 30, 36),
    "job": (0, 128, 100),
    "result": (0, 90, 156),
}


@dataclass(frozen=True, slots=True)
class Sizes:
    """Pixel sizes of one stage scale."""

    token_w: int
    token_h: int
    gap: int
    title_h: int
    font_token: int
    font_title: int
    number_w: int  # the queue position column of the ready queue


NORMAL = Sizes(
    token_w=116,
    token_h=30,
    gap=6,
    title_h=26,
    font_token=17,
    font_title=19,
    number_w=26,
)
COMPACT = Sizes(
    token_w=100,
    token_h=24,
    gap=5,
    title_h=22,
    font_token=15,
    font_title=16,
    number_w=22,
)

FONT_HUD = 24
FONT_LOG = 19
FONT_SMALL = 15
FONT_PANEL = 18
HUD_H = 44
LOG_LINE_H = 22
MARGIN = 8
DOT_RADIUS = 6
