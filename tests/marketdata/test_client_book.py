"""The client's LocalBook: it follows the server book and notices gaps and corruption."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.engine.types import BUY, SELL
from exchange.marketdata import (
    BookUpdate,
    ChecksumMismatch,
    FeedError,
    FeedGap,
    L2Book,
    LocalBook,
)
from tests.marketdata.helpers import CENT, SYMBOL, book_from


def updates(book: L2Book, batches: list[list[tuple[int, int, int]]]) -> list[BookUpdate]:
    """Apply ``batches`` to ``book`` and return the non-empty updates."""
    out = []
    for batch in batches:
        update = book.apply(batch)
        if update is not None:
            out.append(update)
    return out


def assert_same(local: LocalBook, server: L2Book) -> None:
    rest = server.rest_book()
    assert local.synced
    assert (local.sequence, local.bids(), local.asks()) == (
        rest["sequence"],
        rest["bids"],
        rest["asks"],
    )
    assert local.checksum() == server.checksum()


def test_snapshot_then_updates() -> None:
    server = book_from(bids=[(235, 5), (234, 10)], asks=[(236, 3)])
    local = LocalBook(SYMBOL)
    assert not local.synced
    local.apply(server.snapshot_message())
    assert_same(local, server)
    for batch in [[(BUY, 235, 0)], [(SELL, 237, 4), (BUY, 236, 1)]]:
        update = server.apply(batch)
        assert update is not None
        local.apply(update)
        assert_same(local, server)
    assert local.bids() == [["2.36", "1"], ["2.34", "10"]]
    assert local.asks(1) == [["2.36", "3"]]


def test_update_before_snapshot_is_a_gap() -> None:
    server = L2Book(SYMBOL, CENT)
    (update,) = updates(server, [[(BUY, 235, 5)]])
    local = LocalBook(SYMBOL)
    with pytest.raises(FeedGap) as info:
        local.apply(update)
    assert (info.value.expected, info.value.received) == (None, 1)
    assert info.value.code == "FEED_GAP"


def test_dropped_update_is_detected_and_resubscribing_recovers() -> None:
    server = L2Book(SYMBOL, CENT)
    local = LocalBook(SYMBOL)
    local.apply(server.snapshot_message())
    first, _lost, third, fourth = updates(
        server, [[(BUY, 235, 5)], [(BUY, 236, 1)], [(SELL, 240, 2)], [(SELL, 241, 2)]]
    )
    local.apply(first)
    with pytest.raises(FeedGap, match="expected sequence 2, received sequence 3") as info:
        local.apply(third)
    assert isinstance(info.value, FeedError)
    assert (info.value.symbol, info.value.expected, info.value.received) == (SYMBOL, 2, 3)
    assert not local.synced
    with pytest.raises(FeedGap):  # and it stays out of sync until a snapshot
        local.apply(fourth)
    local.apply(server.snapshot_message())
    assert_same(local, server)


def test_repeated_update_is_a_gap() -> None:
    server = L2Book(SYMBOL, CENT)
    local = LocalBook(SYMBOL)
    local.apply(server.snapshot_message())
    (update,) = updates(server, [[(BUY, 235, 5)]])
    local.apply(update)
    with pytest.raises(FeedGap):
        local.apply(update)


def test_corrupted_update_fails_the_checksum() -> None:
    server = book_from(bids=[(235, 5)])
    local = LocalBook(SYMBOL)
    local.apply(server.snapshot_message())
    (update,) = updates(server, [[(BUY, 234, 3)]])
    bad = copy.deepcopy(update)
    bad["changes"][0][2] = "4"
    with pytest.raises(ChecksumMismatch) as info:
        local.apply(bad)
    assert (info.value.sequence, info.value.expected) == (2, update["checksum"])
    assert info.value.code == "CHECKSUM_MISMATCH"
    assert not local.synced


def test_corrupted_snapshot_fails_the_checksum() -> None:
    snapshot = book_from(bids=[(235, 5)], asks=[(236, 1)]).snapshot_message()
    snapshot["asks"] = [["2.37", "1"]]
    local = LocalBook(SYMBOL)
    with pytest.raises(ChecksumMismatch):
        local.apply(snapshot)
    assert not local.synced


def test_lost_update_with_a_renumbered_stream_fails_the_checksum() -> None:
    # If a server bug renumbered the stream around a lost update, the checksum still tells.
    server = L2Book(SYMBOL, CENT)
    local = LocalBook(SYMBOL)
    local.apply(server.snapshot_message())
    _lost, second = updates(server, [[(BUY, 235, 5)], [(SELL, 240, 2)]])
    second["sequence"] = 1
    with pytest.raises(ChecksumMismatch):
        local.apply(second)


def test_other_channels_and_symbols_are_refused() -> None:
    local = LocalBook(SYMBOL)
    with pytest.raises(ValueError, match="not a book message"):
        local.apply({"channel": "trades", "symbol": SYMBOL})
    with pytest.raises(ValueError, match="not a book message"):
        local.apply(L2Book("A100-2026-12", CENT).snapshot_message())
    with pytest.raises(ValueError, match="unknown book message type"):
        local.apply({"channel": "book", "symbol": SYMBOL, "type": "delta"})


batch_st = st.lists(
    st.tuples(st.sampled_from([BUY, SELL]), st.integers(1, 40), st.integers(0, 9)),
    max_size=6,
)
tick_st = st.sampled_from([Decimal("0.01"), Decimal("0.05"), Decimal("0.5"), Decimal("1")])


@given(
    tick=tick_st,
    before=st.lists(batch_st, max_size=15),
    after=st.lists(batch_st, max_size=40),
)
def test_local_book_always_equals_the_server_book(
    tick: Decimal,
    before: list[list[tuple[int, int, int]]],
    after: list[list[tuple[int, int, int]]],
) -> None:
    server = L2Book(SYMBOL, tick)
    updates(server, before)  # the client subscribes mid-stream
    local = LocalBook(SYMBOL)
    local.apply(server.snapshot_message())
    assert_same(local, server)
    for batch in after:
        update = server.apply(batch)
        if update is not None:
            local.apply(update)
        assert_same(local, server)


@given(
    batches=st.lists(batch_st.filter(bool), min_size=2, max_size=30),
    data=st.data(),
)
def test_any_dropped_update_is_detected(
    batches: list[list[tuple[int, int, int]]], data: st.DataObject
) -> None:
    server = L2Book(SYMBOL, CENT)
    local = LocalBook(SYMBOL)
    local.apply(server.snapshot_message())
    stream = updates(server, batches)
    if len(stream) < 2:
        return
    lost = data.draw(st.integers(0, len(stream) - 2), label="lost")
    with pytest.raises(FeedGap):
        for i, update in enumerate(stream):
            if i != lost:
                local.apply(update)
    assert not local.synced
    local.apply(server.snapshot_message())
    assert_same(local, server)
