"""The MarketData facade: one batch of engine events in, the outgoing messages out."""

from __future__ import annotations

import zlib
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.engine import ADD, AMEND, BUY, CANCEL, GTC, IOC, SELL, Engine, commands
from exchange.engine.types import ACCEPTED, EVENT_DTYPE, TRADE
from exchange.marketdata import LocalBook, MarketData
from tests.marketdata.helpers import CENT, level, ns, trade
from tests.marketdata.helpers import event_rows as rows

W50 = "H100-2026-W50"
A100 = "A100-2026-12"
BOOKS = {0: W50, 1: A100}
T = ns("2026-12-07T12:00:00Z")


@pytest.fixture
def md() -> MarketData:
    m = MarketData()
    m.add_symbol(W50, CENT)
    m.add_symbol(A100, CENT, bids=[(150, 4)], asks=[(160, 2)])
    return m


def test_one_batch_becomes_updates_then_trades_then_tickers(md: MarketData) -> None:
    batch = rows(
        [
            {"kind": ACCEPTED, "book": 0},  # ignored
            level(0, SELL, 250, 10, T),
            level(1, BUY, 151, 1, T),
            trade(0, BUY, 250, 4, T + 1_000_000),
            level(0, SELL, 250, 6, T + 1_000_000),
            level(0, BUY, 249, 2, T + 1_000_000),
        ]
    )
    messages = md.on_events(batch, BOOKS.__getitem__, [17], now_ns=T + 2_000_000)
    assert messages == [
        {
            "channel": "book",
            "type": "update",
            "symbol": W50,
            "sequence": 1,
            "changes": [["sell", "2.50", "6"], ["buy", "2.49", "2"]],
            "checksum": zlib.crc32(b"B2.49:2A2.50:6"),
            "ts": T + 1_000_000,
        },
        {
            "channel": "book",
            "type": "update",
            "symbol": A100,
            "sequence": 1,
            "changes": [["buy", "1.51", "1"]],
            "checksum": zlib.crc32(b"B1.51:1,1.50:4A1.60:2"),
            "ts": T,
        },
        {
            "channel": "trades",
            "symbol": W50,
            "trade_id": 17,
            "price": "2.50",
            "quantity": "4",
            "taker_side": "buy",
            "time": "2026-12-07T12:00:00.001Z",
            "ts": T + 1_000_000,
        },
        {
            "channel": "ticker",
            "symbol": W50,
            "best_bid": "2.49",
            "best_ask": "2.50",
            "last": "2.50",
            "volume_24h": "4",
            "change_24h": "0.00",
            "time": "2026-12-07T12:00:00.002Z",
        },
        {
            "channel": "ticker",
            "symbol": A100,
            "best_bid": "1.51",
            "best_ask": "1.60",
            "last": None,
            "volume_24h": "0",
            "change_24h": None,
            "time": "2026-12-07T12:00:00.002Z",
        },
    ]
    assert md.trades(W50) == [
        {
            "trade_id": 17,
            "price": "2.50",
            "quantity": "4",
            "taker_side": "buy",
            "time": "2026-12-07T12:00:00.001Z",
        }
    ]
    assert md.candles(W50, "1m") == [
        {
            "time": "2026-12-07T12:00:00.000Z",
            "open": "2.50",
            "high": "2.50",
            "low": "2.50",
            "close": "2.50",
            "volume": "4",
        }
    ]
    assert md.rest_book(A100, 1) == {
        "symbol": A100,
        "sequence": 1,
        "bids": [["1.51", "1"]],
        "asks": [["1.60", "2"]],
    }


def test_deep_level_change_sends_an_update_but_no_ticker(md: MarketData) -> None:
    messages = md.on_events(rows([level(1, BUY, 140, 9)]), BOOKS.__getitem__, [], now_ns=T)
    assert [(m["channel"], m["symbol"]) for m in messages] == [("book", A100)]


def test_batch_without_changes_sends_nothing(md: MarketData) -> None:
    no_change = rows([level(1, BUY, 150, 4), {"kind": ACCEPTED, "book": 5}])
    assert md.on_events(no_change, BOOKS.__getitem__, [], now_ns=T) == []
    assert md.on_events(np.zeros(0, EVENT_DTYPE), BOOKS.__getitem__, [], now_ns=T) == []
    assert md.rest_book(A100)["sequence"] == 0


def test_bad_batches_change_nothing(md: MarketData) -> None:
    before = md.snapshot_message(W50)
    with pytest.raises(ValueError, match="1 trades in the batch but 0 trade ids"):
        md.on_events(
            rows([level(0, SELL, 250, 6), trade(0, BUY, 250, 4)]), BOOKS.__getitem__, [], T
        )
    with pytest.raises(KeyError, match="unknown symbol 'X'"):
        md.on_events(
            rows([level(0, SELL, 250, 6), level(2, BUY, 1, 1)]), {0: W50, 2: "X"}.__getitem__, [], T
        )
    with pytest.raises(KeyError):
        md.on_events(rows([level(0, SELL, 250, 6), level(3, BUY, 1, 1)]), BOOKS.__getitem__, [], T)
    with pytest.raises(ValueError, match="malformed LEVEL event"):
        md.on_events(rows([level(0, SELL, 250, 6), level(1, 2, 1, 1)]), BOOKS.__getitem__, [], T)
    with pytest.raises(ValueError, match="trade time"):
        md.on_events(
            rows([level(0, SELL, 250, 6), trade(0, BUY, 250, 1, T), trade(0, BUY, 250, 1, T - 1)]),
            BOOKS.__getitem__,
            [1, 2],
            T,
        )
    md.record_trade(A100, 1, 160, 1, BUY, T)
    with pytest.raises(ValueError, match="trade time"):
        md.on_events(rows([trade(1, BUY, 160, 1, T - 1)]), BOOKS.__getitem__, [2], T)
    assert md.snapshot_message(W50) == before
    assert md.trades(W50) == []


def test_registry(md: MarketData) -> None:
    assert md.symbols() == [W50, A100]
    assert A100 in md and "B200-2026-12" not in md
    with pytest.raises(ValueError, match="already registered"):
        md.add_symbol(W50, CENT)
    with pytest.raises(KeyError, match="unknown symbol"):
        md.rest_book("B200-2026-12")
    assert md.snapshot_message(A100)["bids"] == [["1.50", "4"]]
    assert [t["symbol"] for t in md.tickers(T)] == [W50, A100]
    assert md[W50].book.symbol == W50


# -- against the real engine ---------------------------------------------------------------

order_st = st.fixed_dictionaries(
    {
        "kind": st.sampled_from([ADD, ADD, ADD, CANCEL, AMEND]),
        "book": st.integers(0, 1),
        "order_id": st.integers(1, 40),
        "account": st.integers(1, 3),
        "side": st.sampled_from([BUY, SELL]),
        "price": st.integers(90, 110),
        "quantity": st.integers(1, 20),
        "tif": st.sampled_from([GTC, GTC, GTC, IOC]),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(order_st, min_size=1, max_size=8), min_size=1, max_size=12))
def test_books_and_local_books_follow_the_engine(batches: list[list[dict[str, int]]]) -> None:
    engine = Engine(backend="reference")
    engine.add_book(0, n_ticks=200)
    engine.add_book(1, n_ticks=200)
    md = MarketData()
    md.add_symbol(W50, Decimal("0.05"))
    md.add_symbol(A100, CENT)
    local = {s: LocalBook(s) for s in (W50, A100)}
    for s, local_book in local.items():
        local_book.apply(md.snapshot_message(s))
    next_trade = 1
    now = T
    for batch in batches:
        now += 1_000_000_000
        cmds = commands(batch)
        cmds["ts"] = now
        events = engine.process(cmds)
        n_trades = int(np.count_nonzero(events["kind"] == TRADE))
        ids = list(range(next_trade, next_trade + n_trades))
        next_trade += n_trades
        for message in md.on_events(events, BOOKS.__getitem__, ids, now_ns=now):
            if message["channel"] == "book":
                local[message["symbol"]].apply(message)
        for book_id, symbol in BOOKS.items():
            bids, asks = engine.depth(book_id, 1_000)
            book = md[symbol].book
            assert book.levels(BUY) == [tuple(x) for x in bids]
            assert book.levels(SELL) == [tuple(x) for x in asks]
            rest = md.rest_book(symbol)
            assert (local[symbol].bids(), local[symbol].asks()) == (rest["bids"], rest["asks"])
            assert local[symbol].sequence == rest["sequence"]
    assert sum(len(md.trades(s)) for s in BOOKS.values()) == next_trade - 1
