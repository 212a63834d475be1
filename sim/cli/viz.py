"""`procsim animate` (the window) and `procsim render` (headless frames).

Both take a scenario, simulated on the fly, or a trace file. `viz` and pygame
are imported inside the commands: the core install has no pygame, and every
other command must work without it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from sim.cli.app import ExitCode, app, err_console
from sim.program import Scenario
from sim.trace import MemorySink, Trace, TraceError, read_trace

SCENARIO_SUFFIXES = (".yaml", ".yml")
MIN_RENDER_SIZE = (640, 360)


def _fail(message: str, code: ExitCode = ExitCode.INVALID_INPUT) -> typer.Exit:
    err_console.print(f"procsim: error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _need_viz() -> None:
    """Import check for the optional extra, with the command that installs it."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import imageio_ffmpeg  # noqa: F401
        import PIL  # noqa: F401
        import pygame  # noqa: F401
    except ImportError as exc:
        raise _fail(
            f"the animation needs {exc.name or 'pygame'}, which is not installed: "
            "pip install 'procsim[viz]'"
        ) from None


def _is_scenario(path: Path) -> bool:
    return path.suffix.lower() in SCENARIO_SUFFIXES


def _read_trace(path: Path) -> Trace:
    try:
        return read_trace(path)
    except TraceError as exc:
        raise _fail(str(exc)) from None


def _scenario(path: Path) -> Scenario:
    from sim.scenario import ScenarioError, load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as exc:
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.INVALID_INPUT) from None


def _simulated(path: Path) -> Trace:
    scenario = _scenario(path)
    from sim.kernel import sim_header, simulate

    sink = MemorySink()
    result = simulate(scenario, sink)
    return Trace(sim_header(scenario), tuple(sink.events), result.end)


def _real(path: Path) -> Trace:
    scenario = _scenario(path)
    from sim.real import RealRunError, run_scenario

    err_console.print(f"running {path} for real…", markup=False, highlight=False)
    with tempfile.TemporaryDirectory(prefix="procsim-real-") as tmp:
        try:
            result = run_scenario(scenario, Path(tmp) / "real.jsonl")
        except RealRunError as exc:
            raise _fail(f"the real run of {path} failed: {exc}", ExitCode.ERROR) from None
        except KeyboardInterrupt:
            raise _fail("interrupted", ExitCode.INTERRUPTED) from None
        return _read_trace(Path(result.trace_path))


def _title(trace: Trace, path: Path, other: Trace | None) -> str:
    source = "simulated" if trace.header.source == "sim" else "real"
    if other is not None and other.header.source == trace.header.source:
        return path.name  # two traces of one kind: tell them apart by file
    return source


def _sources(paths: list[Path], real: bool, compare: bool) -> tuple[list[Trace], list[str]]:
    for p in paths:
        if not p.exists():
            raise _fail(f"{p}: no such file")
    if len(paths) > 2:
        raise _fail("give one scenario or trace, or two traces with --compare")
    if len(paths) == 2:
        if not compare:
            raise _fail("two traces are shown side by side with --compare")
        if any(_is_scenario(p) for p in paths):
            raise _fail("--compare takes one scenario (simulated and run for real) or two traces")
        traces = [_read_trace(p) for p in paths]
        return traces, [
            _title(traces[0], paths[0], traces[1]),
            _title(traces[1], paths[1], traces[0]),
        ]
    path = paths[0]
    if not _is_scenario(path):
        if real:
            raise _fail(f"--real runs a scenario; {path} is a trace (already a recording)")
        if compare:
            raise _fail("--compare needs a scenario (simulated and run for real) or two traces")
        trace = _read_trace(path)
        return [trace], [_title(trace, path, None)]
    if compare:
        return [_simulated(path), _real(path)], ["simulated", "real"]
    if real:
        return [_real(path)], ["real"]
    return [_simulated(path)], ["simulated"]


def _check_speed(speed: float | None) -> None:
    if speed is not None and not speed > 0:
        raise _fail(f"--speed must be a positive number of trace seconds per second (got {speed})")


@app.command()
def animate(
    sources: Annotated[
        list[Path],
        typer.Argument(
            metavar="SCENARIO|TRACE [TRACE]",
            help="A scenario YAML (simulated now) or a trace (.jsonl); two traces with --compare.",
        ),
    ],
    real: Annotated[
        bool, typer.Option("--real", help="Run the scenario for real and animate that run.")
    ] = False,
    compare: Annotated[
        bool,
        typer.Option("--compare", help="Simulated and real side by side on one clock (c toggles)."),
    ] = False,
    speed: Annotated[
        float | None,
        typer.Option(
            "--speed",
            help="Trace seconds per second of playback (default: the whole trace in ~12 s).",
        ),
    ] = None,
) -> None:
    """Open the window: processes move between New, Ready, the CPUs, Blocked and
    Terminated. Keys: space play/pause, Right/Left step, Up/Down speed, h help."""
    _check_speed(speed)
    _need_viz()
    traces, titles = _sources(sources, real, compare)
    import pygame

    from viz.app import run_window

    try:
        code = run_window(traces, titles, speed, Path.cwd())
    except pygame.error as exc:
        raise _fail(
            f"cannot open a window ({exc}); `procsim render` works without a display",
            ExitCode.ERROR,
        ) from None
    except KeyboardInterrupt:
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    raise typer.Exit(code)


def _parse_size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        raise _fail(f"--size must be WIDTHxHEIGHT in pixels, such as 1280x720 (got {text!r})")
    size = (int(w), int(h))
    if size[0] < MIN_RENDER_SIZE[0] or size[1] < MIN_RENDER_SIZE[1]:
        raise _fail(
            f"--size must be at least {MIN_RENDER_SIZE[0]}x{MIN_RENDER_SIZE[1]} so the "
            f"labels stay readable (got {text})"
        )
    return size


def _parse_time(option: str, text: str | None) -> int | None:
    from sim.units import UnitError, parse_duration_ns

    if text is None:
        return None
    try:
        return parse_duration_ns(text)
    except UnitError as exc:
        raise _fail(f"{option}: {exc}") from None


@app.command()
def render(
    source: Annotated[
        Path, typer.Argument(metavar="SCENARIO|TRACE", help="A scenario YAML or a trace (.jsonl).")
    ],
    output_text: Annotated[
        str,
        typer.Option(
            "-o",
            "--output",
            help="OUT.mp4, OUT.gif, OUT.png (one frame, at --from) or DIR/ for numbered PNGs.",
        ),
    ],
    fps: Annotated[float, typer.Option("--fps", help="Frames per second of video.")] = 30.0,
    speed: Annotated[
        float | None,
        typer.Option("--speed", help="Trace seconds per second of video (default: ~12 s in all)."),
    ] = None,
    size: Annotated[str, typer.Option("--size", help="Frame size, WIDTHxHEIGHT.")] = "1280x720",
    start: Annotated[
        str | None, typer.Option("--from", help="Trace time of the first frame, e.g. 5ms.")
    ] = None,
    stop: Annotated[
        str | None, typer.Option("--to", help="Trace time of the last frame, e.g. 20ms.")
    ] = None,
) -> None:
    """Render frames without a display: the same pixels for the same command."""
    # Kept as text until here: a Path would drop the trailing slash that asks for a directory.
    output = Path(output_text)
    _check_speed(speed)
    if not fps > 0:
        raise _fail(f"--fps must be positive (got {fps})")
    frame_size = _parse_size(size)
    t0 = _parse_time("--from", start)
    t1 = _parse_time("--to", stop)
    _need_viz()
    from viz.render import Plan, Renderer, RenderError, output_kind
    from viz.render import render as write_frames
    from viz.speed import auto_speed
    from viz.text import format_speed

    try:
        kind = output_kind(output_text)
    except RenderError as exc:
        raise _fail(str(exc)) from None
    if not source.exists():
        raise _fail(f"{source}: no such file")
    trace = _simulated(source) if _is_scenario(source) else _read_trace(source)
    end = max(trace.end.t, trace.events[-1].t if trace.events else 0)
    first = 0 if t0 is None else t0
    last = end if t1 is None else min(t1, end)
    if first > end:
        raise _fail(
            f"--from {start} is after the end of the trace (it ends at {end}ns, {end / 1e6:g} ms)"
        )
    if last < first:
        raise _fail(f"--to {stop} is before --from {start or '0'}")
    play_speed = speed if speed is not None else auto_speed(last - first)
    # A video of part of the trace zooms its timeline to that part; a single
    # frame keeps the whole trace around its moment.
    partial = (t0 is not None or t1 is not None) and kind != "png"
    renderer = Renderer(
        [trace],
        ["simulated" if trace.header.source == "sim" else "real"],
        frame_size,
        play_speed,
        fps,
        span=(first, last) if partial else None,
    )
    plan = Plan(first, last, fps, play_speed)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "rendering",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("frames", total=None)
        try:
            n = write_frames(
                renderer,
                output_text,
                plan,
                lambda done, total: bar.update(task, completed=done, total=total),
            )
        except RenderError as exc:
            raise _fail(str(exc)) from None
        except KeyboardInterrupt:
            raise _fail("interrupted; nothing written", ExitCode.INTERRUPTED) from None
        except OSError as exc:
            raise _fail(f"cannot write {output}: {exc.strerror or exc}", ExitCode.ERROR) from None
    err_console.print(
        f"wrote {output} ({n} frame{'s' if n != 1 else ''}, "
        f"{frame_size[0]}x{frame_size[1]}, speed {format_speed(play_speed)})",
        markup=False,
        highlight=False,
    )
