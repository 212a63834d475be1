"""The real window under Xvfb, driven with xdotool as a user would: it opens
and plays, space pauses (the picture stops changing), Right advances exactly
one event (the title shows the event index), `s` saves a screenshot, `q`
closes with exit code 0.

Needs the system packages xvfb, xdotool and x11-apps (for xwd); skipped with
the names of the missing ones otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from viz_traces import producer_consumer

from sim.trace import write_trace

pytestmark = pytest.mark.xvfb

ROOT = Path(__file__).resolve().parent.parent
TOOLS = {"Xvfb": "xvfb", "xdotool": "xdotool", "xwd": "x11-apps"}
_missing = [f"{tool} (package {pkg})" for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
if _missing:
    pytest.skip(f"needs {', '.join(_missing)}", allow_module_level=True)


@pytest.fixture
def display() -> Iterator[str]:
    """A private X server on a display number it picks itself (-displayfd)."""
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as f:
            number = f.readline().strip()
        if not number:
            pytest.fail("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _x(display: str, *args: str) -> str:
    out = subprocess.run(
        list(args),
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
        text=True,
        timeout=20,
    )
    return out.stdout.strip()


def _shot(display: str, wid: str) -> bytes:
    out = subprocess.run(
        ["xwd", "-id", wid, "-silent"],
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
        timeout=20,
        check=True,
    )
    return out.stdout


def _event_index(display: str, wid: str) -> int:
    title = _x(display, "xdotool", "getwindowname", wid)
    match = re.search(r"event (\d+)/(\d+)", title)
    assert match, title
    return int(match.group(1))


def _wait(cond: object, timeout: float = 15.0, why: Callable[[], str] = str) -> None:
    """Until `cond()` holds; on a timeout, fail saying `why()`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.1)
    pytest.fail(f"timed out {why()}")


def test_the_window_plays_pauses_steps_saves_and_quits(display: str, tmp_path: Path) -> None:
    trace = tmp_path / "pc.jsonl"
    write_trace(trace, producer_consumer())
    wm_class = f"procsim-test-{os.getpid()}"
    env = {
        **os.environ,
        "DISPLAY": display,
        "SDL_VIDEO_X11_WMCLASS": wm_class,
        "SDL_AUDIODRIVER": "dummy",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("SDL_VIDEODRIVER", None)
    # 19 ms of trace at 1 ms per second: it is still playing when we look.
    log = (tmp_path / "animate.log").open("wb")
    app = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from sim.cli import main; main()",
            "animate",
            str(trace),
            "--speed",
            "0.001",
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wids: list[str] = []

        def window_up() -> bool:
            wids[:] = _x(display, "xdotool", "search", "--classname", wm_class).split()
            return bool(wids) and "event" in _x(display, "xdotool", "getwindowname", wids[0])

        def app_state() -> str:
            title = _x(display, "xdotool", "getwindowname", wids[0]) if wids else None
            return (
                f"waiting for the window (windows {wids}, title {title!r}, "
                f"app exit code {app.poll()}); its output:\n"
                + (tmp_path / "animate.log").read_text(errors="replace")
            )

        _wait(window_up, why=app_state)
        wid = wids[0]
        _x(display, "xdotool", "windowfocus", "--sync", wid)

        # Playing: the picture changes and events go by.
        first = _shot(display, wid)
        _wait(lambda: _shot(display, wid) != first)
        _wait(lambda: _event_index(display, wid) > 0)

        # Space pauses: the picture and the event index hold still.
        _x(display, "xdotool", "key", "space")
        time.sleep(0.6)
        paused = _shot(display, wid)
        k = _event_index(display, wid)
        time.sleep(0.8)
        assert _shot(display, wid) == paused
        assert _event_index(display, wid) == k

        # Right: exactly one event further, and it stays there.
        _x(display, "xdotool", "key", "Right")
        _wait(lambda: _event_index(display, wid) != k)
        time.sleep(0.5)
        assert _event_index(display, wid) == k + 1

        # s: a screenshot of the window in the working directory.
        _x(display, "xdotool", "key", "s")
        shot = tmp_path / "procsim-producer-consumer-001.png"
        _wait(shot.exists)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # q: the window closes and the command exits 0.
        _x(display, "xdotool", "key", "q")
        assert app.wait(timeout=15) == 0, (tmp_path / "animate.log").read_text()
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        log.close()
