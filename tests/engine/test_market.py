"""Market orders: no price limit, never rest; an unfilled remainder is cancelled."""

from __future__ import annotations

import pytest

from exchange.engine import BUY, GTC, IOC, SELL, Engine, Reason

from .helpers import (
    ALL,
    accepted,
    book_from,
    book_table,
    cancelled,
    level,
    market,
    run,
    trade,
)


def test_a_market_buy_sweeps_every_price(engine: Engine) -> None:
    book_from(engine, bids=[(99, [5])], asks=[(101, [2]), (150, [3]), (199, [4])])
    assert run(engine, market(10, BUY, 8)) == [
        accepted(10, BUY, 0, 8),
        trade(10, 2, 101, 2, side=BUY, remaining=6, maker_remaining=0),
        level(SELL, 101, 0),
        trade(10, 3, 150, 3, side=BUY, remaining=3, maker_remaining=0),
        level(SELL, 150, 0),
        trade(10, 4, 199, 3, side=BUY, remaining=0, maker_remaining=1),
        level(SELL, 199, 1),
    ]
    assert book_table(engine) == {"bids": [(99, [(1, 5)])], "asks": [(199, [(4, 1)])]}


def test_a_market_sell_sweeps_down_to_the_lowest_bid(engine: Engine) -> None:
    book_from(engine, bids=[(100, [2]), (1, [3])], asks=[(101, [5])])
    assert run(engine, market(10, SELL, 5)) == [
        accepted(10, SELL, 0, 5),
        trade(10, 1, 100, 2, side=SELL, remaining=3, maker_remaining=0),
        level(BUY, 100, 0),
        trade(10, 2, 1, 3, side=SELL, remaining=0, maker_remaining=0),
        level(BUY, 1, 0),
    ]
    assert engine.depth(0, ALL) == ([], [(101, 5)])


@pytest.mark.parametrize("tif", [GTC, IOC])
def test_an_unfilled_market_remainder_is_cancelled_never_rested(engine: Engine, tif: int) -> None:
    book_from(engine, asks=[(101, [3])])
    assert run(engine, market(10, BUY, 5, tif=tif)) == [
        accepted(10, BUY, 0, 5),
        trade(10, 1, 101, 3, side=BUY, remaining=2, maker_remaining=0),
        level(SELL, 101, 0),
        cancelled(10, BUY, 0, 2, Reason.MARKET_NO_LIQUIDITY),
    ]
    assert engine.depth(0, ALL) == ([], [])
    assert engine.order(10) is None


def test_a_market_order_on_an_empty_side_is_cancelled(engine: Engine) -> None:
    book_from(engine, bids=[(99, [5])])
    before = engine.state_hash()
    assert run(engine, market(10, BUY, 5)) == [
        accepted(10, BUY, 0, 5),
        cancelled(10, BUY, 0, 5, Reason.MARKET_NO_LIQUIDITY),
    ]
    assert engine.state_hash() == before


@pytest.mark.parametrize("price", [-1, 0, 200, 10**12])
def test_a_market_orders_price_is_ignored(engine: Engine, price: int) -> None:
    book_from(engine, asks=[(101, [5])])
    row = market(10, BUY, 5) | {"price": price}
    assert run(engine, row) == [
        accepted(10, BUY, 0, 5),
        trade(10, 1, 101, 5, side=BUY, remaining=0, maker_remaining=0),
        level(SELL, 101, 0),
    ]
