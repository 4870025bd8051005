"""Many books in one engine: isolated queues, one space of order ids, book set-up."""

from __future__ import annotations

import pytest

from exchange.engine import BATCH, BUY, CONTINUOUS, SELL, Engine, Reason

from .helpers import (
    ALL,
    MAKER,
    accepted,
    add,
    amend,
    book_from,
    book_table,
    cancel,
    level,
    rejected,
    run,
    trade,
)


def test_books_are_isolated(engine: Engine) -> None:
    book_from(engine, 0, bids=[(100, [5])], asks=[(101, [5])], first_id=1)
    book_from(engine, 1, bids=[(100, [7])], asks=[(101, [7])], first_id=3)
    assert run(engine, add(10, BUY, 101, 9, book=1)) == [
        accepted(10, BUY, 101, 9, book=1),
        trade(10, 4, 101, 7, side=BUY, remaining=2, maker_remaining=0, book=1),
        level(SELL, 101, 0, book=1),
        level(BUY, 101, 2, book=1),
    ]
    assert book_table(engine, 0) == {"bids": [(100, [(1, 5)])], "asks": [(101, [(2, 5)])]}
    assert book_table(engine, 1) == {"bids": [(101, [(10, 2)]), (100, [(3, 7)])], "asks": []}
    assert engine.depth(0, ALL) == ([(100, 5)], [(101, 5)])


def test_order_ids_are_unique_across_books(engine: Engine) -> None:
    book_from(engine, 0, asks=[(101, [5])])
    before = engine.state_hash()
    rows = [add(1, BUY, 50, 1, book=1), add(1, SELL, 150, 1, book=1)]
    assert run(engine, *rows) == [rejected(r, Reason.DUPLICATE_ORDER_ID) for r in rows]
    assert engine.state_hash() == before


def test_an_order_is_cancelled_and_amended_only_in_its_own_book(engine: Engine) -> None:
    book_from(engine, 0, asks=[(101, [5])])
    before = engine.state_hash()
    rows = [cancel(1, book=1), amend(1, 101, 2, book=1)]
    assert run(engine, *rows) == [rejected(r, Reason.UNKNOWN_ORDER_ID) for r in rows]
    assert engine.state_hash() == before


def test_an_id_is_free_again_once_its_order_has_left(engine: Engine) -> None:
    book_from(engine, 0, asks=[(101, [5])])
    run(engine, add(2, BUY, 101, 5))  # fills order 1
    assert run(engine, add(1, BUY, 100, 2, book=1)) == [
        accepted(1, BUY, 100, 2, book=1),
        level(BUY, 100, 2, book=1),
    ]


def test_book_ids_need_not_be_contiguous(backend: str) -> None:
    engine = Engine(backend=backend)
    engine.add_book(7, n_ticks=50)
    engine.add_book(3, n_ticks=2, mechanism=BATCH)
    engine.add_book((1 << 20) - 1)
    assert engine.books() == [(3, 2, BATCH), (7, 50, CONTINUOUS), ((1 << 20) - 1, 100_000, 0)]
    assert run(engine, add(1, SELL, 49, 3, book=7), add(2, BUY, 1, 3, book=3)) == [
        accepted(1, SELL, 49, 3, account=1, book=7),
        level(SELL, 49, 3, book=7),
        accepted(2, BUY, 1, 3, account=1, book=3),
        level(BUY, 1, 3, book=3),
    ]
    big = (1 << 20) - 1
    assert run(engine, add(3, SELL, 99_999, 1, book=big, account=MAKER)) == [
        accepted(3, SELL, 99_999, 1, account=MAKER, book=big),
        level(SELL, 99_999, 1, book=big),
    ]
    engine.check_invariants()


@pytest.mark.parametrize(
    ("book", "n_ticks", "mechanism"),
    [
        (-1, 200, CONTINUOUS),
        (1 << 20, 200, CONTINUOUS),
        (2, 1, CONTINUOUS),
        (2, 10_000_001, CONTINUOUS),
        (2, 200, 2),
        (0, 200, CONTINUOUS),  # book 0 exists already
    ],
)
def test_add_book_refuses_bad_arguments(
    engine: Engine, book: int, n_ticks: int, mechanism: int
) -> None:
    before = (engine.books(), engine.state_hash())
    with pytest.raises(ValueError):
        engine.add_book(book, n_ticks=n_ticks, mechanism=mechanism)
    assert (engine.books(), engine.state_hash()) == before


def test_a_new_book_is_empty(engine: Engine) -> None:
    engine.add_book(5, n_ticks=300)
    assert engine.books() == [(0, 200, CONTINUOUS), (1, 200, CONTINUOUS), (5, 300, CONTINUOUS)]
    assert engine.depth(5, ALL) == ([], [])


def test_remove_book_frees_it_and_leaves_the_others_as_they_were(engine: Engine) -> None:
    engine.add_book(2, n_ticks=engine.books()[0][1])
    book_from(engine, 0, bids=[(100, [5])], asks=[(101, [5])], first_id=1)
    book_from(engine, 1, bids=[(90, [3])], first_id=3)
    book_from(engine, 2, asks=[(120, [4, 6])], first_id=4)
    run(engine, cancel(3, book=1))
    before = {b: book_table(engine, b) for b in (0, 2)}
    engine.remove_book(1)
    assert [b for b, _, _ in engine.books()] == [0, 2]
    assert {b: book_table(engine, b) for b in (0, 2)} == before
    order = add(20, BUY, 90, 1, book=1)
    assert run(engine, order) == [rejected(order, Reason.UNKNOWN_BOOK)]
    # the other books go on exactly as before: priorities, ids, matching
    assert run(engine, add(21, BUY, 120, 5, book=2)) == [
        accepted(21, BUY, 120, 5, book=2),
        trade(21, 4, 120, 4, side=BUY, remaining=1, maker_remaining=0, book=2),
        trade(21, 5, 120, 1, side=BUY, remaining=0, maker_remaining=5, book=2),
        level(SELL, 120, 5, book=2),
    ]
    engine.check_invariants()
    with pytest.raises(ValueError, match="resting orders"):
        engine.remove_book(0)
    with pytest.raises(KeyError):
        engine.remove_book(1)
    engine.add_book(1, n_ticks=engine.books()[0][1])  # the id is free again
    assert engine.depth(1) == ([], [])


def test_remove_book_gives_memory_back() -> None:
    engine = Engine(backend="numba")
    for b in range(4):
        engine.add_book(b)
    size = engine._levels.nbytes + engine._words.nbytes  # type: ignore[attr-defined]
    engine.remove_book(1)
    engine.remove_book(2)
    assert engine._levels.nbytes + engine._words.nbytes == size // 2  # type: ignore[attr-defined]
