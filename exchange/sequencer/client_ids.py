"""Which order an account's ``client_order_id`` names, in 16 bytes an order.

A repeated ``client_order_id`` from the same account returns the original order (SPEC
section 3), for as long as the exchange runs, so every one ever given must stay findable.
The SDK gives one to every order. As a dict from ``(account, client_order_id)`` tuples that
is about 100 bytes an order beyond the order itself; here it is an open-addressing table of
two int64 arrays (the matching engine's compiled hash kernels), keyed by a 63-bit digest of
the pair, at most half full.

A digest can name another pair: :meth:`ClientOrderIds.get` checks the order it finds
against the pair asked for, and a pair whose digest is already taken goes into a small exact
dict instead. The digest is :func:`zlib.crc32` and :func:`zlib.adler32` of the pair's bytes,
the same in every process (Python's ``hash`` of a string is not), so the table survives
snapshots and replays.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable

import numpy as np

from exchange.engine import kernels as k

#: Cells in a new table (a power of two).
INITIAL_CELLS = 1 << 12

#: ``owner(order_id)``: the ``(account, client_order_id)`` of an order.
Owner = Callable[[int], tuple[int, str | None]]


def digest(account: int, client_order_id: str) -> int:
    """The table key of a pair: 63 bits, never 0 (an empty cell) or negative."""
    data = client_order_id.encode()
    key = zlib.crc32(data, account & 0xFFFF_FFFF) | (zlib.adler32(data) & 0x7FFF_FFFF) << 32
    return key or 1


class ClientOrderIds:
    """``(account, client_order_id) -> order id``; pairs are added, never removed."""

    def __init__(self, cells: int = INITIAL_CELLS) -> None:
        self._keys = np.zeros(cells, dtype=np.int64)
        self._ids = np.zeros(cells, dtype=np.int64)
        self._meta = np.zeros(k.M_COLS, dtype=np.int64)  # meta[M_HASH_USED]: cells in use
        self._clashes: dict[tuple[int, str], int] = {}  # pairs whose digest another holds
        self._asked: tuple[int, str, int, bool] | None = None  # the last get: pair, key, taken

    @classmethod
    def of(cls, pairs: Iterable[tuple[tuple[int, str], int]]) -> ClientOrderIds:
        """A table holding ``((account, client_order_id), order_id)`` pairs, in that order."""
        table = cls()
        for (account, client_order_id), order_id in pairs:
            table.add(account, client_order_id, order_id)
        return table

    def __len__(self) -> int:
        return int(self._meta[k.M_HASH_USED]) + len(self._clashes)

    def get(self, account: int, client_order_id: str, owner: Owner) -> int | None:
        """The order ``client_order_id`` of ``account`` names, or None."""
        if self._clashes:
            found = self._clashes.get((account, client_order_id))
            if found is not None:
                return found
        key = digest(account, client_order_id)
        order_id = int(k.h_find(self._keys, self._ids, key))
        self._asked = (account, client_order_id, key, order_id >= 0)
        if order_id < 0 or owner(order_id) != (account, client_order_id):
            return None
        return order_id

    def add(self, account: int, client_order_id: str, order_id: int) -> None:
        """Record a pair that :meth:`get` does not find."""
        asked = self._asked
        if asked is not None and asked[0] == account and asked[1] == client_order_id:
            key, taken = asked[2], asked[3]  # what get() just found (nothing changed since)
        else:
            key = digest(account, client_order_id)
            taken = k.h_find(self._keys, self._ids, key) >= 0
        self._asked = None
        if taken:  # another pair has this digest
            self._clashes[(account, client_order_id)] = order_id
            return
        if (self._meta[k.M_HASH_USED] + 1) * 2 > len(self._keys):
            old_keys, old_ids = self._keys, self._ids
            self._keys = np.zeros(2 * len(old_keys), dtype=np.int64)
            self._ids = np.zeros(2 * len(old_ids), dtype=np.int64)
            k.h_rebuild(old_keys, old_ids, self._keys, self._ids, self._meta)
        k.h_insert(self._keys, self._ids, self._meta, key, order_id)
