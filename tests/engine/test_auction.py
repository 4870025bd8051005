"""Batch-mode books and uniform-price call auctions, on both backends."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.engine import (
    ADD,
    AMEND,
    AUCTION,
    BATCH,
    BUY,
    COMMAND_DTYPE,
    IOC,
    MARKET,
    OPEN_CONTINUOUS,
    POST_ONLY,
    PRO_RATA,
    SELL,
    STP_CANCEL_BOTH,
    STP_CANCEL_NEWEST,
    STP_CANCEL_OLDEST,
    STP_NONE,
    TRADE,
    UNCROSSED,
    Engine,
    Reason,
    commands,
    describe,
)

BACKENDS = ["reference", "numba"]


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Engine:
    e = Engine(backend=request.param)
    e.add_book(0, n_ticks=200, mechanism=BATCH)
    return e


def _orders(rows: list[tuple[int, int, int, int, int]]) -> list[dict[str, int]]:
    """Rows of (order_id, account, side, price, quantity) as ADD commands on book 0."""
    return [
        {"kind": ADD, "book": 0, "order_id": o, "account": a, "side": s, "price": p, "quantity": q}
        for o, a, s, p, q in rows
    ]


def _auction(flags: int = 0) -> dict[str, int]:
    return {"kind": AUCTION, "book": 0, "flags": flags}


def test_batch_book_rests_crossing_orders_until_the_auction(engine: Engine) -> None:
    events = engine.process(commands(_orders([(1, 1, BUY, 105, 10), (2, 2, SELL, 100, 5)])))
    assert [e["kind"] for e in describe(events)] == ["ACCEPTED", "LEVEL", "ACCEPTED", "LEVEL"]
    assert engine.depth(0) == ([(105, 10)], [(100, 5)])
    engine.check_invariants()


def test_clearing_price_is_the_midpoint_of_the_max_volume_interval(engine: Engine) -> None:
    engine.process(
        commands(_orders([(1, 1, BUY, 105, 10), (2, 2, SELL, 100, 5), (3, 3, SELL, 103, 5)]))
    )
    events = describe(engine.process(commands([_auction()])))
    # volume is 5 from 100 to 102 and 10 from 103 to 105: the price is 104
    assert events == [
        {"kind": "UNCROSSED", "price": 104, "quantity": 10},
        {"kind": "TRADE", "order_id": 1, "maker_order_id": 2, "account": 1, "maker_account": 2,
         "price": 104, "quantity": 5, "remaining": 5},
        {"kind": "TRADE", "order_id": 1, "maker_order_id": 3, "account": 1, "maker_account": 3,
         "price": 104, "quantity": 5},
        {"kind": "LEVEL", "price": 105},
        {"kind": "LEVEL", "price": 100, "side": SELL},
        {"kind": "LEVEL", "price": 103, "side": SELL},
    ]  # fmt: skip
    assert engine.depth(0) == ([], [])


def test_midpoint_rounds_down_to_the_tick_grid(engine: Engine) -> None:
    engine.process(commands(_orders([(1, 1, BUY, 101, 4), (2, 2, SELL, 100, 4)])))
    assert describe(engine.process(commands([_auction()])))[0] == {
        "kind": "UNCROSSED",
        "price": 100,
        "quantity": 4,
    }


def test_time_priority_rations_the_marginal_level(engine: Engine) -> None:
    engine.process(
        commands(_orders([(1, 1, BUY, 100, 6), (2, 2, BUY, 100, 6), (3, 3, SELL, 100, 8)]))
    )
    trades = [e for e in describe(engine.process(commands([_auction()]))) if e["kind"] == "TRADE"]
    assert [(t["order_id"], t["quantity"]) for t in trades] == [(1, 6), (2, 2)]
    assert engine.depth(0) == ([(100, 4)], [])
    assert engine.order(2)["remaining"] == 4  # type: ignore[index]


def test_pro_rata_gives_odd_lots_to_the_largest_remainders(engine: Engine) -> None:
    # buys of 5, 5, 5 share the 7 sold: 2 each with equal remainders, so the odd lot goes
    # to the earliest order
    engine.process(
        commands(
            _orders(
                [(1, 1, BUY, 100, 5), (2, 2, BUY, 100, 5), (3, 3, BUY, 100, 5), (4, 4, SELL, 99, 7)]
            )
        )
    )
    events = describe(engine.process(commands([_auction(PRO_RATA)])))
    assert events[0] == {"kind": "UNCROSSED", "price": 99, "quantity": 7}
    fills = {t["order_id"]: t["quantity"] for t in events if t["kind"] == "TRADE"}
    assert fills == {1: 3, 2: 2, 3: 2}
    assert engine.depth(0) == ([(100, 8)], [])


def test_pro_rata_prefers_larger_remainders_over_time(engine: Engine) -> None:
    # shares of 5 among 2, 7: 5*2/9 = 1 r1, 5*7/9 = 3 r8 -> the odd lot goes to order 2
    engine.process(
        commands(_orders([(1, 1, SELL, 100, 2), (2, 2, SELL, 100, 7), (3, 3, BUY, 100, 5)]))
    )
    events = describe(engine.process(commands([_auction(PRO_RATA)])))
    fills = {t["maker_order_id"]: t["quantity"] for t in events if t["kind"] == "TRADE"}
    assert fills == {1: 1, 2: 4}


def test_auction_without_a_cross_trades_nothing(engine: Engine) -> None:
    engine.process(commands(_orders([(1, 1, BUY, 99, 5), (2, 2, SELL, 100, 5)])))
    before = engine.state_hash()
    assert describe(engine.process(commands([_auction()]))) == [{"kind": "UNCROSSED"}]
    assert engine.state_hash() == before


def test_opening_auction_switches_to_continuous(engine: Engine) -> None:
    engine.process(commands(_orders([(1, 1, BUY, 101, 5), (2, 2, SELL, 100, 3)])))
    engine.process(commands([_auction(OPEN_CONTINUOUS)]))
    assert engine.books() == [(0, 200, 0)]
    events = describe(engine.process(commands(_orders([(3, 3, SELL, 101, 2)]))))
    assert [e["kind"] for e in events] == ["ACCEPTED", "TRADE", "LEVEL"]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"tif": IOC}, Reason.BATCH_ORDER_TYPE),
        ({"flags": MARKET}, Reason.BATCH_ORDER_TYPE),
        ({"flags": POST_ONLY}, Reason.BATCH_ORDER_TYPE),
    ],
)
def test_batch_books_take_gtc_limit_orders_only(
    engine: Engine, fields: dict[str, int], reason: Reason
) -> None:
    row = _orders([(1, 1, BUY, 100, 5)])[0] | fields
    events = describe(engine.process(commands([row])))
    assert [(e["kind"], e["reason"]) for e in events] == [("REJECTED", reason.name)]
    assert engine.depth(0) == ([], [])


def test_auction_with_unknown_flags_is_rejected(engine: Engine) -> None:
    events = describe(engine.process(commands([_auction(16)])))
    assert [(e["kind"], e["reason"]) for e in events] == [("REJECTED", "INVALID_FLAGS")]


def test_amend_in_a_batch_book_never_trades(engine: Engine) -> None:
    engine.process(commands(_orders([(1, 1, BUY, 99, 5), (2, 2, SELL, 100, 5)])))
    events = describe(
        engine.process(
            commands(
                [
                    {
                        "kind": AMEND,
                        "book": 0,
                        "order_id": 1,
                        "account": 1,
                        "price": 102,
                        "quantity": 5,
                    }
                ]
            )
        )
    )
    assert [e["kind"] for e in events] == ["AMENDED", "LEVEL", "LEVEL"]
    assert engine.depth(0) == ([(102, 5)], [(100, 5)])


def _add(order_id: int, account: int, side: int, price: int, quantity: int,
         stp: int = STP_CANCEL_NEWEST) -> dict[str, int]:  # fmt: skip
    return {"kind": ADD, "book": 0, "order_id": order_id, "account": account, "side": side,
            "price": price, "quantity": quantity, "stp": stp}  # fmt: skip


def _kinds(events: list[dict[str, int | str]]) -> list[tuple[object, ...]]:
    """Events as (kind, order id, reason) or ("LEVEL", side, price, quantity)."""
    return [(e["kind"], e["order_id"], e.get("reason", "NONE")) if e["kind"] != "LEVEL"
            else ("LEVEL", ("BUY", "SELL")[int(e.get("side", 0))], e["price"], e.get("quantity", 0))
            for e in events]  # fmt: skip


def _self_trades(events: np.ndarray) -> int:
    trades = events[events["kind"] == TRADE]
    return int((trades["account"] == trades["maker_account"]).sum())


def test_cancel_newest_refuses_to_cross_the_accounts_own_orders(engine: Engine) -> None:
    engine.process(commands([_add(1, 1, BUY, 100, 5), _add(2, 2, BUY, 101, 5)]))
    events = describe(engine.process(commands([_add(3, 1, SELL, 99, 5, STP_CANCEL_NEWEST)])))
    assert _kinds(events) == [("ACCEPTED", 3, "NONE"), ("CANCELLED", 3, "SELF_TRADE")]
    assert engine.depth(0) == ([(101, 5), (100, 5)], [])
    engine.check_invariants()


def test_cancel_oldest_cancels_every_own_order_crossed_and_rests(engine: Engine) -> None:
    # account 1 bids at 102 and 100 (with account 2 between them in time), bids at 98
    engine.process(commands([_add(1, 1, BUY, 102, 5), _add(2, 2, BUY, 100, 4),
                             _add(3, 1, BUY, 100, 3), _add(4, 1, BUY, 98, 2)]))  # fmt: skip
    events = describe(engine.process(commands([_add(5, 1, SELL, 100, 6, STP_CANCEL_OLDEST)])))
    assert _kinds(events) == [
        ("ACCEPTED", 5, "NONE"),
        ("CANCELLED", 1, "SELF_TRADE"),
        ("LEVEL", "BUY", 102, 0),
        ("CANCELLED", 3, "SELF_TRADE"),
        ("LEVEL", "BUY", 100, 4),
        ("LEVEL", "SELL", 100, 6),
    ]
    assert engine.depth(0) == ([(100, 4), (98, 2)], [(100, 6)])
    auction = engine.process(commands([_auction()]))
    assert _self_trades(auction) == 0
    assert auction[auction["kind"] == TRADE]["maker_account"].tolist() == [1]  # order 5
    engine.check_invariants()


def test_cancel_both_cancels_the_best_own_order_and_the_newcomer(engine: Engine) -> None:
    engine.process(commands([_add(1, 1, SELL, 100, 5), _add(2, 1, SELL, 101, 5)]))
    events = describe(engine.process(commands([_add(3, 1, BUY, 101, 5, STP_CANCEL_BOTH)])))
    assert _kinds(events) == [
        ("ACCEPTED", 3, "NONE"),
        ("CANCELLED", 1, "SELF_TRADE"),
        ("LEVEL", "SELL", 100, 0),
        ("CANCELLED", 3, "SELF_TRADE"),
    ]
    assert engine.depth(0) == ([], [(101, 5)])


def test_stp_none_may_trade_with_itself_in_the_auction(engine: Engine) -> None:
    engine.process(commands([_add(1, 1, BUY, 100, 5), _add(2, 1, SELL, 100, 5, STP_NONE)]))
    assert _self_trades(engine.process(commands([_auction()]))) == 1


def test_own_orders_that_do_not_cross_are_left_alone(engine: Engine) -> None:
    engine.process(commands([_add(1, 1, BUY, 99, 5), _add(2, 2, SELL, 98, 5)]))
    events = describe(engine.process(commands([_add(3, 1, SELL, 100, 5, STP_CANCEL_BOTH)])))
    assert _kinds(events) == [("ACCEPTED", 3, "NONE"), ("LEVEL", "SELL", 100, 5)]


def test_an_amend_across_own_orders_is_cancelled(engine: Engine) -> None:
    engine.process(commands([_add(1, 1, BUY, 99, 5), _add(2, 1, SELL, 101, 5)]))
    amend = {"kind": AMEND, "book": 0, "order_id": 1, "account": 1, "price": 101, "quantity": 5}
    events = describe(engine.process(commands([amend])))
    assert _kinds(events) == [
        ("AMENDED", 1, "NONE"),
        ("LEVEL", "BUY", 99, 0),
        ("CANCELLED", 1, "SELF_TRADE"),
    ]
    assert engine.depth(0) == ([], [(101, 5)])
    engine.check_invariants()


_rows = st.lists(
    st.tuples(
        st.sampled_from([ADD, ADD, ADD, AUCTION]),
        st.integers(0, 3),  # account
        st.sampled_from([BUY, SELL]),
        st.integers(95, 105),  # price
        st.integers(1, 20),  # quantity
        st.sampled_from([0, PRO_RATA]),
        st.sampled_from([STP_NONE, STP_CANCEL_NEWEST, STP_CANCEL_OLDEST, STP_CANCEL_BOTH]),
        st.integers(0, 7),  # amend an earlier order (0: add, as drawn)
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(rows=_rows)
def test_backends_agree_and_every_auction_uncrosses(rows: list[tuple[int, ...]]) -> None:
    """Orders of four accounts, with every self-trade prevention mode, some amended; two
    orders of one account trade with each other only if one of them said ``STP_NONE``."""
    cmds = np.zeros(len(rows), dtype=COMMAND_DTYPE)
    for i, (kind, account, side, price, quantity, flags, stp, amend) in enumerate(rows):
        order_id = i + 1
        if kind == ADD and 0 < amend < i and rows[i - amend][0] == ADD:
            kind, order_id, account = AMEND, i - amend + 1, rows[i - amend][1]
        cmds[i] = (i + 1, i, order_id, account, price, quantity, 0, kind, side, 0,
                   flags if kind == AUCTION else 0, stp)  # fmt: skip
    careless = {int(c["order_id"]) for c in cmds if c["kind"] == ADD and c["stp"] == STP_NONE}
    engines = [Engine(backend=b) for b in BACKENDS]
    for e in engines:
        e.add_book(0, n_ticks=200, mechanism=BATCH)
    for i in range(len(cmds)):
        out = [e.process(cmds[i : i + 1]) for e in engines]
        assert out[0].tobytes() == out[1].tobytes()
        if cmds[i]["kind"] == AUCTION:
            assert out[0][0]["kind"] == UNCROSSED
            bids, asks = engines[0].depth(0, 1)
            assert not bids or not asks or bids[0][0] < asks[0][0]
            traded = out[0][out[0]["kind"] == 3]["quantity"].sum()
            assert traded == out[0][0]["quantity"]
            trades = out[0][out[0]["kind"] == TRADE]
            for t in trades[trades["account"] == trades["maker_account"]]:
                assert {int(t["order_id"]), int(t["maker_order_id"])} & careless
        for e in engines:
            e.check_invariants()
    assert engines[0].snapshot() == engines[1].snapshot()
