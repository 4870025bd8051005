"""Seeded random command flows: many books and accounts, every command kind, some garbage.

A flow is reproducible from its seed, so a failing run can be replayed exactly.
"""

from __future__ import annotations

import math

import numpy as np

from exchange.engine import (
    ADD,
    AMEND,
    AUCTION,
    BATCH,
    CANCEL,
    COMMAND_DTYPE,
    CONTINUOUS,
    FOK,
    GTC,
    IOC,
    MARKET,
    MAX_QUANTITY,
    OPEN_CONTINUOUS,
    POST_ONLY,
    PRO_RATA,
    Engine,
)

#: The books of a flow unless told; the last is a batch-mode book.
BOOKS = (0, 1, 2, 3)
#: Ladder size of flow books: prices 1..199.
N_TICKS = 200
_FIELDS = COMMAND_DTYPE.names or ()
_TIFS = [GTC] * 6 + [IOC, FOK]
_FLAGS = [0] * 12 + [POST_ONLY, MARKET]
_AUCTION_FLAGS = [0] * 25 + [PRO_RATA] * 24 + [OPEN_CONTINUOUS]


def _pick(options: list[int], u: float) -> int:
    return options[int(u * len(options))]


def _geometric(u: float, p: float) -> int:
    """1, 2, 3, ... with probability p, p(1-p), ...: small quantities and offsets."""
    return 1 + int(math.log1p(-u) / math.log1p(-p))


def flow_engine(backend: str, books: tuple[int, ...] = BOOKS, n_ticks: int = N_TICKS) -> Engine:
    """Return the engine a flow over ``books`` runs on: continuous books, but the last one
    starts in batch mode."""
    engine = Engine(backend=backend)
    for book in books:
        engine.add_book(book, n_ticks=n_ticks, mechanism=BATCH if book == books[-1] else CONTINUOUS)
    return engine


def random_flow(
    seed: int,
    n: int,
    books: tuple[int, ...] = BOOKS,
    accounts: int = 8,
    n_ticks: int = N_TICKS,
) -> np.ndarray:
    """Return ``n`` commands: orders near each book's drifting mid price, cancels and amends
    of recent resting orders (usually by their owner), auctions, and about 3% commands
    with one invalid field or a duplicate order id.

    A reference engine follows the flow as it is written, so that cancels and amends name
    orders that are still resting; the books are continuous but for the last, in batch mode.
    """
    shadow = flow_engine("reference", books, n_ticks)
    rng = np.random.default_rng(seed)
    draws = rng.random((n, 12)).tolist()
    mids = dict.fromkeys(books, n_ticks // 2)
    owners: dict[int, tuple[int, int]] = {}  # order id -> (account, book)
    live: list[int] = []  # GTC limit orders that may still rest, oldest first
    rows = []
    next_id = 1
    for i, u in enumerate(draws):
        c = dict.fromkeys(_FIELDS, 0)
        c["seq"], c["ts"] = i + 1, 1_000 * i + int(u[0] * 1_000)
        book = books[int(u[1] * len(books))]
        mids[book] = min(max(mids[book] + int(u[2] * 3) - 1, 20), n_ticks - 20)
        if u[3] < 0.7 or not live:
            side = int(u[4] * 2)
            # buyers below the mid, sellers above, a fifth of them crossing it
            offset = _geometric(u[5], 0.3) - (4 if u[6] < 0.2 else 0)
            c["kind"], c["order_id"], c["side"], c["book"] = ADD, next_id, side, book
            c["price"] = mids[book] - offset if side == 0 else mids[book] + offset
            c["account"] = 1 + int(u[7] * accounts)
            c["quantity"] = _geometric(u[8], 0.1)
            c["flags"] = _pick(_FLAGS, u[9])
            c["tif"] = GTC if c["flags"] == POST_ONLY else _pick(_TIFS, u[10])
            c["stp"] = int(u[11] * 4)
            owners[next_id] = (c["account"], book)
            if c["tif"] == GTC and c["flags"] != MARKET:
                live.append(next_id)
            next_id += 1
        elif u[3] < 0.97:
            target = live[-1 - int(u[4] * min(len(live), 200))]
            while shadow.order(target) is None and len(live) > 1:
                live.remove(target)
                target = live[-1 - int(u[4] * min(len(live), 200))]
            c["order_id"] = target
            c["account"], c["book"] = owners[target]
            if u[3] < 0.83:
                c["kind"] = CANCEL
            else:
                c["kind"] = AMEND
                c["price"] = mids[c["book"]] + int(u[5] * 13) - 6
                c["quantity"] = _geometric(u[6], 0.1)
        else:
            c["kind"], c["book"] = AUCTION, book
            c["flags"] = _pick(_AUCTION_FLAGS, u[4])
        if u[11] * 4 % 1 < 0.03:
            _spoil(c, u, n_ticks, live)
        rows.append(tuple(c[name] for name in _FIELDS))
        shadow.process_one(**{k: v for k, v in c.items()})
    return np.array(rows, dtype=COMMAND_DTYPE)


def _spoil(c: dict[str, int], u: list[float], n_ticks: int, live: list[int]) -> None:
    """Make one field of a command invalid, or its order id a duplicate."""
    field, v = int(u[9] * 10), u[10]
    if field == 0:
        c["kind"] = _pick([0, 5, 255], v)
    elif field == 1:
        c["book"] = _pick([9, -1], v)
    elif field == 2:
        c["order_id"] = _pick([0, -7], v)
    elif field == 3 and live:
        c["order_id"] = live[-1 - int(v * min(len(live), 50))]
    elif field == 4:
        c["side"] = _pick([2, 255], v)
    elif field == 5:
        c["tif"] = _pick([3, 255], v)
    elif field == 6:
        c["flags"] = _pick([POST_ONLY | MARKET, 16, 255], v)
    elif field == 7:
        c["stp"] = _pick([4, 255], v)
    elif field == 8:
        c["quantity"] = _pick([0, -1, MAX_QUANTITY, MAX_QUANTITY + 1], v)
    else:
        c["price"] = _pick([0, -1, n_ticks, n_ticks - 1, 1], v)
