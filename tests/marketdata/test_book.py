"""The server L2 book: updates, sequence numbers, checksums, snapshots and the REST form."""

from __future__ import annotations

import zlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.engine.types import BUY, SELL
from exchange.marketdata import L2Book, checksum, coalesce
from tests.marketdata.helpers import CENT, SYMBOL, book_from


def test_checksum_known_vector() -> None:
    book = book_from(bids=[(235, 5), (234, 10)], asks=[(236, 3), (240, 1)])
    # By hand from SPEC 4: "B" + bids best first + "A" + asks best first, as "p:q" joined by ",".
    text = "B" + "2.35:5,2.34:10" + "A" + "2.36:3,2.40:1"
    assert text == "B2.35:5,2.34:10A2.36:3,2.40:1"
    assert book.checksum() == zlib.crc32(text.encode("utf-8")) == 979000766
    assert book.snapshot_message()["checksum"] == 979000766


def test_checksum_of_an_empty_book_is_crc_of_b_a() -> None:
    book = L2Book(SYMBOL, CENT)
    assert book.checksum() == zlib.crc32(b"BA") == checksum([], [])
    assert book.snapshot_message()["checksum"] == zlib.crc32(b"BA")


def test_checksum_of_one_sided_book() -> None:
    assert book_from(asks=[(1200, 7)]).checksum() == zlib.crc32(b"BA12.00:7")
    assert book_from(bids=[(1200, 7)]).checksum() == zlib.crc32(b"B12.00:7A")


def test_checksum_covers_the_top_ten_levels_only() -> None:
    bids = [(200 - i, i + 1) for i in range(12)]  # 2.00 .. 1.89
    asks = [(300 + i, i + 1) for i in range(12)]  # 3.00 .. 3.11
    book = book_from(bids=bids, asks=asks)
    text = (
        "B"
        + ",".join(f"{Decimal(p) / 100:.2f}:{q}" for p, q in bids[:10])
        + "A"
        + ",".join(f"{Decimal(p) / 100:.2f}:{q}" for p, q in asks[:10])
    )
    assert text.startswith("B2.00:1,1.99:2,") and text.endswith(",3.09:10")
    assert book.checksum() == zlib.crc32(text.encode())
    update = book.apply([(BUY, 189, 99), (SELL, 311, 99)])  # 12th levels: outside the checksum
    assert update is not None
    assert update["checksum"] == zlib.crc32(text.encode())
    update = book.apply([(BUY, 191, 99)])  # 10th bid
    assert update is not None
    assert update["checksum"] != zlib.crc32(text.encode())


def test_update_message_is_exactly_the_spec_shape() -> None:
    book = L2Book(SYMBOL, CENT)
    update = book.apply([(BUY, 235, 5), (SELL, 236, 3)])
    assert update == {
        "channel": "book",
        "type": "update",
        "symbol": SYMBOL,
        "sequence": 1,
        "changes": [["buy", "2.35", "5"], ["sell", "2.36", "3"]],
        "checksum": zlib.crc32(b"B2.35:5A2.36:3"),
    }
    assert list(update) == ["channel", "type", "symbol", "sequence", "changes", "checksum"]


def test_level_removal_is_written_as_zero() -> None:
    book = book_from(bids=[(235, 5), (234, 10)], asks=[(236, 3)])
    update = book.apply([(BUY, 235, 0)])
    assert update is not None
    assert update["changes"] == [["buy", "2.35", "0"]]
    assert update["checksum"] == zlib.crc32(b"B2.34:10A2.36:3")
    assert book.rest_book() == {
        "symbol": SYMBOL,
        "sequence": 2,
        "bids": [["2.34", "10"]],
        "asks": [["2.36", "3"]],
    }


def test_sequence_rises_by_one_per_nonempty_update_only() -> None:
    book = L2Book(SYMBOL, CENT)
    assert book.sequence == 0
    steps: list[tuple[list[tuple[int, int, int]], int]] = [
        ([], 0),  # empty batch
        ([(BUY, 235, 5)], 1),
        ([(BUY, 235, 5)], 1),  # same quantity again: nothing changed
        ([(SELL, 300, 0)], 1),  # removing a level that is not there
        ([(BUY, 235, 0), (BUY, 235, 5)], 1),  # gone and back inside one batch
        ([(BUY, 235, 6), (SELL, 236, 1), (BUY, 234, 2)], 2),  # three levels, one update
        ([(SELL, 236, 0)], 3),
    ]
    for changes, sequence in steps:
        before = book.sequence
        update = book.apply(changes)
        assert book.sequence == sequence
        if sequence == before:
            assert update is None
        else:
            assert update is not None and update["sequence"] == before + 1 == sequence


def test_changes_are_coalesced_in_first_seen_order() -> None:
    book = book_from(bids=[(230, 1)])
    update = book.apply(
        [(SELL, 240, 4), (BUY, 235, 5), (SELL, 240, 2), (BUY, 230, 0), (BUY, 235, 7)]
    )
    assert update is not None
    assert update["changes"] == [["sell", "2.40", "2"], ["buy", "2.35", "7"], ["buy", "2.30", "0"]]
    assert coalesce([(0, 1, 1), (1, 1, 2), (0, 1, 3)]) == {(0, 1): 3, (1, 1): 2}


def test_unchanged_levels_are_left_out_of_an_update() -> None:
    book = book_from(bids=[(235, 5)])
    update = book.apply([(BUY, 235, 5), (BUY, 234, 1)])
    assert update is not None
    assert update["changes"] == [["buy", "2.34", "1"]]


def test_snapshot_and_rest_book_order_and_depth() -> None:
    book = book_from(bids=[(234, 10), (235, 5), (200, 1)], asks=[(240, 1), (236, 3), (300, 9)])
    assert book.snapshot_message() == {
        "channel": "book",
        "type": "snapshot",
        "symbol": SYMBOL,
        "sequence": 1,
        "bids": [["2.35", "5"], ["2.34", "10"], ["2.00", "1"]],
        "asks": [["2.36", "3"], ["2.40", "1"], ["3.00", "9"]],
        "checksum": zlib.crc32(b"B2.35:5,2.34:10,2.00:1A2.36:3,2.40:1,3.00:9"),
    }
    assert book.rest_book(2) == {
        "symbol": SYMBOL,
        "sequence": 1,
        "bids": [["2.35", "5"], ["2.34", "10"]],
        "asks": [["2.36", "3"], ["2.40", "1"]],
    }
    limited = book.snapshot_message(depth=1)
    assert (limited["bids"], limited["asks"]) == ([["2.35", "5"]], [["2.36", "3"]])
    assert limited["checksum"] == book.checksum()  # always over the whole book's top 10
    assert book.rest_book(0)["bids"] == []
    assert (book.best_bid, book.best_ask) == (235, 236)
    assert book.levels(BUY) == [(235, 5), (234, 10), (200, 1)]


def test_tick_size_sets_the_price_strings() -> None:
    book = book_from(bids=[(47, 2)], asks=[(48, 1)], tick=Decimal("0.05"))
    assert book.rest_book() == {
        "symbol": SYMBOL,
        "sequence": 1,
        "bids": [["2.35", "2"]],
        "asks": [["2.40", "1"]],
    }


def test_a_crossed_book_is_kept_as_it_is() -> None:
    # Batch-auction books cross until the auction runs.
    book = book_from(bids=[(250, 5)], asks=[(240, 5)])
    assert (book.best_bid, book.best_ask) == (250, 240)


@pytest.mark.parametrize("change", [(2, 235, 5), (-1, 235, 5), (BUY, 0, 5), (SELL, 235, -1)])
def test_bad_change_is_an_error_and_changes_nothing(change: tuple[int, int, int]) -> None:
    book = book_from(bids=[(235, 5)])
    before = book.snapshot_message()
    with pytest.raises(ValueError, match="bad level change"):
        book.apply([(BUY, 236, 1), change])
    assert book.snapshot_message() == before
    book.check_invariants()


def test_restore_replaces_the_book() -> None:
    book = book_from(bids=[(235, 5)])
    book.restore(bids=[(100, 1)], asks=[(110, 2)], sequence=7)
    assert book.rest_book() == {
        "symbol": SYMBOL,
        "sequence": 7,
        "bids": [["1.00", "1"]],
        "asks": [["1.10", "2"]],
    }
    book.check_invariants()
    with pytest.raises(ValueError, match="bad level"):
        book.restore(bids=[(100, 0)], asks=[])


def test_state_hash_follows_the_levels_and_sequence() -> None:
    a = book_from(bids=[(235, 5)], asks=[(236, 1)])
    b = book_from(asks=[(236, 1)], bids=[(235, 5)])
    assert a.state_hash() == b.state_hash()
    b.apply([(BUY, 235, 4)])
    assert a.state_hash() != b.state_hash()


changes_st = st.lists(
    st.tuples(st.sampled_from([BUY, SELL]), st.integers(1, 30), st.integers(0, 5)), max_size=8
)


@given(st.lists(changes_st, max_size=30))
def test_book_matches_a_dict_model(batches: list[list[tuple[int, int, int]]]) -> None:
    book = L2Book(SYMBOL, CENT)
    model: dict[tuple[int, int], int] = {}
    for batch in batches:
        before = dict(model)
        for side, price, qty in batch:
            if qty:
                model[(side, price)] = qty
            else:
                model.pop((side, price), None)
        sequence = book.sequence
        update = book.apply(batch)
        assert (update is None) == (model == before)
        assert book.sequence == sequence + (update is not None)
        bids = sorted(((p, q) for (s, p), q in model.items() if s == BUY), reverse=True)
        asks = sorted((p, q) for (s, p), q in model.items() if s == SELL)
        assert book.levels(BUY) == bids
        assert book.levels(SELL) == asks
        book.check_invariants()
