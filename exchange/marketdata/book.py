"""The server's L2 book of one symbol: levels, sequence numbers and checksums (SPEC 4).

The book is a projection of the engine's ``LEVEL`` events: each says that the level
``(side, price)`` now holds ``quantity`` in total (0: the level is gone). :meth:`L2Book.apply`
takes one batch of such changes, and if the book changed, raises the sequence by exactly
1 and returns the ``update`` message. The book does not check that it is uncrossed: a
batch-auction book legitimately crosses until its auction runs.
"""

from __future__ import annotations

import hashlib
import operator
import zlib
from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import islice
from typing import Final

from sortedcontainers import SortedDict

from exchange.engine.types import BUY, SELL
from exchange.marketdata.formatting import SIDE_NAMES, TickFormat
from exchange.marketdata.types import BookSnapshot, BookUpdate, Change, Level, RestBook

#: Levels per side that the checksum covers.
CHECKSUM_DEPTH: Final = 10


def checksum(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> int:
    """Return the SPEC 4 checksum of a book given as ``[price, qty]`` strings, best first.

    It is ``zlib.crc32`` of ``"B" + "p:q,p:q..." + "A" + "p:q,p:q..."`` over the top
    :data:`CHECKSUM_DEPTH` bids and then the top :data:`CHECKSUM_DEPTH` asks; deeper levels
    in the arguments are ignored.
    """
    text = (
        "B"
        + ",".join(f"{p}:{q}" for p, q in islice(bids, CHECKSUM_DEPTH))
        + "A"
        + ",".join(f"{p}:{q}" for p, q in islice(asks, CHECKSUM_DEPTH))
    )
    return zlib.crc32(text.encode())


def coalesce(changes: Iterable[tuple[int, int, int]]) -> dict[tuple[int, int], int]:
    """Keep each ``(side, price)`` once, with its last quantity, in first-seen order."""
    out: dict[tuple[int, int], int] = {}
    for side, price, qty in changes:
        out[(side, price)] = qty
    return out


class L2Book:
    """Price levels of one symbol, integer ticks to integer quantities, with a sequence.

    ``sequence`` starts at 0 and rises by exactly 1 for each non-empty update; the
    snapshot and the REST book report the sequence of the last update they include.
    """

    def __init__(self, symbol: str, tick_size: Decimal) -> None:
        """Create an empty book for ``symbol`` whose prices step by ``tick_size``."""
        self.symbol = symbol
        self.format = TickFormat(tick_size)
        self.sequence = 0
        # Indexed by side. Bids sort by negated price, so both sides iterate best first.
        self._sides: tuple[SortedDict, SortedDict] = (SortedDict(operator.neg), SortedDict())
        # Indexed by side: price -> "p:q" as the checksum writes it, kept with each change.
        self._text: tuple[dict[int, str], dict[int, str]] = ({}, {})

    # -- changes ------------------------------------------------------------------------
    def apply(self, changes: Iterable[tuple[int, int, int]]) -> BookUpdate | None:
        """Apply one batch of ``(side, price_ticks, new_qty)`` level changes.

        Repeated ``(side, price)`` pairs are coalesced to their last quantity in first-seen
        order, and changes that leave a level as it was are dropped. Return the ``update``
        message (after raising ``sequence`` by 1), or ``None`` if nothing changed.
        Raise ``ValueError`` on a bad side, a price below 1 tick or a negative quantity;
        nothing is applied then.
        """
        batch = coalesce(changes)
        for (side, price), qty in batch.items():
            if side not in (BUY, SELL) or price < 1 or qty < 0:
                raise ValueError(
                    f"{self.symbol}: bad level change side={side} price={price} qty={qty}"
                )
        out: list[Change] = []
        price_of = self.format.price
        for (side, price), qty in batch.items():
            levels = self._sides[side]
            if levels.get(price, 0) == qty:
                continue
            price_text = price_of(price)
            if qty:
                levels[price] = qty
                self._text[side][price] = f"{price_text}:{qty}"
            else:
                del levels[price]
                del self._text[side][price]
            out.append([SIDE_NAMES[side], price_text, str(qty)])
        if not out:
            return None
        self.sequence += 1
        return {
            "channel": "book",
            "type": "update",
            "symbol": self.symbol,
            "sequence": self.sequence,
            "changes": out,
            "checksum": self.checksum(),
        }

    def restore(
        self,
        bids: Iterable[tuple[int, int]],
        asks: Iterable[tuple[int, int]],
        sequence: int = 0,
    ) -> None:
        """Replace the whole book with ``(price_ticks, qty)`` levels, e.g. after recovery.

        Clients must take a fresh snapshot afterwards: this sends no update.
        """
        fresh: tuple[SortedDict, SortedDict] = (SortedDict(operator.neg), SortedDict())
        text: tuple[dict[int, str], dict[int, str]] = ({}, {})
        for side, levels in ((BUY, bids), (SELL, asks)):
            for price, qty in levels:
                if price < 1 or qty < 1 or price in fresh[side]:
                    raise ValueError(f"{self.symbol}: bad level price={price} qty={qty}")
                fresh[side][price] = qty
                text[side][price] = f"{self.format.price(price)}:{qty}"
        self._sides, self._text = fresh, text
        self.sequence = sequence

    # -- reading ------------------------------------------------------------------------
    def levels(self, side: int, depth: int | None = None) -> list[tuple[int, int]]:
        """Return ``(price_ticks, qty)`` of ``side``, best first, at most ``depth`` levels."""
        return list(islice(self._sides[side].items(), depth))

    def best(self, side: int) -> int | None:
        """Return the best price of ``side`` in ticks, or ``None`` if the side is empty."""
        levels = self._sides[side]
        return int(levels.peekitem(0)[0]) if levels else None

    @property
    def best_bid(self) -> int | None:
        """The highest bid in ticks, or ``None``."""
        return self.best(BUY)

    @property
    def best_ask(self) -> int | None:
        """The lowest ask in ticks, or ``None``."""
        return self.best(SELL)

    def wire_levels(self, side: int, depth: int | None = None) -> list[Level]:
        """Return ``side`` as ``[price, qty]`` strings, best first, at most ``depth`` levels."""
        price_of = self.format.price
        return [[price_of(p), str(q)] for p, q in islice(self._sides[side].items(), depth)]

    def checksum(self) -> int:
        """Return the SPEC 4 checksum of the book as it is now."""
        # Same string as checksum(wire bids, wire asks), from the "p:q" kept per level.
        bids, asks = self._sides
        bid_text, ask_text = self._text
        text = (
            "B"
            + ",".join([bid_text[p] for p in bids.keys()[:CHECKSUM_DEPTH]])
            + "A"
            + ",".join([ask_text[p] for p in asks.keys()[:CHECKSUM_DEPTH]])
        )
        return zlib.crc32(text.encode())

    def snapshot_message(self, depth: int | None = None) -> BookSnapshot:
        """Return the websocket ``snapshot`` message, at most ``depth`` levels a side.

        The checksum always covers the top 10 levels of the whole book; a client that keeps
        a local book (:class:`~exchange.marketdata.client_book.LocalBook`) needs the full
        snapshot (``depth=None``).
        """
        return {
            "channel": "book",
            "type": "snapshot",
            "symbol": self.symbol,
            "sequence": self.sequence,
            "bids": self.wire_levels(BUY, depth),
            "asks": self.wire_levels(SELL, depth),
            "checksum": self.checksum(),
        }

    def rest_book(self, depth: int | None = None) -> RestBook:
        """Return the body of ``GET /v1/book/{symbol}?depth=N``."""
        return {
            "symbol": self.symbol,
            "sequence": self.sequence,
            "bids": self.wire_levels(BUY, depth),
            "asks": self.wire_levels(SELL, depth),
        }

    def check_invariants(self) -> None:
        """Raise ``AssertionError`` if the levels and their cached checksum text disagree."""
        for side in (BUY, SELL):
            levels, text = self._sides[side], self._text[side]
            assert set(levels) == set(text), f"{self.symbol}: level index and text differ"
            for price, qty in levels.items():
                assert price >= 1 and qty >= 1, f"{self.symbol}: bad level {price}:{qty}"
                assert text[price] == f"{self.format.price(price)}:{qty}"
        assert self.checksum() == checksum(self.wire_levels(BUY), self.wire_levels(SELL))

    def state_hash(self) -> str:
        """Return a SHA-256 digest of the symbol, sequence and every level, for replay checks."""
        state = (self.symbol, self.sequence, self.levels(BUY), self.levels(SELL))
        return hashlib.sha256(repr(state).encode()).hexdigest()
