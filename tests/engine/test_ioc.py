"""Immediate-or-cancel limit orders: trade what they can within the limit, cancel the rest."""

from __future__ import annotations

from exchange.engine import BUY, IOC, SELL, Engine, Reason

from .helpers import (
    accepted,
    add,
    book_from,
    book_table,
    cancelled,
    level,
    run,
    trade,
)


def test_an_ioc_remainder_is_cancelled(engine: Engine) -> None:
    book_from(engine, asks=[(101, [3]), (102, [4]), (103, [5])])
    assert run(engine, add(10, BUY, 102, 10, tif=IOC)) == [
        accepted(10, BUY, 102, 10),
        trade(10, 1, 101, 3, side=BUY, remaining=7, maker_remaining=0),
        level(SELL, 101, 0),
        trade(10, 2, 102, 4, side=BUY, remaining=3, maker_remaining=0),
        level(SELL, 102, 0),
        cancelled(10, BUY, 102, 3, Reason.IOC_REMAINDER),
    ]
    assert book_table(engine) == {"bids": [], "asks": [(103, [(3, 5)])]}
    assert engine.order(10) is None


def test_a_filled_ioc_writes_no_cancel(engine: Engine) -> None:
    book_from(engine, bids=[(100, [6])])
    assert run(engine, add(10, SELL, 100, 6, tif=IOC)) == [
        accepted(10, SELL, 100, 6),
        trade(10, 1, 100, 6, side=SELL, remaining=0, maker_remaining=0),
        level(BUY, 100, 0),
    ]


def test_an_ioc_that_cannot_trade_changes_nothing(engine: Engine) -> None:
    book_from(engine, bids=[(99, [5])], asks=[(101, [5])])
    before = engine.state_hash()
    assert run(engine, add(10, BUY, 100, 4, tif=IOC), add(11, SELL, 100, 4, tif=IOC)) == [
        accepted(10, BUY, 100, 4),
        cancelled(10, BUY, 100, 4, Reason.IOC_REMAINDER),
        accepted(11, SELL, 100, 4),
        cancelled(11, SELL, 100, 4, Reason.IOC_REMAINDER),
    ]
    assert engine.state_hash() == before
