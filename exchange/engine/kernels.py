"""Compiled order-book kernels: pure functions over preallocated NumPy arrays.

State (owned by :class:`exchange.engine.numba_engine.NumbaEngine`, passed in every call):

- ``orders``: order slots (:data:`SLOT_DTYPE`); free slots form a list through ``next``.
- ``levels``: one row per (book, side, tick): FIFO head/tail slot, order count, total quantity.
  An empty level is all zeros (``count`` 0 says it is empty; ``head`` and ``tail`` mean
  nothing then), so the pages of a ladder no order has reached are never written, and the
  operating system never allocates them: most of a 100,000-tick ladder stays untouched.
- ``words``: a bitmap of non-empty levels per (book, side), 64 ticks per word, to find the
  next best price without walking empty ticks.
- ``bk``: one row per book (``BK_*`` columns): ladder geometry, best price and order count
  per side. Columns for the two sides sit next to each other so ``BK_BEST + side`` picks one.
- ``book_index``: external book id -> row in ``bk`` (-1: no such book).
- ``hkeys``/``hvals``: an open-addressing hash table from order id to slot
  (key 0 is empty, -1 a tombstone: order ids are positive).
- ``meta``: counters (``M_*``).
- ``ev``: the event buffer; ``meta[M_N_EVENTS]`` rows are written.

No I/O, no clock, no allocation on the hot path; kernels report when a pool must grow and the
Python side grows it and resumes.

The hot-path kernels compile with ``_nrt=False``: without numba's reference counting, passing
the state arrays between kernels costs nothing, where atomic increments and decrements per
array and call took most of the time. They never allocate, which is what that requires.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from exchange.engine.types import (
    ACCEPTED,
    ADD,
    ALL_FLAGS,
    AMEND,
    AMENDED,
    AUCTION,
    AUCTION_FLAGS,
    BATCH,
    BUY,
    CANCEL,
    CANCELLED,
    FOK,
    GTC,
    IOC,
    LEVEL,
    MARKET,
    MAX_QUANTITY,
    OPEN_CONTINUOUS,
    POST_ONLY,
    PRO_RATA,
    R_BATCH_ORDER_TYPE,
    R_CANCELLED_BY_USER,
    R_DUPLICATE_ORDER_ID,
    R_FOK_NOT_FILLED,
    R_INVALID_COMMAND,
    R_INVALID_FLAGS,
    R_INVALID_ORDER_ID,
    R_INVALID_QUANTITY,
    R_INVALID_SIDE,
    R_INVALID_STP,
    R_INVALID_TIF,
    R_IOC_REMAINDER,
    R_MARKET_NO_LIQUIDITY,
    R_POST_ONLY_WOULD_TRADE,
    R_PRICE_OFF_LADDER,
    R_SELF_TRADE,
    R_UNKNOWN_BOOK,
    R_UNKNOWN_ORDER_ID,
    REJECTED,
    SELL,
    STP_CANCEL_BOTH,
    STP_CANCEL_NEWEST,
    STP_CANCEL_OLDEST,
    STP_NONE,
    TRADE,
    UNCROSSED,
)

#: An order slot: a resting order plus its FIFO links (slot indices, -1 for none).
SLOT_DTYPE = np.dtype(
    [
        ("order_id", np.int64),
        ("account", np.int64),
        ("price", np.int64),
        ("remaining", np.int64),
        ("prev", np.int32),
        ("next", np.int32),
        ("book", np.int32),
        ("side", np.uint8),
        ("stp", np.uint8),
        ("flags", np.uint8),
    ],
    align=True,
)

#: A price level: total open quantity, FIFO head and tail slots, number of orders.
LEVEL_DTYPE = np.dtype(
    [("qty", np.int64), ("head", np.int32), ("tail", np.int32), ("count", np.int32)],
    align=True,
)

BK_ID = 0  #: external book id
BK_N_TICKS = 1  #: ladder size: valid prices are 1 .. n_ticks-1
BK_LEVEL_BASE = 2  #: first row of this book's levels (bids, then asks)
BK_WORD_BASE = 3  #: first word of this book's bitmap (bids, then asks)
BK_N_WORDS = 4  #: bitmap words per side
BK_BEST = 5  #: best bid tick (+1: best ask tick); -1 when the side is empty
BK_COUNT = 7  #: resting orders on the bid side (+1: ask side)
BK_MECHANISM = 9  #: CONTINUOUS or BATCH
BK_COLS = 10

M_FREE_HEAD = 0  #: first free slot below the high-water mark, -1 if none
M_HIGH_WATER = 1  #: slots ever used; slots at and above it are free
M_LIVE = 2  #: resting orders
M_HASH_USED = 3  #: hash cells holding a key or a tombstone
M_N_EVENTS = 4  #: events written into the buffer
M_ROOM = 5  #: event rows the next command may need
M_COLS = 8

H_EMPTY = 0  #: a hash cell never used
H_TOMBSTONE = -1  #: a hash cell whose key was deleted

NEED_SLOTS = 1  #: grow the order pool
NEED_HASH = 2  #: grow the hash table
NEED_EVENTS = 4  #: drain or grow the event buffer
NEED_AUCTION = 8  #: the command is an AUCTION: run :func:`auction` from Python

#: Hash table load (keys plus tombstones) above which it is rebuilt or grown.
HASH_MAX_LOAD_NUM = 1
HASH_MAX_LOAD_DEN = 2

#: Decorators: hot-path kernels, and tiny helpers numba inlines into them.
_kernel = njit(cache=True, _nrt=False)  # type: ignore[call-overload]
_inline = njit(inline="always", cache=True, _nrt=False)  # type: ignore[call-overload]

_U1 = np.uint64(1)
_U63 = np.uint64(63)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


# -- small helpers --------------------------------------------------------------------


@_inline
def _reaches(side, limit, price):
    """Whether an order on ``side`` limited at ``limit`` may trade at ``price``."""
    if side == BUY:
        return price <= limit
    return price >= limit


@_inline
def _better(side, a, b):
    """Whether price ``a`` is better than ``b`` for resting orders on ``side``."""
    if side == BUY:
        return a > b
    return a < b


@_kernel
def _msb(x):
    """Index of the highest set bit of a non-zero uint64."""
    n = 0
    if x >> np.uint64(32):
        x >>= np.uint64(32)
        n += 32
    if x >> np.uint64(16):
        x >>= np.uint64(16)
        n += 16
    if x >> np.uint64(8):
        x >>= np.uint64(8)
        n += 8
    if x >> np.uint64(4):
        x >>= np.uint64(4)
        n += 4
    if x >> np.uint64(2):
        x >>= np.uint64(2)
        n += 2
    if x >> np.uint64(1):
        n += 1
    return n


@_inline
def _lsb(x):
    """Index of the lowest set bit of a non-zero uint64."""
    return _msb(x & (~x + _U1))


@_kernel
def _scan(words, bk, b, side, start):
    """Best non-empty tick on ``side`` at or beyond ``start`` (down for bids), or -1."""
    n_ticks = bk[b, BK_N_TICKS]
    n_words = bk[b, BK_N_WORDS]
    base = bk[b, BK_WORD_BASE] + side * n_words
    if side == BUY:
        if start < 0:
            return -1
        if start >= n_ticks:
            start = n_ticks - 1
        w = start >> 6
        bits = np.uint64(start & 63)
        # keep bits 0..start&63; the shift by 64 wraps to 0, and 0 - 1 keeps all bits
        x = words[base + w] & ((_U1 << bits << _U1) - _U1) if bits < _U63 else words[base + w]
        while True:
            if x:
                return (w << 6) + _msb(x)
            w -= 1
            if w < 0:
                return -1
            x = words[base + w]
    else:
        if start >= n_ticks:
            return -1
        if start < 0:
            start = 0
        w = start >> 6
        x = words[base + w] & (_ALL << np.uint64(start & 63))
        while True:
            if x:
                return (w << 6) + _lsb(x)
            w += 1
            if w >= n_words:
                return -1
            x = words[base + w]


@_inline
def _emit(ev, meta, kind, seq, ts, book_id, order_id, account, side, price, quantity,
          remaining, maker_order_id, maker_account, maker_remaining, reason):  # fmt: skip
    i = meta[M_N_EVENTS]
    # item-then-field stores compile to plain stores; a record variable does not
    ev[i]["seq"] = seq
    ev[i]["ts"] = ts
    ev[i]["kind"] = kind
    ev[i]["book"] = book_id
    ev[i]["order_id"] = order_id
    ev[i]["account"] = account
    ev[i]["side"] = side
    ev[i]["price"] = price
    ev[i]["quantity"] = quantity
    ev[i]["remaining"] = remaining
    ev[i]["maker_order_id"] = maker_order_id
    ev[i]["maker_account"] = maker_account
    ev[i]["maker_remaining"] = maker_remaining
    ev[i]["reason"] = reason
    meta[M_N_EVENTS] = i + 1


@_inline
def _emit_level(ev, meta, levels, bk, b, seq, ts, side, price):
    li = bk[b, BK_LEVEL_BASE] + side * bk[b, BK_N_TICKS] + price
    _emit(ev, meta, LEVEL, seq, ts, bk[b, BK_ID], 0, 0, side, price, levels[li].qty, 0, 0, 0, 0, 0)


# -- hash table: order id -> slot -----------------------------------------------------


@_inline
def _hash(key, mask):
    z = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    z ^= z >> np.uint64(29)
    return np.int64(z & np.uint64(mask))


@_kernel
def h_find(hkeys, hvals, key):
    """Slot of order ``key``, or -1."""
    mask = len(hkeys) - 1
    i = _hash(key, mask)
    while True:
        k = hkeys[i]
        if k == key:
            return np.int64(hvals[i])
        if k == H_EMPTY:
            return np.int64(-1)
        i = (i + 1) & mask


@_kernel
def h_insert(hkeys, hvals, meta, key, slot):
    """Insert ``key`` (known to be absent) -> ``slot``."""
    mask = len(hkeys) - 1
    i = _hash(key, mask)
    while hkeys[i] != H_EMPTY and hkeys[i] != H_TOMBSTONE:
        i = (i + 1) & mask
    if hkeys[i] == H_EMPTY:
        meta[M_HASH_USED] += 1
    hkeys[i] = key
    hvals[i] = slot


@_kernel
def h_delete(hkeys, key):
    mask = len(hkeys) - 1
    i = _hash(key, mask)
    while hkeys[i] != key:
        i = (i + 1) & mask
    hkeys[i] = H_TOMBSTONE


@_kernel
def h_rebuild(old_keys, old_vals, hkeys, hvals, meta):
    """Insert every live key of the old table into the empty new one."""
    meta[M_HASH_USED] = 0
    for i in range(len(old_keys)):
        k = old_keys[i]
        if k != H_EMPTY and k != H_TOMBSTONE:
            h_insert(hkeys, hvals, meta, k, old_vals[i])


@_inline
def _hash_full(hkeys, meta):
    return (meta[M_HASH_USED] + 1) * HASH_MAX_LOAD_DEN > len(hkeys) * HASH_MAX_LOAD_NUM


# -- slots and levels -----------------------------------------------------------------


@_inline
def _alloc(orders, meta):
    slot = meta[M_FREE_HEAD]
    if slot != -1:
        meta[M_FREE_HEAD] = orders[slot].next
    else:
        slot = meta[M_HIGH_WATER]
        meta[M_HIGH_WATER] = slot + 1
    meta[M_LIVE] += 1
    return slot


@_inline
def _free(orders, meta, slot):
    orders[slot].order_id = 0
    orders[slot].remaining = 0
    orders[slot].next = meta[M_FREE_HEAD]
    meta[M_FREE_HEAD] = slot
    meta[M_LIVE] -= 1


@_kernel
def _push(orders, levels, words, bk, b, slot):
    """Append ``slot`` at the tail of its price level."""
    side = orders[slot].side
    price = orders[slot].price
    li = bk[b, BK_LEVEL_BASE] + side * bk[b, BK_N_TICKS] + price
    orders[slot].next = -1
    if levels[li].count == 0:
        orders[slot].prev = -1
        levels[li].head = slot
        wi = bk[b, BK_WORD_BASE] + side * bk[b, BK_N_WORDS] + (price >> 6)
        words[wi] |= _U1 << np.uint64(price & 63)
    else:
        tail = levels[li].tail
        orders[slot].prev = tail
        orders[tail].next = slot
    levels[li].tail = slot
    levels[li].count += 1
    levels[li].qty += orders[slot].remaining
    bk[b, BK_COUNT + side] += 1
    best = bk[b, BK_BEST + side]
    if best == -1 or _better(side, price, best):
        bk[b, BK_BEST + side] = price


@_kernel
def _unlink(orders, levels, words, bk, b, slot):
    """Take ``slot`` out of its level's FIFO; move the best price if the level empties."""
    side = orders[slot].side
    price = orders[slot].price
    li = bk[b, BK_LEVEL_BASE] + side * bk[b, BK_N_TICKS] + price
    prev = orders[slot].prev
    nxt = orders[slot].next
    if prev == -1:
        levels[li].head = nxt
    else:
        orders[prev].next = nxt
    if nxt == -1:
        levels[li].tail = prev
    else:
        orders[nxt].prev = prev
    levels[li].count -= 1
    levels[li].qty -= orders[slot].remaining
    bk[b, BK_COUNT + side] -= 1
    if levels[li].count == 0:
        levels[li].head = 0  # empty is all zeros
        levels[li].tail = 0
        wi = bk[b, BK_WORD_BASE] + side * bk[b, BK_N_WORDS] + (price >> 6)
        words[wi] &= ~(_U1 << np.uint64(price & 63))
        if bk[b, BK_BEST + side] == price:
            bk[b, BK_BEST + side] = _scan(words, bk, b, side, price)


@_kernel
def _remove(orders, levels, words, bk, hkeys, meta, b, slot):
    """Remove a resting order entirely: level, index and slot."""
    _unlink(orders, levels, words, bk, b, slot)
    h_delete(hkeys, orders[slot].order_id)
    _free(orders, meta, slot)


# -- matching -------------------------------------------------------------------------


@_kernel
def _fillable(orders, levels, words, bk, b, account, side, limit, need, stp, is_market):
    """Quantity a taker could fill now (stops counting once ``need`` is reached)."""
    opp = 1 - side
    base = bk[b, BK_LEVEL_BASE] + opp * bk[b, BK_N_TICKS]
    step = -1 if opp == BUY else 1
    total = 0
    price = bk[b, BK_BEST + opp]
    while price != -1:
        if not is_market and not _reaches(side, limit, price):
            break
        slot = levels[base + price].head
        while slot != -1:
            if orders[slot].account == account and stp != STP_NONE:
                if stp != STP_CANCEL_OLDEST:
                    return total
            else:
                total += orders[slot].remaining
                if total >= need:
                    return total
            slot = orders[slot].next
        price = _scan(words, bk, b, opp, price + step)
    return total


@_kernel
def _match(orders, levels, words, bk, hkeys, meta, ev, b, seq, ts,
           order_id, account, side, limit, remaining, stp, is_market):  # fmt: skip
    """Trade a taker against the opposite side; return (remaining, stopped by self-trade)."""
    opp = 1 - side
    book_id = bk[b, BK_ID]
    base = bk[b, BK_LEVEL_BASE] + opp * bk[b, BK_N_TICKS]
    while remaining > 0:
        price = bk[b, BK_BEST + opp]
        if price == -1 or (not is_market and not _reaches(side, limit, price)):
            break
        li = base + price
        touched = False
        stopped = False
        slot = levels[li].head
        while slot != -1:
            nxt = orders[slot].next
            maker_account = orders[slot].account
            if maker_account == account and stp != STP_NONE:
                if stp in (STP_CANCEL_OLDEST, STP_CANCEL_BOTH):
                    _emit(ev, meta, CANCELLED, seq, ts, book_id, orders[slot].order_id,
                          maker_account, opp, price, orders[slot].remaining, 0, 0, 0, 0,
                          R_SELF_TRADE)  # fmt: skip
                    _remove(orders, levels, words, bk, hkeys, meta, b, slot)
                    touched = True
                if stp != STP_CANCEL_OLDEST:
                    stopped = True
                    break
                slot = nxt
                continue
            maker_left = orders[slot].remaining
            q = remaining if remaining < maker_left else maker_left
            remaining -= q
            maker_left -= q
            orders[slot].remaining = maker_left
            levels[li].qty -= q
            touched = True
            _emit(ev, meta, TRADE, seq, ts, book_id, order_id, account, side, price, q,
                  remaining, orders[slot].order_id, maker_account, maker_left, 0)  # fmt: skip
            if maker_left == 0:
                _remove(orders, levels, words, bk, hkeys, meta, b, slot)
            if remaining == 0:
                break
            slot = nxt
        if touched:
            _emit_level(ev, meta, levels, bk, b, seq, ts, opp, price)
        if stopped:
            return remaining, True
    return remaining, False


@_kernel
def _self_cross(orders, levels, words, bk, hkeys, meta, ev, b, seq, ts, account, side, limit,
                stp):  # fmt: skip
    """Self-trade prevention for an order arriving in a batch book: the account's own orders
    on the other side that it crosses (which the next auction could pair with it), best price
    first and oldest first, are met as a continuous taker meets them. Return True if the
    arriving order is to be cancelled."""
    opp = 1 - side
    book_id = bk[b, BK_ID]
    base = bk[b, BK_LEVEL_BASE] + opp * bk[b, BK_N_TICKS]
    step = -1 if opp == BUY else 1
    price = bk[b, BK_BEST + opp]
    while price != -1 and _reaches(side, limit, price):
        touched = False
        slot = levels[base + price].head
        while slot != -1:
            nxt = orders[slot].next
            if orders[slot].account == account:
                if stp != STP_CANCEL_NEWEST:
                    _emit(ev, meta, CANCELLED, seq, ts, book_id, orders[slot].order_id,
                          account, opp, price, orders[slot].remaining, 0, 0, 0, 0,
                          R_SELF_TRADE)  # fmt: skip
                    _remove(orders, levels, words, bk, hkeys, meta, b, slot)
                    touched = True
                if stp != STP_CANCEL_OLDEST:
                    if touched:
                        _emit_level(ev, meta, levels, bk, b, seq, ts, opp, price)
                    return True
            slot = nxt
        if touched:
            _emit_level(ev, meta, levels, bk, b, seq, ts, opp, price)
        price = _scan(words, bk, b, opp, price + step)
    return False


@_inline
def _would_cross(bk, b, side, price):
    best = bk[b, BK_BEST + 1 - side]
    return best != -1 and _reaches(side, price, best)


@_kernel
def _rest(orders, levels, words, bk, hkeys, hvals, meta, b, slot, order_id, account, side,
          price, remaining, stp, flags):  # fmt: skip
    orders[slot].order_id = order_id
    orders[slot].account = account
    orders[slot].side = side
    orders[slot].price = price
    orders[slot].remaining = remaining
    orders[slot].stp = stp
    orders[slot].flags = flags
    orders[slot].book = b
    _push(orders, levels, words, bk, b, slot)


@_kernel
def _add(orders, levels, words, bk, hkeys, hvals, meta, ev, b, seq, ts, book,
         order_id, account, side, price, quantity, tif, flags, stp):  # fmt: skip
    is_market = (flags & MARKET) != 0
    post_only = (flags & POST_ONLY) != 0
    reason = 0
    if order_id <= 0:
        reason = R_INVALID_ORDER_ID
    elif side != BUY and side != SELL:
        reason = R_INVALID_SIDE
    elif tif != GTC and tif != IOC and tif != FOK:
        reason = R_INVALID_TIF
    elif (flags & ~ALL_FLAGS) != 0 or (post_only and (is_market or tif != GTC)):
        reason = R_INVALID_FLAGS
    elif stp > STP_CANCEL_BOTH:
        reason = R_INVALID_STP
    elif quantity < 1 or quantity > MAX_QUANTITY:
        reason = R_INVALID_QUANTITY
    elif not is_market and (price < 1 or price >= bk[b, BK_N_TICKS]):
        reason = R_PRICE_OFF_LADDER
    elif h_find(hkeys, hvals, order_id) != -1:
        reason = R_DUPLICATE_ORDER_ID
    elif bk[b, BK_MECHANISM] == BATCH and (is_market or post_only or tif != GTC):
        reason = R_BATCH_ORDER_TYPE
    elif post_only and _would_cross(bk, b, side, price):
        reason = R_POST_ONLY_WOULD_TRADE
    if reason != 0:
        _emit(ev, meta, REJECTED, seq, ts, book, order_id, account, side, price, quantity,
              0, 0, 0, 0, reason)  # fmt: skip
        return
    if is_market:
        price = 0
    _emit(ev, meta, ACCEPTED, seq, ts, book, order_id, account, side, price, quantity,
          quantity, 0, 0, 0, 0)  # fmt: skip
    remaining = quantity
    stopped = False
    if bk[b, BK_MECHANISM] == BATCH:
        tif = GTC  # rest without matching: only an auction trades in a batch book
        if stp != STP_NONE:
            stopped = _self_cross(orders, levels, words, bk, hkeys, meta, ev, b, seq, ts,
                                  account, side, price, stp)  # fmt: skip
    elif tif == FOK and _fillable(orders, levels, words, bk, b, account, side, price, quantity,
                                stp, is_market) < quantity:  # fmt: skip
        _emit(ev, meta, CANCELLED, seq, ts, book, order_id, account, side, price, quantity,
              0, 0, 0, 0, R_FOK_NOT_FILLED)  # fmt: skip
        return
    else:
        remaining, stopped = _match(orders, levels, words, bk, hkeys, meta, ev, b, seq, ts,
                                    order_id, account, side, price, quantity, stp, is_market)  # fmt: skip
    if remaining == 0:
        return
    if stopped:
        reason = R_SELF_TRADE
    elif is_market:
        reason = R_MARKET_NO_LIQUIDITY
    elif tif == IOC:
        reason = R_IOC_REMAINDER
    else:
        slot = _alloc(orders, meta)
        h_insert(hkeys, hvals, meta, order_id, slot)
        _rest(orders, levels, words, bk, hkeys, hvals, meta, b, slot, order_id, account, side,
              price, remaining, stp, flags)  # fmt: skip
        _emit_level(ev, meta, levels, bk, b, seq, ts, side, price)
        return
    _emit(ev, meta, CANCELLED, seq, ts, book, order_id, account, side, price, remaining,
          0, 0, 0, 0, reason)  # fmt: skip


@_inline
def _find_own(orders, hkeys, hvals, b, order_id, account):
    if order_id <= 0:
        return -1
    slot = h_find(hkeys, hvals, order_id)
    if slot == -1 or orders[slot].book != b or orders[slot].account != account:
        return -1
    return slot


@_kernel
def _cancel(orders, levels, words, bk, hkeys, hvals, meta, ev, b, seq, ts, book,
            order_id, account, side, price, quantity):  # fmt: skip
    slot = _find_own(orders, hkeys, hvals, b, order_id, account)
    if slot == -1:
        _emit(ev, meta, REJECTED, seq, ts, book, order_id, account, side, price, quantity,
              0, 0, 0, 0, R_UNKNOWN_ORDER_ID)  # fmt: skip
        return
    o_side = orders[slot].side
    o_price = orders[slot].price
    _emit(ev, meta, CANCELLED, seq, ts, book, order_id, account, o_side, o_price,
          orders[slot].remaining, 0, 0, 0, 0, R_CANCELLED_BY_USER)  # fmt: skip
    _remove(orders, levels, words, bk, hkeys, meta, b, slot)
    _emit_level(ev, meta, levels, bk, b, seq, ts, o_side, o_price)


@_kernel
def _amend(orders, levels, words, bk, hkeys, hvals, meta, ev, b, seq, ts, book,
           order_id, account, side, price, quantity):  # fmt: skip
    slot = _find_own(orders, hkeys, hvals, b, order_id, account)
    reason = 0
    if slot == -1:
        reason = R_UNKNOWN_ORDER_ID
    elif quantity < 1 or quantity > MAX_QUANTITY:
        reason = R_INVALID_QUANTITY
    elif price < 1 or price >= bk[b, BK_N_TICKS]:
        reason = R_PRICE_OFF_LADDER
    elif (orders[slot].flags & POST_ONLY) != 0 and _would_cross(bk, b, orders[slot].side, price):
        reason = R_POST_ONLY_WOULD_TRADE
    if reason != 0:
        _emit(ev, meta, REJECTED, seq, ts, book, order_id, account, side, price, quantity,
              0, 0, 0, 0, reason)  # fmt: skip
        return
    o_side = orders[slot].side
    old_price = orders[slot].price
    old_remaining = orders[slot].remaining
    _emit(ev, meta, AMENDED, seq, ts, book, order_id, account, o_side, price, quantity,
          quantity, 0, 0, 0, 0)  # fmt: skip
    if price == old_price and quantity <= old_remaining:
        if quantity < old_remaining:
            li = bk[b, BK_LEVEL_BASE] + o_side * bk[b, BK_N_TICKS] + price
            orders[slot].remaining = quantity
            levels[li].qty -= old_remaining - quantity
            _emit_level(ev, meta, levels, bk, b, seq, ts, o_side, price)
        return
    _unlink(orders, levels, words, bk, b, slot)
    if price != old_price:
        _emit_level(ev, meta, levels, bk, b, seq, ts, o_side, old_price)
    remaining = quantity
    stopped = False
    if bk[b, BK_MECHANISM] != BATCH:
        remaining, stopped = _match(orders, levels, words, bk, hkeys, meta, ev, b, seq, ts,
                                    order_id, account, o_side, price, quantity,
                                    orders[slot].stp, False)  # fmt: skip
    elif orders[slot].stp != STP_NONE:
        stopped = _self_cross(orders, levels, words, bk, hkeys, meta, ev, b, seq, ts,
                              account, o_side, price, orders[slot].stp)  # fmt: skip
    if remaining == 0 or stopped:
        if stopped:
            _emit(ev, meta, CANCELLED, seq, ts, book, order_id, account, o_side, price,
                  remaining, 0, 0, 0, 0, R_SELF_TRADE)  # fmt: skip
        h_delete(hkeys, order_id)
        _free(orders, meta, slot)
        return
    orders[slot].price = price
    orders[slot].remaining = remaining
    _push(orders, levels, words, bk, b, slot)
    _emit_level(ev, meta, levels, bk, b, seq, ts, o_side, price)


@_kernel
def _room_needed(orders, bk, book_index, hkeys, hvals, kind, book, order_id, side, price, flags):
    """Events one command may write at most: a few, unless it can reach the other side."""
    if book < 0 or book >= len(book_index) or book_index[book] == -1:
        return 1
    b = book_index[book]
    if kind == AMEND:
        slot = h_find(hkeys, hvals, order_id) if order_id > 0 else -1
        if slot == -1:
            return 1
        side = orders[slot].side
        flags = 0
    elif kind == AUCTION:
        return 2 + 3 * (bk[b, BK_COUNT] + bk[b, BK_COUNT + 1])
    elif kind != ADD:
        return 2
    if side != BUY and side != SELL:
        return 1
    if (flags & MARKET) == 0 and not _would_cross(bk, b, side, price):
        return 3
    return 4 + 2 * bk[b, BK_COUNT + 1 - side]


@_kernel
def _needs(orders, bk, book_index, hkeys, hvals, meta, ev, kind, book, order_id, side, price,
           flags):  # fmt: skip
    """Which pools must grow before the command can run (0: none); sets ``M_ROOM``."""
    need = NEED_AUCTION if kind == AUCTION else 0
    if kind == ADD:
        if meta[M_FREE_HEAD] == -1 and meta[M_HIGH_WATER] >= len(orders):
            need |= NEED_SLOTS
        if _hash_full(hkeys, meta):
            need |= NEED_HASH
    room = _room_needed(orders, bk, book_index, hkeys, hvals, kind, book, order_id, side, price,
                        flags)  # fmt: skip
    meta[M_ROOM] = room
    if meta[M_N_EVENTS] + room > len(ev):
        need |= NEED_EVENTS
    return need


@_kernel
def _dispatch(orders, levels, words, bk, book_index, hkeys, hvals, meta, ev,
              seq, ts, kind, book, order_id, account, side, price, quantity, tif, flags, stp):  # fmt: skip
    if kind != ADD and kind != CANCEL and kind != AMEND:
        _emit(ev, meta, REJECTED, seq, ts, book, order_id, account, side, price, quantity,
              0, 0, 0, 0, R_INVALID_COMMAND)  # fmt: skip
        return
    if book < 0 or book >= len(book_index) or book_index[book] == -1:
        _emit(ev, meta, REJECTED, seq, ts, book, order_id, account, side, price, quantity,
              0, 0, 0, 0, R_UNKNOWN_BOOK)  # fmt: skip
        return
    b = book_index[book]
    if kind == ADD:
        _add(orders, levels, words, bk, hkeys, hvals, meta, ev, b, seq, ts, book,
             order_id, account, side, price, quantity, tif, flags, stp)  # fmt: skip
    elif kind == CANCEL:
        _cancel(orders, levels, words, bk, hkeys, hvals, meta, ev, b, seq, ts, book,
                order_id, account, side, price, quantity)  # fmt: skip
    else:
        _amend(orders, levels, words, bk, hkeys, hvals, meta, ev, b, seq, ts, book,
               order_id, account, side, price, quantity)  # fmt: skip


@_kernel
def process_batch(orders, levels, words, bk, book_index, hkeys, hvals, meta, ev, cmds, start):
    """Run ``cmds[start:]``; return (index of the first command not run, NEED_* flags)."""
    for i in range(start, len(cmds)):
        c = cmds[i]
        # one integer type for every field, so the kernels compile once for both entry points
        kind = np.int64(c.kind)
        book = np.int64(c.book)
        side = np.int64(c.side)
        flags = np.int64(c.flags)
        need = _needs(orders, bk, book_index, hkeys, hvals, meta, ev, kind, book, c.order_id,
                      side, c.price, flags)  # fmt: skip
        if need != 0:
            return i, need
        _dispatch(orders, levels, words, bk, book_index, hkeys, hvals, meta, ev,
                  c.seq, c.ts, kind, book, c.order_id, c.account, side, c.price,
                  c.quantity, np.int64(c.tif), flags, np.int64(c.stp))  # fmt: skip
    return len(cmds), 0


@_kernel
def process_one(orders, levels, words, bk, book_index, hkeys, hvals, meta, ev,
                kind, book, order_id, account, side, price, quantity, tif, flags, stp, seq, ts):  # fmt: skip
    """Run one command into an empty event buffer; return its event count, or -NEED_* flags."""
    meta[M_N_EVENTS] = 0
    need = _needs(orders, bk, book_index, hkeys, hvals, meta, ev, kind, book, order_id, side,
                  price, flags)  # fmt: skip
    if need != 0:
        return -need
    _dispatch(orders, levels, words, bk, book_index, hkeys, hvals, meta, ev,
              seq, ts, kind, book, order_id, account, side, price, quantity, tif, flags, stp)  # fmt: skip
    return meta[M_N_EVENTS]


# -- queries, snapshots and invariants ------------------------------------------------


@_kernel
def depth(orders, levels, words, bk, b, side, n, out):
    """Write up to ``n`` (price, quantity) levels of one side, best first; return the count."""
    base = bk[b, BK_LEVEL_BASE] + side * bk[b, BK_N_TICKS]
    step = -1 if side == BUY else 1
    price = bk[b, BK_BEST + side]
    k = 0
    while price != -1 and k < n:
        out[k, 0] = price
        out[k, 1] = levels[base + price].qty
        k += 1
        price = _scan(words, bk, b, side, price + step)
    return k


@_kernel
def collect(orders, levels, words, bk, b, out, k):
    """Write book row ``b``'s resting orders into ``out`` from ``k`` in priority order."""
    for side in (BUY, SELL):
        base = bk[b, BK_LEVEL_BASE] + side * bk[b, BK_N_TICKS]
        step = -1 if side == BUY else 1
        price = bk[b, BK_BEST + side]
        while price != -1:
            slot = levels[base + price].head
            while slot != -1:
                o = out[k]
                o.order_id = orders[slot].order_id
                o.account = orders[slot].account
                o.price = orders[slot].price
                o.remaining = orders[slot].remaining
                o.book = bk[b, BK_ID]
                o.side = orders[slot].side
                o.stp = orders[slot].stp
                o.flags = orders[slot].flags
                k += 1
                slot = orders[slot].next
            price = _scan(words, bk, b, side, price + step)
    return k


@_kernel
def load(orders, levels, words, bk, book_index, hkeys, hvals, meta, rows):
    """Append trusted resting orders (snapshot rows) at the tails of their levels."""
    for i in range(len(rows)):
        r = rows[i]
        b = book_index[r.book]
        slot = _alloc(orders, meta)
        h_insert(hkeys, hvals, meta, r.order_id, slot)
        _rest(orders, levels, words, bk, hkeys, hvals, meta, b, slot, r.order_id, r.account,
              r.side, r.price, r.remaining, r.stp, r.flags)  # fmt: skip


@njit(cache=True)
def check(orders, levels, words, bk, hkeys, hvals, meta):
    """Verify every invariant; return 0 or the number of the first one broken."""
    live = 0
    for b in range(bk.shape[0]):
        n_ticks = bk[b, BK_N_TICKS]
        bests = np.full(2, -1, np.int64)
        for side in (BUY, SELL):
            base = bk[b, BK_LEVEL_BASE] + side * n_ticks
            wbase = bk[b, BK_WORD_BASE] + side * bk[b, BK_N_WORDS]
            count_side = 0
            for price in range(n_ticks):
                lv = levels[base + price]
                bit = (words[wbase + (price >> 6)] >> np.uint64(price & 63)) & _U1
                if (lv.count > 0) != (bit == _U1):
                    return 1  # bitmap disagrees with the level
                if lv.count == 0:
                    if lv.head != 0 or lv.tail != 0 or lv.qty != 0:
                        return 2  # empty level holds something (empty is all zeros)
                    continue
                if price == 0:
                    return 3  # price 0 is off the ladder
                if bests[side] == -1 or _better(side, price, bests[side]):
                    bests[side] = price
                qty = 0
                count = 0
                prev = -1
                slot = lv.head
                while slot != -1:
                    o = orders[slot]
                    if o.prev != prev or o.price != price or o.side != side or o.book != b:
                        return 4  # broken FIFO links or misplaced order
                    if o.remaining <= 0:
                        return 5  # resting order with nothing left
                    if h_find(hkeys, hvals, o.order_id) != slot:
                        return 6  # index disagrees with the slot
                    qty += o.remaining
                    count += 1
                    prev = slot
                    slot = o.next
                if prev != lv.tail or count != lv.count or qty != lv.qty:
                    return 7  # level totals disagree with their orders
                count_side += count
            if count_side != bk[b, BK_COUNT + side]:
                return 8  # side order count wrong
            if bests[side] != bk[b, BK_BEST + side]:
                return 9  # cached best price wrong
            live += count_side
        crossed = bests[0] != -1 and bests[1] != -1 and bests[0] >= bests[1]
        if crossed and bk[b, BK_MECHANISM] != BATCH:
            return 10  # crossed continuous book
    if live != meta[M_LIVE]:
        return 11  # live count wrong
    keys = 0
    for k in hkeys:
        if k != H_EMPTY and k != H_TOMBSTONE:
            keys += 1
    if keys != live:
        return 12  # index holds orders that are not resting
    return 0


# -- call auctions --------------------------------------------------------------------


@njit(cache=True)
def _allocate(orders, levels, words, bk, b, side, price, amount, pro_rata, slots, qtys):
    """Fill ``amount`` from one side at ``price``: price priority, then time priority or pro
    rata inside the marginal level (largest remainders get the odd lots, ties by time).
    Write (slot, quantity) pairs in priority order; return how many."""
    base = bk[b, BK_LEVEL_BASE] + side * bk[b, BK_N_TICKS]
    step = -1 if side == BUY else 1
    p = bk[b, BK_BEST + side]
    n = 0
    while amount > 0 and p != -1 and _reaches(side, p, price):
        total = levels[base + p].qty
        slot = levels[base + p].head
        if total <= amount or not pro_rata:
            while slot != -1 and amount > 0:
                q = min(amount, orders[slot].remaining)
                slots[n] = slot
                qtys[n] = q
                n += 1
                amount -= q
                slot = orders[slot].next
        else:
            count = levels[base + p].count
            remainders = np.empty(count, np.int64)
            start = n
            given = 0
            while slot != -1:
                share = amount * orders[slot].remaining // total
                remainders[n - start] = amount * orders[slot].remaining % total
                slots[n] = slot
                qtys[n] = share
                given += share
                n += 1
                slot = orders[slot].next
            # stable sort on the negated remainder: largest first, earlier order on ties
            order = np.argsort(-remainders, kind="mergesort")
            for i in range(amount - given):
                qtys[start + order[i]] += 1
            amount = 0
        p = _scan(words, bk, b, side, p + step)
    return n


@njit(cache=True)
def auction(orders, levels, words, bk, book_index, hkeys, hvals, meta, ev, seq, ts, book,
            order_id, account, side, price, quantity, flags):  # fmt: skip
    """Uncross one book in a uniform-price call auction (see docs/engine.md)."""
    if book < 0 or book >= len(book_index) or book_index[book] == -1:
        _emit(ev, meta, REJECTED, seq, ts, book, order_id, account, side, price, quantity,
              0, 0, 0, 0, R_UNKNOWN_BOOK)  # fmt: skip
        return
    if (flags & ~AUCTION_FLAGS) != 0:
        _emit(ev, meta, REJECTED, seq, ts, book, order_id, account, side, price, quantity,
              0, 0, 0, 0, R_INVALID_FLAGS)  # fmt: skip
        return
    b = book_index[book]
    bid = bk[b, BK_BEST]
    ask = bk[b, BK_BEST + 1]
    if bid == -1 or ask == -1 or bid < ask:
        _emit(ev, meta, UNCROSSED, seq, ts, book, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    else:
        _uncross(orders, levels, words, bk, hkeys, meta, ev, seq, ts, book, b, bid, ask,
                 (flags & PRO_RATA) != 0)  # fmt: skip
    if (flags & OPEN_CONTINUOUS) != 0:
        bk[b, BK_MECHANISM] = 0


@njit(cache=True)
def _uncross(orders, levels, words, bk, hkeys, meta, ev, seq, ts, book, b, bid, ask, pro_rata):
    n = bid - ask + 1
    bid_base = bk[b, BK_LEVEL_BASE]
    ask_base = bid_base + bk[b, BK_N_TICKS]
    demand = np.zeros(n, np.int64)  # buy quantity at or above each price
    supply = np.zeros(n, np.int64)  # sell quantity at or below each price
    acc = 0
    for j in range(n - 1, -1, -1):
        acc += levels[bid_base + ask + j].qty
        demand[j] = acc
    acc = 0
    for j in range(n):
        acc += levels[ask_base + ask + j].qty
        supply[j] = acc
    best = -1
    first = 0
    last = 0
    for j in range(n):
        v = min(demand[j], supply[j])
        if v > best:
            best = v
            first = j
            last = j
        elif v == best:
            last = j
    price = ask + (first + last) // 2
    _emit(ev, meta, UNCROSSED, seq, ts, book, 0, 0, 0, price, best, 0, 0, 0, 0, 0)
    buy_slots = np.empty(bk[b, BK_COUNT], np.int64)
    buy_qtys = np.empty(bk[b, BK_COUNT], np.int64)
    sell_slots = np.empty(bk[b, BK_COUNT + 1], np.int64)
    sell_qtys = np.empty(bk[b, BK_COUNT + 1], np.int64)
    nb = _allocate(orders, levels, words, bk, b, BUY, price, best, pro_rata, buy_slots, buy_qtys)
    ns = _allocate(orders, levels, words, bk, b, SELL, price, best, pro_rata, sell_slots,
                   sell_qtys)  # fmt: skip
    # pair buy fills with sell fills, both in priority order
    i = 0
    j = 0
    buy_left = buy_qtys[0] if nb > 0 else 0
    sell_left = sell_qtys[0] if ns > 0 else 0
    while i < nb and j < ns:
        if buy_left == 0:
            i += 1
            buy_left = buy_qtys[i] if i < nb else 0
            continue
        if sell_left == 0:
            j += 1
            sell_left = sell_qtys[j] if j < ns else 0
            continue
        bs = buy_slots[i]
        ss = sell_slots[j]
        q = min(buy_left, sell_left)
        orders[bs].remaining -= q
        orders[ss].remaining -= q
        buy_left -= q
        sell_left -= q
        _emit(ev, meta, TRADE, seq, ts, book, orders[bs].order_id, orders[bs].account, BUY,
              price, q, orders[bs].remaining, orders[ss].order_id, orders[ss].account,
              orders[ss].remaining, 0)  # fmt: skip
    _settle_fills(orders, levels, words, bk, hkeys, meta, ev, seq, ts, b, BUY, buy_slots,
                  buy_qtys, nb)  # fmt: skip
    _settle_fills(orders, levels, words, bk, hkeys, meta, ev, seq, ts, b, SELL, sell_slots,
                  sell_qtys, ns)  # fmt: skip


@njit(cache=True)
def _settle_fills(orders, levels, words, bk, hkeys, meta, ev, seq, ts, b, side, slots, qtys, n):
    """Take filled quantity off the levels, remove filled orders, then one LEVEL per level."""
    base = bk[b, BK_LEVEL_BASE] + side * bk[b, BK_N_TICKS]
    prices = np.empty(n, np.int64)
    for i in range(n):
        slot = slots[i]
        prices[i] = orders[slot].price
        levels[base + prices[i]].qty -= qtys[i]
        if orders[slot].remaining == 0:
            _remove(orders, levels, words, bk, hkeys, meta, b, slot)
    last = -1
    for i in range(n):
        if qtys[i] > 0 and prices[i] != last:
            _emit_level(ev, meta, levels, bk, b, seq, ts, side, prices[i])
            last = prices[i]


#: Bytes the zero-skipping copies below look at together: one page.
_PAGE_WORDS = 512


@njit(cache=True)
def copy_nonzero(src, dst):
    """Copy ``src`` into the zeroed ``dst`` (both uint64, ``dst`` at least as long), skipping
    every all-zero page: those pages of ``dst`` are never written, so never allocated."""
    n = len(src)
    for start in range(0, n, _PAGE_WORDS):
        end = min(start + _PAGE_WORDS, n)
        for i in range(start, end):
            if src[i] != 0:
                dst[start:end] = src[start:end]
                break


@njit(cache=True)
def clear_nonzero(buf):
    """Zero ``buf`` (uint64) writing only the pages that are not already all zeros."""
    n = len(buf)
    for start in range(0, n, _PAGE_WORDS):
        end = min(start + _PAGE_WORDS, n)
        for i in range(start, end):
            if buf[i] != 0:
                buf[start:end] = 0
                break
