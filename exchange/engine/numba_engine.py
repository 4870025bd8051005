"""The compiled engine: owns the arrays, grows the pools, calls :mod:`kernels`."""

from __future__ import annotations

import numpy as np

from exchange.engine import kernels as k
from exchange.engine.base import Engine
from exchange.engine.types import (
    COMMAND_DTYPE,
    CONTINUOUS,
    DEFAULT_N_TICKS,
    EVENT_DTYPE,
    GTC,
    ORDER_DTYPE,
    STP_NONE,
)

_INITIAL_SLOTS = 1 << 12
_INITIAL_HASH = 1 << 13
_INITIAL_EVENTS = 1 << 16
#: After a batch, an event buffer grown beyond this many rows is given back.
_MAX_KEPT_EVENTS = 1 << 20


class NumbaEngine(Engine):
    """The numba backend: price ladders indexed by tick, intrusive FIFO lists, slot pools."""

    backend = "numba"

    def __init__(self, backend: str = "numba") -> None:
        self._orders = np.zeros(_INITIAL_SLOTS, dtype=k.SLOT_DTYPE)
        self._levels = np.zeros(0, dtype=k.LEVEL_DTYPE)
        self._words = np.zeros(0, dtype=np.uint64)
        self._levels_used = 0  #: the ladders' extent in ``_levels``; room past it is spare
        self._words_used = 0
        #: Regions inside the extents left by removed books: (level base, levels, word base, words)
        self._holes: list[tuple[int, int, int, int]] = []
        self._bk = np.zeros((0, k.BK_COLS), dtype=np.int64)
        self._book_index = np.full(0, -1, dtype=np.int64)
        self._hkeys = np.zeros(_INITIAL_HASH, dtype=np.int64)
        self._hvals = np.zeros(_INITIAL_HASH, dtype=np.int32)
        self._meta = np.zeros(k.M_COLS, dtype=np.int64)
        self._meta[k.M_FREE_HEAD] = -1
        self._events = np.zeros(_INITIAL_EVENTS, dtype=EVENT_DTYPE)

    def _state(self) -> tuple[np.ndarray, ...]:
        return (
            self._orders,
            self._levels,
            self._words,
            self._bk,
            self._book_index,
            self._hkeys,
            self._hvals,
            self._meta,
            self._events,
        )

    # -- books ------------------------------------------------------------------------
    def add_book(
        self, book: int, n_ticks: int = DEFAULT_N_TICKS, mechanism: int = CONTINUOUS
    ) -> None:
        existing = {int(b) for b in self._bk[:, k.BK_ID]}
        self._check_book_args(book, n_ticks, mechanism, existing)
        n_words = (n_ticks + 63) // 64
        level_base, word_base = self._allocate(2 * n_ticks, 2 * n_words)
        row = np.zeros(k.BK_COLS, dtype=np.int64)
        row[k.BK_ID] = book
        row[k.BK_N_TICKS] = n_ticks
        row[k.BK_LEVEL_BASE] = level_base
        row[k.BK_WORD_BASE] = word_base
        row[k.BK_N_WORDS] = n_words
        row[k.BK_BEST : k.BK_BEST + 2] = -1
        row[k.BK_MECHANISM] = mechanism
        self._bk = np.vstack([self._bk, row])
        if book >= len(self._book_index):
            grown = np.full(book + 1, -1, dtype=np.int64)
            grown[: len(self._book_index)] = self._book_index
            self._book_index = grown
        self._book_index[book] = len(self._bk) - 1

    def _drop_book(self, book: int) -> None:
        # Give the book's ladder and bitmap back as a hole, then renumber the rows after it
        # (slots and the index point at rows).
        r = self._row(book)
        row = self._bk[r]
        self._release(int(row[k.BK_LEVEL_BASE]), 2 * int(row[k.BK_N_TICKS]),
                      int(row[k.BK_WORD_BASE]), 2 * int(row[k.BK_N_WORDS]))  # fmt: skip
        self._bk = np.delete(self._bk, r, axis=0)
        self._book_index[book] = -1
        self._book_index[self._book_index > r] -= 1
        slot_rows = self._orders["book"]
        slot_rows[slot_rows > r] -= 1  # live slots of later books; free slots are rewritten
        live = self._levels_used - sum(hole[1] for hole in self._holes)
        if live * 4 <= len(self._levels):
            self._compact()

    # -- ladder memory ------------------------------------------------------------------
    # Books are listed and removed every day while the exchange runs (a ladder is 4.8 MB at
    # the default 100,000 ticks). A new book takes a hole a removed one left, or room past
    # the used extent, which grows by half at a time: listing one does not copy every
    # other book's ladder, a pause of tens of milliseconds per book at a few dozen books.
    def _allocate(self, n_levels: int, n_words: int) -> tuple[int, int]:
        """Find room for one book's ladder and bitmap, cleared; return their bases."""
        fits = [h for h in self._holes if h[1] >= n_levels and h[3] >= n_words]
        if fits:
            hole = min(fits, key=lambda h: (h[1], h[0]))  # the tightest fit
            self._holes.remove(hole)
            level_base, word_base = hole[0], hole[2]
            if hole[1] > n_levels or hole[3] > n_words:
                self._holes.append((level_base + n_levels, hole[1] - n_levels,
                                    word_base + n_words, hole[3] - n_words))  # fmt: skip
        else:
            level_base, word_base = self._levels_used, self._words_used
            self._levels_used += n_levels
            self._words_used += n_words
            self._levels = _with_room(self._levels, self._levels_used)
            self._words = _with_room(self._words, self._words_used)
        # empty is all zeros: pages already zero (never touched) are left unwritten
        k.clear_nonzero(self._levels[level_base : level_base + n_levels].view(np.uint64))
        k.clear_nonzero(self._words[word_base : word_base + n_words])
        return level_base, word_base

    def _release(self, level_base: int, n_levels: int, word_base: int, n_words: int) -> None:
        """Make a removed book's region a hole, merged with its neighbours or the spare room."""
        holes = sorted([*self._holes, (level_base, n_levels, word_base, n_words)])
        merged: list[tuple[int, int, int, int]] = []
        for hole in holes:
            if merged:
                lb, nl, wb, nw = merged[-1]
                if lb + nl == hole[0] and wb + nw == hole[2]:
                    merged[-1] = (lb, nl + hole[1], wb, nw + hole[3])
                    continue
            merged.append(hole)
        if merged:
            lb, nl, wb, nw = merged[-1]
            if lb + nl == self._levels_used and wb + nw == self._words_used:
                self._levels_used, self._words_used = lb, wb
                merged.pop()
        self._holes = merged

    def _compact(self) -> None:
        """Move every book's region together, into arrays with room for as many again."""
        levels = np.zeros(2 * sum(2 * int(r[k.BK_N_TICKS]) for r in self._bk), k.LEVEL_DTYPE)
        words = np.zeros(2 * sum(2 * int(r[k.BK_N_WORDS]) for r in self._bk), np.uint64)
        level_at = word_at = 0
        for row in self._bk:
            n_levels, n_words = 2 * int(row[k.BK_N_TICKS]), 2 * int(row[k.BK_N_WORDS])
            lb, wb = int(row[k.BK_LEVEL_BASE]), int(row[k.BK_WORD_BASE])
            k.copy_nonzero(self._levels[lb : lb + n_levels].view(np.uint64),
                           levels[level_at : level_at + n_levels].view(np.uint64))  # fmt: skip
            k.copy_nonzero(self._words[wb : wb + n_words], words[word_at : word_at + n_words])
            row[k.BK_LEVEL_BASE], row[k.BK_WORD_BASE] = level_at, word_at
            level_at += n_levels
            word_at += n_words
        self._levels, self._words = levels, words
        self._levels_used, self._words_used = level_at, word_at
        self._holes = []

    def books(self) -> list[tuple[int, int, int]]:
        return sorted(
            (int(r[k.BK_ID]), int(r[k.BK_N_TICKS]), int(r[k.BK_MECHANISM])) for r in self._bk
        )

    # -- growth -----------------------------------------------------------------------
    def _grow(self, need: int) -> None:
        if need & k.NEED_SLOTS:
            grown = np.zeros(2 * len(self._orders), dtype=k.SLOT_DTYPE)
            grown[: len(self._orders)] = self._orders
            self._orders = grown
        if need & k.NEED_HASH:
            live = int(self._meta[k.M_LIVE])
            size = len(self._hkeys)
            # rebuild at the same size when tombstones fill it, double when live keys do
            while (live + 1) * 4 > size:
                size *= 2
            old_keys, old_vals = self._hkeys, self._hvals
            self._hkeys = np.zeros(size, dtype=np.int64)
            self._hvals = np.zeros(size, dtype=np.int32)
            k.h_rebuild(old_keys, old_vals, self._hkeys, self._hvals, self._meta)
        if need & k.NEED_EVENTS:
            used = int(self._meta[k.M_N_EVENTS])
            size = len(self._events)
            while size < used + int(self._meta[k.M_ROOM]):
                size *= 2
            grown = np.zeros(size, dtype=EVENT_DTYPE)
            grown[:used] = self._events[:used]
            self._events = grown

    # -- commands ---------------------------------------------------------------------
    def process(self, commands: np.ndarray, copy: bool = True) -> np.ndarray:
        if commands.dtype != COMMAND_DTYPE:
            raise TypeError("commands must be an array of exchange.engine.COMMAND_DTYPE")
        commands = np.ascontiguousarray(commands)
        start = 0
        self._meta[k.M_N_EVENTS] = 0
        while start < len(commands):
            start, need = k.process_batch(*self._state(), commands, start)
            if need & ~k.NEED_AUCTION:
                self._grow(need)
            elif need:
                c = commands[start]
                self._auction(int(c["seq"]), int(c["ts"]), int(c["book"]), int(c["order_id"]),
                              int(c["account"]), int(c["side"]), int(c["price"]),
                              int(c["quantity"]), int(c["flags"]))  # fmt: skip
                start += 1
        events = self._events[: self._meta[k.M_N_EVENTS]]
        if copy:
            # a copy as raw words: numpy copies structured arrays field by field otherwise
            words = events.view(np.int64).copy()
            events = words.view(EVENT_DTYPE)
        if len(self._events) > _MAX_KEPT_EVENTS:
            self._events = np.zeros(_INITIAL_EVENTS, dtype=EVENT_DTYPE)
        return events

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
        n = k.process_one(
            self._orders, self._levels, self._words, self._bk, self._book_index, self._hkeys,
            self._hvals, self._meta, self._events,
            kind, book, order_id, account, side, price, quantity, tif, flags, stp, seq, ts,
        )  # fmt: skip
        while n < 0:
            if -n & ~k.NEED_AUCTION:
                self._grow(-n)
            else:
                self._meta[k.M_N_EVENTS] = 0
                self._auction(seq, ts, book, order_id, account, side, price, quantity, flags)
                return self._events[: self._meta[k.M_N_EVENTS]]
            n = k.process_one(
                *self._state(),
                kind, book, order_id, account, side, price, quantity, tif, flags, stp, seq, ts,
            )  # fmt: skip
        return self._events[:n]

    def _auction(self, seq: int, ts: int, book: int, order_id: int, account: int, side: int,
                 price: int, quantity: int, flags: int) -> None:  # fmt: skip
        k.auction(
            self._orders, self._levels, self._words, self._bk, self._book_index, self._hkeys,
            self._hvals, self._meta, self._events,
            seq, ts, book, order_id, account, side, price, quantity, flags,
        )  # fmt: skip

    # -- queries ----------------------------------------------------------------------
    def _row(self, book: int) -> int:
        if not 0 <= book < len(self._book_index) or self._book_index[book] == -1:
            raise KeyError(f"unknown book {book}")
        return int(self._book_index[book])

    def depth(
        self, book: int, levels: int = 10
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        b = self._row(book)
        out = np.zeros((max(levels, 0), 2), dtype=np.int64)
        sides = []
        for side in (0, 1):
            n = k.depth(self._orders, self._levels, self._words, self._bk, b, side, levels, out)
            sides.append([(int(p), int(q)) for p, q in out[:n]])
        return sides[0], sides[1]

    def order(self, order_id: int) -> dict[str, int] | None:
        if order_id <= 0:
            return None
        slot = k.h_find(self._hkeys, self._hvals, order_id)
        if slot == -1:
            return None
        o = self._orders[slot]
        return {
            "order_id": int(o["order_id"]),
            "account": int(o["account"]),
            "book": int(self._bk[o["book"], k.BK_ID]),
            "side": int(o["side"]),
            "price": int(o["price"]),
            "remaining": int(o["remaining"]),
            "stp": int(o["stp"]),
            "flags": int(o["flags"]),
        }

    def resting_orders(self) -> np.ndarray:
        out = np.zeros(int(self._meta[k.M_LIVE]), dtype=ORDER_DTYPE)
        n = 0
        for book, _, _ in self.books():
            n = k.collect(self._orders, self._levels, self._words, self._bk,
                          self._book_index[book], out, n)  # fmt: skip
        assert n == len(out)
        return out

    def _load_orders(self, orders: np.ndarray) -> None:
        total = int(self._meta[k.M_LIVE]) + len(orders)
        while len(self._orders) < total:
            self._grow(k.NEED_SLOTS)
        while (total + 1) * 2 > len(self._hkeys):
            self._hkeys = np.zeros(len(self._hkeys) * 2, dtype=np.int64)
            self._hvals = np.zeros(len(self._hvals) * 2, dtype=np.int32)
        k.h_rebuild(
            np.zeros(0, np.int64), np.zeros(0, np.int32), self._hkeys, self._hvals, self._meta
        )
        k.load(self._orders, self._levels, self._words, self._bk, self._book_index,
               self._hkeys, self._hvals, self._meta, np.ascontiguousarray(orders))  # fmt: skip

    def check_invariants(self) -> None:
        code = k.check(self._orders, self._levels, self._words, self._bk, self._hkeys,
                       self._hvals, self._meta)  # fmt: skip
        assert code == 0, f"numba engine invariant {code} broken (see kernels.check)"

    def memory_bytes(self) -> int:
        """Bytes held by the engine's arrays."""
        return sum(a.nbytes for a in self._state())


def _with_room(array: np.ndarray, size: int) -> np.ndarray:
    """``array``, or a copy with half as much again when it is shorter than ``size``.

    Pages of ``array`` that are all zeros (ladder no order reached) are not copied, so the
    copy's stay unallocated too.
    """
    if size <= len(array):
        return array
    grown = np.zeros(max(size, len(array) + len(array) // 2), dtype=array.dtype)
    if array.dtype.itemsize % 8 == 0:
        k.copy_nonzero(array.view(np.uint64), grown[: len(array)].view(np.uint64))
    else:
        grown[: len(array)] = array
    return grown
