"""Builders shared by the market-data tests: books as tables, times as ISO strings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from exchange.engine.types import BUY, EVENT_DTYPE, LEVEL, SELL, TRADE
from exchange.marketdata import L2Book

SYMBOL = "H100-2026-W50"
CENT = Decimal("0.01")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def book_from(
    bids: Sequence[tuple[int, int]] = (),
    asks: Sequence[tuple[int, int]] = (),
    tick: Decimal = CENT,
    symbol: str = SYMBOL,
) -> L2Book:
    """Return a book holding ``(price_ticks, qty)`` levels after one update (sequence 1)."""
    book = L2Book(symbol, tick)
    changes = [(BUY, p, q) for p, q in bids] + [(SELL, p, q) for p, q in asks]
    if changes:
        assert book.apply(changes) is not None
    return book


def ns(text: str) -> int:
    """Return an ISO 8601 UTC time (``2026-12-07T00:00:59.999Z``) as ns since the epoch."""
    dt = datetime.fromisoformat(text)
    return (dt - _EPOCH) // timedelta(microseconds=1) * 1000


def level(book: int, side: int, price: int, qty: int, ts: int = 0) -> dict[str, int]:
    """Return one LEVEL event row as a dict."""
    return {"kind": LEVEL, "book": book, "side": side, "price": price, "quantity": qty, "ts": ts}


def trade(book: int, side: int, price: int, qty: int, ts: int = 0) -> dict[str, int]:
    """Return one TRADE event row as a dict (``side`` is the taker's)."""
    return {"kind": TRADE, "book": book, "side": side, "price": price, "quantity": qty, "ts": ts}


def event_rows(rows: list[dict[str, int]]) -> np.ndarray:
    """Return an ``EVENT_DTYPE`` array of the given rows (absent fields zero)."""
    out = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, row in enumerate(rows):
        for name, value in row.items():
            out[i][name] = value
    return out
