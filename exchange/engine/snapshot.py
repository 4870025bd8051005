"""The engine snapshot format, shared by both backends.

Layout (little endian)::

    b"CFXENG01"                      magic and version
    u32 n_books, then n_books x (i32 book, i64 n_ticks, i32 mechanism)
    u64 n_orders, then n_orders x ORDER_DTYPE rows

Orders are in priority order per book (books by id; bids best first, then asks best first;
FIFO inside a level), so restoring them in sequence rebuilds every queue exactly.
"""

from __future__ import annotations

import struct

import numpy as np

from exchange.engine.types import (
    ALL_FLAGS,
    BATCH,
    CONTINUOUS,
    MARKET,
    MAX_QUANTITY,
    ORDER_DTYPE,
    STP_CANCEL_BOTH,
)

MAGIC = b"CFXENG01"
_BOOK = struct.Struct("<iqi")


class SnapshotError(ValueError):
    """The bytes are not a valid engine snapshot."""


def encode(books: list[tuple[int, int, int]], orders: np.ndarray) -> bytes:
    """Serialise books ``(book, n_ticks, mechanism)`` and resting orders in priority order."""
    parts = [MAGIC, struct.pack("<I", len(books))]
    parts.extend(_BOOK.pack(*book) for book in books)
    parts.append(struct.pack("<Q", len(orders)))
    rows = np.zeros(len(orders), dtype=ORDER_DTYPE)  # zeroed, so padding bytes are too
    for name in ORDER_DTYPE.names or ():
        rows[name] = orders[name]
    parts.append(rows.tobytes())
    return b"".join(parts)


def decode(data: bytes) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """Parse a snapshot into books and orders; raise :class:`SnapshotError` if malformed."""
    view = memoryview(data)
    if bytes(view[:8]) != MAGIC:
        raise SnapshotError("not a cfx engine snapshot (bad magic)")
    try:
        pos = 8
        (n_books,) = struct.unpack_from("<I", view, pos)
        pos += 4
        books = []
        for _ in range(n_books):
            books.append(_BOOK.unpack_from(view, pos))
            pos += _BOOK.size
        (n_orders,) = struct.unpack_from("<Q", view, pos)
        pos += 8
    except struct.error as exc:
        raise SnapshotError(f"truncated snapshot: {exc}") from exc
    end = pos + n_orders * ORDER_DTYPE.itemsize
    if end != len(view):
        raise SnapshotError(f"snapshot length {len(view)} does not match {n_orders} orders")
    orders = np.frombuffer(view[pos:end], dtype=ORDER_DTYPE).copy()
    return books, orders


def validate(books: list[tuple[int, int, int]], orders: np.ndarray) -> None:
    """Raise :class:`SnapshotError` unless the snapshot describes a valid engine state.

    Checked: books unique and in id order with a valid ladder and mechanism; every order in
    a known book, with a positive unique id, a side, a price on the ladder, a quantity in
    ``1..MAX_QUANTITY``, a valid self-trade mode and flags; orders in priority order (books
    by id, bids best first, then asks best first); no continuous book crossed.
    """
    from exchange.engine.base import MAX_BOOK_ID, MAX_N_TICKS, MIN_N_TICKS

    ladder: dict[int, int] = {}
    mechanisms: dict[int, int] = {}
    previous = -1
    for book, n_ticks, mechanism in books:
        if book <= previous or not 0 <= book < MAX_BOOK_ID:
            raise SnapshotError(f"book {book} is out of order, repeated or out of range")
        if not MIN_N_TICKS <= n_ticks <= MAX_N_TICKS or mechanism not in (CONTINUOUS, BATCH):
            raise SnapshotError(f"book {book} has an invalid ladder or mechanism")
        ladder[book] = n_ticks
        mechanisms[book] = mechanism
        previous = book
    if len(orders) == 0:
        return
    ids = orders["order_id"]
    if (ids <= 0).any() or len(np.unique(ids)) != len(ids):
        raise SnapshotError("order ids must be positive and unique")
    if (orders["remaining"] < 1).any() or (orders["remaining"] > MAX_QUANTITY).any():
        raise SnapshotError(f"resting quantities must lie in 1..{MAX_QUANTITY}")
    if (orders["side"] > 1).any() or (orders["stp"] > STP_CANCEL_BOTH).any():
        raise SnapshotError("invalid side or self-trade prevention mode")
    if (orders["flags"] & ~np.uint8(ALL_FLAGS)).any() or (orders["flags"] & np.uint8(MARKET)).any():
        raise SnapshotError("invalid order flags (market orders never rest)")
    book_ids = orders["book"].astype(np.int64)
    unknown = set(np.unique(book_ids).tolist()) - set(ladder)
    if unknown:
        raise SnapshotError(f"orders in unknown books {sorted(unknown)}")
    limits = np.array([ladder[b] for b in book_ids.tolist()], dtype=np.int64)
    if (orders["price"] < 1).any() or (orders["price"] >= limits).any():
        raise SnapshotError("an order's price is off its book's ladder")
    # priority order: (book, side) non-decreasing; prices best first within a side
    key = book_ids * 2 + orders["side"].astype(np.int64)
    if (np.diff(key) < 0).any():
        raise SnapshotError("orders are not grouped by book and side in order")
    same = np.diff(key) == 0
    step = np.diff(orders["price"])
    bids = orders["side"][1:] == 0
    if (same & bids & (step > 0)).any() or (same & ~bids & (step < 0)).any():
        raise SnapshotError("orders are not in price priority")
    for book, mechanism in mechanisms.items():
        if mechanism != CONTINUOUS:
            continue
        in_book = book_ids == book
        bid_prices = orders["price"][in_book & (orders["side"] == 0)]
        ask_prices = orders["price"][in_book & (orders["side"] == 1)]
        if len(bid_prices) and len(ask_prices) and bid_prices.max() >= ask_prices.min():
            raise SnapshotError(f"continuous book {book} is crossed")
