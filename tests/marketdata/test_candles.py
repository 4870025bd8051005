"""Candles: UTC-aligned buckets across minute, hour and day boundaries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.marketdata import INTERVALS, Candle, Candles
from tests.marketdata.helpers import CENT, SYMBOL, ns


def candle(time: str, o: str, h: str, lo: str, c: str, v: str) -> Candle:
    return {"time": time, "open": o, "high": h, "low": lo, "close": c, "volume": v}


#: (time ns, price ticks, quantity): trades on both sides of a minute, an hour and a day
#: boundary.
TRADES = [
    (ns("2026-12-07T23:58:30.000Z"), 200, 1),
    (ns("2026-12-07T23:58:59.999Z"), 210, 2),
    (ns("2026-12-07T23:59:00.000Z"), 190, 3),
    (ns("2026-12-08T00:00:00.000Z") - 1, 205, 4),  # the day's last nanosecond
    (ns("2026-12-08T00:00:00.000Z"), 220, 5),
    (ns("2026-12-08T00:00:59.999Z"), 215, 6),
    (ns("2026-12-08T00:59:59.999Z"), 230, 7),
    (ns("2026-12-08T01:00:00.000Z"), 225, 8),
]


@pytest.fixture
def candles() -> Candles:
    c = Candles(SYMBOL, CENT)
    for time, price, qty in TRADES:
        c.record(price, qty, time)
    return c


def test_one_minute_buckets(candles: Candles) -> None:
    assert candles.get("1m") == [
        candle("2026-12-07T23:58:00.000Z", "2.00", "2.10", "2.00", "2.10", "3"),
        candle("2026-12-07T23:59:00.000Z", "1.90", "2.05", "1.90", "2.05", "7"),
        candle("2026-12-08T00:00:00.000Z", "2.20", "2.20", "2.15", "2.15", "11"),
        candle("2026-12-08T00:59:00.000Z", "2.30", "2.30", "2.30", "2.30", "7"),
        candle("2026-12-08T01:00:00.000Z", "2.25", "2.25", "2.25", "2.25", "8"),
    ]


def test_one_hour_buckets(candles: Candles) -> None:
    assert candles.get("1h") == [
        candle("2026-12-07T23:00:00.000Z", "2.00", "2.10", "1.90", "2.05", "10"),
        candle("2026-12-08T00:00:00.000Z", "2.20", "2.30", "2.15", "2.30", "18"),
        candle("2026-12-08T01:00:00.000Z", "2.25", "2.25", "2.25", "2.25", "8"),
    ]


def test_one_day_buckets(candles: Candles) -> None:
    assert candles.get("1d") == [
        candle("2026-12-07T00:00:00.000Z", "2.00", "2.10", "1.90", "2.05", "10"),
        candle("2026-12-08T00:00:00.000Z", "2.20", "2.30", "2.15", "2.25", "26"),
    ]


def test_limit_keeps_the_newest_oldest_first(candles: Candles) -> None:
    assert [c["time"] for c in candles.get("1m", 2)] == [
        "2026-12-08T00:59:00.000Z",
        "2026-12-08T01:00:00.000Z",
    ]
    assert candles.get("1d", 0) == []
    assert len(candles.get("1h", 100)) == 3
    with pytest.raises(ValueError, match="limit"):
        candles.get("1m", -1)


@pytest.mark.parametrize("interval", ["5m", "1M", "", "1D", "60"])
def test_unknown_interval_is_a_clear_error(interval: str) -> None:
    with pytest.raises(ValueError, match=r"unknown candle interval .*: use one of 1m, 1h, 1d"):
        Candles(SYMBOL, CENT).get(interval)


def test_empty_candles() -> None:
    assert Candles(SYMBOL, CENT).get("1m") == []


def test_a_late_trade_opens_or_closes_by_time() -> None:
    c = Candles(SYMBOL, CENT)
    t = ns("2026-12-07T10:00:30Z")
    c.record(200, 1, t)
    c.record(210, 1, t - 10)  # earlier: it becomes the open
    c.record(190, 1, t)  # same time as the close: recorded later, so it closes
    assert c.get("1m") == [candle("2026-12-07T10:00:00.000Z", "2.10", "2.10", "1.90", "1.90", "3")]


def test_only_the_newest_buckets_are_kept() -> None:
    c = Candles(SYMBOL, CENT, max_buckets=2)
    for minute in range(4):
        c.record(100 + minute, 1, ns("2026-12-07T10:00Z") + minute * INTERVALS["1m"])
    assert [x["open"] for x in c.get("1m")] == ["1.02", "1.03"]
    assert [x["volume"] for x in c.get("1h")] == ["4"]


@given(
    st.lists(
        st.tuples(st.integers(0, 3 * 86_400 * 10**9), st.integers(1, 500), st.integers(1, 9)),
        max_size=40,
    )
)
def test_candles_match_a_brute_force_model(trades: list[tuple[int, int, int]]) -> None:
    trades.sort(key=lambda t: t[0])
    c = Candles(SYMBOL, CENT)
    for ts, price, qty in trades:
        c.record(price, qty, ts)
    for name, width in INTERVALS.items():
        buckets: dict[int, list[tuple[int, int, int]]] = {}
        for ts, price, qty in trades:
            buckets.setdefault(ts // width * width, []).append((ts, price, qty))
        got = c.get(name)
        assert len(got) == len(buckets)
        for row, (_start, rows) in zip(got, sorted(buckets.items()), strict=True):
            prices = [p for _, p, _ in rows]
            assert row["open"] == c.format.price(prices[0])
            assert row["close"] == c.format.price(prices[-1])
            assert row["high"] == c.format.price(max(prices))
            assert row["low"] == c.format.price(min(prices))
            assert row["volume"] == str(sum(q for _, _, q in rows))
