"""Self-trade prevention: the taker's ``stp`` mode decides when it meets its own account."""

from __future__ import annotations

import pytest

from exchange.engine import (
    BUY,
    FOK,
    IOC,
    SELL,
    STP_CANCEL_BOTH,
    STP_CANCEL_NEWEST,
    STP_CANCEL_OLDEST,
    STP_NONE,
    Engine,
    Reason,
)

from .helpers import (
    MAKER,
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

STP_MODES = [STP_NONE, STP_CANCEL_NEWEST, STP_CANCEL_OLDEST, STP_CANCEL_BOTH]


def test_stp_none_trades_with_itself(engine: Engine) -> None:
    book_from(engine, asks=[(101, [(5, TAKER)])])
    assert run(engine, add(10, BUY, 101, 3, stp=STP_NONE)) == [
        accepted(10, BUY, 101, 3),
        trade(10, 1, 101, 3, side=BUY, remaining=0, maker_remaining=2, maker_account=TAKER),
        level(SELL, 101, 2),
    ]


@pytest.mark.parametrize("stp", STP_MODES)
def test_stp_applies_only_to_the_same_account(engine: Engine, stp: int) -> None:
    book_from(engine, asks=[(101, [(5, 2)])])
    assert run(engine, add(10, BUY, 101, 3, stp=stp)) == [
        accepted(10, BUY, 101, 3),
        trade(10, 1, 101, 3, side=BUY, remaining=0, maker_remaining=2, maker_account=2),
        level(SELL, 101, 2),
    ]


def test_the_takers_mode_decides_not_the_makers(engine: Engine) -> None:
    run(engine, add(1, SELL, 101, 5, stp=STP_CANCEL_BOTH))
    assert run(engine, add(10, BUY, 101, 3, stp=STP_NONE)) == [
        accepted(10, BUY, 101, 3),
        trade(10, 1, 101, 3, side=BUY, remaining=0, maker_remaining=2, maker_account=TAKER),
        level(SELL, 101, 2),
    ]


def test_cancel_newest_cancels_the_taker_and_stops(engine: Engine) -> None:
    book_from(engine, asks=[(101, [5, (5, TAKER), 5]), (102, [5])])
    assert run(engine, add(10, BUY, 102, 12, stp=STP_CANCEL_NEWEST)) == [
        accepted(10, BUY, 102, 12),
        trade(10, 1, 101, 5, side=BUY, remaining=7, maker_remaining=0),
        level(SELL, 101, 10),
        cancelled(10, BUY, 102, 7, Reason.SELF_TRADE),
    ]
    assert book_table(engine) == {"bids": [], "asks": [(101, [(2, 5), (3, 5)]), (102, [(4, 5)])]}


def test_cancel_newest_at_an_untouched_level_writes_no_level_event(engine: Engine) -> None:
    book_from(engine, asks=[(101, [(5, TAKER), 5])])
    before = engine.state_hash()
    assert run(engine, add(10, BUY, 101, 3, stp=STP_CANCEL_NEWEST)) == [
        accepted(10, BUY, 101, 3),
        cancelled(10, BUY, 101, 3, Reason.SELF_TRADE),
    ]
    assert engine.state_hash() == before


def test_cancel_oldest_cancels_the_resting_order_and_matches_the_next(engine: Engine) -> None:
    book_from(engine, asks=[(101, [(5, TAKER), 4]), (102, [(6, TAKER), 2, (1, TAKER)])])
    assert run(engine, add(10, BUY, 102, 8, stp=STP_CANCEL_OLDEST)) == [
        accepted(10, BUY, 102, 8),
        cancelled(1, SELL, 101, 5, Reason.SELF_TRADE),
        trade(10, 2, 101, 4, side=BUY, remaining=4, maker_remaining=0),
        level(SELL, 101, 0),
        cancelled(3, SELL, 102, 6, Reason.SELF_TRADE),
        trade(10, 4, 102, 2, side=BUY, remaining=2, maker_remaining=0),
        cancelled(5, SELL, 102, 1, Reason.SELF_TRADE),
        level(SELL, 102, 0),
        level(BUY, 102, 2),
    ]
    assert book_table(engine) == {"bids": [(102, [(10, 2)])], "asks": []}


def test_cancel_oldest_against_only_own_orders_then_rests(engine: Engine) -> None:
    book_from(engine, asks=[(101, [(5, TAKER)])])
    assert run(engine, add(10, BUY, 101, 3, stp=STP_CANCEL_OLDEST)) == [
        accepted(10, BUY, 101, 3),
        cancelled(1, SELL, 101, 5, Reason.SELF_TRADE),
        level(SELL, 101, 0),
        level(BUY, 101, 3),
    ]


def test_cancel_oldest_stops_once_filled(engine: Engine) -> None:
    book_from(engine, asks=[(101, [3, (5, TAKER)])])
    assert run(engine, add(10, BUY, 101, 3, stp=STP_CANCEL_OLDEST)) == [
        accepted(10, BUY, 101, 3),
        trade(10, 1, 101, 3, side=BUY, remaining=0, maker_remaining=0),
        level(SELL, 101, 5),
    ]


def test_cancel_both_cancels_the_resting_order_then_the_taker(engine: Engine) -> None:
    book_from(engine, asks=[(101, [5, (5, TAKER), 5])])
    assert run(engine, add(10, BUY, 101, 12, stp=STP_CANCEL_BOTH)) == [
        accepted(10, BUY, 101, 12),
        trade(10, 1, 101, 5, side=BUY, remaining=7, maker_remaining=0),
        cancelled(2, SELL, 101, 5, Reason.SELF_TRADE),
        level(SELL, 101, 5),
        cancelled(10, BUY, 101, 7, Reason.SELF_TRADE),
    ]
    assert book_table(engine) == {"bids": [], "asks": [(101, [(3, 5)])]}


def test_cancel_both_on_the_sell_side(engine: Engine) -> None:
    book_from(engine, bids=[(100, [(2, TAKER)]), (99, [4])])
    assert run(engine, add(10, SELL, 99, 5, stp=STP_CANCEL_BOTH)) == [
        accepted(10, SELL, 99, 5),
        cancelled(1, BUY, 100, 2, Reason.SELF_TRADE),
        level(BUY, 100, 0),
        cancelled(10, SELL, 99, 5, Reason.SELF_TRADE),
    ]
    assert book_table(engine) == {"bids": [(99, [(2, 4)])], "asks": []}


@pytest.mark.parametrize(
    ("stp", "own_order"),
    [
        (STP_CANCEL_NEWEST, []),
        (STP_CANCEL_BOTH, [cancelled(1, SELL, 101, 5, Reason.SELF_TRADE), level(SELL, 101, 0)]),
    ],
)
@pytest.mark.parametrize(
    ("taker", "price"), [(add(10, BUY, 101, 3, tif=IOC), 101), (market(10, BUY, 3), 0)]
)
def test_a_self_trade_stop_beats_the_ioc_and_market_reasons(
    engine: Engine,
    stp: int,
    own_order: list[dict[str, int | str]],
    taker: dict[str, int],
    price: int,
) -> None:
    book_from(engine, asks=[(101, [(5, TAKER)])])
    assert run(engine, taker | {"stp": stp}) == [
        accepted(10, BUY, price, 3),
        *own_order,
        cancelled(10, BUY, price, 3, Reason.SELF_TRADE),
    ]


def test_a_market_order_with_cancel_oldest_clears_own_orders_then_runs_dry(
    engine: Engine,
) -> None:
    book_from(engine, asks=[(101, [(5, TAKER)]), (102, [2])])
    assert run(engine, market(10, BUY, 4, stp=STP_CANCEL_OLDEST)) == [
        accepted(10, BUY, 0, 4),
        cancelled(1, SELL, 101, 5, Reason.SELF_TRADE),
        level(SELL, 101, 0),
        trade(10, 2, 102, 2, side=BUY, remaining=2, maker_remaining=0),
        level(SELL, 102, 0),
        cancelled(10, BUY, 0, 2, Reason.MARKET_NO_LIQUIDITY),
    ]


def test_a_fok_with_cancel_oldest_clears_own_orders_as_it_fills(engine: Engine) -> None:
    book_from(engine, asks=[(101, [(5, TAKER), 3])], account=MAKER)
    assert run(engine, add(10, BUY, 101, 3, tif=FOK, stp=STP_CANCEL_OLDEST)) == [
        accepted(10, BUY, 101, 3),
        cancelled(1, SELL, 101, 5, Reason.SELF_TRADE),
        trade(10, 2, 101, 3, side=BUY, remaining=0, maker_remaining=0),
        level(SELL, 101, 0),
    ]
