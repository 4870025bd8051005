"""Prices from ticks and times from nanoseconds, exactly as the wire writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.marketdata import TickFormat, iso_ms
from tests.marketdata.helpers import ns


@pytest.mark.parametrize(
    ("tick", "ticks", "text"),
    [
        ("0.01", 235, "2.35"),
        ("0.01", 1200, "12.00"),
        ("0.01", 5, "0.05"),
        ("0.01", 1, "0.01"),
        ("0.01", 100_000, "1000.00"),
        ("0.01", 0, "0.00"),
        ("0.01", -5, "-0.05"),
        ("0.01", -1234, "-12.34"),
        ("0.05", 47, "2.35"),
        ("0.50", 3, "1.50"),
        ("0.5", 3, "1.5"),
        ("0.001", 2350, "2.350"),
        ("1", 12, "12"),
        ("1E+1", 12, "120"),
    ],
)
def test_price_has_the_tick_sizes_decimals(tick: str, ticks: int, text: str) -> None:
    fmt = TickFormat(Decimal(tick))
    assert fmt.price(ticks) == text
    assert fmt.price(ticks) == text  # cached
    assert Decimal(text) == ticks * Decimal(tick)


@pytest.mark.parametrize("tick", [Decimal(0), Decimal("-0.01"), Decimal("NaN"), Decimal("Inf")])
def test_bad_tick_size_is_refused(tick: Decimal) -> None:
    with pytest.raises(ValueError, match="tick_size"):
        TickFormat(tick)


def test_float_tick_size_is_refused() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        TickFormat(0.01)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("time_ns", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (999_999, "1970-01-01T00:00:00.000Z"),
        (1_000_000, "1970-01-01T00:00:00.001Z"),
        (ns("2026-12-07T23:59:59.999999Z"), "2026-12-07T23:59:59.999Z"),
        (ns("2026-12-08T00:00:00Z"), "2026-12-08T00:00:00.000Z"),
        (ns("2028-02-29T12:34:56.789Z"), "2028-02-29T12:34:56.789Z"),
    ],
)
def test_iso_ms_is_utc_with_milliseconds(time_ns: int, text: str) -> None:
    assert iso_ms(time_ns) == text


@given(st.lists(st.integers(-(10**15), 10**19), max_size=20).flatmap(
    lambda times: st.permutations(
        times + times[:5] + [t + 1_000_000 * k for t in times[:5] for k in (-1, 1, 999, 1000)])))  # fmt: skip
def test_iso_ms_texts_do_not_leak_between_times(times: list[int]) -> None:
    """Times repeated, alternating, new and a millisecond or a second apart, in any order
    (the last time and each second's prefix are cached): each is its own text."""
    for time_ns in times:
        dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=time_ns // 1_000_000)
        assert (
            iso_ms(time_ns) == dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
        )
