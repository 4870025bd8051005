"""Post-only orders: rest as makers, or are rejected if they would trade on arrival."""

from __future__ import annotations

from exchange.engine import BUY, POST_ONLY, SELL, Engine, Reason

from .helpers import (
    ALL,
    accepted,
    add,
    amend,
    amended,
    book_from,
    book_table,
    level,
    rejected,
    run,
    trade,
)


def test_a_post_only_order_that_does_not_cross_rests(engine: Engine) -> None:
    book_from(engine, bids=[(99, [5])], asks=[(101, [5])])
    assert run(engine, add(10, BUY, 100, 2, flags=POST_ONLY), add(11, SELL, 102, 3, flags=POST_ONLY)) == [
        accepted(10, BUY, 100, 2),
        level(BUY, 100, 2),
        accepted(11, SELL, 102, 3),
        level(SELL, 102, 3),
    ]  # fmt: skip
    assert engine.order(10)["flags"] == POST_ONLY  # type: ignore[index]


def test_a_post_only_order_on_an_empty_opposite_side_rests(engine: Engine) -> None:
    book_from(engine, asks=[(150, [5])])
    assert run(engine, add(10, SELL, 1, 2, flags=POST_ONLY)) == [
        accepted(10, SELL, 1, 2),
        level(SELL, 1, 2),
    ]


def test_a_post_only_order_reaching_the_opposite_best_is_rejected(engine: Engine) -> None:
    book_from(engine, bids=[(99, [5])], asks=[(101, [5])])
    before = engine.state_hash()
    rows = [
        add(10, BUY, 101, 2, flags=POST_ONLY),
        add(11, BUY, 150, 2, flags=POST_ONLY),
        add(12, SELL, 99, 2, flags=POST_ONLY),
        add(13, SELL, 1, 2, flags=POST_ONLY),
    ]
    assert run(engine, *rows) == [rejected(r, Reason.POST_ONLY_WOULD_TRADE) for r in rows]
    assert engine.state_hash() == before


def test_a_resting_post_only_order_trades_as_a_maker(engine: Engine) -> None:
    run(engine, add(1, SELL, 101, 5, flags=POST_ONLY, account=100))
    assert run(engine, add(10, BUY, 101, 2)) == [
        accepted(10, BUY, 101, 2),
        trade(10, 1, 101, 2, side=BUY, remaining=0, maker_remaining=3),
        level(SELL, 101, 3),
    ]


def test_a_post_only_amend_that_would_cross_is_rejected(engine: Engine) -> None:
    book_from(engine, bids=[(99, [5])])
    run(engine, add(2, SELL, 103, 5, flags=POST_ONLY, account=100))
    before = engine.state_hash()
    rows = [amend(2, 99, 5), amend(2, 50, 1)]
    assert run(engine, *rows) == [rejected(r, Reason.POST_ONLY_WOULD_TRADE) for r in rows]
    assert engine.state_hash() == before


def test_a_post_only_amend_that_does_not_cross_moves_the_order(engine: Engine) -> None:
    book_from(engine, bids=[(99, [5])], asks=[(101, [1])])
    run(engine, add(3, SELL, 103, 5, flags=POST_ONLY, account=100))
    assert run(engine, amend(3, 100, 5)) == [
        amended(3, SELL, 100, 5),
        level(SELL, 103, 0),
        level(SELL, 100, 5),
    ]
    assert book_table(engine) == {
        "bids": [(99, [(1, 5)])],
        "asks": [(100, [(3, 5)]), (101, [(2, 1)])],
    }
    assert engine.depth(0, ALL) == ([(99, 5)], [(100, 5), (101, 1)])
