"""Durations and sizes with units: exact values, rounding, and the refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.units import (
    DURATION_UNITS,
    UnitError,
    parse_duration_fractional_ns,
    parse_duration_ns,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0ns", 0),
        ("7ns", 7),
        ("250us", 250_000),
        ("250µs", 250_000),
        ("250μs", 250_000),
        ("10ms", 10_000_000),
        ("1.5ms", 1_500_000),
        (".5s", 500_000_000),
        ("0.1s", 100_000_000),
        ("2s", 2_000_000_000),
        (" 3 ms ", 3_000_000),
        ("+4ms", 4_000_000),
        ("1.5ns", 2),  # rounded half up to a whole nanosecond
        ("0.4ns", 0),
    ],
)
def test_durations(text: str, ns: int) -> None:
    assert parse_duration_ns(text) == ns


def test_per_byte_keeps_fractions_of_a_nanosecond() -> None:
    assert parse_duration_fractional_ns("0.5ns") == 0.5
    assert parse_duration_fractional_ns("0.001us") == 1.0


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64B", 64),
        ("4KiB", 4096),
        ("1.5KiB", 1536),
        ("1MiB", 1024**2),
        ("2GiB", 2 * 1024**3),
        ("1KB", 1000),
        ("3MB", 3_000_000),
        ("1GB", 1_000_000_000),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5", "a duration needs a unit: ns, us, ms or s (got 5)"),
        ("1.5", "a duration needs a unit: ns, us, ms or s (got 1.5)"),
        ("5min", "unknown unit 'min': a duration needs a unit: ns, us, ms or s (got 5min)"),
        ("5 MS", "unknown unit 'MS'"),
        ("-5ms", "a duration cannot be negative (got -5ms)"),
        ("fast", "expected a duration such as 10ms or 1.5s (got fast)"),
        ("", "expected a duration such as 10ms or 1.5s (got )"),
        ("1.2.3ms", "expected a duration"),
    ],
)
def test_bad_durations(text: str, message: str) -> None:
    with pytest.raises(UnitError) as error:
        parse_duration_ns(text)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("64", "a size needs a unit: B, KiB, MiB, GiB, KB, MB or GB (got 64)"),
        ("64b", "unknown unit 'b'"),
        ("-1KiB", "a size cannot be negative (got -1KiB)"),
    ],
)
def test_bad_sizes(text: str, message: str) -> None:
    with pytest.raises(UnitError) as error:
        parse_size(text)
    assert message in str(error.value)


@given(
    st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
    st.sampled_from(sorted(DURATION_UNITS)),
)
def test_any_written_duration_reads_back_exactly(number: Decimal, unit: str) -> None:
    """Whatever decimal is written, the result is that decimal in ns, rounded half up."""
    exact = number * DURATION_UNITS[unit]
    expected = int(exact) + (1 if exact - int(exact) >= Decimal("0.5") else 0)
    assert parse_duration_ns(f"{number}{unit}") == expected
