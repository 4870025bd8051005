"""GTC limit orders: resting, price-time priority, trades at the maker's price, LEVEL events."""

from __future__ import annotations

from exchange.engine import BUY, SELL, Engine

from .helpers import (
    ALL,
    accepted,
    add,
    book_from,
    book_table,
    level,
    run,
    trade,
)


def test_a_limit_order_on_an_empty_book_rests(engine: Engine) -> None:
    assert run(engine, add(1, BUY, 100, 10)) == [
        accepted(1, BUY, 100, 10),
        level(BUY, 100, 10),
    ]
    assert engine.depth(0, ALL) == ([(100, 10)], [])
    assert engine.order(1) == {"order_id": 1, "account": 1, "book": 0, "side": BUY,
                               "price": 100, "remaining": 10, "stp": 0, "flags": 0}  # fmt: skip


def test_orders_rest_at_the_tail_of_their_level(engine: Engine) -> None:
    book_from(engine, bids=[(100, [40, 10]), (99, [5])], asks=[(101, [3]), (103, [7, 2])])
    assert run(engine, add(10, BUY, 100, 6), add(11, SELL, 103, 1)) == [
        accepted(10, BUY, 100, 6),
        level(BUY, 100, 56),
        accepted(11, SELL, 103, 1),
        level(SELL, 103, 10),
    ]
    assert book_table(engine) == {
        "bids": [(100, [(1, 40), (2, 10), (10, 6)]), (99, [(3, 5)])],
        "asks": [(101, [(4, 3)]), (103, [(5, 7), (6, 2), (11, 1)])],
    }
    assert engine.depth(0, ALL) == ([(100, 56), (99, 5)], [(101, 3), (103, 10)])


def test_a_crossing_buy_trades_at_the_makers_price(engine: Engine) -> None:
    book_from(engine, asks=[(101, [5])])
    assert run(engine, add(10, BUY, 105, 5)) == [
        accepted(10, BUY, 105, 5),
        trade(10, 1, 101, 5, side=BUY, remaining=0, maker_remaining=0),
        level(SELL, 101, 0),
    ]
    assert engine.depth(0, ALL) == ([], [])
    assert engine.order(10) is None
    assert engine.order(1) is None


def test_a_crossing_sell_trades_at_the_makers_price(engine: Engine) -> None:
    book_from(engine, bids=[(100, [5])])
    assert run(engine, add(10, SELL, 95, 3)) == [
        accepted(10, SELL, 95, 3),
        trade(10, 1, 100, 3, side=SELL, remaining=0, maker_remaining=2),
        level(BUY, 100, 2),
    ]
    assert book_table(engine) == {"bids": [(100, [(1, 2)])], "asks": []}


def test_inside_a_level_the_oldest_order_trades_first(engine: Engine) -> None:
    book_from(engine, asks=[(101, [5, 5, 5])])
    assert run(engine, add(10, BUY, 101, 7)) == [
        accepted(10, BUY, 101, 7),
        trade(10, 1, 101, 5, side=BUY, remaining=2, maker_remaining=0),
        trade(10, 2, 101, 2, side=BUY, remaining=0, maker_remaining=3),
        level(SELL, 101, 8),
    ]
    assert book_table(engine) == {"bids": [], "asks": [(101, [(2, 3), (3, 5)])]}


def test_a_partly_filled_maker_keeps_its_place(engine: Engine) -> None:
    book_from(engine, asks=[(101, [10, 5])])
    run(engine, add(10, BUY, 101, 4))
    assert run(engine, add(11, BUY, 101, 8)) == [
        accepted(11, BUY, 101, 8),
        trade(11, 1, 101, 6, side=BUY, remaining=2, maker_remaining=0),
        trade(11, 2, 101, 2, side=BUY, remaining=0, maker_remaining=3),
        level(SELL, 101, 3),
    ]


def test_the_best_price_trades_first_whatever_the_arrival_order(engine: Engine) -> None:
    # the asks at 102 arrived before the ask at 101
    book_from(engine, asks=[(102, [4]), (101, [4])])
    assert run(engine, add(10, BUY, 102, 6)) == [
        accepted(10, BUY, 102, 6),
        trade(10, 2, 101, 4, side=BUY, remaining=2, maker_remaining=0),
        level(SELL, 101, 0),
        trade(10, 1, 102, 2, side=BUY, remaining=0, maker_remaining=2),
        level(SELL, 102, 2),
    ]


def test_a_sell_walks_the_bids_from_the_highest(engine: Engine) -> None:
    book_from(engine, bids=[(98, [1]), (100, [2]), (99, [3])])
    assert run(engine, add(10, SELL, 1, 6)) == [
        accepted(10, SELL, 1, 6),
        trade(10, 2, 100, 2, side=SELL, remaining=4, maker_remaining=0),
        level(BUY, 100, 0),
        trade(10, 3, 99, 3, side=SELL, remaining=1, maker_remaining=0),
        level(BUY, 99, 0),
        trade(10, 1, 98, 1, side=SELL, remaining=0, maker_remaining=0),
        level(BUY, 98, 0),
    ]
    assert engine.depth(0, ALL) == ([], [])


def test_a_sweep_stops_at_the_limit_and_the_remainder_rests(engine: Engine) -> None:
    book_from(engine, asks=[(101, [5]), (102, [2, 3]), (103, [5])])
    assert run(engine, add(10, BUY, 102, 20)) == [
        accepted(10, BUY, 102, 20),
        trade(10, 1, 101, 5, side=BUY, remaining=15, maker_remaining=0),
        level(SELL, 101, 0),
        trade(10, 2, 102, 2, side=BUY, remaining=13, maker_remaining=0),
        trade(10, 3, 102, 3, side=BUY, remaining=10, maker_remaining=0),
        level(SELL, 102, 0),
        level(BUY, 102, 10),
    ]
    assert book_table(engine) == {"bids": [(102, [(10, 10)])], "asks": [(103, [(4, 5)])]}


def test_only_levels_the_taker_touched_get_a_level_event(engine: Engine) -> None:
    # the taker fills inside the first level: one LEVEL for it, none for 102 or its own side
    book_from(engine, bids=[(99, [5])], asks=[(101, [5, 5]), (102, [5])])
    assert run(engine, add(10, BUY, 102, 7)) == [
        accepted(10, BUY, 102, 7),
        trade(10, 2, 101, 5, side=BUY, remaining=2, maker_remaining=0),
        trade(10, 3, 101, 2, side=BUY, remaining=0, maker_remaining=3),
        level(SELL, 101, 3),
    ]
    assert engine.depth(0, ALL) == ([(99, 5)], [(101, 3), (102, 5)])


def test_a_limit_that_does_not_reach_the_best_rests_without_trading(engine: Engine) -> None:
    book_from(engine, bids=[(99, [5])], asks=[(101, [5])])
    assert run(engine, add(10, BUY, 100, 1), add(11, SELL, 100, 1)) == [
        accepted(10, BUY, 100, 1),
        level(BUY, 100, 1),
        accepted(11, SELL, 100, 1),
        trade(11, 10, 100, 1, side=SELL, remaining=0, maker_remaining=0, maker_account=1),
        level(BUY, 100, 0),
    ]
    assert engine.depth(0, ALL) == ([(99, 5)], [(101, 5)])


def test_ladder_edges_are_valid_prices(engine: Engine) -> None:
    assert run(engine, add(1, BUY, 1, 1), add(2, SELL, 199, 1)) == [
        accepted(1, BUY, 1, 1),
        level(BUY, 1, 1),
        accepted(2, SELL, 199, 1),
        level(SELL, 199, 1),
    ]
    assert engine.depth(0, ALL) == ([(1, 1)], [(199, 1)])


def test_depth_lists_best_first_and_truncates(engine: Engine) -> None:
    book_from(engine, bids=[(97, [1]), (99, [2]), (98, [3])], asks=[(103, [4]), (101, [5])])
    assert engine.depth(0, 2) == ([(99, 2), (98, 3)], [(101, 5), (103, 4)])
    assert engine.depth(0, 1) == ([(99, 2)], [(101, 5)])
    assert engine.depth(0, 0) == ([], [])
    assert engine.depth(1, ALL) == ([], [])
