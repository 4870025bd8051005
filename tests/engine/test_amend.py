"""Amending resting orders: a smaller quantity at the same price keeps the order's place;
any other change sends it through matching again to the tail of its new level."""

from __future__ import annotations

import pytest

from exchange.engine import (
    BUY,
    MAX_QUANTITY,
    SELL,
    STP_CANCEL_BOTH,
    STP_CANCEL_NEWEST,
    STP_CANCEL_OLDEST,
    Engine,
    Reason,
)

from .helpers import (
    MAKER,
    TAKER,
    accepted,
    add,
    amend,
    amended,
    book_from,
    book_table,
    cancelled,
    level,
    run,
    trade,
)


def test_a_smaller_quantity_keeps_the_orders_place(engine: Engine) -> None:
    book_from(engine, asks=[(101, [10, 10])])
    assert run(engine, amend(1, 101, 4)) == [amended(1, SELL, 101, 4), level(SELL, 101, 14)]
    assert book_table(engine) == {"bids": [], "asks": [(101, [(1, 4), (2, 10)])]}
    # a later buy still meets order 1 first
    assert run(engine, add(10, BUY, 101, 6)) == [
        accepted(10, BUY, 101, 6),
        trade(10, 1, 101, 4, side=BUY, remaining=2, maker_remaining=0),
        trade(10, 2, 101, 2, side=BUY, remaining=0, maker_remaining=8),
        level(SELL, 101, 8),
    ]


def test_the_same_quantity_at_the_same_price_changes_nothing_but_says_so(engine: Engine) -> None:
    book_from(engine, bids=[(100, [5, 5])])
    before = engine.state_hash()
    assert run(engine, amend(1, 100, 5)) == [amended(1, BUY, 100, 5)]
    assert engine.state_hash() == before


def test_a_larger_quantity_loses_the_orders_place(engine: Engine) -> None:
    book_from(engine, asks=[(101, [10, 10])])
    assert run(engine, amend(1, 101, 12)) == [amended(1, SELL, 101, 12), level(SELL, 101, 22)]
    assert book_table(engine) == {"bids": [], "asks": [(101, [(2, 10), (1, 12)])]}
    assert run(engine, add(10, BUY, 101, 11)) == [
        accepted(10, BUY, 101, 11),
        trade(10, 2, 101, 10, side=BUY, remaining=1, maker_remaining=0),
        trade(10, 1, 101, 1, side=BUY, remaining=0, maker_remaining=11),
        level(SELL, 101, 11),
    ]


def test_a_new_price_loses_the_orders_place(engine: Engine) -> None:
    book_from(engine, bids=[(100, [3, 4]), (99, [5])])
    assert run(engine, amend(1, 99, 3)) == [
        amended(1, BUY, 99, 3),
        level(BUY, 100, 4),
        level(BUY, 99, 8),
    ]
    # and going back does not restore it
    assert run(engine, amend(1, 100, 3)) == [
        amended(1, BUY, 100, 3),
        level(BUY, 99, 5),
        level(BUY, 100, 7),
    ]
    assert book_table(engine) == {
        "bids": [(100, [(2, 4), (1, 3)]), (99, [(3, 5)])],
        "asks": [],
    }
    assert run(engine, add(10, SELL, 100, 5)) == [
        accepted(10, SELL, 100, 5),
        trade(10, 2, 100, 4, side=SELL, remaining=1, maker_remaining=0),
        trade(10, 1, 100, 1, side=SELL, remaining=0, maker_remaining=2),
        level(BUY, 100, 2),
    ]


def test_the_amended_quantity_is_the_new_open_quantity(engine: Engine) -> None:
    book_from(engine, asks=[(101, [10])])
    run(engine, add(10, BUY, 101, 7))  # order 1 has 3 open
    assert run(engine, amend(1, 101, 2)) == [amended(1, SELL, 101, 2), level(SELL, 101, 2)]
    assert engine.order(1)["remaining"] == 2  # type: ignore[index]
    # 2 -> 3 is an increase of the open quantity: to the tail
    assert run(engine, amend(1, 101, 3)) == [amended(1, SELL, 101, 3), level(SELL, 101, 3)]


def test_an_amend_to_a_crossing_price_trades_at_the_makers_price(engine: Engine) -> None:
    book_from(engine, bids=[(99, [8])], asks=[(101, [5]), (102, [1]), (104, [2])])
    assert run(engine, amend(1, 103, 8)) == [
        amended(1, BUY, 103, 8),
        level(BUY, 99, 0),
        trade(1, 2, 101, 5, side=BUY, remaining=3, maker_remaining=0, account=MAKER),
        level(SELL, 101, 0),
        trade(1, 3, 102, 1, side=BUY, remaining=2, maker_remaining=0, account=MAKER),
        level(SELL, 102, 0),
        level(BUY, 103, 2),
    ]
    assert book_table(engine) == {"bids": [(103, [(1, 2)])], "asks": [(104, [(4, 2)])]}


def test_an_amend_that_fills_completely_removes_the_order(engine: Engine) -> None:
    book_from(engine, bids=[(99, [3])], asks=[(101, [5])])
    assert run(engine, amend(1, 101, 3)) == [
        amended(1, BUY, 101, 3),
        level(BUY, 99, 0),
        trade(1, 2, 101, 3, side=BUY, remaining=0, maker_remaining=2, account=MAKER),
        level(SELL, 101, 2),
    ]
    assert engine.order(1) is None
    assert book_table(engine) == {"bids": [], "asks": [(101, [(2, 2)])]}


def test_a_crossing_amend_uses_the_orders_own_stp_mode(engine: Engine) -> None:
    book_from(engine, asks=[(101, [(5, TAKER), 5])])
    run(engine, add(10, BUY, 99, 4, stp=STP_CANCEL_NEWEST))
    assert run(engine, amend(10, 101, 4, account=TAKER)) == [
        amended(10, BUY, 101, 4, account=TAKER),
        level(BUY, 99, 0),
        cancelled(10, BUY, 101, 4, Reason.SELF_TRADE),
    ]
    assert book_table(engine) == {"bids": [], "asks": [(101, [(1, 5), (2, 5)])]}


@pytest.mark.parametrize(
    ("stp", "expected"),
    [
        (
            STP_CANCEL_OLDEST,
            [
                cancelled(1, SELL, 101, 5, Reason.SELF_TRADE),
                trade(10, 2, 101, 4, side=BUY, remaining=0, maker_remaining=1),
                level(SELL, 101, 1),
            ],
        ),
        (
            STP_CANCEL_BOTH,
            [
                cancelled(1, SELL, 101, 5, Reason.SELF_TRADE),
                level(SELL, 101, 5),
                cancelled(10, BUY, 101, 4, Reason.SELF_TRADE),
            ],
        ),
    ],
)
def test_a_crossing_amend_cancels_resting_own_orders_by_its_stp_mode(
    engine: Engine, stp: int, expected: list[dict[str, int | str]]
) -> None:
    book_from(engine, asks=[(101, [(5, TAKER), 5])])
    run(engine, add(10, BUY, 99, 4, stp=stp))
    events = run(engine, amend(10, 101, 4, account=TAKER))
    assert events == [amended(10, BUY, 101, 4, account=TAKER), level(BUY, 99, 0), *expected]


def test_amend_ignores_the_commands_side_tif_flags_and_stp(engine: Engine) -> None:
    book_from(engine, bids=[(99, [8])], asks=[(101, [5])])
    row = amend(1, 100, 8) | {"side": 9, "tif": 9, "flags": 255, "stp": 9}
    assert run(engine, row) == [amended(1, BUY, 100, 8), level(BUY, 99, 0), level(BUY, 100, 8)]
    assert engine.order(1) == {"order_id": 1, "account": MAKER, "book": 0, "side": BUY,
                               "price": 100, "remaining": 8, "stp": 0, "flags": 0}  # fmt: skip


def test_an_amend_up_to_the_largest_quantity_is_valid(engine: Engine) -> None:
    book_from(engine, bids=[(99, [8])])
    assert run(engine, amend(1, 99, MAX_QUANTITY)) == [
        amended(1, BUY, 99, MAX_QUANTITY),
        level(BUY, 99, MAX_QUANTITY),
    ]
