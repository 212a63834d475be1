"""Durations and sizes written with units, as scenarios spell them.

`10ms`, `1.5s`, `250us` (or `250µs`), `64B`, `4KiB`, `1MB`. Numbers are read as
decimals, not floats, so `0.1s` is exactly 100,000,000 ns before rounding. A number
without a unit is refused: whether `5` means seconds or milliseconds is exactly the
kind of guess a scenario must not leave to the reader. Standard library only.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

DURATION_UNITS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # MICRO SIGN, what most keyboards type
    "μs": 1_000,  # GREEK SMALL LETTER MU, what some fonts and editors produce
    "ms": 1_000_000,
    "s": 1_000_000_000,
}
SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
}
DURATION_HINT = "a duration needs a unit: ns, us, ms or s"
SIZE_HINT = "a size needs a unit: B, KiB, MiB, GiB, KB, MB or GB"

# A sign, a decimal number (no exponent: `1e3ms` is more likely a typo than a wish),
# optional spaces, then whatever letters follow; the unit is checked separately so
# an unknown unit gets its own message.
_QUANTITY = re.compile(r"^\s*([+-]?)(\d+(?:\.\d*)?|\.\d+)\s*([^\d\s.+-][^\s]*)?\s*$")

# The patterns the JSON Schema advertises for editor completion and checking.
DURATION_PATTERN = r"^\s*\+?(\d+(\.\d*)?|\.\d+)\s*(ns|us|µs|μs|ms|s)\s*$"
SIZE_PATTERN = r"^\s*\+?(\d+(\.\d*)?|\.\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)\s*$"


class UnitError(ValueError):
    """A quantity that cannot be read; the message is meant for the user."""


def _quantity(text: str, units: dict[str, int], hint: str, noun: str, example: str) -> Decimal:
    """The value of `text` in the smallest unit, exact."""
    match = _QUANTITY.match(text)
    got = text.strip()
    if match is None:
        raise UnitError(f"expected {noun} such as {example} (got {got})")
    sign, number, unit = match.groups()
    if unit is None:
        raise UnitError(f"{hint} (got {got})")
    if unit not in units:
        raise UnitError(f"unknown unit '{unit}': {hint} (got {got})")
    if sign == "-" and Decimal(number) != 0:
        raise UnitError(f"{noun} cannot be negative (got {got})")
    return Decimal(number) * units[unit]


def parse_duration_ns(text: str) -> int:
    """`1.5ms` → 1_500_000. Fractions of a nanosecond round half up."""
    value = _quantity(text, DURATION_UNITS, DURATION_HINT, "a duration", "10ms or 1.5s")
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_duration_fractional_ns(text: str) -> float:
    """`0.5ns` → 0.5: for per-byte costs, which are fractions of a nanosecond."""
    return float(_quantity(text, DURATION_UNITS, DURATION_HINT, "a duration", "0.5ns"))


def parse_size(text: str) -> int:
    """`4KiB` → 4096, `1KB` → 1000. Fractions of a byte round half up."""
    value = _quantity(text, SIZE_UNITS, SIZE_HINT, "a size", "64B or 4KiB")
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
