"""Headless frames to files: a PNG, numbered PNGs, a GIF or an MP4.

Frame i shows trace time `start + i * speed / fps` (the last frame shows the
end of the range), so the same command gives the same pixels. Every file is
written under a temporary name and renamed into place when complete: an
interrupted render leaves no half-written file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pygame
from PIL import Image

from sim.trace import Trace
from viz import cursor
from viz.frame import Composer, FrameSpec
from viz.index import TraceIndex

OutputKind = Literal["png", "pngs", "gif", "mp4"]
Progress = Callable[[int, int], None]

# A GIF is assembled in memory (one byte per pixel per frame) before it is written.
GIF_MEMORY_LIMIT = 1 << 30
# The last GIF frame is held this long, so a looping GIF shows the outcome.
GIF_HOLD_MS = 2000


class RenderError(Exception):
    """A render that cannot be done as asked; the message is for the user."""


def headless() -> None:
    """Initialise pygame without a display or sound card."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    pygame.display.init()
    pygame.font.init()


def output_kind(name: str | Path) -> OutputKind:
    """What to write, from the output's name: a directory (existing, or named
    with a trailing slash) gets numbered PNGs."""
    path = Path(name)
    if path.is_dir() or str(name).endswith(("/", os.sep)):
        return "pngs"
    suffix = path.suffix.lower()
    if suffix in (".png", ".gif", ".mp4"):
        return suffix[1:]  # type: ignore[return-value]
    raise RenderError(
        f"cannot tell what to write from {path}: use a name ending in .mp4, .gif or .png, "
        "or a directory (ending in /) for numbered PNGs"
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """Which trace times become frames."""

    start: int
    stop: int
    fps: float
    speed: float  # trace seconds per second of video

    @property
    def step_ns(self) -> float:
        return self.speed * 1e9 / self.fps

    def times(self) -> list[int]:
        """Every step from start, and stop itself as the last frame, so a video
        always ends on the final picture."""
        n = math.ceil((self.stop - self.start) / self.step_ns - 1e-9)
        times = [self.start + round(i * self.step_ns) for i in range(max(0, n))]
        # The end replaces a step less than half a step before it, so frames
        # are never closer than half a step (the clock can tell them apart).
        if len(times) > 1 and self.stop - times[-1] < self.step_ns / 2:
            times.pop()
        return [*times, self.stop]


def clock_decimals(step_ns: float, unit_scale: int) -> int:
    """Decimals the clock needs so frames half a step apart never show the same
    time (a GIF writer would merge two identical frames into one)."""
    return max(3, math.ceil(-math.log10(step_ns / 2 / unit_scale))) if step_ns > 0 else 3


class Renderer:
    """Draws frames of a set of traces (one, or sim and real side by side)."""

    def __init__(
        self,
        traces: Sequence[Trace],
        titles: Sequence[str],
        size: tuple[int, int],
        speed: float,
        fps: float,
        span: tuple[int, int] | None = None,
    ) -> None:
        """`span`: the stretch of trace time the timeline shows (default: all)."""
        headless()
        self.indexes = [TraceIndex(t) for t in traces]
        self.composer = Composer(self.indexes, titles, span=span)
        self.composer.decimals = clock_decimals(speed * 1e9 / fps, self.composer.unit[0])
        self.size = size
        self.speed = speed
        self.surface = pygame.Surface(size)

    def frame(self, t: int) -> bytes:
        """The RGB bytes of the frame at trace time t."""
        spec = FrameSpec(
            cursor.at_time(self.indexes, t),
            self.speed,
            panels=tuple(range(len(self.indexes))),
        )
        self.composer.compose(self.surface, spec)
        return pygame.image.tobytes(self.surface, "RGB")

    def frames(self, times: Sequence[int], progress: Progress | None = None) -> Iterator[bytes]:
        for i, t in enumerate(times):
            yield self.frame(t)
            if progress is not None:
                progress(i + 1, len(times))


def render(
    renderer: Renderer, name: str | Path, plan: Plan, progress: Progress | None = None
) -> int:
    """Write the frames of `plan` to `name` (see `output_kind`); returns the
    number of frames."""
    kind = output_kind(name)
    out = Path(name)
    if kind == "png":
        _write_png(out, renderer.frame(plan.start), renderer.size)
        if progress is not None:
            progress(1, 1)
        return 1
    times = plan.times()
    if kind == "pngs":
        out.mkdir(parents=True, exist_ok=True)
        digits = max(5, len(str(len(times))))
        for i, rgb in enumerate(renderer.frames(times, progress)):
            _write_png(out / f"frame_{i:0{digits}d}.png", rgb, renderer.size)
        return len(times)
    if kind == "gif":
        _write_gif(out, renderer, times, plan.fps, progress)
    else:
        _write_mp4(out, renderer, times, plan.fps, progress)
    return len(times)


def _partial(out: Path) -> Path:
    # Keeps the suffix, which tells ffmpeg and Pillow the format.
    return out.with_name(f".{out.stem}.partial{out.suffix}")


def _finish(tmp: Path, out: Path) -> None:
    os.replace(tmp, out)


def _write_png(out: Path, rgb: bytes, size: tuple[int, int]) -> None:
    tmp = _partial(out)
    try:
        Image.frombytes("RGB", size, rgb).save(tmp, format="PNG")
        _finish(tmp, out)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()


def _write_gif(
    out: Path, renderer: Renderer, times: Sequence[int], fps: float, progress: Progress | None
) -> None:
    w, h = renderer.size
    need = len(times) * w * h
    if need > GIF_MEMORY_LIMIT:
        raise RenderError(
            f"a GIF of {len(times)} frames at {w}x{h} needs about {need >> 20} MiB of memory; "
            "write an MP4, or lower --fps, --size or the --from/--to range"
        )
    palette = _palette(renderer, times)

    def quantised() -> Iterator[Image.Image]:
        for rgb in renderer.frames(times[1:], _shifted(progress, len(times))):
            yield Image.frombytes("RGB", (w, h), rgb).quantize(
                palette=palette, dither=Image.Dither.NONE
            )

    first = Image.frombytes("RGB", (w, h), renderer.frame(times[0])).quantize(
        palette=palette, dither=Image.Dither.NONE
    )
    if progress is not None:
        progress(1, len(times))
    frame_ms = round(1000 / fps)
    durations = [frame_ms] * (len(times) - 1) + [max(frame_ms, GIF_HOLD_MS)]
    tmp = _partial(out)
    try:
        first.save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=quantised(),
            loop=0,
            duration=durations,
            optimize=True,
            disposal=1,
        )
        _finish(tmp, out)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()


def _palette(renderer: Renderer, times: Sequence[int]) -> Image.Image:
    """One palette for every frame (no flicker): from a few frames spread over
    the render, 255 colours, leaving an index free for transparency."""
    w, h = renderer.size
    picks = sorted({times[len(times) * i // 4] for i in range(4)} | {times[-1]})
    mosaic = Image.new("RGB", (w, h * len(picks)))
    for i, t in enumerate(picks):
        mosaic.paste(Image.frombytes("RGB", (w, h), renderer.frame(t)), (0, i * h))
    return mosaic.quantize(colors=255, method=Image.Quantize.MEDIANCUT)


def _shifted(progress: Progress | None, total: int) -> Progress | None:
    if progress is None:
        return None
    return lambda done, _n: progress(done + 1, total)


def _write_mp4(
    out: Path, renderer: Renderer, times: Sequence[int], fps: float, progress: Progress | None
) -> None:
    import imageio_ffmpeg

    w, h = renderer.size
    if w % 2 or h % 2:
        raise RenderError(f"an MP4 needs an even width and height (got {w}x{h})")
    tmp = _partial(out)
    writer = imageio_ffmpeg.write_frames(
        str(tmp),
        (w, h),
        fps=fps,
        codec="libx264",
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        macro_block_size=1,
        ffmpeg_log_level="error",
        output_params=["-threads", "1"],
    )
    try:
        writer.send(None)  # start ffmpeg
        for rgb in renderer.frames(times, progress):
            writer.send(rgb)
        writer.close()
        _finish(tmp, out)
    finally:
        writer.close()
        with suppress(FileNotFoundError):
            tmp.unlink()
