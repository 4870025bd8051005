"""A client's copy of one book, kept from the websocket feed and checked as it goes.

An SDK feeds every ``book`` message of a symbol to :meth:`LocalBook.apply`. The book
checks that each update's sequence is the previous one plus 1 and that its checksum
matches the book after the update; when either fails it raises :class:`FeedGap` or
:class:`ChecksumMismatch` and stops accepting updates until the next snapshot, so the
caller's one job is: on :class:`FeedError`, resubscribe.

Prices stay the strings the feed wrote (the checksum is over those exact strings); they
are parsed as :class:`~decimal.Decimal` only to sort the levels.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from decimal import Decimal
from itertools import islice
from typing import Any

from sortedcontainers import SortedDict

from exchange.marketdata.book import CHECKSUM_DEPTH, checksum
from exchange.marketdata.types import Level

_SIDES = {"buy": 0, "sell": 1}


class FeedError(Exception):
    """The local book no longer follows the feed; resubscribe to get a fresh snapshot."""

    code = "FEED_ERROR"

    def __init__(self, symbol: str, message: str) -> None:
        super().__init__(f"{self.code}: {symbol}: {message}")
        self.symbol = symbol


class FeedGap(FeedError):
    """An update arrived out of sequence (or before any snapshot): a message was lost."""

    code = "FEED_GAP"

    def __init__(self, symbol: str, expected: int | None, received: int) -> None:
        want = "a snapshot first" if expected is None else f"sequence {expected}"
        super().__init__(symbol, f"expected {want}, received sequence {received}")
        self.expected = expected
        self.received = received


class ChecksumMismatch(FeedError):
    """The book after a message does not hash to the checksum the message carries."""

    code = "CHECKSUM_MISMATCH"

    def __init__(self, symbol: str, sequence: int, expected: int, computed: int) -> None:
        super().__init__(
            symbol, f"at sequence {sequence} the feed says {expected}, local book is {computed}"
        )
        self.sequence = sequence
        self.expected = expected
        self.computed = computed


class LocalBook:
    """One symbol's book rebuilt from ``snapshot`` and ``update`` messages."""

    def __init__(self, symbol: str) -> None:
        """Create an empty, unsynced book for ``symbol``; it needs a snapshot first."""
        self.symbol = symbol
        #: Sequence of the last message applied; ``None`` until a snapshot (or after an error).
        self.sequence: int | None = None
        # Indexed by side; Decimal price -> (price string, quantity string), best first.
        self._sides: tuple[SortedDict, SortedDict] = (SortedDict(operator.neg), SortedDict())

    @property
    def synced(self) -> bool:
        """Whether the book follows the feed (a snapshot arrived and nothing failed since)."""
        return self.sequence is not None

    def apply(self, message: Mapping[str, Any]) -> None:
        """Apply one ``book`` message of this symbol; raise :class:`FeedError` on a gap.

        Raise ``ValueError`` for a message of another channel, symbol or type.
        """
        if message.get("channel") != "book" or message.get("symbol") != self.symbol:
            raise ValueError(f"not a book message for {self.symbol}: {dict(message)!r}")
        kind = message.get("type")
        if kind == "snapshot":
            self._snapshot(message)
        elif kind == "update":
            self._update(message)
        else:
            raise ValueError(f"unknown book message type {kind!r}")
        self._verify(int(message["sequence"]), int(message["checksum"]))

    def _snapshot(self, message: Mapping[str, Any]) -> None:
        fresh: tuple[SortedDict, SortedDict] = (SortedDict(operator.neg), SortedDict())
        for side, levels in enumerate((message["bids"], message["asks"])):
            for price, qty in levels:
                fresh[side][Decimal(price)] = (price, qty)
        self._sides = fresh
        self.sequence = int(message["sequence"])

    def _update(self, message: Mapping[str, Any]) -> None:
        received = int(message["sequence"])
        if self.sequence is None or received != self.sequence + 1:
            expected = None if self.sequence is None else self.sequence + 1
            self.sequence = None
            raise FeedGap(self.symbol, expected, received)
        for side_name, price, qty in message["changes"]:
            levels = self._sides[_SIDES[side_name]]
            if int(qty) == 0:
                levels.pop(Decimal(price), None)
            else:
                levels[Decimal(price)] = (price, qty)
        self.sequence = received

    def _verify(self, sequence: int, expected: int) -> None:
        computed = self.checksum()
        if computed != expected:
            self.sequence = None
            raise ChecksumMismatch(self.symbol, sequence, expected, computed)

    def bids(self, depth: int | None = None) -> list[Level]:
        """Return the bids as ``[price, qty]`` strings, best (highest) first."""
        return [list(pq) for pq in islice(self._sides[0].values(), depth)]

    def asks(self, depth: int | None = None) -> list[Level]:
        """Return the asks as ``[price, qty]`` strings, best (lowest) first."""
        return [list(pq) for pq in islice(self._sides[1].values(), depth)]

    def checksum(self) -> int:
        """Return the SPEC 4 checksum of the local book."""
        return checksum(self.bids(CHECKSUM_DEPTH), self.asks(CHECKSUM_DEPTH))
