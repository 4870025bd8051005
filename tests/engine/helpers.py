"""Builders for engine tests: commands as calls, events as ``describe`` dicts, books as tables.

Commands are plain dicts for :func:`exchange.engine.commands`; expected events are built as
``EVENT_DTYPE`` rows and rendered by :func:`exchange.engine.describe`, so a test compares
whole event lists in exactly the form the engine's own events take.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from exchange.engine import (
    ACCEPTED,
    ADD,
    AMEND,
    AMENDED,
    BUY,
    CANCEL,
    CANCELLED,
    EVENT_DTYPE,
    GTC,
    IOC,
    LEVEL,
    MARKET,
    REJECTED,
    SELL,
    STP_NONE,
    TRADE,
    Engine,
    Reason,
    commands,
    describe,
)

#: The account of orders placed by :func:`add`, :func:`market` and friends unless told.
TAKER = 1
#: The account of orders placed by :func:`book_from` unless told.
MAKER = 100
#: Enough levels to see a whole test book.
ALL = 1_000

Event = dict[str, int | str]
#: One side of a book table: ``(price, [quantity or (quantity, account), ...])``, FIFO order.
Levels = Sequence[tuple[int, Sequence[int | tuple[int, int]]]]


# -- commands -------------------------------------------------------------------------
def add(
    order_id: int,
    side: int,
    price: int,
    quantity: int,
    *,
    account: int = TAKER,
    book: int = 0,
    tif: int = GTC,
    flags: int = 0,
    stp: int = STP_NONE,
) -> dict[str, int]:
    """Return an ADD command."""
    return {"kind": ADD, "book": book, "order_id": order_id, "account": account, "side": side,
            "price": price, "quantity": quantity, "tif": tif, "flags": flags, "stp": stp}  # fmt: skip


def market(
    order_id: int,
    side: int,
    quantity: int,
    *,
    account: int = TAKER,
    book: int = 0,
    tif: int = IOC,
    stp: int = STP_NONE,
) -> dict[str, int]:
    """Return a market ADD (no price limit)."""
    return add(order_id, side, 0, quantity, account=account, book=book, tif=tif, flags=MARKET,
               stp=stp)  # fmt: skip


def cancel(order_id: int, *, account: int = MAKER, book: int = 0) -> dict[str, int]:
    """Return a CANCEL command."""
    return {"kind": CANCEL, "book": book, "order_id": order_id, "account": account}


def amend(
    order_id: int, price: int, quantity: int, *, account: int = MAKER, book: int = 0
) -> dict[str, int]:
    """Return an AMEND command: the new price and the new open quantity."""
    return {"kind": AMEND, "book": book, "order_id": order_id, "account": account,
            "price": price, "quantity": quantity}  # fmt: skip


def run(engine: Engine, *rows: dict[str, int]) -> list[Event]:
    """Process ``rows`` as one batch and return the events as ``describe`` dicts."""
    return describe(engine.process(commands(list(rows))))


# -- expected events ------------------------------------------------------------------
def event(kind: int, **fields: int) -> Event:
    """Render one event the way :func:`describe` renders the engine's events."""
    row = np.zeros(1, dtype=EVENT_DTYPE)
    row["kind"] = kind
    for name, value in fields.items():
        row[name] = value
    return describe(row)[0]


def accepted(
    order_id: int, side: int, price: int, quantity: int, *, account: int = TAKER, book: int = 0
) -> Event:
    """ACCEPTED for an ADD; ``price`` 0 for a market order."""
    return event(ACCEPTED, order_id=order_id, account=account, book=book, side=side,
                 price=price, quantity=quantity, remaining=quantity)  # fmt: skip


def rejected(command: dict[str, int], reason: Reason) -> Event:
    """REJECTED for ``command``: its own fields and the reason."""
    fields = ("order_id", "account", "book", "side", "price", "quantity")
    return event(REJECTED, reason=int(reason), **{f: command.get(f, 0) for f in fields})


def trade(
    taker: int,
    maker: int,
    price: int,
    quantity: int,
    *,
    side: int,
    remaining: int,
    maker_remaining: int,
    account: int = TAKER,
    maker_account: int = MAKER,
    book: int = 0,
) -> Event:
    """TRADE of ``taker`` (on ``side``) against the resting ``maker`` at the maker's price."""
    return event(TRADE, order_id=taker, maker_order_id=maker, account=account,
                 maker_account=maker_account, book=book, side=side, price=price,
                 quantity=quantity, remaining=remaining, maker_remaining=maker_remaining)  # fmt: skip


def cancelled(
    order_id: int,
    side: int,
    price: int,
    quantity: int,
    reason: Reason,
    *,
    account: int = TAKER,
    book: int = 0,
) -> Event:
    """CANCELLED of an order's remainder ``quantity``."""
    return event(CANCELLED, order_id=order_id, account=account, book=book, side=side,
                 price=price, quantity=quantity, reason=int(reason))  # fmt: skip


def amended(
    order_id: int, side: int, price: int, quantity: int, *, account: int = MAKER, book: int = 0
) -> Event:
    """AMENDED: the new price and open quantity."""
    return event(AMENDED, order_id=order_id, account=account, book=book, side=side,
                 price=price, quantity=quantity, remaining=quantity)  # fmt: skip


def level(side: int, price: int, quantity: int, *, book: int = 0) -> Event:
    """LEVEL: the level's new total (0: gone)."""
    return event(LEVEL, book=book, side=side, price=price, quantity=quantity)


# -- books as tables ------------------------------------------------------------------
def book_from(
    engine: Engine,
    book: int = 0,
    *,
    bids: Levels = (),
    asks: Levels = (),
    account: int = MAKER,
    first_id: int = 1,
) -> list[int]:
    """Rest the orders of a table on ``book``; return their ids in table order.

    Ids count up from ``first_id``: the bids as listed, each level oldest first, then the
    asks. An entry is a quantity (placed by ``account``) or a ``(quantity, account)`` pair.
    The table must not cross: building it writes only ACCEPTED and LEVEL events.
    """
    rows: list[dict[str, int]] = []
    for side, levels in ((BUY, bids), (SELL, asks)):
        for price, entries in levels:
            for entry in entries:
                quantity, owner = entry if isinstance(entry, tuple) else (entry, account)
                rows.append(add(first_id + len(rows), side, price, quantity, account=owner,
                                book=book))  # fmt: skip
    kinds = {e["kind"] for e in run(engine, *rows)}
    assert kinds <= {"ACCEPTED", "LEVEL"}, f"the table traded or was refused: {kinds}"
    return [row["order_id"] for row in rows]


def book_table(engine: Engine, book: int = 0) -> dict[str, list[tuple[int, list[tuple[int, int]]]]]:
    """Return the whole book as ``{"bids": [(price, [(order_id, remaining), ...]), ...],
    "asks": [...]}``, best level first and each queue in time priority."""
    sides: dict[int, dict[int, list[tuple[int, int]]]] = {BUY: {}, SELL: {}}
    for row in engine.resting_orders():
        if int(row["book"]) == book:
            queue = sides[int(row["side"])].setdefault(int(row["price"]), [])
            queue.append((int(row["order_id"]), int(row["remaining"])))
    return {"bids": list(sides[BUY].items()), "asks": list(sides[SELL].items())}


def level_totals(engine: Engine) -> dict[int, tuple[list[tuple[int, int]], list[tuple[int, int]]]]:
    """Return, per book, the depth computed from ``resting_orders()``: the sum of each
    level's orders, best first, in the form :meth:`Engine.depth` returns."""
    sums: dict[tuple[int, int], dict[int, int]] = defaultdict(dict)
    for row in engine.resting_orders():
        key = (int(row["book"]), int(row["side"]))
        price = int(row["price"])
        sums[key][price] = sums[key].get(price, 0) + int(row["remaining"])
    return {
        book: tuple(  # type: ignore[misc]
            sorted(sums[(book, side)].items(), reverse=side == BUY) for side in (BUY, SELL)
        )
        for book, _, _ in engine.books()
    }
