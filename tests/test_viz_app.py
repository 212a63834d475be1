"""The window's playhead logic, without opening a window: playing skips quiet
stretches, stops at the end, and stepping pauses and moves one event."""

from __future__ import annotations

import itertools
from pathlib import Path

import pygame
import pytest
from viz_traces import MS, producer_consumer, shipped

from viz import cursor
from viz.app import QUIET_S, App


@pytest.fixture(autouse=True)
def _dummy_video(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


def test_playing_fast_forwards_over_quiet_stretches(tmp_path: Path) -> None:
    trace = shipped("reference_queue")
    app = App([trace], ["simulated"], 0.00001, tmp_path)  # 10 us of trace per second
    quiet_ns = round(QUIET_S * 0.00001 * 1e9)
    times = sorted(set(app.indexes[0].times))
    longest = max(b - a for a, b in itertools.pairwise(times))
    assert longest > 10 * quiet_ns  # the start-up latency of a child
    waits: list[int] = []
    seen = 0.0
    while app.state.playing:
        before = app.state.cur.t
        app._advance(1 / 60, seen)
        seen += 1 / 60
        nxt = cursor.next_event_time(app.indexes[0], before)
        if nxt is not None:
            waits.append(nxt - app.state.cur.t)
        assert seen < 60, "a 1.6 ms trace at 10 us/s must not take a minute"
    # The playhead never waits longer than the quiet limit for an event...
    assert max(waits) <= quiet_ns
    # ...and it says so when it skipped.
    assert app.state.notice.startswith("fast-forward: nothing happens for")
    assert app.state.cur == cursor.finish(app.indexes)


def test_playing_stops_at_the_end_and_space_plays_again(tmp_path: Path) -> None:
    app = App([producer_consumer()], ["simulated"], 1.0, tmp_path)
    app._advance(0.05, 0.0)  # 50 ms of trace at real time: past the 19 ms end
    assert not app.state.playing
    assert app.state.cur == cursor.finish(app.indexes)
    app._key(pygame.K_SPACE, 1.0)
    assert app.state.playing and app.state.cur == cursor.start(app.indexes)


def test_stepping_pauses_and_moves_one_event(tmp_path: Path) -> None:
    app = App([producer_consumer()], ["simulated"], None, tmp_path)
    assert app.state.playing
    app._key(pygame.K_RIGHT, 0.0)
    assert not app.state.playing
    assert app.state.cur.ks == (1,)
    app._key(pygame.K_RIGHT, 0.1)
    app._key(pygame.K_LEFT, 0.2)
    assert app.state.cur.ks == (1,)
    app._key(pygame.K_END, 0.3)
    assert app.state.cur.t == 19 * MS
    app._key(pygame.K_UP, 0.4)
    assert app.state.speed > 0.002
    assert app.state.notice.startswith("speed")
