"""The trade tape: REST rows newest first and the ``trades`` channel message."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange.engine.types import BUY, SELL
from exchange.marketdata import TradeTape
from tests.marketdata.helpers import CENT, SYMBOL, ns


def test_record_returns_the_channel_message() -> None:
    tape = TradeTape(SYMBOL, CENT)
    message = tape.record(41, 235, 5, BUY, ns("2026-12-07T10:00:00.123456Z"))
    assert message == {
        "channel": "trades",
        "symbol": SYMBOL,
        "trade_id": 41,
        "price": "2.35",
        "quantity": "5",
        "taker_side": "buy",
        "time": "2026-12-07T10:00:00.123Z",
    }
    assert list(message) == [
        "channel",
        "symbol",
        "trade_id",
        "price",
        "quantity",
        "taker_side",
        "time",
    ]


def test_recent_is_newest_first_and_limited() -> None:
    tape = TradeTape(SYMBOL, CENT)
    t0 = ns("2026-12-07T10:00:00Z")
    for i in range(5):
        tape.record(i + 1, 1200 + i, i + 1, SELL if i % 2 else BUY, t0 + i * 1_000_000)
    assert tape.recent(2) == [
        {
            "trade_id": 5,
            "price": "12.04",
            "quantity": "5",
            "taker_side": "buy",
            "time": "2026-12-07T10:00:00.004Z",
        },
        {
            "trade_id": 4,
            "price": "12.03",
            "quantity": "4",
            "taker_side": "sell",
            "time": "2026-12-07T10:00:00.003Z",
        },
    ]
    assert [row["trade_id"] for row in tape.recent()] == [5, 4, 3, 2, 1]
    assert tape.recent(0) == []
    assert len(tape) == 5


def test_rows_are_copies() -> None:
    tape = TradeTape(SYMBOL, CENT)
    tape.record(1, 235, 5, BUY, 0)
    tape.recent()[0]["price"] = "9.99"
    assert tape.recent()[0]["price"] == "2.35"


def test_tape_keeps_the_newest_maxlen_trades() -> None:
    tape = TradeTape(SYMBOL, Decimal("0.05"), maxlen=3)
    for i in range(1, 6):
        tape.record(i, 47, 1, BUY, i)
    assert [(row["trade_id"], row["price"]) for row in tape.recent(10)] == [
        (5, "2.35"),
        (4, "2.35"),
        (3, "2.35"),
    ]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="maxlen"):
        TradeTape(SYMBOL, CENT, maxlen=0)
    with pytest.raises(ValueError, match="limit"):
        TradeTape(SYMBOL, CENT).recent(-1)
