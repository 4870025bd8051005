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
        row = np.zeros(k.BK_COLS, dtype=np.int64)
        row[k.BK_ID] = book
        row[k.BK_N_TICKS] = n_ticks
        row[k.BK_LEVEL_BASE] = len(self._levels)
        row[k.BK_WORD_BASE] = len(self._words)
        row[k.BK_N_WORDS] = n_words
        row[k.BK_BEST : k.BK_BEST + 2] = -1
        row[k.BK_MECHANISM] = mechanism
        levels = np.zeros(2 * n_ticks, dtype=k.LEVEL_DTYPE)
        levels["head"] = -1
        levels["tail"] = -1
        self._levels = np.concatenate([self._levels, levels])
        self._words = np.concatenate([self._words, np.zeros(2 * n_words, dtype=np.uint64)])
        self._bk = np.vstack([self._bk, row])
        if book >= len(self._book_index):
            grown = np.full(book + 1, -1, dtype=np.int64)
            grown[: len(self._book_index)] = self._book_index
            self._book_index = grown
        self._book_index[book] = len(self._bk) - 1

    def _drop_book(self, book: int) -> None:
        # Cut the book's ladder and bitmap out of the shared arrays, then move every later
        # book's bases down and renumber the rows that slots and the index point at.
        r = self._row(book)
        row = self._bk[r]
        level_base, n_levels = int(row[k.BK_LEVEL_BASE]), 2 * int(row[k.BK_N_TICKS])
        word_base, n_words = int(row[k.BK_WORD_BASE]), 2 * int(row[k.BK_N_WORDS])
        self._levels = np.concatenate(
            [self._levels[:level_base], self._levels[level_base + n_levels :]]
        )
        self._words = np.concatenate([self._words[:word_base], self._words[word_base + n_words :]])
        self._bk[r + 1 :, k.BK_LEVEL_BASE] -= n_levels
        self._bk[r + 1 :, k.BK_WORD_BASE] -= n_words
        self._bk = np.delete(self._bk, r, axis=0)
        self._book_index[book] = -1
        self._book_index[self._book_index > r] -= 1
        slot_rows = self._orders["book"]
        slot_rows[slot_rows > r] -= 1  # live slots of later books; free slots are rewritten

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
