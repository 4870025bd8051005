"""The engine's compiled kernels, called from compiled simulation loops.

Simulations run on the real matching engine: a :class:`~exchange.engine.numba_engine.NumbaEngine`
holds the books, and an ``@njit`` loop passes the engine's arrays to
:func:`exchange.engine.kernels.process_one` and :func:`exchange.engine.kernels.auction` for
every command, without a Python call per order. The state tuple ``st`` the helpers take is
the engine's nine arrays (``engine._state()``, in the kernels' order) followed by two scratch
arrays for rebuilding the hash table.

The engine grows its pools from Python when a kernel reports ``NEED_*``; a compiled loop
cannot, so :func:`new_engine` sizes the pools for the most orders a simulation can rest at
once, and :func:`submit` rebuilds the order-id hash table in place when deletions have filled
it with tombstones. Anything else a kernel asks for is returned as a negative count, which
callers treat as a bug in their sizing.

Like the engine's own hot path, these helpers compile without reference counting
(``_nrt=False``): they never allocate, so passing the state arrays costs nothing. The one
exception is :func:`auction`: the engine's auction kernel allocates, and a function compiled
without reference counting cannot call one that needs it (with a cold numba cache it does
not even compile), so auctions run from a driver compiled with reference counting.

This module is the only place that touches the engine's private arrays.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from exchange.engine import BATCH, CONTINUOUS, Engine
from exchange.engine import kernels as k
from exchange.engine.numba_engine import NumbaEngine

#: The smallest order-id hash table a simulation engine gets (cells).
MIN_HASH = 1 << 14
#: The smallest event buffer a simulation engine gets (rows).
MIN_EVENTS = 1 << 12

NEED_SLOTS = k.NEED_SLOTS  #: re-exported for callers that decode a negative count
NEED_HASH = k.NEED_HASH  #: the hash table is full of keys and tombstones
NEED_EVENTS = k.NEED_EVENTS  #: the event buffer is too small for one command


def new_engine(
    books: list[tuple[int, int, int]], max_live: int
) -> tuple[NumbaEngine, tuple[np.ndarray, ...]]:
    """Return a numba engine with ``books`` (id, n_ticks, mechanism) and room for ``max_live``.

    ``max_live`` bounds the orders resting at once over all books. The returned tuple is the
    engine's state plus two scratch arrays (see the module docstring); it stays valid as long
    as nothing grows the engine from Python.
    """
    engine = Engine(backend="numba")
    assert isinstance(engine, NumbaEngine)
    for book, n_ticks, mechanism in books:
        if mechanism not in (CONTINUOUS, BATCH):
            raise ValueError(f"mechanism {mechanism} is neither CONTINUOUS nor BATCH")
        engine.add_book(book, n_ticks, mechanism)
    while len(engine._orders) < max_live + 1:
        engine._grow(k.NEED_SLOTS)
    size = MIN_HASH
    while size < 4 * (max_live + 1):
        size *= 2
    if size > len(engine._hkeys):
        old_keys, old_vals = engine._hkeys, engine._hvals
        engine._hkeys = np.zeros(size, dtype=np.int64)
        engine._hvals = np.zeros(size, dtype=np.int32)
        k.h_rebuild(old_keys, old_vals, engine._hkeys, engine._hvals, engine._meta)
    # an AUCTION writes at most 2 + 3 events per resting order, an ADD 4 + 2 per order
    rows = max(MIN_EVENTS, 3 * max_live + 8)
    if rows > len(engine._events):
        engine._events = np.zeros(rows, dtype=engine._events.dtype)
    scratch = (np.zeros_like(engine._hkeys), np.zeros_like(engine._hvals))
    return engine, engine._state() + scratch


#: Decorator of the helpers: compiled without reference counting, like the engine's kernels.
_kernel = njit(cache=True, _nrt=False)  # type: ignore[call-overload]


@_kernel
def rehash(st):
    """Rebuild the order-id hash table in place, dropping its tombstones."""
    hkeys, hvals, meta, old_keys, old_vals = st[5], st[6], st[7], st[9], st[10]
    for i in range(len(hkeys)):
        old_keys[i] = hkeys[i]
        old_vals[i] = hvals[i]
        hkeys[i] = 0
        hvals[i] = 0
    k.h_rebuild(old_keys, old_vals, hkeys, hvals, meta)


@_kernel
def submit(st, kind, book, order_id, account, side, price, quantity, tif, flags, seq, ts):
    """Run one ADD, CANCEL or AMEND on the state ``st``; return its event count (the events
    are in ``st[8]``), or ``-NEED_*`` if the engine was sized too small for the simulation.

    Self-trade prevention is off: simulated accounts never meet themselves, or may trade.
    """
    while True:
        n = k.process_one(*st[:9], kind, book, order_id, account, side, price, quantity, tif,
                          flags, np.int64(0), seq, ts)  # fmt: skip
        if n >= 0:
            return n
        if -n == k.NEED_HASH:
            rehash(st)
            continue
        return n


@njit(cache=True)
def auction(st, book, flags, seq, ts):
    """Uncross ``book`` in a call auction; return the event count, or ``-NEED_EVENTS``.

    The engine's auction kernel allocates, so this helper (and whatever calls it) compiles
    with reference counting: call it from a loop's driver, not from an ``_nrt=False`` kernel.
    """
    bk = st[3]
    book_index = st[4]
    if 0 <= book < len(book_index) and book_index[book] != -1:
        b = book_index[book]
        if 2 + 3 * (bk[b, k.BK_COUNT] + bk[b, k.BK_COUNT + 1]) > len(st[8]):
            return -k.NEED_EVENTS
    st[7][k.M_N_EVENTS] = 0
    k.auction(*st[:9], seq, ts, book, np.int64(0), np.int64(0), np.int64(0), np.int64(0),
              np.int64(0), flags)  # fmt: skip
    return st[7][k.M_N_EVENTS]


@_kernel
def best(st, book, side):
    """Best price on ``side`` of ``book`` in ticks, or -1 when that side is empty."""
    b = st[4][book]
    return st[3][b, k.BK_BEST + side]


@_kernel
def level_quantity(st, book, side, price):
    """Total open quantity at ``price`` on ``side`` of ``book``."""
    bk = st[3]
    b = st[4][book]
    return st[1][bk[b, k.BK_LEVEL_BASE] + side * bk[b, k.BK_N_TICKS] + price].qty


@_kernel
def resting_count(st, book, side):
    """Number of orders resting on ``side`` of ``book``."""
    return st[3][st[4][book], k.BK_COUNT + side]
