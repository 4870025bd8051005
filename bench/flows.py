"""Order flows for engine benchmarks, generated reproducibly from a seed.

The standard flow mixes about 50% passive adds near the touch, 25% cancels, 15% amends and
10% marketable orders over several books. Cancels and amends always name an order that is
resting at that moment: the generator runs its own numba engine alongside to know which
orders are live, so the flow measures matching, not rejections.
"""

from __future__ import annotations

import numpy as np

from exchange.engine import (
    ADD,
    AMEND,
    CANCEL,
    CANCELLED,
    COMMAND_DTYPE,
    GTC,
    IOC,
    REJECTED,
    TRADE,
    Engine,
)

#: Ticks of every benchmark book: prices 1..99_999 (USD 0.01 .. 999.99 at a 0.01 tick).
N_TICKS = 100_000


class _Live:
    """Resting order ids with O(1) add, remove and uniform random choice."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.pos: dict[int, int] = {}

    def add(self, order_id: int) -> None:
        self.pos[order_id] = len(self.ids)
        self.ids.append(order_id)

    def discard(self, order_id: int) -> None:
        i = self.pos.pop(order_id, None)
        if i is None:
            return
        last = self.ids.pop()
        if last != order_id:
            self.ids[i] = last
            self.pos[last] = i


def standard_flow(n_commands: int = 1_000_000, n_books: int = 10, seed: int = 1) -> np.ndarray:
    """Return ``n_commands`` commands of the standard mix over ``n_books`` books."""
    rng = np.random.default_rng(seed)
    shadow = Engine(backend="numba")
    for b in range(n_books):
        shadow.add_book(b, N_TICKS)
    # books hover around H100 and A100 prices, $2-$8 per GPU-hour in ticks of $0.01
    mids = rng.integers(200, 800, n_books).astype(np.int64)
    live = [_Live() for _ in range(n_books)]
    info: dict[int, tuple[int, int, int, int]] = {}  # order id -> (book, side, price, account)
    out = np.zeros(n_commands, dtype=COMMAND_DTYPE)
    draws = rng.random(n_commands)
    books = rng.integers(0, n_books, n_commands)
    sides = rng.integers(0, 2, n_commands)
    offsets = rng.geometric(0.3, n_commands)  # ticks away from the mid: mostly near the touch
    quantities = rng.integers(1, 20, n_commands)
    accounts = rng.integers(1, 101, n_commands)
    drift = rng.integers(-1, 2, n_commands)
    next_id = 1
    for i in range(n_commands):
        b = int(books[i])
        side = int(sides[i])
        sign = -1 if side == 0 else 1  # bids sit below the mid, asks above
        mids[b] = min(max(mids[b] + (drift[i] if draws[i] < 0.02 else 0), 50), N_TICKS - 100)
        r = draws[i]
        pool = live[b]
        if r < 0.25 and pool.ids:
            kind = CANCEL
        elif r < 0.40 and pool.ids:
            kind = AMEND
        else:
            kind = ADD
        c = out[i]
        c["seq"] = i + 1
        c["ts"] = i
        c["kind"] = kind
        c["book"] = b
        if kind == ADD:
            c["order_id"] = next_id
            c["account"] = accounts[i]
            c["side"] = side
            c["quantity"] = quantities[i]
            if r >= 0.90:  # marketable: cross the mid by a few ticks
                c["price"] = mids[b] - sign * int(offsets[i] % 5 + 1)
                c["tif"] = IOC if r >= 0.95 else GTC
            else:
                c["price"] = mids[b] + sign * int(offsets[i])
                c["tif"] = GTC
            next_id += 1
        else:
            order_id = pool.ids[int(rng.integers(len(pool.ids)))]
            _, _, o_price, account = info[order_id]
            c["order_id"] = order_id
            c["account"] = account
            if kind == AMEND:
                if drift[i] == 0:
                    c["price"] = o_price
                    c["quantity"] = max(1, int(quantities[i]) // 2)
                else:
                    c["price"] = max(1, o_price + int(drift[i]))
                    c["quantity"] = quantities[i]
        events = shadow.process(out[i : i + 1])
        _track(events, c, pool, live, info)
    return out


def _track(events: np.ndarray, cmd: np.void, pool: _Live, live: list[_Live],
           info: dict[int, tuple[int, int, int, int]]) -> None:  # fmt: skip
    """Update the live-order model from one command's events."""
    order_id = int(cmd["order_id"])
    resting = True
    for ev in events:
        kind = int(ev["kind"])
        if kind == TRADE:
            if ev["maker_remaining"] == 0:
                maker = int(ev["maker_order_id"])
                live[int(ev["book"])].discard(maker)
                info.pop(maker, None)
            resting = resting and ev["remaining"] != 0
        elif kind == CANCELLED:
            gone = int(ev["order_id"])
            live[int(ev["book"])].discard(gone)
            info.pop(gone, None)
            resting = resting and gone != order_id
        elif kind == REJECTED:
            resting = False
    kind = int(cmd["kind"])
    if kind == CANCEL:
        return
    if not resting:
        pool.discard(order_id)
        info.pop(order_id, None)
        return
    if kind == ADD:
        pool.add(order_id)
        info[order_id] = (
            int(cmd["book"]),
            int(cmd["side"]),
            int(cmd["price"]),
            int(cmd["account"]),
        )
    else:
        book, side, _, account = info[order_id]
        info[order_id] = (book, side, int(cmd["price"]), account)


def resting_flow(n_orders: int = 1_000_000, n_books: int = 10, seed: int = 2) -> np.ndarray:
    """Return ``n_orders`` non-crossing GTC adds: bids below and asks above each book's mid."""
    rng = np.random.default_rng(seed)
    out = np.zeros(n_orders, dtype=COMMAND_DTYPE)
    out["seq"] = np.arange(1, n_orders + 1)
    out["kind"] = ADD
    out["order_id"] = np.arange(1, n_orders + 1)
    out["book"] = rng.integers(0, n_books, n_orders)
    out["account"] = rng.integers(1, 1001, n_orders)
    side = rng.integers(0, 2, n_orders)
    out["side"] = side
    distance = rng.integers(1, 2_000, n_orders)
    out["price"] = np.where(side == 0, 50_000 - distance, 50_000 + distance)
    out["quantity"] = rng.integers(1, 100, n_orders)
    out["tif"] = GTC
    return out
