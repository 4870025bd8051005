"""Cancelling resting orders."""

from __future__ import annotations

from exchange.engine import BUY, SELL, Engine, Reason

from .helpers import (
    MAKER,
    accepted,
    add,
    book_from,
    book_table,
    cancel,
    cancelled,
    level,
    rejected,
    run,
    trade,
)


def test_cancel_removes_the_order_and_reports_the_level(engine: Engine) -> None:
    book_from(engine, bids=[(100, [4, 6, 8])], asks=[(101, [5])])
    assert run(engine, cancel(2)) == [
        cancelled(2, BUY, 100, 6, Reason.CANCELLED_BY_USER, account=MAKER),
        level(BUY, 100, 12),
    ]
    assert book_table(engine) == {
        "bids": [(100, [(1, 4), (3, 8)])],
        "asks": [(101, [(4, 5)])],
    }
    assert engine.order(2) is None


def test_cancelling_the_last_order_of_a_level_removes_the_level(engine: Engine) -> None:
    book_from(engine, bids=[(100, [4]), (99, [1])], asks=[(101, [5])])
    assert run(engine, cancel(3), cancel(1)) == [
        cancelled(3, SELL, 101, 5, Reason.CANCELLED_BY_USER, account=MAKER),
        level(SELL, 101, 0),
        cancelled(1, BUY, 100, 4, Reason.CANCELLED_BY_USER, account=MAKER),
        level(BUY, 100, 0),
    ]
    assert engine.depth(0) == ([(99, 1)], [])


def test_cancel_reports_the_open_remainder_of_a_partly_filled_order(engine: Engine) -> None:
    book_from(engine, asks=[(101, [10])])
    run(engine, add(10, BUY, 101, 7))
    assert run(engine, cancel(1)) == [
        cancelled(1, SELL, 101, 3, Reason.CANCELLED_BY_USER, account=MAKER),
        level(SELL, 101, 0),
    ]


def test_an_order_can_be_cancelled_only_once(engine: Engine) -> None:
    book_from(engine, asks=[(101, [10])])
    run(engine, cancel(1))
    before = engine.state_hash()
    assert run(engine, cancel(1)) == [rejected(cancel(1), Reason.UNKNOWN_ORDER_ID)]
    assert engine.state_hash() == before


def test_a_filled_order_cannot_be_cancelled(engine: Engine) -> None:
    book_from(engine, asks=[(101, [10])])
    run(engine, add(10, BUY, 101, 10))
    assert run(engine, cancel(1)) == [rejected(cancel(1), Reason.UNKNOWN_ORDER_ID)]


def test_cancel_ignores_the_commands_other_fields(engine: Engine) -> None:
    book_from(engine, asks=[(101, [10])])
    row = cancel(1) | {"side": 7, "price": -5, "quantity": 0, "tif": 9, "flags": 255, "stp": 9}
    assert run(engine, row) == [
        cancelled(1, SELL, 101, 10, Reason.CANCELLED_BY_USER, account=MAKER),
        level(SELL, 101, 0),
    ]


def test_a_cancelled_orders_id_may_be_used_again(engine: Engine) -> None:
    book_from(engine, asks=[(101, [10])])
    run(engine, cancel(1))
    assert run(engine, add(1, BUY, 100, 2)) == [accepted(1, BUY, 100, 2), level(BUY, 100, 2)]


def test_a_cancelled_order_no_longer_trades(engine: Engine) -> None:
    book_from(engine, asks=[(101, [10, 3])])
    run(engine, cancel(1))
    assert run(engine, add(10, BUY, 101, 5)) == [
        accepted(10, BUY, 101, 5),
        trade(10, 2, 101, 3, side=BUY, remaining=2, maker_remaining=0),
        level(SELL, 101, 0),
        level(BUY, 101, 2),
    ]
