"""The ticker: top of book, last price, and the rolling 24-hour window's edges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.marketdata import WINDOW_NS, L2Book, Ticker
from tests.marketdata.helpers import CENT, SYMBOL, book_from, ns

T0 = ns("2026-12-07T12:00:00Z")


def test_message_shape_with_nothing_yet() -> None:
    assert Ticker(SYMBOL, CENT).message(L2Book(SYMBOL, CENT), T0) == {
        "channel": "ticker",
        "symbol": SYMBOL,
        "best_bid": None,
        "best_ask": None,
        "last": None,
        "volume_24h": "0",
        "change_24h": None,
        "time": "2026-12-07T12:00:00.000Z",
    }


def test_message_with_book_and_trades() -> None:
    ticker = Ticker(SYMBOL, CENT)
    ticker.record(230, 5, T0)
    ticker.record(235, 2, T0 + 1)
    ticker.record(225, 1, T0 + 2)
    book = book_from(bids=[(224, 1), (220, 3)], asks=[(226, 4)])
    assert ticker.message(book, T0 + 3) == {
        "channel": "ticker",
        "symbol": SYMBOL,
        "best_bid": "2.24",
        "best_ask": "2.26",
        "last": "2.25",
        "volume_24h": "8",
        "change_24h": "-0.05",
        "time": "2026-12-07T12:00:00.000Z",
    }


@pytest.mark.parametrize(
    ("now", "volume", "change"),
    [
        (T0 + 10, 7, 40),  # both trades in the window
        (T0 + WINDOW_NS - 1, 7, 40),  # the first trade is 1 ns younger than 24 h
        (T0 + WINDOW_NS, 4, 0),  # exactly 24 h old: out
        (T0 + 10 + WINDOW_NS - 1, 4, 0),
        (T0 + 10 + WINDOW_NS, 0, None),  # both out
        (T0 + 400 * WINDOW_NS, 0, None),
    ],
)
def test_window_edges(now: int, volume: int, change: int | None) -> None:
    ticker = Ticker(SYMBOL, CENT)
    ticker.record(200, 3, T0)
    ticker.record(240, 4, T0 + 10)
    assert ticker.window(now) == (volume, change)
    message = ticker.message(L2Book(SYMBOL, CENT), now)
    assert message["last"] == "2.40"  # the last price outlives the window
    assert message["volume_24h"] == str(volume)
    assert message["change_24h"] == (None if change is None else ticker.format.price(change))


def test_window_does_not_depend_on_earlier_queries() -> None:
    ticker = Ticker(SYMBOL, CENT)
    ticker.record(200, 3, T0)
    assert ticker.window(T0 + 2 * WINDOW_NS) == (0, None)
    assert ticker.window(T0) == (3, 0)  # an earlier "now" still sees the trade


def test_time_must_not_go_backwards() -> None:
    ticker = Ticker(SYMBOL, CENT)
    ticker.record(200, 3, T0)
    with pytest.raises(ValueError, match="before the last one"):
        ticker.record(200, 3, T0 - 1)
    with pytest.raises(ValueError, match="before the last trade"):
        ticker.window(T0 - 1)


def test_long_history_is_compacted_and_stays_correct() -> None:
    ticker = Ticker(SYMBOL, CENT)
    step = WINDOW_NS // 1000  # a thousand trades a day for five days
    trades = [(T0 + i * step, 100 + i % 37, 1 + i % 5) for i in range(5000)]
    for ts, price, qty in trades:
        ticker.record(price, qty, ts)
    assert len(ticker._times) < 3000  # compacted
    last_price = trades[-1][1]
    for now in (trades[-1][0], trades[-1][0] + WINDOW_NS // 2, trades[-1][0] + WINDOW_NS - 1):
        inside = [(p, q) for ts, p, q in trades if now - WINDOW_NS < ts <= now]
        assert ticker.window(now) == (sum(q for _, q in inside), last_price - inside[0][0])


@given(
    gaps=st.lists(st.integers(0, WINDOW_NS // 3), max_size=30),
    later=st.integers(0, 2 * WINDOW_NS),
    data=st.data(),
)
def test_window_matches_a_brute_force_model(
    gaps: list[int], later: int, data: st.DataObject
) -> None:
    ticker = Ticker(SYMBOL, CENT)
    trades = []
    ts = T0
    for gap in gaps:
        ts += gap
        price = data.draw(st.integers(1, 999))
        qty = data.draw(st.integers(1, 9))
        ticker.record(price, qty, ts)
        trades.append((ts, price, qty))
    now = ts + later
    inside = [(p, q) for t, p, q in trades if now - WINDOW_NS < t <= now]
    expected_change = trades[-1][1] - inside[0][0] if inside else None
    assert ticker.window(now) == (sum(q for _, q in inside), expected_change)
