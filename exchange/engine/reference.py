"""The reference engine: plain Python on ``sortedcontainers``, written to be obviously right.

It is the oracle the compiled engine is tested against. Clarity comes first; it is not
tuned for speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sortedcontainers import SortedDict

from exchange.engine.base import Engine
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
    COMMAND_DTYPE,
    CONTINUOUS,
    DEFAULT_N_TICKS,
    EVENT_DTYPE,
    FOK,
    GTC,
    IOC,
    LEVEL,
    MARKET,
    MAX_QUANTITY,
    OPEN_CONTINUOUS,
    ORDER_DTYPE,
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

_EVENT_FIELDS = EVENT_DTYPE.names or ()


@dataclass
class _Order:
    order_id: int
    account: int
    book: int
    side: int
    price: int
    remaining: int
    stp: int
    flags: int


class _Side:
    """One side of a book: price -> FIFO queue (an insertion-ordered dict of orders)."""

    def __init__(self, side: int) -> None:
        self.side = side
        self.levels: SortedDict = SortedDict()

    def best_price(self) -> int | None:
        if not self.levels:
            return None
        return self.levels.keys()[-1] if self.side == BUY else self.levels.keys()[0]

    def prices_best_first(self) -> list[int]:
        keys = list(self.levels.keys())
        return keys[::-1] if self.side == BUY else keys

    def total(self, price: int) -> int:
        queue = self.levels.get(price)
        return sum(o.remaining for o in queue.values()) if queue else 0

    def append(self, order: _Order) -> None:
        self.levels.setdefault(order.price, {})[order.order_id] = order

    def remove(self, order: _Order) -> None:
        queue = self.levels[order.price]
        del queue[order.order_id]
        if not queue:
            del self.levels[order.price]


class _Book:
    def __init__(self, book: int, n_ticks: int, mechanism: int) -> None:
        self.book = book
        self.n_ticks = n_ticks
        self.mechanism = mechanism
        self.sides = (_Side(BUY), _Side(SELL))


def _reaches(side: int, limit: int, price: int) -> bool:
    """Whether an order on ``side`` with ``limit`` may trade at ``price``."""
    return price <= limit if side == BUY else price >= limit


class ReferenceEngine(Engine):
    """The plain Python backend."""

    backend = "reference"

    def __init__(self, backend: str = "reference") -> None:
        self._books: dict[int, _Book] = {}
        self._orders: dict[int, _Order] = {}
        self._events: list[tuple[int, ...]] = []
        self._seq = 0
        self._ts = 0

    # -- books ------------------------------------------------------------------------
    def add_book(
        self, book: int, n_ticks: int = DEFAULT_N_TICKS, mechanism: int = CONTINUOUS
    ) -> None:
        self._check_book_args(book, n_ticks, mechanism, self._books)
        self._books[book] = _Book(book, n_ticks, mechanism)

    def books(self) -> list[tuple[int, int, int]]:
        return [(b, self._books[b].n_ticks, self._books[b].mechanism) for b in sorted(self._books)]

    def _drop_book(self, book: int) -> None:
        del self._books[book]

    # -- events -----------------------------------------------------------------------
    def _emit(self, kind: int, **fields: int) -> None:
        row = dict.fromkeys(_EVENT_FIELDS, 0)
        row.update(fields, kind=kind, seq=self._seq, ts=self._ts)
        self._events.append(tuple(row[name] for name in _EVENT_FIELDS))

    def _emit_order(self, kind: int, order: _Order, **fields: int) -> None:
        base = {
            "order_id": order.order_id,
            "account": order.account,
            "book": order.book,
            "side": order.side,
            "price": order.price,
        }
        base.update(fields)
        self._emit(kind, **base)

    def _emit_level(self, book: _Book, side: int, price: int) -> None:
        self._emit(
            LEVEL, book=book.book, side=side, price=price, quantity=book.sides[side].total(price)
        )

    # -- commands ---------------------------------------------------------------------
    def process(self, commands: np.ndarray, copy: bool = True) -> np.ndarray:
        if commands.dtype != COMMAND_DTYPE:
            raise TypeError("commands must be an array of exchange.engine.COMMAND_DTYPE")
        self._events = []
        for cmd in commands.tolist():
            self._run(dict(zip(COMMAND_DTYPE.names or (), cmd, strict=True)))
        return np.array(self._events, dtype=EVENT_DTYPE)

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
        self._events = []
        self._run({"seq": seq, "ts": ts, "order_id": order_id, "account": account, "price": price,
                   "quantity": quantity, "book": book, "kind": kind, "side": side, "tif": tif,
                   "flags": flags, "stp": stp})  # fmt: skip
        return np.array(self._events, dtype=EVENT_DTYPE)

    def _run(self, cmd: dict[str, int]) -> None:
        self._seq, self._ts = cmd["seq"], cmd["ts"]
        kind = cmd["kind"]
        if kind not in (ADD, CANCEL, AMEND, AUCTION):
            self._reject(cmd, R_INVALID_COMMAND)
            return
        book = self._books.get(cmd["book"])
        if book is None:
            self._reject(cmd, R_UNKNOWN_BOOK)
        elif kind == ADD:
            self._add(book, cmd)
        elif kind == CANCEL:
            self._cancel(book, cmd)
        elif kind == AMEND:
            self._amend(book, cmd)
        else:
            self._auction(book, cmd)

    def _reject(self, cmd: dict[str, int], reason: int) -> None:
        self._emit(
            REJECTED,
            order_id=cmd["order_id"],
            account=cmd["account"],
            book=cmd["book"],
            side=cmd["side"],
            price=cmd["price"],
            quantity=cmd["quantity"],
            reason=reason,
        )

    def _add_error(self, book: _Book, cmd: dict[str, int]) -> int:
        """Return the reason an ADD is invalid, or 0."""
        is_market = bool(cmd["flags"] & MARKET)
        post_only = bool(cmd["flags"] & POST_ONLY)
        if cmd["order_id"] <= 0:
            return R_INVALID_ORDER_ID
        if cmd["side"] not in (BUY, SELL):
            return R_INVALID_SIDE
        if cmd["tif"] not in (GTC, IOC, FOK):
            return R_INVALID_TIF
        if cmd["flags"] & ~ALL_FLAGS or (post_only and (is_market or cmd["tif"] != GTC)):
            return R_INVALID_FLAGS
        if cmd["stp"] > STP_CANCEL_BOTH:
            return R_INVALID_STP
        if not 1 <= cmd["quantity"] <= MAX_QUANTITY:
            return R_INVALID_QUANTITY
        if not is_market and not 1 <= cmd["price"] < book.n_ticks:
            return R_PRICE_OFF_LADDER
        if cmd["order_id"] in self._orders:
            return R_DUPLICATE_ORDER_ID
        if book.mechanism == BATCH and (is_market or post_only or cmd["tif"] != GTC):
            return R_BATCH_ORDER_TYPE
        if post_only and self._would_cross(book, cmd["side"], cmd["price"]):
            return R_POST_ONLY_WOULD_TRADE
        return 0

    def _would_cross(self, book: _Book, side: int, price: int) -> bool:
        best = book.sides[1 - side].best_price()
        return best is not None and _reaches(side, price, best)

    def _add(self, book: _Book, cmd: dict[str, int]) -> None:
        reason = self._add_error(book, cmd)
        if reason:
            self._reject(cmd, reason)
            return
        is_market = bool(cmd["flags"] & MARKET)
        order = _Order(
            order_id=cmd["order_id"],
            account=cmd["account"],
            book=book.book,
            side=cmd["side"],
            price=0 if is_market else cmd["price"],
            remaining=cmd["quantity"],
            stp=cmd["stp"],
            flags=cmd["flags"],
        )
        self._emit_order(ACCEPTED, order, quantity=order.remaining, remaining=order.remaining)
        if book.mechanism == BATCH:
            self._rest_in_batch(book, order)
            return
        if cmd["tif"] == FOK and self._fillable(book, order) < order.remaining:
            self._emit_order(CANCELLED, order, quantity=order.remaining, reason=R_FOK_NOT_FILLED)
            return
        self._take(book, order, cmd["tif"], is_market)

    def _rest_in_batch(self, book: _Book, order: _Order) -> None:
        """An order arriving in a batch book (added, or amended out of its place) rests,
        unless its self-trade prevention cancels it."""
        if self._self_cross(book, order):
            self._emit_order(CANCELLED, order, quantity=order.remaining, reason=R_SELF_TRADE)
        else:
            self._rest(book, order)

    def _self_cross(self, book: _Book, order: _Order) -> bool:
        """Self-trade prevention for an order arriving in a batch book: the account's own
        orders on the other side that it crosses (which the next auction could pair with it),
        best price first and oldest first, are met as a continuous taker meets them. Return
        True if the arriving order is to be cancelled."""
        if order.stp == STP_NONE:
            return False
        opposite = book.sides[1 - order.side]
        if order.side == BUY:  # asks at or below its limit, lowest first
            crossed = list(opposite.levels.irange(maximum=order.price))
        else:  # bids at or above it, highest first
            crossed = list(opposite.levels.irange(minimum=order.price, reverse=True))
        for price in crossed:
            touched = False
            for maker in list(opposite.levels[price].values()):
                if maker.account != order.account:
                    continue
                if order.stp != STP_CANCEL_NEWEST:
                    self._emit_order(
                        CANCELLED, maker, quantity=maker.remaining, reason=R_SELF_TRADE
                    )
                    self._forget(book, maker)
                    touched = True
                if order.stp != STP_CANCEL_OLDEST:
                    if touched:
                        self._emit_level(book, opposite.side, price)
                    return True
            if touched:
                self._emit_level(book, opposite.side, price)
        return False

    def _fillable(self, book: _Book, taker: _Order) -> int:
        """Quantity a taker could fill now, honouring its self-trade prevention."""
        total = 0
        opposite = book.sides[1 - taker.side]
        is_market = bool(taker.flags & MARKET)
        for price in opposite.prices_best_first():
            if not is_market and not _reaches(taker.side, taker.price, price):
                break
            for maker in opposite.levels[price].values():
                if maker.account == taker.account and taker.stp != STP_NONE:
                    if taker.stp == STP_CANCEL_OLDEST:
                        continue
                    return total
                total += maker.remaining
                if total >= taker.remaining:
                    return total
        return total

    def _take(self, book: _Book, taker: _Order, tif: int, is_market: bool) -> None:
        """Match ``taker`` against the book, then rest or cancel what is left."""
        opposite = book.sides[1 - taker.side]
        stopped = False
        while taker.remaining > 0 and not stopped:
            price = opposite.best_price()
            if price is None or (not is_market and not _reaches(taker.side, taker.price, price)):
                break
            touched = False
            for maker in list(opposite.levels[price].values()):
                if maker.account == taker.account and taker.stp != STP_NONE:
                    if taker.stp in (STP_CANCEL_OLDEST, STP_CANCEL_BOTH):
                        self._emit_order(
                            CANCELLED, maker, quantity=maker.remaining, reason=R_SELF_TRADE
                        )
                        self._forget(book, maker)
                        touched = True
                    if taker.stp != STP_CANCEL_OLDEST:
                        stopped = True
                        break
                    continue
                quantity = min(taker.remaining, maker.remaining)
                touched = True
                taker.remaining -= quantity
                maker.remaining -= quantity
                self._emit(
                    TRADE,
                    order_id=taker.order_id,
                    maker_order_id=maker.order_id,
                    account=taker.account,
                    maker_account=maker.account,
                    book=book.book,
                    side=taker.side,
                    price=price,
                    quantity=quantity,
                    remaining=taker.remaining,
                    maker_remaining=maker.remaining,
                )
                if maker.remaining == 0:
                    self._forget(book, maker)
                if taker.remaining == 0:
                    break
            if touched:
                self._emit_level(book, 1 - taker.side, price)
        if taker.remaining == 0:
            self._orders.pop(taker.order_id, None)
            return
        if stopped:
            reason = R_SELF_TRADE
        elif is_market:
            reason = R_MARKET_NO_LIQUIDITY
        elif tif == IOC:
            reason = R_IOC_REMAINDER
        else:
            self._rest(book, taker)
            return
        self._emit_order(CANCELLED, taker, quantity=taker.remaining, reason=reason)
        self._orders.pop(taker.order_id, None)

    def _rest(self, book: _Book, order: _Order) -> None:
        book.sides[order.side].append(order)
        self._orders[order.order_id] = order
        self._emit_level(book, order.side, order.price)

    def _forget(self, book: _Book, order: _Order) -> None:
        book.sides[order.side].remove(order)
        del self._orders[order.order_id]

    def _resting(self, book: _Book, cmd: dict[str, int]) -> _Order | None:
        order = self._orders.get(cmd["order_id"])
        if order is None or order.book != book.book or order.account != cmd["account"]:
            return None
        return order

    def _cancel(self, book: _Book, cmd: dict[str, int]) -> None:
        order = self._resting(book, cmd)
        if order is None:
            self._reject(cmd, R_UNKNOWN_ORDER_ID)
            return
        self._emit_order(CANCELLED, order, quantity=order.remaining, reason=R_CANCELLED_BY_USER)
        self._forget(book, order)
        self._emit_level(book, order.side, order.price)

    def _amend(self, book: _Book, cmd: dict[str, int]) -> None:
        order = self._resting(book, cmd)
        price, quantity = cmd["price"], cmd["quantity"]
        if order is None:
            self._reject(cmd, R_UNKNOWN_ORDER_ID)
            return
        if not 1 <= quantity <= MAX_QUANTITY:
            self._reject(cmd, R_INVALID_QUANTITY)
            return
        if not 1 <= price < book.n_ticks:
            self._reject(cmd, R_PRICE_OFF_LADDER)
            return
        if order.flags & POST_ONLY and self._would_cross(book, order.side, price):
            self._reject(cmd, R_POST_ONLY_WOULD_TRADE)
            return
        self._emit_order(AMENDED, order, price=price, quantity=quantity, remaining=quantity)
        if price == order.price and quantity <= order.remaining:
            if quantity < order.remaining:
                order.remaining = quantity
                self._emit_level(book, order.side, price)
            return
        old_price = order.price
        self._forget(book, order)
        if price != old_price:
            self._emit_level(book, order.side, old_price)
        order.price, order.remaining = price, quantity
        if book.mechanism == BATCH:
            self._rest_in_batch(book, order)
            return
        self._orders[order.order_id] = order
        self._take(book, order, GTC, False)

    def _auction(self, book: _Book, cmd: dict[str, int]) -> None:
        if cmd["flags"] & ~AUCTION_FLAGS:
            self._reject(cmd, R_INVALID_FLAGS)
            return
        bids, asks = book.sides
        bid, ask = bids.best_price(), asks.best_price()
        if bid is None or ask is None or bid < ask:
            self._emit(UNCROSSED, book=book.book)
        else:
            volume = {
                p: min(
                    sum(bids.total(q) for q in bids.levels if q >= p),
                    sum(asks.total(q) for q in asks.levels if q <= p),
                )
                for p in range(ask, bid + 1)
            }
            best = max(volume.values())
            prices = [p for p, v in volume.items() if v == best]
            price = (prices[0] + prices[-1]) // 2
            self._emit(UNCROSSED, book=book.book, price=price, quantity=best)
            pro_rata = bool(cmd["flags"] & PRO_RATA)
            buys = _allocate(bids, price, best, pro_rata)
            sells = _allocate(asks, price, best, pro_rata)
            self._pair(book, price, buys, sells)
            for side, fills in ((BUY, buys), (SELL, sells)):
                touched = sorted({o.price for o, _ in fills}, reverse=side == BUY)
                for order, _ in fills:
                    if order.remaining == 0:
                        self._forget(book, order)
                for p in touched:
                    self._emit_level(book, side, p)
        if cmd["flags"] & OPEN_CONTINUOUS:
            book.mechanism = CONTINUOUS

    def _pair(self, book: _Book, price: int, buys: list[tuple[_Order, int]],
              sells: list[tuple[_Order, int]]) -> None:  # fmt: skip
        """Trade the buy fills against the sell fills, both in priority order."""
        i = j = 0
        buy_left, sell_left = buys[0][1], sells[0][1]
        while i < len(buys) and j < len(sells):
            buyer, seller = buys[i][0], sells[j][0]
            quantity = min(buy_left, sell_left)
            buyer.remaining -= quantity
            seller.remaining -= quantity
            buy_left -= quantity
            sell_left -= quantity
            self._emit(
                TRADE,
                order_id=buyer.order_id,
                maker_order_id=seller.order_id,
                account=buyer.account,
                maker_account=seller.account,
                book=book.book,
                side=BUY,
                price=price,
                quantity=quantity,
                remaining=buyer.remaining,
                maker_remaining=seller.remaining,
            )
            if buy_left == 0:
                i += 1
                buy_left = buys[i][1] if i < len(buys) else 0
            if sell_left == 0:
                j += 1
                sell_left = sells[j][1] if j < len(sells) else 0

    # -- queries ----------------------------------------------------------------------
    def depth(
        self, book: int, levels: int = 10
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        b = self._books[book]
        bids, asks = (
            [(p, b.sides[s].total(p)) for p in b.sides[s].prices_best_first()[:levels]]
            for s in (BUY, SELL)
        )
        return bids, asks

    def order(self, order_id: int) -> dict[str, int] | None:
        order = self._orders.get(order_id)
        if order is None:
            return None
        return {
            "order_id": order.order_id,
            "account": order.account,
            "book": order.book,
            "side": order.side,
            "price": order.price,
            "remaining": order.remaining,
            "stp": order.stp,
            "flags": order.flags,
        }

    def resting_orders(self) -> np.ndarray:
        rows: list[tuple[int, ...]] = []
        for book_id in sorted(self._books):
            for side in self._books[book_id].sides:
                for price in side.prices_best_first():
                    rows.extend(
                        (
                            o.order_id,
                            o.account,
                            o.price,
                            o.remaining,
                            o.book,
                            o.side,
                            o.stp,
                            o.flags,
                        )
                        for o in side.levels[price].values()
                    )
        out = np.zeros(len(rows), dtype=ORDER_DTYPE)  # zeroed, so padding bytes are too
        if rows:
            filled = np.array(rows, dtype=ORDER_DTYPE)
            for name in ORDER_DTYPE.names or ():
                out[name] = filled[name]
        return out

    def _load_orders(self, orders: np.ndarray) -> None:
        for row in orders.tolist():
            order_id, account, price, remaining, book, side, stp, flags = row
            order = _Order(order_id, account, book, side, price, remaining, stp, flags)
            self._books[order.book].sides[order.side].append(order)
            self._orders[order.order_id] = order

    def check_invariants(self) -> None:
        seen = 0
        for book in self._books.values():
            bid, ask = (s.best_price() for s in book.sides)
            if book.mechanism == CONTINUOUS:
                assert bid is None or ask is None or bid < ask, f"book {book.book} crossed"
            for side in book.sides:
                for price, queue in side.levels.items():
                    assert queue, f"empty level {price} kept in book {book.book}"
                    assert 1 <= price < book.n_ticks
                    for order in queue.values():
                        assert order.remaining > 0
                        assert order.price == price and order.side == side.side
                        assert self._orders[order.order_id] is order
                        seen += 1
        assert seen == len(self._orders), "order index disagrees with the books"


def _allocate(side: _Side, price: int, amount: int, pro_rata: bool) -> list[tuple[_Order, int]]:
    """Fill ``amount`` from one side at the auction ``price``: price priority, then time
    priority or pro rata (largest remainders get the odd lots) inside the marginal level."""
    fills: list[tuple[_Order, int]] = []
    for p in side.prices_best_first():
        if amount == 0 or not _reaches(side.side, p, price):
            break
        queue = list(side.levels[p].values())
        total = sum(o.remaining for o in queue)
        if total <= amount:
            fills.extend((o, o.remaining) for o in queue)
            amount -= total
            continue
        if pro_rata:
            shares = [amount * o.remaining // total for o in queue]
            remainders = [amount * o.remaining % total for o in queue]
            odd_lots = amount - sum(shares)
            for i in sorted(range(len(queue)), key=lambda i: (-remainders[i], i))[:odd_lots]:
                shares[i] += 1
        else:
            shares = []
            for o in queue:
                shares.append(min(amount - sum(shares), o.remaining))
        fills.extend((o, q) for o, q in zip(queue, shares, strict=True) if q > 0)
        amount = 0
    return fills
