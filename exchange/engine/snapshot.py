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

from exchange.engine.types import ORDER_DTYPE

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
