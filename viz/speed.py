"""Playback speed: trace seconds shown per wall-clock second, on a 1-2-5 ladder
so every press of ↑ or ↓ lands on a round number."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

# A trace renders in about this many seconds at the speed chosen for it.
AUTO_PLAY_S = 12.0
# In the window the speed follows the pace of the events instead: the typical
# gap between two instants with events lasts this long on screen...
WATCH_GAP_S = 0.25
# ...within these bounds on the time the whole trace takes to play.
WATCH_MIN_S = 12.0
WATCH_MAX_S = 120.0
MIN_SPEED = 1e-9
MAX_SPEED = 1e3


def _ladder_index(speed: float) -> int:
    """The nearest rung of the 1-2-5 ladder (on a log scale): 0 at 1, 1 at 2,
    2 at 5, 3 at 10, ..."""
    decade = math.floor(math.log10(speed) + 1e-9)
    mantissa = speed / 10**decade
    for step, upper in enumerate((math.sqrt(2), math.sqrt(10), math.sqrt(50))):
        if mantissa < upper:
            return 3 * decade + step
    return 3 * decade + 3


def _from_index(i: int) -> float:
    decade, step = divmod(i, 3)
    return float(f"{(1, 2, 5)[step]}e{decade}")


def nice(speed: float) -> float:
    """The ladder value nearest to `speed`."""
    return _from_index(_ladder_index(max(MIN_SPEED, min(MAX_SPEED, speed))))


def auto_speed(duration_ns: int) -> float:
    """A round speed that plays `duration_ns` of trace in about AUTO_PLAY_S."""
    if duration_ns <= 0:
        return 1.0
    return nice(duration_ns / 1e9 / AUTO_PLAY_S)


def faster(speed: float) -> float:
    return min(MAX_SPEED, _from_index(_ladder_index(speed) + 1))


def slower(speed: float) -> float:
    return max(MIN_SPEED, _from_index(_ladder_index(speed) - 1))


def watch_speed(times: Sequence[int], duration_ns: int) -> float:
    """A round speed for watching: the median gap between instants with events
    lasts about WATCH_GAP_S, unless the whole trace would then play faster than
    WATCH_MIN_S or slower than WATCH_MAX_S. (The window also skips quiet
    stretches, so a slow speed does not mean long waits.)"""
    if duration_ns <= 0:
        return 1.0
    instants = sorted(set(times))
    gaps = sorted(b - a for a, b in itertools.pairwise(instants))
    paced = gaps[len(gaps) // 2] / 1e9 / WATCH_GAP_S if gaps else 0.0
    seconds = duration_ns / 1e9
    return nice(min(seconds / WATCH_MIN_S, max(seconds / WATCH_MAX_S, paced)))
