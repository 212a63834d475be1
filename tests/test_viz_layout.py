"""Geometry without a display: the scene puts each token where its place is,
long lanes say how many more there are, and the screen splits as it should."""

from __future__ import annotations

import pytest
from viz_traces import MS, Block, Run, Script, header, pool_like, producer_consumer, scripted

from sim.trace import End, Event, MessageEvent, StateChanged, Trace
from viz.index import TraceIndex
from viz.layout import Box, Grid, Scene, screen_layout, stage_scene
from viz.theme import NORMAL
from viz.viewstate import Motion, View, view_at

STAGE = Box(8, 48, 1264, 420)
STILL = Motion(0, 0)


def _scene(view: View) -> Scene:
    return stage_scene(view, STAGE)


def _frame(scene: Scene, title_start: str) -> Box:
    [box] = [f.box for f in scene.frames if f.title.startswith(title_start)]
    return box


def _view(trace_ix: TraceIndex, t: int) -> View:
    return view_at(trace_ix, t, trace_ix.event_index_at(t), STILL)


def test_the_cpu_box_holds_the_running_token() -> None:
    ix = TraceIndex(producer_consumer())
    scene = _scene(_view(ix, 8 * MS))  # p2 runs on CPU 0, d1 on CPU 1
    cpu0, cpu1 = _frame(scene, "CPU 0"), _frame(scene, "CPU 1")
    sprites = {s.name: s for s in scene.sprites}
    assert cpu0.contains(*sprites["p2"].box.center)
    assert cpu1.contains(*sprites["d1"].box.center)
    assert _frame(scene, "q.get").contains(*sprites["p1"].box.center)
    assert _frame(scene, "join p1").contains(*sprites["main"].box.center)
    assert scene.sprite_at(*sprites["p2"].box.center) == sprites["p2"]


def test_an_idle_cpu_says_so() -> None:
    ix = TraceIndex(producer_consumer())
    scene = _scene(_view(ix, 0))
    [cpu1] = [f for f in scene.frames if f.title == "CPU 1"]
    assert cpu1.note == "idle"


def test_terminated_tokens_carry_their_exit_code_and_killed_daemons_are_marked() -> None:
    ix = TraceIndex(producer_consumer())
    scene = _scene(_view(ix, ix.end_t))
    sprites = {s.name: s for s in scene.sprites}
    assert (sprites["p1"].badge, sprites["p1"].killed) == ("0", False)
    assert (sprites["d1"].badge, sprites["d1"].killed) == ("-15", True)
    term = _frame(scene, "Terminated")
    assert all(term.contains(*s.box.center) for s in scene.sprites)


def test_no_two_resting_tokens_overlap() -> None:
    ix = TraceIndex(pool_like(64, 400, cpus=4))
    for frac in (0.1, 0.5, 0.9):
        scene = _scene(_view(ix, round(ix.end_t * frac)))
        boxes = [s.box for s in scene.sprites]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert a.right <= b.x or b.right <= a.x or a.bottom <= b.y or b.bottom <= a.y
        for s in scene.sprites:
            assert STAGE.contains(s.box.x, s.box.y)
            assert STAGE.contains(s.box.right - 1, s.box.bottom - 1)


def test_a_long_lane_shows_its_first_tokens_and_how_many_more() -> None:
    # 64 workers blocked on one reason, many more than one lane can show.
    scripts = [
        Script(f"pool.worker{i}", "worker", (Block("pool.tasks.get", 5 * MS),))
        for i in range(1, 65)
    ]
    ix = TraceIndex(scripted("wide", 2, [Script("main", "main", (Run(MS),)), *scripts]))
    view = _view(ix, 2 * MS)
    [lane] = view.lanes
    assert len(lane.members) == 64
    scene = _scene(view)
    shown = [s for s in scene.sprites if s.name.startswith("pool.worker")]
    [(more_box, text)] = scene.more
    assert text == f"+{64 - len(shown)} more"
    assert 8 <= len(shown) < 64
    # The tokens shown are the first to have blocked, in order.
    assert [s.name for s in shown] == list(lane.members[: len(shown)])
    assert _frame(scene, "pool.tasks.get").contains(*more_box.center)


def test_many_reasons_fold_into_a_last_line() -> None:
    scripts = [Script(f"p{i}", "child", (Block(f"join q{i}", 5 * MS),)) for i in range(30)]
    ix = TraceIndex(scripted("many", 1, scripts))
    view = _view(ix, MS)
    assert len(view.lanes) == 30
    scene = _scene(view)
    [folded] = [f for f in scene.frames if f.title.startswith("+ ")]
    lanes = [f for f in scene.frames if f.title.startswith("join q")]
    assert folded.title == f"+ {30 - len(lanes)} more lanes · {30 - len(lanes)} tasks"
    assert folded.box.bottom <= STAGE.bottom


def test_grid_positions_interpolate_between_cells() -> None:
    grid = Grid(x=10, y=20, cols=1, rows=4, pitch_x=100, pitch_y=30, count=3)
    assert grid.at(0) == (10, 20)
    assert grid.at(1.5) == (10, 65)
    overflow = Grid(x=10, y=20, cols=1, rows=4, pitch_x=100, pitch_y=30, count=9)
    assert overflow.visible == 3
    assert overflow.at(7) == overflow.at(3) == (10, 110)
    assert overflow.more_box(NORMAL) == Box(10, 110, NORMAL.token_w, NORMAL.token_h)


@pytest.mark.parametrize("size", [(1280, 720), (960, 540), (1920, 1080), (800, 450)])
def test_the_screen_is_tiled_without_overlaps(size: tuple[int, int]) -> None:
    for panels in (1, 2):
        screen = screen_layout(*size, panels)
        boxes = [screen.hud]
        for p in screen.panels:
            boxes += [p.stage, p.log, p.timeline]
        for b in boxes:
            assert b.w > 0 and b.h > 0
            assert b.right <= size[0] and b.bottom <= size[1]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert a.right <= b.x or b.right <= a.x or a.bottom <= b.y or b.bottom <= a.y


def test_stacked_panels_share_the_timeline_axis() -> None:
    screen = screen_layout(1280, 720, 2)
    a, b = screen.panels
    assert (a.timeline.x, a.timeline.w) == (b.timeline.x, b.timeline.w)
    assert a.stage.bottom < b.stage.y


def test_a_sparse_recording_is_still_drawn() -> None:
    """A real trace may lose `task` events, CPU numbers, reasons or the put of a get."""
    events: tuple[Event, ...] = (
        StateChanged(0, "main", "running"),
        StateChanged(MS, "main.t1", "blocked"),
        MessageEvent(2 * MS, "main", "get", "q", 7),
    )
    ix = TraceIndex(Trace(header("sparse", 1), events, End(3 * MS, "complete")))
    assert ix.tracks["main.t1"].info.kind == "thread"
    assert ix.journeys == []
    view = _view(ix, 3 * MS)
    assert view.unknown_cpu == ("main",)
    assert [lane.reason for lane in view.lanes] == ["?"]
    scene = _scene(view)
    sprites = {s.name: s for s in scene.sprites}
    assert _frame(scene, "CPU ?").contains(*sprites["main"].box.center)
    assert _frame(scene, "?").contains(*sprites["main.t1"].box.center)
