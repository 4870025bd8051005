"""The engine interface both backends implement."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from exchange.engine import snapshot as snap
from exchange.engine.types import BATCH, CONTINUOUS, DEFAULT_N_TICKS, GTC, STP_NONE

#: Book ids are small non-negative integers (one per listed contract).
MAX_BOOK_ID = 1 << 20
#: Ladder sizes a book may have: at least one valid price, at most 10 million ticks.
MIN_N_TICKS = 2
MAX_N_TICKS = 10_000_000

BACKENDS = ("numba", "reference")


class Engine:
    """A matching engine with many order books; ``Engine(backend=...)`` picks the backend.

    ``Engine(backend="numba")`` returns the compiled engine, ``Engine(backend="reference")``
    the plain Python one; both are instances of :class:`Engine` and behave identically.
    """

    backend: str = ""

    def __new__(cls, backend: str = "numba", **kwargs: Any) -> Engine:
        if cls is not Engine:
            return super().__new__(cls)
        return super().__new__(backend_class(backend))

    # -- books ------------------------------------------------------------------------
    def add_book(
        self, book: int, n_ticks: int = DEFAULT_N_TICKS, mechanism: int = CONTINUOUS
    ) -> None:
        """Open book ``book`` with prices ``1 .. n_ticks - 1`` ticks, trading by ``mechanism``.

        ``CONTINUOUS`` books match orders on arrival; ``BATCH`` books collect GTC limit orders
        and trade only when an ``AUCTION`` command uncrosses them.
        """
        raise _missing(self, "add_book")

    def books(self) -> list[tuple[int, int, int]]:
        """Return ``(book, n_ticks, mechanism)`` for every book, by book id."""
        raise _missing(self, "books")

    def remove_book(self, book: int) -> None:
        """Close book ``book``, which must have no resting orders, and free its memory.

        Afterwards commands for it are refused with ``UNKNOWN_BOOK``, as for a book never
        opened. Raise ``KeyError`` for an unknown book
        and ``ValueError`` for one with resting orders. An exchange removes each contract's
        book once trading in it has ended, so memory follows the listed contracts, not
        every contract ever listed (the numba backend keeps a removed book's room for the
        next book listed).
        """
        if book not in {b for b, _, _ in self.books()}:
            raise KeyError(f"unknown book {book}")
        bids, asks = self.depth(book, 1)
        if bids or asks:
            raise ValueError(f"book {book} still has resting orders")
        self._drop_book(book)

    def _drop_book(self, book: int) -> None:
        raise _missing(self, "_drop_book")

    @staticmethod
    def _check_book_args(book: int, n_ticks: int, mechanism: int,
                         existing: set[int] | dict[int, Any]) -> None:  # fmt: skip
        if not 0 <= book < MAX_BOOK_ID:
            raise ValueError(f"book id {book} outside 0..{MAX_BOOK_ID - 1}")
        if not MIN_N_TICKS <= n_ticks <= MAX_N_TICKS:
            raise ValueError(f"n_ticks {n_ticks} outside {MIN_N_TICKS}..{MAX_N_TICKS}")
        if mechanism not in (CONTINUOUS, BATCH):
            raise ValueError(f"mechanism {mechanism} is neither CONTINUOUS nor BATCH")
        if book in existing:
            raise ValueError(f"book {book} already exists")

    # -- commands ---------------------------------------------------------------------
    def process(self, commands: np.ndarray, copy: bool = True) -> np.ndarray:
        """Run a ``COMMAND_DTYPE`` array in order; return the ``EVENT_DTYPE`` events.

        With ``copy=False`` the events may be a view of the engine's own buffer, valid until
        the next call: the cheapest way for a single consumer such as the sequencer.
        """
        raise _missing(self, "process")

    def process_one(
        self,
        kind: int,
        book: int,
        order_id: int,
        account: int = 0,
        side: int = 0,
        price: int = 0,
        quantity: int = 0,
        tif: int = GTC,
        flags: int = 0,
        stp: int = STP_NONE,
        seq: int = 0,
        ts: int = 0,
    ) -> np.ndarray:
        """Run one command given as plain ints; return its events (valid until the next call)."""
        raise _missing(self, "process_one")

    # -- queries ----------------------------------------------------------------------
    def depth(
        self, book: int, levels: int = 10
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Return the top ``levels`` bids and asks as ``(price, quantity)``, best first."""
        raise _missing(self, "depth")

    def order(self, order_id: int) -> dict[str, int] | None:
        """Return a resting order's fields, or ``None`` if it is not resting."""
        raise _missing(self, "order")

    def resting_orders(self) -> np.ndarray:
        """Return every resting order as ``ORDER_DTYPE`` rows in snapshot (priority) order."""
        raise _missing(self, "resting_orders")

    def check_invariants(self) -> None:
        """Raise ``AssertionError`` if any internal invariant is broken."""
        raise _missing(self, "check_invariants")

    def _load_orders(self, orders: np.ndarray) -> None:
        """Append trusted resting orders, in priority order, without matching."""
        raise _missing(self, "_load_orders")

    # -- state ------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Serialise the whole engine state; the format is the same for every backend."""
        return snap.encode(self.books(), self.resting_orders())

    @classmethod
    def restore(cls, data: bytes, backend: str = "numba") -> Engine:
        """Build an engine of ``backend`` from :meth:`snapshot` bytes."""
        books, orders = snap.decode(data)
        snap.validate(books, orders)
        engine = backend_class(backend)()
        for book, n_ticks, mechanism in books:
            engine.add_book(book, n_ticks, mechanism)
        engine._load_orders(orders)
        return engine

    def state_hash(self) -> str:
        """Return a digest of the state: equal hashes mean equal books and queues."""
        return hashlib.blake2b(self.snapshot(), digest_size=16).hexdigest()


def _missing(engine: Engine, method: str) -> TypeError:
    return TypeError(f"{type(engine).__name__} lacks {method}(): use Engine(backend=...)")


def backend_class(backend: str) -> type[Engine]:
    """Return the engine class of ``backend`` (``"numba"`` or ``"reference"``)."""
    if backend == "numba":
        from exchange.engine.numba_engine import NumbaEngine

        return NumbaEngine
    if backend == "reference":
        from exchange.engine.reference import ReferenceEngine

        return ReferenceEngine
    raise ValueError(f"unknown engine backend {backend!r}; choose one of {BACKENDS}")
