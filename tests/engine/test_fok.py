"""Fill-or-kill orders: fill completely at once or are cancelled without touching the book.

The fill check sums the opposite side within the limit in priority order, skipping the
taker's own orders under STP_CANCEL_OLDEST and stopping at the first of them under
STP_CANCEL_NEWEST or STP_CANCEL_BOTH.
"""

from __future__ import annotations

import pytest

from exchange.engine import (
    BUY,
    FOK,
    SELL,
    STP_CANCEL_BOTH,
    STP_CANCEL_NEWEST,
    STP_CANCEL_OLDEST,
    STP_NONE,
    Engine,
    Reason,
)

from .helpers import (
    TAKER,
    accepted,
    add,
    book_from,
    book_table,
    cancelled,
    level,
    market,
    run,
    trade,
)


def test_a_fok_that_can_fill_trades_across_levels(engine: Engine) -> None:
    book_from(engine, asks=[(101, [3]), (102, [4, 5])])
    assert run(engine, add(10, BUY, 102, 9, tif=FOK)) == [
        accepted(10, BUY, 102, 9),
        trade(10, 1, 101, 3, side=BUY, remaining=6, maker_remaining=0),
        level(SELL, 101, 0),
        trade(10, 2, 102, 4, side=BUY, remaining=2, maker_remaining=0),
        trade(10, 3, 102, 2, side=BUY, remaining=0, maker_remaining=3),
        level(SELL, 102, 3),
    ]


def test_a_fok_for_exactly_the_available_quantity_fills(engine: Engine) -> None:
    book_from(engine, bids=[(100, [3]), (99, [4])])
    assert run(engine, add(10, SELL, 99, 7, tif=FOK)) == [
        accepted(10, SELL, 99, 7),
        trade(10, 1, 100, 3, side=SELL, remaining=4, maker_remaining=0),
        level(BUY, 100, 0),
        trade(10, 2, 99, 4, side=SELL, remaining=0, maker_remaining=0),
        level(BUY, 99, 0),
    ]
    assert engine.depth(0) == ([], [])


def test_a_fok_counts_only_liquidity_within_its_limit(engine: Engine) -> None:
    book_from(engine, asks=[(101, [3]), (102, [4]), (103, [50])])
    before = engine.state_hash()
    assert run(engine, add(10, BUY, 102, 8, tif=FOK)) == [
        accepted(10, BUY, 102, 8),
        cancelled(10, BUY, 102, 8, Reason.FOK_NOT_FILLED),
    ]
    assert engine.state_hash() == before


def test_a_market_fok_has_no_limit(engine: Engine) -> None:
    book_from(engine, asks=[(101, [3]), (199, [4])])
    assert run(engine, market(10, BUY, 5, tif=FOK)) == [
        accepted(10, BUY, 0, 5),
        trade(10, 1, 101, 3, side=BUY, remaining=2, maker_remaining=0),
        level(SELL, 101, 0),
        trade(10, 2, 199, 2, side=BUY, remaining=0, maker_remaining=2),
        level(SELL, 199, 2),
    ]


def test_an_unfillable_market_fok_is_not_filled_rather_than_out_of_liquidity(
    engine: Engine,
) -> None:
    book_from(engine, asks=[(101, [3]), (199, [4])])
    before = engine.state_hash()
    assert run(engine, market(10, BUY, 8, tif=FOK)) == [
        accepted(10, BUY, 0, 8),
        cancelled(10, BUY, 0, 8, Reason.FOK_NOT_FILLED),
    ]
    assert engine.state_hash() == before


def test_a_fok_with_stp_none_counts_and_trades_its_own_orders(engine: Engine) -> None:
    book_from(engine, asks=[(101, [(4, TAKER), 4])])
    assert run(engine, add(10, BUY, 101, 6, tif=FOK, stp=STP_NONE)) == [
        accepted(10, BUY, 101, 6),
        trade(10, 1, 101, 4, side=BUY, remaining=2, maker_remaining=0, maker_account=TAKER),
        trade(10, 2, 101, 2, side=BUY, remaining=0, maker_remaining=2),
        level(SELL, 101, 2),
    ]


def test_a_fok_cancel_oldest_skips_its_own_orders_when_counting(engine: Engine) -> None:
    book_from(engine, asks=[(101, [(4, TAKER), 3]), (102, [(9, TAKER), 2])])
    before = engine.state_hash()
    # 3 + 2 foreign lots within the limit: 6 cannot fill, and nothing is cancelled
    assert run(engine, add(10, BUY, 102, 6, tif=FOK, stp=STP_CANCEL_OLDEST)) == [
        accepted(10, BUY, 102, 6),
        cancelled(10, BUY, 102, 6, Reason.FOK_NOT_FILLED),
    ]
    assert engine.state_hash() == before
    # 5 can: the own orders on the way are cancelled as the order matches
    assert run(engine, add(11, BUY, 102, 5, tif=FOK, stp=STP_CANCEL_OLDEST)) == [
        accepted(11, BUY, 102, 5),
        cancelled(1, SELL, 101, 4, Reason.SELF_TRADE),
        trade(11, 2, 101, 3, side=BUY, remaining=2, maker_remaining=0),
        level(SELL, 101, 0),
        cancelled(3, SELL, 102, 9, Reason.SELF_TRADE),
        trade(11, 4, 102, 2, side=BUY, remaining=0, maker_remaining=0),
        level(SELL, 102, 0),
    ]
    assert engine.depth(0) == ([], [])


@pytest.mark.parametrize("stp", [STP_CANCEL_NEWEST, STP_CANCEL_BOTH])
def test_a_fok_stops_counting_at_its_first_own_order(engine: Engine, stp: int) -> None:
    book_from(engine, asks=[(101, [3, (4, TAKER), 5])])
    before = engine.state_hash()
    assert run(engine, add(10, BUY, 101, 4, tif=FOK, stp=stp)) == [
        accepted(10, BUY, 101, 4),
        cancelled(10, BUY, 101, 4, Reason.FOK_NOT_FILLED),
    ]
    assert engine.state_hash() == before


@pytest.mark.parametrize("stp", [STP_CANCEL_NEWEST, STP_CANCEL_BOTH])
def test_a_fok_filled_before_its_own_order_leaves_it_alone(engine: Engine, stp: int) -> None:
    book_from(engine, asks=[(101, [3, (4, TAKER), 5])])
    assert run(engine, add(10, BUY, 101, 3, tif=FOK, stp=stp)) == [
        accepted(10, BUY, 101, 3),
        trade(10, 1, 101, 3, side=BUY, remaining=0, maker_remaining=0),
        level(SELL, 101, 9),
    ]
    assert book_table(engine) == {"bids": [], "asks": [(101, [(2, 4), (3, 5)])]}
