"""Many books in one engine: isolated queues, one space of order ids, book set-up."""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.engine import BATCH, BUY, CONTINUOUS, SELL, Engine, Reason, kernels

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


def _ladder_bytes(engine: Engine) -> int:
    return int(engine._levels.nbytes + engine._words.nbytes)  # type: ignore[attr-defined]


def test_remove_book_gives_memory_back() -> None:
    engine = Engine(backend="numba")
    for b in range(4):
        engine.add_book(b)
    book_from(engine, 3, bids=[(100, [5])], asks=[(101, [5])], first_id=1)
    before = book_table(engine, 3)
    size = _ladder_bytes(engine)
    for b in range(3):
        engine.remove_book(b)
    assert _ladder_bytes(engine) <= size // 2
    assert book_table(engine, 3) == before
    engine.check_invariants()


def test_books_listed_and_removed_day_after_day_reuse_their_memory() -> None:
    """A day's listings take the room of the day's expiries: nothing grows, nothing moves.

    Listing a book must not copy every other book's ladder (at the default 100,000 ticks
    that is tens of milliseconds per book, a daily stall of the whole exchange).
    """
    engine = Engine(backend="numba")
    books = list(range(28))
    for b in books:
        engine.add_book(b, n_ticks=20_000)
    book_from(engine, 27, bids=[(100, [5, 2])], asks=[(101, [5])], first_id=1)
    resting = book_table(engine, 27)
    levels, size = engine._levels, _ladder_bytes(engine)  # type: ignore[attr-defined]
    for day in range(60):
        for expired in books[:2]:
            if expired == 27:
                run(engine, *(cancel(i, book=27) for i in (1, 2, 3)))
            engine.remove_book(expired)
        books = [*books[2:], 28 + 2 * day, 29 + 2 * day]
        for listed in books[-2:]:
            engine.add_book(listed, n_ticks=20_000)
            assert engine.depth(listed, ALL) == ([], [])
        assert engine._levels is levels  # type: ignore[attr-defined]
        if 27 in books:
            assert book_table(engine, 27) == resting
    assert _ladder_bytes(engine) == size
    engine.check_invariants()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "add", "remove", "order"]),
            st.integers(0, 7),
            st.sampled_from([64, 65, 128, 200, 300]),
            st.integers(0, 1),
        ),
        max_size=80,
    )
)
def test_books_of_any_size_come_and_go_as_in_the_reference(
    steps: list[tuple[str, int, int, int]],
) -> None:
    """Books of mixed sizes listed and removed in any order, with orders resting in them:
    the compiled engine (holes, spare room, compaction) agrees with the reference."""
    engines = [Engine(backend="reference"), Engine(backend="numba")]
    order_id = 0
    for action, book, n, side in steps:
        listed = {b for b, _, _ in engines[0].books()}
        if action == "add" and book not in listed:
            for engine in engines:
                engine.add_book(book, n_ticks=n)
        elif action == "remove" and book in listed:
            resting = engines[0].resting_orders()
            ids = resting["order_id"][resting["book"] == book].tolist()
            for engine in engines:
                run(engine, *(cancel(i, account=1, book=book) for i in ids))
                engine.remove_book(book)
        elif action == "order" and book in listed:
            n_ticks = dict((b, t) for b, t, _ in engines[0].books())[book]
            order_id += 1
            price = 1 + n % (n_ticks - 1)
            command = add(order_id, BUY if side == 0 else SELL, price, 3, book=book)
            assert run(engines[0], command) == run(engines[1], command)
        for engine in engines:
            engine.check_invariants()
        assert engines[1].books() == engines[0].books()
        assert engines[1].snapshot() == engines[0].snapshot()
        for b, _, _ in engines[0].books():
            assert engines[1].depth(b, ALL) == engines[0].depth(b, ALL)


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_ladder_pages_no_order_reached_are_never_allocated() -> None:
    """An empty level is all zeros, so listing a book writes nothing to its ladder: 20 books
    of 100,000 ticks take 96 MB of address space, and only the pages orders reach are real
    (4 KiB each, or 2 MiB where numpy asked for transparent huge pages)."""
    engine = Engine(backend="numba")
    engine.add_book(0)  # compiles what adding a book needs
    gc.collect()
    before = _resident_bytes()
    for b in range(1, 21):
        engine.add_book(b, n_ticks=100_000)
    book_from(engine, 7, bids=[(50_000, [5])], asks=[(50_001, [5])], first_id=1)
    grown = _resident_bytes() - before
    assert _ladder_bytes(engine) >= 20 * 2 * 100_000 * 24
    assert grown < 16 * 2**20, f"{grown / 2**20:.1f} MiB resident for 20 nearly empty books"
    engine.check_invariants()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=40), st.integers(0, 700))
def test_the_zero_skipping_copy_and_clear_equal_plain_ones(pages: list[int], extra: int) -> None:
    """Page by page (512 words): 0 all zeros, 1 one word set, 2 all set, 3 the last word."""
    words = np.zeros(512 * len(pages) + extra, dtype=np.uint64)
    for i, kind in enumerate(pages):
        page = words[512 * i : 512 * (i + 1)]
        if kind == 1:
            page[7] = 1 + i
        elif kind == 2:
            page[:] = 0xFFFF_FFFF_FFFF_FFFF
        elif kind == 3:
            page[-1] = 2**63
    words[len(words) - extra :] = np.arange(extra, dtype=np.uint64) % 3
    copied = np.zeros(len(words) + 5, dtype=np.uint64)
    kernels.copy_nonzero(words, copied)
    assert copied[: len(words)].tolist() == words.tolist() and not copied[len(words) :].any()
    kernels.clear_nonzero(words)
    assert not words.any()
