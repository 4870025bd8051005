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


_rows = st.lists(
    st.tuples(
        st.sampled_from([ADD, ADD, ADD, AUCTION]),
        st.integers(0, 3),  # account
        st.sampled_from([BUY, SELL]),
        st.integers(95, 105),  # price
        st.integers(1, 20),  # quantity
        st.sampled_from([0, PRO_RATA]),
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(rows=_rows)
def test_backends_agree_and_every_auction_uncrosses(rows: list[tuple[int, ...]]) -> None:
    cmds = np.zeros(len(rows), dtype=COMMAND_DTYPE)
    for i, (kind, account, side, price, quantity, flags) in enumerate(rows):
        cmds[i] = (i + 1, i, i + 1, account, price, quantity, 0, kind, side, 0,
                   flags if kind == AUCTION else 0, 0)  # fmt: skip
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
        for e in engines:
            e.check_invariants()
    assert engines[0].snapshot() == engines[1].snapshot()
