"""Headless rendering (SDL dummy driver): pixels in the right boxes, videos
that read back with the expected frames, identical bytes for the same command,
and clear errors from the commands."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import imageio.v3 as iio
import pygame
import pytest
from typer.testing import CliRunner
from viz_traces import MS, SCENARIOS, producer_consumer, shipped

from sim.cli.app import app
from sim.trace import StateChanged, Trace, write_trace
from viz import cursor, theme
from viz.frame import Composer, FrameSpec
from viz.index import TraceIndex
from viz.layout import Box
from viz.render import Plan, Renderer, headless, render

runner = CliRunner()


@pytest.fixture(autouse=True)
def _dummy_video(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    headless()


def _count(surface: pygame.Surface, box: Box, colour: theme.RGB) -> int:
    sub = surface.subsurface(pygame.Rect(box)).copy()
    return pygame.transform.threshold(None, sub, colour, (2, 2, 2), set_behavior=0)


def _running_on_cpu0(trace: Trace) -> tuple[str, int]:
    """A task and a time in the middle of one of its runs on CPU 0."""
    events = trace.events
    for k, ev in enumerate(events):
        if isinstance(ev, StateChanged) and ev.state == "running" and ev.cpu == 0:
            end = next(
                e.t
                for e in events[k + 1 :]
                if getattr(e, "task", None) == ev.task and isinstance(e, StateChanged)
            )
            if end - ev.t > 1000:
                return ev.task, (ev.t + end) // 2
    raise AssertionError("no run on CPU 0")


@pytest.mark.parametrize(
    "trace", [producer_consumer(), shipped("reference_queue")], ids=["synthetic", "reference_queue"]
)
def test_the_cpu_box_shows_the_running_token(trace: Trace) -> None:
    task, t = _running_on_cpu0(trace)
    ix = TraceIndex(trace)
    composer = Composer([ix], ["simulated"])
    surface = pygame.Surface((1280, 720))
    composed = composer.compose(surface, FrameSpec(cursor.at_time([ix], t), speed=1e-6))
    scene = composed.scenes[0]
    [cpu0] = [f.box for f in scene.frames if f.title.startswith("CPU 0")]
    kind = ix.tracks[task].info.kind
    colour = theme.KIND_COLOURS[kind]
    # The token fills most of its 116x30 cell inside the CPU 0 box...
    assert _count(surface, cpu0, colour) > 116 * 30 * 0.6
    # ...and it is that task's token, at the position the layout gave it.
    sprite = scene.sprite_at(*cpu0.center)
    assert sprite is not None and sprite.name == task
    assert surface.get_at(sprite.box.center)[:3] != theme.PLACE_TINTS["running"]


def test_rendering_a_frame_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    trace = producer_consumer()
    a = Renderer([trace], ["simulated"], (960, 540), 0.002, 30)
    b = Renderer([trace], ["simulated"], (960, 540), 0.002, 30)
    for t in (0, 9 * MS + 123_456, 19 * MS):
        assert a.frame(t) == b.frame(t)
    plan = Plan(9 * MS, 9 * MS, 30, 0.002)
    render(a, tmp_path / "one.png", plan)
    render(b, tmp_path / "two.png", plan)
    assert (tmp_path / "one.png").read_bytes() == (tmp_path / "two.png").read_bytes()


def test_png_renders_from_the_command_are_identical(tmp_path: Path) -> None:
    trace_path = tmp_path / "pc.jsonl"
    write_trace(trace_path, producer_consumer())
    outs = []
    for name in ("a.png", "b.png"):
        out = tmp_path / name
        result = runner.invoke(
            app, ["render", str(trace_path), "-o", str(out), "--from", "9.5ms", "--size", "800x450"]
        )
        assert result.exit_code == 0, result.output
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert iio.imread(tmp_path / "a.png").shape == (450, 800, 3)


def test_frame_times_cover_the_range_at_the_speed_and_fps() -> None:
    plan = Plan(0, 19 * MS, fps=10, speed=0.002)  # 0.2 ms of trace per frame
    times = plan.times()
    assert len(times) == 96
    assert times[0] == 0 and times[-1] == 19 * MS
    assert all(b - a == 200_000 for a, b in itertools.pairwise(times))
    # A range that is not a whole number of steps still ends on its last instant.
    odd = Plan(0, 19 * MS + 150_000, fps=10, speed=0.002).times()
    assert len(odd) == 97 and odd[-1] == 19 * MS + 150_000 and odd[-2] == 19 * MS
    # ...and never less than half a step after the frame before it.
    close = Plan(0, 19 * MS + 50_000, fps=10, speed=0.002).times()
    assert len(close) == 96 and close[-1] == 19 * MS + 50_000 and close[-2] == 19 * MS - 200_000
    assert Plan(5, 5, fps=30, speed=1.0).times() == [5]


@pytest.mark.parametrize("suffix", ["gif", "mp4"])
def test_a_video_reads_back_with_the_expected_frames_and_size(tmp_path: Path, suffix: str) -> None:
    trace_path = tmp_path / "pc.jsonl"
    write_trace(trace_path, producer_consumer())
    out = tmp_path / f"pc.{suffix}"
    result = runner.invoke(
        app,
        [
            "render",
            str(trace_path),
            "-o",
            str(out),
            "--fps",
            "10",
            "--speed",
            "0.005",
            "--size",
            "640x360",
            "--from",
            "4ms",
            "--to",
            "14ms",
        ],
    )
    assert result.exit_code == 0, result.output
    expected = len(Plan(4 * MS, 14 * MS, 10, 0.005).times())
    assert expected == 21
    frames = iio.imread(out, index=None)
    assert frames.shape[:3] == (expected, 360, 640)
    assert not list(tmp_path.glob(".*partial*"))


def test_numbered_pngs_go_in_a_directory(tmp_path: Path) -> None:
    trace_path = tmp_path / "pc.jsonl"
    write_trace(trace_path, producer_consumer())
    out = tmp_path / "frames"
    result = runner.invoke(
        app,
        [
            "render",
            str(trace_path),
            "-o",
            f"{out}{os.sep}",
            "--fps",
            "2",
            "--speed",
            "0.002",
            "--size",
            "640x360",
        ],
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:05d}.png" for i in range(20)]


def test_render_simulates_a_scenario(tmp_path: Path) -> None:
    out = tmp_path / "q.png"
    middle = shipped("reference_queue").end.t // 2
    result = runner.invoke(
        app,
        [
            "render",
            str(SCENARIOS / "reference_queue.yaml"),
            "-o",
            str(out),
            "--from",
            f"{middle}ns",
        ],
    )
    assert result.exit_code == 0, result.output
    assert iio.imread(out).shape == (720, 1280, 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "x.avi"], "use a name ending in .mp4, .gif or .png"),
        (["-o", "x.png", "--size", "big"], "--size must be WIDTHxHEIGHT"),
        (["-o", "x.png", "--size", "100x100"], "at least 640x360"),
        (["-o", "x.png", "--from", "5"], "a duration needs a unit"),
        (["-o", "x.png", "--from", "1s"], "after the end of the trace"),
        (["-o", "x.png", "--from", "5ms", "--to", "2ms"], "before --from"),
        (["-o", "x.png", "--fps", "0"], "--fps must be positive"),
        (["-o", "x.mp4", "--size", "641x361"], "even width and height"),
        (["-o", "x.png", "--speed", "-1"], "--speed must be a positive"),
    ],
)
def test_render_refuses_bad_options_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    trace_path = tmp_path / "pc.jsonl"
    write_trace(trace_path, producer_consumer())
    args = [a if not a.startswith("x.") else str(tmp_path / a) for a in args]
    result = runner.invoke(app, ["render", str(trace_path), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pc.jsonl"]


def test_a_broken_trace_is_reported_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = tmp_path / "pc.jsonl"
    write_trace(good, producer_consumer())
    lines = good.read_text().splitlines()
    bad.write_text("\n".join([*lines[:5], "{not json", *lines[5:]]) + "\n")
    for command in (["render", str(bad), "-o", str(tmp_path / "x.png")], ["animate", str(bad)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert f"{bad}:6:" in result.output
        assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "no such file"),
        (["pc.jsonl", "--real"], "--real runs a scenario"),
        (["pc.jsonl", "--compare"], "--compare needs a scenario"),
        (["pc.jsonl", "pc.jsonl"], "with --compare"),
        (["pc.jsonl", "--speed", "0"], "--speed must be a positive"),
    ],
)
def test_animate_refuses_bad_arguments_before_opening_a_window(
    tmp_path: Path, args: list[str], message: str
) -> None:
    write_trace(tmp_path / "pc.jsonl", producer_consumer())
    args = [str(tmp_path / a) if a.endswith(".jsonl") else a for a in args]
    result = runner.invoke(app, ["animate", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_without_pygame_the_commands_say_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    write_trace(tmp_path / "pc.jsonl", producer_consumer())
    monkeypatch.setitem(sys.modules, "pygame", None)  # import pygame now raises ImportError
    for command in (
        ["animate", str(tmp_path / "pc.jsonl")],
        ["render", str(tmp_path / "pc.jsonl"), "-o", str(tmp_path / "x.png")],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert "pip install 'procsim[viz]'" in result.output


@pytest.mark.real
def test_animate_compare_of_a_scenario_shows_the_simulation_and_a_real_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The window gets the simulated trace and the trace of a real run, in that
    order, on one clock (the window itself is replaced by a recorder here)."""
    import viz.app

    shown: list[tuple[list[Trace], list[str], float | None]] = []

    def record(traces: list[Trace], titles: list[str], speed: float | None, _dir: Path) -> int:
        shown.append((list(traces), list(titles), speed))
        return 0

    monkeypatch.setattr(viz.app, "run_window", record)
    result = runner.invoke(
        app, ["animate", str(SCENARIOS / "reference_queue.yaml"), "--compare", "--speed", "0.01"]
    )
    assert result.exit_code == 0, result.output
    [(traces, titles, speed)] = shown
    assert titles == ["simulated", "real"]
    assert [t.header.source for t in traces] == ["sim", "real"]
    assert speed == 0.01
    for trace in traces:
        assert {"main", "p1", "p2"} <= {e.task for e in trace.events}
