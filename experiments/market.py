"""Market mechanisms on the real engine: continuous trading, batch auctions, opening auctions.

One session is one delivery period. Time runs in steps; at each step, in this order:

1. the shock (if this is its step): an outage cuts the hit providers' capacity and they
   cancel their asks;
2. commands whose arrival time has come reach the exchange (the simulation plays the
   exchange's risk layer: price bands and the improvement rule, then the engine);
3. in batch mode, every ``batch_interval`` steps (and at the last step) an ``AUCTION``
   uncrosses the book; with the opening auction (``"open"``), one ``AUCTION`` with
   ``OPEN_CONTINUOUS`` at step ``open_steps - 1`` opens continuous trading;
4. one agent, drawn by weight among those present, decides; its commands arrive
   ``latency`` steps later (0: at once, in step 5);
5. commands that arrive now are executed; the book is sampled (spread, depth, prices).

Agents (see :mod:`experiments.population`) hold at most ``max_open`` live orders and cancel
their oldest to place a new one. ZI-C buyers bid uniformly between the lowest price and the
value of the last unit the order would buy (net of fees), sellers ask between the cost of
their next units (plus fees) and the highest price; ZI-U traders ignore values and costs.
Training jobs buy their whole block with a fill-or-kill order in a continuous book (or a GTC
order, with ``block_orders = "gtc"``) and with a GTC order in a batch book (which may then
fill only in part: a block is worth something only when complete). Makers quote around the mid
(or the last price) with an inventory skew; momentum takers cross the spread after a move.
Makers and momentum takers unwind their positions in the last tenth of the session.
Batch books accept only GTC limit orders, so post-only, IOC and FOK orders turn into GTC
orders there. A margin check (margin rate times the notional of position and open orders,
against the agent's collateral) keeps an agent from sending orders it cannot back.

The loop lives in compiled code (:func:`_run`, driven by :func:`_drive`) and calls the
engine kernels directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numba import njit

from exchange.engine import (
    ADD,
    BATCH,
    BUY,
    CANCEL,
    CANCELLED,
    CONTINUOUS,
    FOK,
    GTC,
    IOC,
    OPEN_CONTINUOUS,
    POST_ONLY,
    PRO_RATA,
    REJECTED,
    SELL,
    TRADE,
    UNCROSSED,
)
from exchange.engine.types import R_FOK_NOT_FILLED
from experiments import _engine
from experiments.population import BLOCK, BUYER, MAKER, MAX_LIVE, MOMENTUM, SELLER, Population

#: Market mechanisms (the non-market ones live in :mod:`experiments.baselines`).
MECHANISMS: Final = ("continuous", "batch", "open")
M_CONTINUOUS, M_BATCH, M_OPEN = 0, 1, 2
RATIONING: Final = ("pro_rata", "time")

#: Order slots per agent: live orders plus those whose cancel is still on its way.
MAX_OPEN: Final = 2 * MAX_LIVE
#: Trade prices a momentum taker can look back over.
RING: Final = 16
#: Samples of the book kept per session for plots.
N_SAMPLES: Final = 200

#: Market settings and their defaults (``None``: from the population or the session length).
MARKET_DEFAULTS: Final[dict[str, Any]] = {
    "mechanism": "continuous",
    "batch_interval": 100,
    "rationing": "pro_rata",
    "open_steps": None,
    "steps": 20_000,
    "sessions": 1,
    "tick": None,
    "maker_fee": 0.0,
    "taker_fee": 0.0,
    "price_band": 0.0,
    "margin_rate": 0.0,
    "improvement_rule": False,
    "latency": 0,
    "sniper_latency": 0,
}

# integer parameters
I_STEPS, I_MECH, I_TAU, I_PRO_RATA, I_OPEN_STEPS, I_IMPROVE, I_LOW, I_HIGH, I_REF = range(9)
I_SHOCK, I_SHOCK_STEP, I_SAMPLE_EVERY, I_UNWIND, I_N_TICKS, I_PENALTY, I_COLS = range(9, 16)
# float parameters
F_TICK, F_MAKER_FEE, F_TAKER_FEE, F_BAND, F_MARGIN, F_FEE_GUARD, F_OUTAGE_SHARE, F_COLS = range(8)
# integer state
S_T, S_PHASE, S_OID, S_SEQ, S_QHEAD, S_QEND, S_NTRADES, S_LAST_PX, S_NPRICES = range(9)
S_SHOCK_DONE, S_AUCTIONS, S_CROSSED, S_AUCTION_VOL, S_RATIONED, S_RATIONED_QTY = range(9, 15)
S_BAND_REJ, S_IMPROVE_REJ, S_MARGIN_BLOCK, S_ENGINE_REJ, S_SPREAD_N, S_ORDERS = range(15, 21)
S_CANCELS, S_SAMPLES, S_FOK_KILLED, S_IDLE, S_VOLUME, S_DRAW, S_COLS = range(21, 28)
# float state
FS_SPREAD, FS_DEPTH, FS_FEES, FS_COLS = range(4)
# order slot columns
SL_OID, SL_SIDE, SL_PRICE, SL_REM, SL_CXL, SL_TIF, SL_COLS = range(7)
# queue columns
Q_TIME, Q_KIND, Q_OID, Q_ACC, Q_SIDE, Q_PRICE, Q_QTY, Q_TIF, Q_FLAGS, Q_COLS = range(10)
# trade log columns; TR_TAKER: 0 a buyer took, 1 a seller took, 2 an auction
TR_STEP, TR_PRICE, TR_QTY, TR_BUYER, TR_SELLER, TR_TAKER, TR_COLS = range(7)
# sampled series columns
SR_STEP, SR_BID, SR_ASK, SR_LAST, SR_VOLUME, SR_COLS = range(6)

# Typed (non-literal) constants for call arguments: numba compiles a specialisation of the
# callee for every literal value it is passed, which multiplied the compile time.
_BUY = np.int64(BUY)
_SELL = np.int64(SELL)
_ANY_SIDE = np.int64(-1)
_BOOK = np.int64(0)
_ADD = np.int64(ADD)
_CANCEL = np.int64(CANCEL)
_GTC = np.int64(GTC)
_ZERO = np.int64(0)
_IN_AUCTION = np.int64(1)

#: Status codes of :func:`_run`.
DONE, NEED_TRADES, NEED_DRAWS, NEED_AUCTION, ENGINE_TOO_SMALL = 0, 1, 2, 3, -1
#: Uniform draws handed to the compiled loop at a time (two per step).
DRAWS = 1 << 14


def market_settings(overrides: dict[str, Any]) -> dict[str, Any]:
    """Return the market settings: defaults, then ``overrides``; bad values raise."""
    unknown = set(overrides) - set(MARKET_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown market settings: {', '.join(sorted(unknown))}")
    s = dict(MARKET_DEFAULTS) | overrides
    if s["mechanism"] not in MECHANISMS:
        raise ValueError(f"unknown mechanism {s['mechanism']!r}; choose one of {MECHANISMS}")
    if s["rationing"] not in RATIONING:
        raise ValueError(f"unknown rationing {s['rationing']!r}; choose one of {RATIONING}")
    for key in ("steps", "batch_interval", "sessions"):
        if int(s[key]) < 1:
            raise ValueError(f"market setting {key} = {s[key]} must be at least 1")
    for key in ("latency", "sniper_latency"):
        if int(s[key]) < 0:
            raise ValueError(f"market setting {key} = {s[key]} must not be negative")
    for key in ("price_band", "margin_rate"):
        if float(s[key]) < 0:
            raise ValueError(f"market setting {key} = {s[key]} must not be negative")
    for key in ("maker_fee", "taker_fee"):
        if not -0.5 < float(s[key]) < 0.5:
            raise ValueError(f"market setting {key} = {s[key]} is not a fee rate in (-0.5, 0.5)")
    if s["tick"] is not None and float(s["tick"]) <= 0:
        raise ValueError(f"market setting tick = {s['tick']} must be positive")
    if s["open_steps"] is not None and not 1 <= int(s["open_steps"]) < int(s["steps"]):
        raise ValueError("market setting open_steps must be in 1 .. steps - 1")
    return s


# -- the compiled loop ------------------------------------------------------------------

#: Compiled without reference counting: these functions never allocate, and passing a dozen
#: arrays to a helper would otherwise cost two atomic operations per array and call.
_kernel = njit(cache=True, _nrt=False)  # type: ignore[call-overload]


@_kernel
def _find(slots, a, oid):
    for j in range(MAX_OPEN):
        if slots[a, j, SL_OID] == oid:
            return j
    return -1


@_kernel
def _release(slots, open_q, a, oid):
    """Forget order ``oid`` of agent ``a`` (cancelled, rejected or filled)."""
    j = _find(slots, a, oid)
    if j >= 0:
        open_q[a, slots[a, j, SL_SIDE]] -= slots[a, j, SL_REM]
        slots[a, j, :] = 0


@_kernel
def _fill(agents, ipar, fpar, ist, fst, pos, cash, fees, open_q, slots, a, oid, side, px, q,
          fee_rate):  # fmt: skip
    notional = px * fpar[F_TICK] * q
    fee = fee_rate * notional
    if side == BUY:
        pos[a] += q
        cash[a] -= notional + fee
    else:
        pos[a] -= q
        cash[a] += notional - fee
    fees[a] += fee
    fst[FS_FEES] += fee
    j = _find(slots, a, oid)
    if j >= 0:
        slots[a, j, SL_REM] -= q
        open_q[a, side] -= q
        if slots[a, j, SL_REM] <= 0:
            slots[a, j, :] = 0


@_kernel
def _on_events(agents, ipar, fpar, ist, fst, pos, cash, fees, open_q, slots, trades, ring, ev,
               n_ev, t, auction):  # fmt: skip
    """Apply the engine's events to the agents and the logs."""
    for j in range(n_ev):
        kind = ev[j].kind
        if kind == TRADE:
            px = ev[j].price
            q = ev[j].quantity
            if auction:
                buyer = ev[j].account
                seller = ev[j].maker_account
                buy_oid = ev[j].order_id
                sell_oid = ev[j].maker_order_id
                taker = 2
                buy_fee = fpar[F_MAKER_FEE]
                sell_fee = fpar[F_MAKER_FEE]
                # an order traded in the auction but kept a remainder: rationed at the margin
                last_buy = j + 1 >= n_ev or ev[j + 1].kind != TRADE or ev[j + 1].order_id != buy_oid
                if last_buy and ev[j].remaining > 0:
                    ist[S_RATIONED] += 1
                    ist[S_RATIONED_QTY] += ev[j].remaining
                last_sell = (j + 1 >= n_ev or ev[j + 1].kind != TRADE
                             or ev[j + 1].maker_order_id != sell_oid)  # fmt: skip
                if last_sell and ev[j].maker_remaining > 0:
                    ist[S_RATIONED] += 1
                    ist[S_RATIONED_QTY] += ev[j].maker_remaining
            elif ev[j].side == BUY:
                buyer = ev[j].account
                seller = ev[j].maker_account
                buy_oid = ev[j].order_id
                sell_oid = ev[j].maker_order_id
                taker = 0
                buy_fee = fpar[F_TAKER_FEE]
                sell_fee = fpar[F_MAKER_FEE]
            else:
                seller = ev[j].account
                buyer = ev[j].maker_account
                sell_oid = ev[j].order_id
                buy_oid = ev[j].maker_order_id
                taker = 1
                buy_fee = fpar[F_MAKER_FEE]
                sell_fee = fpar[F_TAKER_FEE]
            _fill(agents, ipar, fpar, ist, fst, pos, cash, fees, open_q, slots, buyer, buy_oid,
                  _BUY, px, q, buy_fee)  # fmt: skip
            _fill(agents, ipar, fpar, ist, fst, pos, cash, fees, open_q, slots, seller,
                  sell_oid, _SELL, px, q, sell_fee)  # fmt: skip
            r = ist[S_NTRADES]
            trades[r, TR_STEP] = t
            trades[r, TR_PRICE] = px
            trades[r, TR_QTY] = q
            trades[r, TR_BUYER] = buyer
            trades[r, TR_SELLER] = seller
            trades[r, TR_TAKER] = taker
            ist[S_NTRADES] = r + 1
            ist[S_VOLUME] += q
            if not auction:
                ring[ist[S_NPRICES] % RING] = px
                ist[S_NPRICES] += 1
                ist[S_LAST_PX] = px
        elif kind == CANCELLED:
            if ev[j].reason == R_FOK_NOT_FILLED:
                ist[S_FOK_KILLED] += 1
            _release(slots, open_q, ev[j].account, ev[j].order_id)
        elif kind == REJECTED:
            # an ADD the engine refused; a refused CANCEL (the order had filled) changes nothing
            if ev[j].quantity > 0:
                ist[S_ENGINE_REJ] += 1
                _release(slots, open_q, ev[j].account, ev[j].order_id)
        elif kind == UNCROSSED:
            ist[S_AUCTIONS] += 1
            if ev[j].quantity > 0:
                ist[S_CROSSED] += 1
                ist[S_AUCTION_VOL] += ev[j].quantity
                ring[ist[S_NPRICES] % RING] = ev[j].price
                ist[S_NPRICES] += 1
                ist[S_LAST_PX] = ev[j].price


@_kernel
def _push(queue, ist, time, kind, oid, acc, side, price, qty, tif, flags):
    """Queue a command to arrive at ``time``, after every command arriving no later."""
    head = ist[S_QHEAD]
    end = ist[S_QEND]
    if end == len(queue):
        if head == 0:
            return False
        for i in range(end - head):
            for c in range(Q_COLS):
                queue[i, c] = queue[head + i, c]
        end -= head
        head = 0
        ist[S_QHEAD] = 0
    i = end
    while i > head and queue[i - 1, Q_TIME] > time:
        for c in range(Q_COLS):
            queue[i, c] = queue[i - 1, c]
        i -= 1
    queue[i, Q_TIME] = time
    queue[i, Q_KIND] = kind
    queue[i, Q_OID] = oid
    queue[i, Q_ACC] = acc
    queue[i, Q_SIDE] = side
    queue[i, Q_PRICE] = price
    queue[i, Q_QTY] = qty
    queue[i, Q_TIF] = tif
    queue[i, Q_FLAGS] = flags
    ist[S_QEND] = end + 1
    return True


@_kernel
def _ref_price(st, ipar, ist):
    """Return the reference price in ticks: the mid, else the last trade, else the opening."""
    bid = _engine.best(st, _BOOK, _BUY)
    ask = _engine.best(st, _BOOK, _SELL)
    if bid != -1 and ask != -1 and bid < ask:
        return (bid + ask) // 2
    if ist[S_LAST_PX] > 0:
        return ist[S_LAST_PX]
    return ipar[I_REF]


@_kernel
def _send(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, a, side, price, qty, tif,
          flags, t):  # fmt: skip
    """Place an order for agent ``a`` if it has a free slot and the margin to back it."""
    if qty <= 0:
        return False
    price = min(max(price, 1), ipar[I_N_TICKS] - 1)
    free = -1
    for j in range(MAX_OPEN):
        if slots[a, j, SL_OID] == 0:
            free = j
            break
    if free < 0:
        return False
    if fpar[F_MARGIN] > 0:
        exposure = abs(pos[a]) * _ref_price(st, ipar, ist) + qty * price
        for j in range(MAX_OPEN):
            exposure += slots[a, j, SL_REM] * slots[a, j, SL_PRICE]
        if fpar[F_MARGIN] * exposure * fpar[F_TICK] > agents[a].collateral:
            ist[S_MARGIN_BLOCK] += 1
            return False
    ist[S_OID] += 1
    oid = ist[S_OID]
    if not _push(queue, ist, t + agents[a].latency, _ADD, oid, a, side, price, qty, tif, flags):
        return False
    slots[a, free, SL_OID] = oid
    slots[a, free, SL_SIDE] = side
    slots[a, free, SL_PRICE] = price
    slots[a, free, SL_REM] = qty
    slots[a, free, SL_CXL] = 0
    slots[a, free, SL_TIF] = tif
    open_q[a, side] += qty
    ist[S_ORDERS] += 1
    return True


@_kernel
def _cancel(agents, ist, slots, queue, a, j, t):
    if slots[a, j, SL_OID] == 0 or slots[a, j, SL_CXL] != 0:
        return
    if _push(queue, ist, t + agents[a].latency, _CANCEL, slots[a, j, SL_OID], a,
             slots[a, j, SL_SIDE], _ZERO, _ZERO, _GTC, _ZERO):  # fmt: skip
        slots[a, j, SL_CXL] = 1
        ist[S_CANCELS] += 1


@_kernel
def _live(slots, a, side):
    """Return (live orders, their open quantity) of agent ``a`` on ``side`` (-1: both)."""
    n = 0
    q = 0
    for j in range(MAX_OPEN):
        live = slots[a, j, SL_OID] != 0 and slots[a, j, SL_CXL] == 0
        if live and (side < 0 or slots[a, j, SL_SIDE] == side):
            n += 1
            q += slots[a, j, SL_REM]
    return n, q


@_kernel
def _cancel_side(agents, ist, slots, queue, a, side, t):
    for j in range(MAX_OPEN):
        if slots[a, j, SL_OID] != 0 and (side < 0 or slots[a, j, SL_SIDE] == side):
            _cancel(agents, ist, slots, queue, a, j, t)


@_kernel
def _make_room(agents, ist, slots, queue, a, t):
    """Cancel the oldest live order if agent ``a`` holds ``max_open`` of them."""
    n, _ = _live(slots, a, _ANY_SIDE)
    if n < agents[a].max_open:
        return
    oldest = -1
    for j in range(MAX_OPEN):
        live = slots[a, j, SL_OID] != 0 and slots[a, j, SL_CXL] == 0
        if live and (oldest < 0 or slots[a, j, SL_OID] < slots[a, oldest, SL_OID]):
            oldest = j
    _cancel(agents, ist, slots, queue, a, oldest, t)


@_kernel
def _uniform(u, lo, hi):
    """Map ``u`` in [0, 1) to an integer uniform on ``lo .. hi``."""
    return min(lo + int(u * (hi - lo + 1)), hi)


@_kernel
def _bid_price(u, ipar, fpar, constrained, value):
    """Draw a ZI bid in ticks for a unit worth ``value`` (-1: no price is worth bidding)."""
    lo = ipar[I_LOW]
    if not constrained:
        return _uniform(u, lo, ipar[I_HIGH])
    hi = min(math.floor(value / (1.0 + fpar[F_FEE_GUARD]) / fpar[F_TICK] + 1e-9),
             ipar[I_HIGH])  # fmt: skip
    if hi < lo:
        return -1
    return _uniform(u, lo, hi)


@_kernel
def _ask_price(u, ipar, fpar, constrained, cost):
    """Draw a ZI ask in ticks for a unit costing ``cost`` (-1: none covers the cost)."""
    hi = ipar[I_HIGH]
    if not constrained:
        return _uniform(u, ipar[I_LOW], hi)
    lo = max(math.ceil(cost * (1.0 + fpar[F_FEE_GUARD]) / fpar[F_TICK] - 1e-9), ipar[I_LOW])
    if lo > hi:
        return -1
    return _uniform(u, lo, hi)


@_kernel
def _act(st, agents, units, ipar, fpar, ist, pos, cap, open_q, slots, queue, ring, u, a, t):
    """Let agent ``a`` decide at step ``t``; ``u`` is its uniform draw for a price."""
    kind = agents[a].kind
    mech = ipar[I_MECH]
    batch_now = mech == M_BATCH or (mech == M_OPEN and t < ipar[I_OPEN_STEPS])
    start = agents[a].unit_start
    constrained = agents[a].constrained != 0
    if kind == BUYER:
        _make_room(agents, ist, slots, queue, a, t)  # first, so its units are bid again
        _, q_live = _live(slots, a, _BUY)
        need = agents[a].n_units - pos[a] - q_live
        if need <= 0:
            return
        q = min(agents[a].clip, need)
        price = _bid_price(u, ipar, fpar, constrained, units[start + pos[a] + q_live + q - 1])
        if price > 0:
            _send(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, a, _BUY, price, q, _GTC,
                  _ZERO, t)  # fmt: skip
    elif kind == SELLER:
        sold = max(-pos[a], 0)
        over = sold - cap[a]
        if over > 0:
            # sold more than it can deliver (an outage): buy back, up to the penalty
            _cancel_side(agents, ist, slots, queue, a, _SELL, t)
            _make_room(agents, ist, slots, queue, a, t)
            _, q_live = _live(slots, a, _BUY)
            need = over - q_live
            if need <= 0:
                return
            price = _bid_price(u, ipar, fpar, constrained, ipar[I_PENALTY] * fpar[F_TICK])
            if price > 0:
                _send(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, a, _BUY, price,
                      min(agents[a].clip, need), _GTC, _ZERO, t)  # fmt: skip
            return
        _cancel_side(agents, ist, slots, queue, a, _BUY, t)
        _make_room(agents, ist, slots, queue, a, t)
        _, q_live = _live(slots, a, _SELL)
        avail = cap[a] - sold - q_live
        if avail <= 0:
            return
        q = min(agents[a].clip, avail)
        price = _ask_price(u, ipar, fpar, constrained, units[start + sold + q_live + q - 1])
        if price > 0:
            _send(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, a, _SELL, price, q, _GTC,
                  _ZERO, t)  # fmt: skip
    elif kind == BLOCK:
        need = agents[a].n_units - pos[a]
        if need <= 0:
            return
        for j in range(MAX_OPEN):
            if slots[a, j, SL_OID] != 0 and slots[a, j, SL_CXL] == 0 and slots[a, j, SL_TIF] == FOK:
                return  # a fill-or-kill order is on its way
        _cancel_side(agents, ist, slots, queue, a, _BUY, t)  # re-bid a resting block order
        price = _bid_price(u, ipar, fpar, constrained, units[start])
        if price > 0:
            tif = GTC if batch_now or agents[a].fok == 0 else FOK
            _send(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, a, _BUY, price, need,
                  tif, _ZERO, t)  # fmt: skip
    elif kind in (MAKER, MOMENTUM):
        _cancel_side(agents, ist, slots, queue, a, _ANY_SIDE, t)
        if t >= ipar[I_UNWIND]:
            _unwind(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, a, t, batch_now)
            return
        if kind == MAKER:
            _quote(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, a, t, batch_now)
        else:
            _chase(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, ring, a, t,
                   batch_now)  # fmt: skip


@_kernel
def _unwind(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, a, t, batch_now):
    """Trade a position back towards zero at the opposite best price."""
    p = pos[a]
    if p == 0:
        return
    side = SELL if p > 0 else BUY
    opp = _engine.best(st, _BOOK, 1 - side)
    price = opp if opp != -1 else _ref_price(st, ipar, ist)
    q = min(abs(p), max(agents[a].size, 1))
    tif = GTC if batch_now else IOC
    _send(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, a, side, price, q, tif, _ZERO, t)


@_kernel
def _quote(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, a, t, batch_now):
    """Quote a bid and an ask around the reference price, skewed against the position."""
    ref = _ref_price(st, ipar, ist)
    half = max(1, round(agents[a].spread * ref / 2))
    limit = max(agents[a].limit, 1)
    center = ref - pos[a] * half / limit
    bid = math.floor(center - half)
    ask = math.ceil(center + half)
    flags = 0 if batch_now else POST_ONLY
    if pos[a] < limit:
        _send(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, a, _BUY, bid,
              agents[a].size, _GTC, flags, t)  # fmt: skip
    if pos[a] > -limit:
        _send(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, a, _SELL, ask,
              agents[a].size, _GTC, flags, t)  # fmt: skip


@_kernel
def _chase(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, ring, a, t, batch_now):
    """Take the best price in the direction of the last move over ``window`` trades."""
    w = min(max(agents[a].window, 1), RING - 1)
    n = ist[S_NPRICES]
    if n < w + 1:
        return
    last = ring[(n - 1) % RING]
    prev = ring[(n - 1 - w) % RING]
    move = (last - prev) / prev
    thr = agents[a].threshold
    tif = GTC if batch_now else IOC
    if move > thr and pos[a] < agents[a].limit:
        ask = _engine.best(st, _BOOK, _SELL)
        if ask != -1:
            _send(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, a, _BUY, ask,
                  agents[a].size, tif, _ZERO, t)  # fmt: skip
    elif move < -thr and pos[a] > -agents[a].limit:
        bid = _engine.best(st, _BOOK, _BUY)
        if bid != -1:
            _send(st, agents, ipar, fpar, ist, pos, open_q, slots, queue, a, _SELL, bid,
                  agents[a].size, tif, _ZERO, t)  # fmt: skip


@_kernel
def _execute(st, agents, ipar, fpar, ist, fst, pos, cash, fees, open_q, slots, queue, trades,
             ring, i, t):  # fmt: skip
    """Run queued command ``i`` on the engine: the exchange's checks, then the kernel."""
    kind = queue[i, Q_KIND]
    a = queue[i, Q_ACC]
    oid = queue[i, Q_OID]
    side = queue[i, Q_SIDE]
    price = queue[i, Q_PRICE]
    if kind == ADD:
        if fpar[F_BAND] > 0:
            ref = ist[S_LAST_PX] if ist[S_LAST_PX] > 0 else ipar[I_REF]
            if abs(price - ref) > fpar[F_BAND] * ref:
                ist[S_BAND_REJ] += 1
                _release(slots, open_q, a, oid)
                return 0
        if ipar[I_IMPROVE] != 0:
            best = _engine.best(st, _BOOK, side)
            if best != -1 and (price <= best if side == BUY else price >= best):
                ist[S_IMPROVE_REJ] += 1
                _release(slots, open_q, a, oid)
                return 0
    ist[S_SEQ] += 1
    n_ev = _engine.submit(st, kind, _BOOK, oid, a, side, price, queue[i, Q_QTY], queue[i, Q_TIF],
                          queue[i, Q_FLAGS], ist[S_SEQ], t)  # fmt: skip
    if n_ev < 0:
        return n_ev
    _on_events(agents, ipar, fpar, ist, fst, pos, cash, fees, open_q, slots, trades, ring, st[8],
               n_ev, t, _ZERO)  # fmt: skip
    return 0


@_kernel
def _room(st, ist, trades):
    """Whether the trade log can take the trades of one more command or auction."""
    live = _engine.resting_count(st, _BOOK, _BUY) + _engine.resting_count(st, _BOOK, _SELL)
    return len(trades) - ist[S_NTRADES] >= live + 2


@_kernel
def _deliver(st, agents, ipar, fpar, ist, fst, pos, cash, fees, open_q, slots, queue, trades,
             ring, t):  # fmt: skip
    """Execute every queued command due by step ``t``; return a status code."""
    while ist[S_QHEAD] < ist[S_QEND] and queue[ist[S_QHEAD], Q_TIME] <= t:
        if not _room(st, ist, trades):
            return NEED_TRADES
        i = ist[S_QHEAD]
        ist[S_QHEAD] = i + 1
        if _execute(st, agents, ipar, fpar, ist, fst, pos, cash, fees, open_q, slots, queue,
                    trades, ring, i, t) < 0:  # fmt: skip
            return ENGINE_TOO_SMALL
    return DONE


@_kernel
def _run(st, agents, units, cum_w, ipar, fpar, ist, fst, pos, cap, cash, fees, open_q, slots,
         queue, trades, series, ring, draws, t_end):  # fmt: skip
    """Run steps until ``t_end``; return a status code for :func:`_drive`.

    ``DONE``; ``NEED_TRADES``: grow the trade log and call again; ``NEED_DRAWS``: refill
    ``draws`` (uniform on [0, 1), consumed two per step from ``ist[S_DRAW]``) and call again;
    ``NEED_AUCTION``: run this step's auction, then call again; negative: the engine was
    sized too small.
    """
    n_agents = len(agents)
    total_w = cum_w[n_agents - 1]
    while ist[S_T] < t_end:
        t = ist[S_T]
        phase = ist[S_PHASE]
        if phase == 0:
            if ipar[I_SHOCK] == 1 and t == ipar[I_SHOCK_STEP] and ist[S_SHOCK_DONE] == 0:
                for a in range(n_agents):
                    if agents[a].kind == SELLER and agents[a].shock_hit != 0:
                        cap[a] = math.floor(agents[a].n_units * (1.0 - fpar[F_OUTAGE_SHARE]))
                        _cancel_side(agents, ist, slots, queue, a, _SELL, t)
                ist[S_SHOCK_DONE] = 1
            phase = 1
        if phase == 1:
            status = _deliver(st, agents, ipar, fpar, ist, fst, pos, cash, fees, open_q, slots,
                              queue, trades, ring, t)  # fmt: skip
            if status != DONE:
                ist[S_PHASE] = 1
                return status
            phase = 2
        if phase == 2:
            mech = ipar[I_MECH]
            due = (mech == M_BATCH and ((t + 1) % ipar[I_TAU] == 0 or t == ipar[I_STEPS] - 1)) or (
                mech == M_OPEN and t == ipar[I_OPEN_STEPS] - 1
            )
            if due:
                if not _room(st, ist, trades):
                    ist[S_PHASE] = 2
                    return NEED_TRADES
                ist[S_PHASE] = 2
                return NEED_AUCTION  # the driver runs it and resumes at phase 3
            phase = 3
        if phase == 3:
            d = ist[S_DRAW]
            if d + 2 > len(draws):
                ist[S_PHASE] = 3
                return NEED_DRAWS
            x = draws[d] * total_w
            u = draws[d + 1]
            ist[S_DRAW] = d + 2
            a = min(np.searchsorted(cum_w, x, side="right"), n_agents - 1)
            if t >= agents[a].active_from:
                _act(st, agents, units, ipar, fpar, ist, pos, cap, open_q, slots, queue, ring,
                     u, a, t)  # fmt: skip
            else:
                ist[S_IDLE] += 1
            phase = 4
        if phase == 4:
            status = _deliver(st, agents, ipar, fpar, ist, fst, pos, cash, fees, open_q, slots,
                              queue, trades, ring, t)  # fmt: skip
            if status != DONE:
                ist[S_PHASE] = 4
                return status
        bid = _engine.best(st, _BOOK, _BUY)
        ask = _engine.best(st, _BOOK, _SELL)
        if bid != -1 and ask != -1 and bid < ask:
            ist[S_SPREAD_N] += 1
            fst[FS_SPREAD] += ask - bid
            fst[FS_DEPTH] += _engine.level_quantity(st, _BOOK, _BUY, bid) + _engine.level_quantity(
                st, _BOOK, _SELL, ask
            )
        if t % ipar[I_SAMPLE_EVERY] == 0 and ist[S_SAMPLES] < len(series):
            s = ist[S_SAMPLES]
            series[s, SR_STEP] = t
            series[s, SR_BID] = bid
            series[s, SR_ASK] = ask
            series[s, SR_LAST] = ist[S_LAST_PX]
            series[s, SR_VOLUME] = ist[S_VOLUME]
            ist[S_SAMPLES] = s + 1
        ist[S_T] = t + 1
        ist[S_PHASE] = 0
    return DONE


@njit(cache=True)
def _drive(st, agents, units, cum_w, ipar, fpar, ist, fst, pos, cap, cash, fees, open_q, slots,
           queue, trades, series, ring, draws, rng, t_end):  # fmt: skip
    """Run :func:`_run` to ``t_end``: refill its random draws and run its auctions.

    Compiled with reference counting (the Generator and the auction kernel need it);
    returns ``DONE``, ``NEED_TRADES`` (grow the trade log, call again) or a negative code.
    """
    while True:
        status = _run(st, agents, units, cum_w, ipar, fpar, ist, fst, pos, cap, cash, fees,
                      open_q, slots, queue, trades, series, ring, draws, t_end)  # fmt: skip
        if status == NEED_DRAWS:
            for i in range(len(draws)):
                draws[i] = rng.random()
            ist[S_DRAW] = 0
        elif status == NEED_AUCTION:
            flags = PRO_RATA if ipar[I_PRO_RATA] != 0 else 0
            if ipar[I_MECH] == M_OPEN:
                flags |= OPEN_CONTINUOUS
            ist[S_SEQ] += 1
            t = ist[S_T]
            n_ev = _engine.auction(st, _BOOK, flags, ist[S_SEQ], t)
            if n_ev < 0:
                return ENGINE_TOO_SMALL
            _on_events(agents, ipar, fpar, ist, fst, pos, cash, fees, open_q, slots, trades, ring,
                       st[8], n_ev, t, _IN_AUCTION)  # fmt: skip
            ist[S_PHASE] = 3
        else:
            return status


# -- the Python side ------------------------------------------------------------------------


@dataclass
class Session:
    """What one session of a market mechanism produced."""

    positions: np.ndarray  #: net units per agent (bought minus sold)
    cash: np.ndarray  #: money per agent: received minus paid, after fees
    fees: np.ndarray  #: fees per agent
    capacity: np.ndarray  #: provider capacity at the close (after an outage shock)
    trades: np.ndarray  #: ``TR_*`` columns; prices in ticks
    series: np.ndarray  #: ``SR_*`` columns, every ``sample_every`` steps
    counters: dict[str, int]
    spread_ticks: float  #: mean quoted spread when both sides were present (ticks)
    depth: float  #: mean quantity at the best bid plus the best ask
    tick: float
    shock_step: int
    commands: int  #: commands the engine ran


@dataclass
class Setup:
    """The integer and float parameters of the compiled loop, derived from the settings."""

    ipar: np.ndarray
    fpar: np.ndarray
    tick: float


def setup(pop: Population, settings: dict[str, Any]) -> Setup:
    """Translate population and market settings into the compiled loop's parameters."""
    s = market_settings(settings)
    tick = float(s["tick"] if s["tick"] is not None else pop.tick)
    steps = int(s["steps"])
    ipar = np.zeros(I_COLS, dtype=np.int64)
    fpar = np.zeros(F_COLS, dtype=np.float64)
    mech = MECHANISMS.index(s["mechanism"])
    ipar[I_STEPS] = steps
    ipar[I_MECH] = mech
    ipar[I_TAU] = int(s["batch_interval"])
    ipar[I_PRO_RATA] = int(s["rationing"] == "pro_rata")
    ipar[I_OPEN_STEPS] = (
        int(s["open_steps"]) if s["open_steps"] is not None else max(1, steps // 10)
    )
    ipar[I_IMPROVE] = int(bool(s["improvement_rule"]))
    ipar[I_LOW] = max(1, math.ceil(pop.price_low / tick - 1e-9))
    ipar[I_HIGH] = max(ipar[I_LOW], math.floor(pop.price_high / tick + 1e-9))
    ipar[I_REF] = max(1, round(pop.reference / tick))
    ipar[I_SHOCK] = ("none", "outage", "surge").index(pop.settings["shock"])
    ipar[I_SHOCK_STEP] = int(pop.settings["shock_at"] * steps)
    ipar[I_SAMPLE_EVERY] = max(1, steps // N_SAMPLES)
    ipar[I_UNWIND] = steps - steps // 10
    ipar[I_PENALTY] = max(1, round(pop.penalty / tick))
    ipar[I_N_TICKS] = int(max(ipar[I_HIGH], ipar[I_PENALTY], 2 * ipar[I_REF])) + 2
    fpar[F_TICK] = tick
    fpar[F_MAKER_FEE] = float(s["maker_fee"])
    fpar[F_TAKER_FEE] = float(s["taker_fee"])
    fpar[F_BAND] = float(s["price_band"])
    fpar[F_MARGIN] = float(s["margin_rate"])
    guard = s["maker_fee"] if mech == M_BATCH else max(s["maker_fee"], s["taker_fee"])
    fpar[F_FEE_GUARD] = max(0.0, float(guard))
    fpar[F_OUTAGE_SHARE] = float(pop.settings["outage_share"])
    return Setup(ipar, fpar, tick)


def run_session(pop: Population, settings: dict[str, Any], rng: np.random.Generator) -> Session:
    """Run one session of a market mechanism on ``pop``, drawing decisions from ``rng``."""
    s = market_settings(settings)
    su = setup(pop, s)
    ipar, fpar = su.ipar, su.fpar
    agents = pop.agents.copy()
    is_sniper = agents["group"] == 5
    agents["latency"] = np.where(is_sniper, int(s["sniper_latency"]), int(s["latency"]))
    n = len(agents)
    mechanism = BATCH if ipar[I_MECH] in (M_BATCH, M_OPEN) else CONTINUOUS
    max_live = n * MAX_OPEN
    engine, st = _engine.new_engine([(0, int(ipar[I_N_TICKS]), mechanism)], max_live)
    cum_w = np.cumsum(agents["weight"])
    ist = np.zeros(S_COLS, dtype=np.int64)
    fst = np.zeros(FS_COLS, dtype=np.float64)
    pos = np.zeros(n, dtype=np.int64)
    cap = agents["n_units"].copy()
    cash = np.zeros(n, dtype=np.float64)
    fees = np.zeros(n, dtype=np.float64)
    open_q = np.zeros((n, 2), dtype=np.int64)
    slots = np.zeros((n, MAX_OPEN, SL_COLS), dtype=np.int64)
    queue = np.zeros((2 * max_live + 16, Q_COLS), dtype=np.int64)
    trades = np.zeros((max(1024, 4 * max_live), TR_COLS), dtype=np.int64)
    series = np.zeros((N_SAMPLES + 1, SR_COLS), dtype=np.int64)
    ring = np.zeros(RING, dtype=np.int64)
    steps = int(ipar[I_STEPS])
    draws = np.zeros(min(DRAWS, 2 * steps), dtype=np.float64)
    ist[S_DRAW] = len(draws)
    while True:
        status = _drive(st, agents, pop.units, cum_w, ipar, fpar, ist, fst, pos, cap, cash, fees,
                        open_q, slots, queue, trades, series, ring, draws, rng, steps)  # fmt: skip
        if status == DONE:
            break
        if status == NEED_TRADES:
            grown = np.zeros((2 * len(trades), TR_COLS), dtype=np.int64)
            grown[: len(trades)] = trades
            trades = grown
            continue
        raise RuntimeError(f"market simulation stopped with status {status} (a sizing bug)")
    engine.check_invariants()
    counters = {
        "orders": int(ist[S_ORDERS]),
        "cancels": int(ist[S_CANCELS]),
        "auctions": int(ist[S_AUCTIONS]),
        "auctions_crossed": int(ist[S_CROSSED]),
        "auction_volume": int(ist[S_AUCTION_VOL]),
        "rationed_orders": int(ist[S_RATIONED]),
        "rationed_quantity": int(ist[S_RATIONED_QTY]),
        "band_rejects": int(ist[S_BAND_REJ]),
        "improvement_rejects": int(ist[S_IMPROVE_REJ]),
        "margin_blocks": int(ist[S_MARGIN_BLOCK]),
        "engine_rejects": int(ist[S_ENGINE_REJ]),
        "fok_killed": int(ist[S_FOK_KILLED]),
        "idle_steps": int(ist[S_IDLE]),
        "in_flight_at_close": int(ist[S_QEND] - ist[S_QHEAD]),
    }
    spread_n = max(int(ist[S_SPREAD_N]), 1)
    return Session(pos, cash, fees, cap, trades[: ist[S_NTRADES]].copy(),
                   series[: ist[S_SAMPLES]].copy(), counters, float(fst[FS_SPREAD]) / spread_n,
                   float(fst[FS_DEPTH]) / spread_n, su.tick, int(ipar[I_SHOCK_STEP]),
                   int(ist[S_SEQ]))  # fmt: skip
