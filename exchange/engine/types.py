"""Commands, events and their integer constants: the engine's whole vocabulary.

The engine speaks integers only: prices in ticks, quantities in lots, ids and accounts as
int64. Both backends read rows of :data:`COMMAND_DTYPE` and write rows of
:data:`EVENT_DTYPE`; see ``docs/engine.md`` for the exact event sequences.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from exchange.reasons import Reason

# Command kinds
ADD: Final = 1  #: place a new order
CANCEL: Final = 2  #: cancel a resting order
AMEND: Final = 3  #: change a resting order's price and/or remaining quantity
AUCTION: Final = 4  #: uncross a book in one uniform-price call auction

# Sides; the opposite side is ``1 - side``
BUY: Final = 0  #: bid
SELL: Final = 1  #: ask

# Time in force
GTC: Final = 0  #: good till cancelled: the remainder rests on the book
IOC: Final = 1  #: immediate or cancel: the remainder is cancelled
FOK: Final = 2  #: fill or kill: fills completely at once or is cancelled without trading

# Order flags (bit set)
POST_ONLY: Final = 1  #: rejected if it would trade on arrival
MARKET: Final = 2  #: no price limit; the unfilled remainder is cancelled
ALL_FLAGS: Final = POST_ONLY | MARKET  #: every flag an ADD may carry
PRO_RATA: Final = 4  #: AUCTION: ration the marginal price level pro rata, not by time
OPEN_CONTINUOUS: Final = 8  #: AUCTION: switch the book to continuous trading afterwards
AUCTION_FLAGS: Final = PRO_RATA | OPEN_CONTINUOUS  #: every flag an AUCTION may carry

# Book trading mechanisms
CONTINUOUS: Final = 0  #: orders match on arrival
BATCH: Final = 1  #: orders rest (the book may cross) until an AUCTION uncrosses it

# Self-trade prevention, applied by the incoming (taker) order's mode
STP_NONE: Final = 0  #: the account may trade with itself
STP_CANCEL_NEWEST: Final = 1  #: cancel the incoming order's remainder
STP_CANCEL_OLDEST: Final = 2  #: cancel the resting order and keep matching
STP_CANCEL_BOTH: Final = 3  #: cancel both

# Event kinds
ACCEPTED: Final = 1  #: an ADD passed validation (it may still trade, rest or be cancelled)
REJECTED: Final = 2  #: a command changed nothing; ``reason`` says why
TRADE: Final = 3  #: the taker ``order_id`` traded with the resting ``maker_order_id``
CANCELLED: Final = 4  #: an order's remainder left the book; ``reason`` says why
AMENDED: Final = 5  #: a resting order's price or quantity changed
LEVEL: Final = 6  #: an L2 price level's total quantity is now ``quantity`` (0: gone)
UNCROSSED: Final = 7  #: an auction ran: clearing ``price`` and ``quantity`` (0 and 0: no cross)

#: Largest quantity one order may carry: a million GPU-hours. It keeps every level sum, and
#: the products of pro-rata rationing (level quantity times order quantity), inside int64.
MAX_QUANTITY: Final = 1_000_000
#: Ticks per book ladder unless a book is added with its own size: prices 1..n_ticks-1.
DEFAULT_N_TICKS: Final = 100_000

#: One command. ``price`` and ``quantity`` are ticks and lots; ``seq`` and ``ts`` are copied
#: onto every event the command causes (the sequencer numbers commands; time is data).
COMMAND_DTYPE: Final = np.dtype(
    [
        ("seq", np.int64),
        ("ts", np.int64),
        ("order_id", np.int64),
        ("account", np.int64),
        ("price", np.int64),
        ("quantity", np.int64),
        ("book", np.int32),
        ("kind", np.uint8),
        ("side", np.uint8),
        ("tif", np.uint8),
        ("flags", np.uint8),
        ("stp", np.uint8),
    ],
    align=True,
)

#: One event. For TRADE, ``order_id``/``account``/``side``/``remaining`` describe the taker
#: and ``maker_*`` the resting order; ``price`` is the maker's price. For LEVEL, ``side``,
#: ``price`` and ``quantity`` are the level and its new total.
EVENT_DTYPE: Final = np.dtype(
    [
        ("seq", np.int64),
        ("ts", np.int64),
        ("order_id", np.int64),
        ("maker_order_id", np.int64),
        ("account", np.int64),
        ("maker_account", np.int64),
        ("price", np.int64),
        ("quantity", np.int64),
        ("remaining", np.int64),
        ("maker_remaining", np.int64),
        ("book", np.int32),
        ("reason", np.uint16),
        ("kind", np.uint8),
        ("side", np.uint8),
    ],
    align=True,
)

#: A resting order as it appears in a snapshot, in book priority order.
ORDER_DTYPE: Final = np.dtype(
    [
        ("order_id", np.int64),
        ("account", np.int64),
        ("price", np.int64),
        ("remaining", np.int64),
        ("book", np.int32),
        ("side", np.uint8),
        ("stp", np.uint8),
        ("flags", np.uint8),
    ],
    align=True,
)

# Reason codes as plain ints for compiled code.
R_NONE: Final = int(Reason.NONE)
R_INVALID_COMMAND: Final = int(Reason.INVALID_COMMAND)
R_UNKNOWN_BOOK: Final = int(Reason.UNKNOWN_BOOK)
R_INVALID_ORDER_ID: Final = int(Reason.INVALID_ORDER_ID)
R_DUPLICATE_ORDER_ID: Final = int(Reason.DUPLICATE_ORDER_ID)
R_UNKNOWN_ORDER_ID: Final = int(Reason.UNKNOWN_ORDER_ID)
R_INVALID_SIDE: Final = int(Reason.INVALID_SIDE)
R_INVALID_TIF: Final = int(Reason.INVALID_TIF)
R_INVALID_FLAGS: Final = int(Reason.INVALID_FLAGS)
R_INVALID_STP: Final = int(Reason.INVALID_STP)
R_INVALID_QUANTITY: Final = int(Reason.INVALID_QUANTITY)
R_PRICE_OFF_LADDER: Final = int(Reason.PRICE_OFF_LADDER)
R_POST_ONLY_WOULD_TRADE: Final = int(Reason.POST_ONLY_WOULD_TRADE)
R_CANCELLED_BY_USER: Final = int(Reason.CANCELLED_BY_USER)
R_IOC_REMAINDER: Final = int(Reason.IOC_REMAINDER)
R_FOK_NOT_FILLED: Final = int(Reason.FOK_NOT_FILLED)
R_SELF_TRADE: Final = int(Reason.SELF_TRADE)
R_MARKET_NO_LIQUIDITY: Final = int(Reason.MARKET_NO_LIQUIDITY)
R_BATCH_ORDER_TYPE: Final = int(Reason.BATCH_ORDER_TYPE)

EVENT_NAMES: Final = {
    ACCEPTED: "ACCEPTED",
    REJECTED: "REJECTED",
    TRADE: "TRADE",
    CANCELLED: "CANCELLED",
    AMENDED: "AMENDED",
    LEVEL: "LEVEL",
    UNCROSSED: "UNCROSSED",
}


def commands(rows: list[dict[str, int]]) -> np.ndarray:
    """Build a command array from dicts; absent fields are zero and ``seq`` counts from 1."""
    out = np.zeros(len(rows), dtype=COMMAND_DTYPE)
    for i, row in enumerate(rows):
        out[i]["seq"] = i + 1
        for name, value in row.items():
            out[i][name] = value
    return out


def describe(events: np.ndarray) -> list[dict[str, int | str]]:
    """Render events as dicts without zero fields: readable in tests and debugging."""
    rows: list[dict[str, int | str]] = []
    for ev in events:
        row: dict[str, int | str] = {"kind": EVENT_NAMES.get(int(ev["kind"]), str(ev["kind"]))}
        for name in EVENT_DTYPE.names or ():
            if name in ("kind", "seq", "ts"):
                continue
            value = int(ev[name])
            if value:
                row[name] = Reason(value).name if name == "reason" else value
        rows.append(row)
    return rows
