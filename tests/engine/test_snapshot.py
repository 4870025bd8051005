"""Snapshots: one format for both backends, exact round trips, and refusal of bad bytes."""

from __future__ import annotations

import itertools
import struct

import numpy as np
import pytest

from exchange.engine import (
    AUCTION,
    BATCH,
    BUY,
    CONTINUOUS,
    MARKET,
    MAX_QUANTITY,
    ORDER_DTYPE,
    POST_ONLY,
    SELL,
    STP_CANCEL_OLDEST,
    Engine,
    commands,
)
from exchange.engine import snapshot as snap
from exchange.engine.snapshot import SnapshotError

from .conftest import BACKENDS, N_TICKS
from .flows import flow_engine, random_flow
from .helpers import ALL, add, book_from, book_table, run

#: (source backend, target backend): every direction a snapshot can travel.
PAIRS = list(itertools.product(BACKENDS, BACKENDS))


@pytest.fixture
def full(engine: Engine) -> Engine:
    """Two continuous books with queues, orders with flags and stp, and a crossed batch book."""
    engine.add_book(9, n_ticks=50, mechanism=BATCH)
    book_from(engine, 0, bids=[(100, [4, (6, 2)]), (98, [1])], asks=[(101, [3]), (105, [2, 2])])
    book_from(engine, 1, bids=[(50, [7])], asks=[(51, [1, 1, 1])], first_id=20)
    run(
        engine,
        add(30, SELL, 110, 5, flags=POST_ONLY, stp=STP_CANCEL_OLDEST, account=3),
        add(31, BUY, 30, 4, book=9),
        add(32, SELL, 20, 3, book=9, account=2),
        add(33, BUY, 100, MAX_QUANTITY, account=4),
    )
    return engine


def _state(engine: Engine) -> tuple[object, ...]:
    """Everything observable about an engine's books."""
    books = engine.books()
    return (
        books,
        [book_table(engine, b) for b, _, _ in books],
        [engine.depth(b, ALL) for b, _, _ in books],
        engine.resting_orders().tolist(),
        engine.state_hash(),
    )


def test_the_snapshot_lists_books_and_orders_in_priority_order(full: Engine) -> None:
    books, orders = snap.decode(full.snapshot())
    assert books == [(0, N_TICKS, CONTINUOUS), (1, N_TICKS, CONTINUOUS), (9, 50, BATCH)]
    assert orders.dtype == ORDER_DTYPE
    assert orders.tolist() == [
        # order_id, account, price, remaining, book, side, stp, flags
        (1, 100, 100, 4, 0, BUY, 0, 0),
        (2, 2, 100, 6, 0, BUY, 0, 0),
        (33, 4, 100, MAX_QUANTITY, 0, BUY, 0, 0),
        (3, 100, 98, 1, 0, BUY, 0, 0),
        (4, 100, 101, 3, 0, SELL, 0, 0),
        (5, 100, 105, 2, 0, SELL, 0, 0),
        (6, 100, 105, 2, 0, SELL, 0, 0),
        (30, 3, 110, 5, 0, SELL, STP_CANCEL_OLDEST, POST_ONLY),
        (20, 100, 50, 7, 1, BUY, 0, 0),
        (21, 100, 51, 1, 1, SELL, 0, 0),
        (22, 100, 51, 1, 1, SELL, 0, 0),
        (23, 100, 51, 1, 1, SELL, 0, 0),
        (31, 1, 30, 4, 9, BUY, 0, 0),
        (32, 2, 20, 3, 9, SELL, 0, 0),
    ]


def test_an_empty_engine_round_trips(backend: str) -> None:
    empty = Engine(backend=backend)
    data = empty.snapshot()
    assert snap.decode(data)[0] == []
    for target in BACKENDS:
        restored = Engine.restore(data, backend=target)
        assert restored.books() == []
        assert restored.snapshot() == data


@pytest.mark.parametrize("target", BACKENDS)
def test_a_restored_engine_has_the_same_books_and_queues(full: Engine, target: str) -> None:
    restored = Engine.restore(full.snapshot(), backend=target)
    assert restored.backend == target
    restored.check_invariants()
    assert _state(restored) == _state(full)
    assert restored.snapshot() == full.snapshot()
    for order_id in (1, 2, 30, 31, 33, 99):
        assert restored.order(order_id) == full.order(order_id)


@pytest.mark.parametrize("target", BACKENDS)
def test_a_restored_engine_continues_as_the_original(full: Engine, target: str) -> None:
    restored = Engine.restore(full.snapshot(), backend=target)
    more = commands(
        [
            add(40, SELL, 100, 8),  # meets 1, then 2, at 100: time priority survived
            add(41, SELL, 98, 2, account=4, stp=STP_CANCEL_OLDEST),
            add(42, BUY, 105, 9, book=1, account=7),
            add(2, BUY, 1, 1),  # still a duplicate
            {"kind": AUCTION, "book": 9},  # the batch book is still crossed
            add(43, BUY, 110, 3, flags=POST_ONLY),  # still refused: 101 is offered
        ]
    )
    assert restored.process(more).tobytes() == full.process(more).tobytes()
    assert _state(restored) == _state(full)


@pytest.mark.parametrize(("source", "target"), PAIRS)
@pytest.mark.parametrize("cut", [1, 700, 2_999])
def test_restore_then_continue_equals_never_stopping(source: str, target: str, cut: int) -> None:
    flow = random_flow(seed=cut, n=3_000)
    straight = flow_engine(source)
    expected = straight.process(flow)
    first = flow_engine(source)
    head = first.process(flow[:cut])
    second = Engine.restore(first.snapshot(), backend=target)
    second.check_invariants()
    tail = second.process(flow[cut:])
    assert np.concatenate([head, tail]).tobytes() == expected.tobytes()
    assert second.snapshot() == straight.snapshot()
    second.check_invariants()


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_restoring_twice_changes_nothing(source: str, target: str) -> None:
    engine = flow_engine(source)
    engine.process(random_flow(seed=5, n=2_000))
    data = engine.snapshot()
    once = Engine.restore(data, backend=target)
    twice = Engine.restore(once.snapshot(), backend=source)
    assert once.snapshot() == twice.snapshot() == data
    assert once.state_hash() == twice.state_hash() == engine.state_hash()


# -- bad bytes ------------------------------------------------------------------------
def _snapshot() -> bytes:
    engine = Engine(backend="reference")
    engine.add_book(0, n_ticks=N_TICKS)
    engine.add_book(3, n_ticks=N_TICKS, mechanism=BATCH)
    book_from(engine, 0, bids=[(99, [5, 2])], asks=[(101, [5])])
    run(engine, add(10, BUY, 120, 3, book=3), add(11, SELL, 110, 4, book=3, account=2))
    return engine.snapshot()


@pytest.mark.parametrize("target", BACKENDS)
def test_every_truncation_is_refused(target: str) -> None:
    data = _snapshot()
    for length in range(len(data)):
        with pytest.raises(SnapshotError):
            Engine.restore(data[:length], backend=target)


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda d: d + b"\0", id="trailing-byte"),
        pytest.param(lambda d: d + d, id="twice"),
        pytest.param(lambda d: b"CFXENG02" + d[8:], id="other-version"),
        pytest.param(lambda d: b"cfxeng01" + d[8:], id="bad-magic"),
        pytest.param(lambda d: d[:8] + struct.pack("<I", 3) + d[12:], id="more-books"),
        pytest.param(lambda d: d[:8] + struct.pack("<I", 2**32 - 1) + d[12:], id="huge-books"),
        pytest.param(lambda d: d[: -ORDER_DTYPE.itemsize], id="order-missing"),
        pytest.param(lambda d: d[:44] + struct.pack("<Q", 2**63) + d[52:], id="huge-orders"),
        pytest.param(lambda d: b"", id="empty"),
        pytest.param(lambda d: b"\0" * len(d), id="zeros"),
    ],
)
@pytest.mark.parametrize("target", BACKENDS)
def test_malformed_bytes_are_refused(target: str, spoil: object) -> None:
    data = _snapshot()
    assert struct.unpack_from("<Q", data, 44) == (5,)  # the order count sits at byte 44
    with pytest.raises(SnapshotError):
        Engine.restore(spoil(data), backend=target)  # type: ignore[operator]


def _with_orders(change: str) -> bytes:
    """The test snapshot with its books or orders edited to break one rule."""
    books, orders = snap.decode(_snapshot())
    o = orders.copy()
    if change == "unknown-book":
        o[0]["book"] = 7
    elif change == "duplicate-id":
        o[1]["order_id"] = o[0]["order_id"]
    elif change == "order-id-zero":
        o[0]["order_id"] = 0
    elif change == "no-quantity":
        o[0]["remaining"] = 0
    elif change == "negative-quantity":
        o[0]["remaining"] = -3
    elif change == "quantity-above-max":
        o[0]["remaining"] = MAX_QUANTITY + 1
    elif change == "price-zero":
        o[0]["price"] = 0
    elif change == "price-off-ladder":
        o[0]["price"] = N_TICKS
    elif change == "bad-side":
        o[0]["side"] = 2
    elif change == "bad-stp":
        o[0]["stp"] = 4
    elif change == "bad-flags":
        o[0]["flags"] = 64
    elif change == "resting-market-order":
        o[0]["flags"] = MARKET
    elif change == "crossed-continuous-book":
        o[0]["price"] = 150
    elif change == "worse-level-first":
        o[1]["price"] = 100  # bids 99 then 100
    elif change == "books-out-of-order":
        o[[0, 1, 2, 3, 4]] = o[[3, 4, 0, 1, 2]]  # book 3 before book 0
    elif change == "duplicate-book":
        books = [*books, books[0]]
    elif change == "bad-ladder":
        books = [(0, 1, CONTINUOUS), books[1]]
    elif change == "bad-mechanism":
        books = [(0, N_TICKS, 7), books[1]]
    return snap.encode(books, o)


#: Ways to break a well-formed snapshot; restore must refuse each with SnapshotError.
CHANGES = [
    "unknown-book",
    "duplicate-id",
    "order-id-zero",
    "no-quantity",
    "negative-quantity",
    "quantity-above-max",
    "price-zero",
    "price-off-ladder",
    "bad-side",
    "bad-stp",
    "bad-flags",
    "resting-market-order",
    "crossed-continuous-book",
    "worse-level-first",
    "books-out-of-order",
    "duplicate-book",
    "bad-ladder",
    "bad-mechanism",
]


@pytest.mark.parametrize("change", CHANGES)
def test_a_snapshot_breaking_the_book_rules_is_refused(backend: str, change: str) -> None:
    with pytest.raises(SnapshotError):
        Engine.restore(_with_orders(change), backend=backend)


def test_a_crossed_batch_book_is_a_valid_snapshot(backend: str) -> None:
    data = _snapshot()  # book 3 bids 120 and offers 110
    assert Engine.restore(data, backend=backend).snapshot() == data
