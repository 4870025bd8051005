"""Every matching-engine rejection (reasons 3000-3099): one REJECTED event, no change.

A rejected command writes exactly one ``REJECTED`` event carrying the command's own fields
and the reason, and leaves the engine's state (its hash) as it was.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exchange.engine import (
    AUCTION,
    BATCH,
    BUY,
    FOK,
    GTC,
    IOC,
    MARKET,
    MAX_QUANTITY,
    OPEN_CONTINUOUS,
    POST_ONLY,
    PRO_RATA,
    SELL,
    STP_CANCEL_BOTH,
    Engine,
    Reason,
)

from .conftest import N_TICKS
from .helpers import MAKER, add, amend, book_from, cancel, rejected, run

#: The batch-mode book of these tests; books 0 and 1 are continuous.
BATCH_BOOK = 2
#: Order 1 bids 99 and order 2 offers 101 on book 0; order 3 (post-only) offers 103;
#: order 4 bids 100 on the batch book.
Command = dict[str, int]


@pytest.fixture
def book(engine: Engine) -> Iterator[Engine]:
    engine.add_book(BATCH_BOOK, n_ticks=N_TICKS, mechanism=BATCH)
    book_from(engine, 0, bids=[(99, [5])], asks=[(101, [5])])
    run(engine, add(3, SELL, 103, 5, flags=POST_ONLY, account=MAKER))
    run(engine, add(4, BUY, 100, 5, account=MAKER, book=BATCH_BOOK))
    yield engine


def _auction(book: int = 0, flags: int = 0) -> Command:
    return {"kind": AUCTION, "book": book, "flags": flags}


def _with(row: Command, **fields: int) -> Command:
    return row | fields


#: A fresh, valid limit order on book 0 that would rest.
NEW = add(10, BUY, 98, 5)

CASES: dict[Reason, list[Command]] = {
    Reason.INVALID_COMMAND: [
        _with(NEW, kind=0),
        _with(NEW, kind=5),
        _with(NEW, kind=255),
        _with(cancel(1), kind=9, book=77),  # the kind is checked before the book
    ],
    Reason.UNKNOWN_BOOK: [
        _with(NEW, book=5),
        _with(NEW, book=-1),
        _with(NEW, book=1 << 20),
        _with(NEW, book=2**31 - 1),
        cancel(1, book=5),
        amend(1, 99, 5, book=5),
        _auction(book=5),
        _with(NEW, book=5, order_id=0, quantity=0),  # the book is checked before the fields
    ],
    Reason.INVALID_ORDER_ID: [
        _with(NEW, order_id=0),
        _with(NEW, order_id=-1),
        _with(NEW, order_id=-(2**63)),
        _with(NEW, order_id=0, side=5, quantity=0),
    ],
    Reason.DUPLICATE_ORDER_ID: [
        _with(NEW, order_id=1),
        _with(NEW, order_id=2, book=1),
        _with(NEW, order_id=4, tif=IOC),  # a market or IOC duplicate is refused as well
        _with(NEW, order_id=2, flags=POST_ONLY, price=101),  # before the post-only check
        _with(NEW, order_id=4, book=BATCH_BOOK, tif=IOC),  # before the batch check
    ],
    Reason.UNKNOWN_ORDER_ID: [
        cancel(99),
        cancel(0),
        cancel(-1),
        cancel(1, account=MAKER + 1),
        cancel(1, book=1),
        amend(99, 99, 5),
        amend(1, 99, 5, account=MAKER + 1),
        amend(1, 99, 5, book=1),
        amend(99, 0, 0),  # the order is checked before quantity and price
    ],
    Reason.INVALID_SIDE: [
        _with(NEW, side=2),
        _with(NEW, side=255),
        _with(NEW, side=2, tif=7),
    ],
    Reason.INVALID_TIF: [
        _with(NEW, tif=3),
        _with(NEW, tif=255),
        _with(NEW, tif=3, flags=64),
    ],
    Reason.INVALID_FLAGS: [
        _with(NEW, flags=4),
        _with(NEW, flags=8),
        _with(NEW, flags=128),
        _with(NEW, flags=POST_ONLY | MARKET),
        _with(NEW, flags=POST_ONLY, tif=IOC),
        _with(NEW, flags=POST_ONLY, tif=FOK),
        _with(NEW, flags=16, stp=9),
        _auction(flags=POST_ONLY),
        _auction(flags=MARKET),
        _auction(flags=16),
        _auction(book=BATCH_BOOK, flags=PRO_RATA | OPEN_CONTINUOUS | 128),
    ],
    Reason.INVALID_STP: [
        _with(NEW, stp=4),
        _with(NEW, stp=255),
        _with(NEW, stp=STP_CANCEL_BOTH + 1, quantity=0),
    ],
    Reason.INVALID_QUANTITY: [
        _with(NEW, quantity=0),
        _with(NEW, quantity=-5),
        _with(NEW, quantity=MAX_QUANTITY + 1),
        _with(NEW, quantity=-(2**63)),
        _with(NEW, quantity=0, price=0),
        _with(NEW, quantity=0, flags=MARKET),
        amend(1, 99, 0),
        amend(1, 99, -1),
        amend(1, 99, MAX_QUANTITY + 1),
        amend(1, 0, 0),  # quantity before price
    ],
    Reason.PRICE_OFF_LADDER: [
        _with(NEW, price=0),
        _with(NEW, price=-1),
        _with(NEW, price=N_TICKS),
        _with(NEW, price=2**62),
        _with(NEW, price=0, side=SELL, tif=IOC),
        _with(NEW, price=N_TICKS, tif=FOK),
        _with(NEW, price=0, order_id=1),  # before the duplicate check
        amend(1, 0, 5),
        amend(1, -1, 5),
        amend(1, N_TICKS, 5),
        amend(3, 0, 5),  # before the post-only check
    ],
    Reason.POST_ONLY_WOULD_TRADE: [
        _with(NEW, flags=POST_ONLY, price=101),
        _with(NEW, flags=POST_ONLY, price=199),
        _with(NEW, flags=POST_ONLY, side=SELL, price=99),
        _with(NEW, flags=POST_ONLY, side=SELL, price=1),
        amend(3, 99, 5),
        amend(3, 98, 50),
    ],
    Reason.BATCH_ORDER_TYPE: [
        _with(NEW, book=BATCH_BOOK, tif=IOC),
        _with(NEW, book=BATCH_BOOK, tif=FOK),
        _with(NEW, book=BATCH_BOOK, flags=MARKET),
        _with(NEW, book=BATCH_BOOK, flags=MARKET, tif=FOK),
        _with(NEW, book=BATCH_BOOK, flags=POST_ONLY),
        _with(NEW, book=BATCH_BOOK, flags=POST_ONLY, price=101, side=SELL, tif=GTC),
    ],
}


def test_every_engine_reason_has_cases() -> None:
    engine_reasons = {r for r in Reason if 3000 <= r < 3100}
    assert set(CASES) == engine_reasons


def _check(engine: Engine, reason: Reason, row: Command) -> None:
    before = engine.state_hash()
    assert run(engine, row) == [rejected(row, reason)]
    assert engine.state_hash() == before
    engine.check_invariants()


def _ids(cases: list[Command]) -> list[str]:
    return [",".join(f"{k}={v}" for k, v in row.items() if v) for row in cases]


@pytest.mark.parametrize(
    "row", CASES[Reason.INVALID_COMMAND], ids=_ids(CASES[Reason.INVALID_COMMAND])
)
def test_invalid_command(book: Engine, row: Command) -> None:
    _check(book, Reason.INVALID_COMMAND, row)


@pytest.mark.parametrize("row", CASES[Reason.UNKNOWN_BOOK], ids=_ids(CASES[Reason.UNKNOWN_BOOK]))
def test_unknown_book(book: Engine, row: Command) -> None:
    _check(book, Reason.UNKNOWN_BOOK, row)


@pytest.mark.parametrize(
    "row", CASES[Reason.INVALID_ORDER_ID], ids=_ids(CASES[Reason.INVALID_ORDER_ID])
)
def test_invalid_order_id(book: Engine, row: Command) -> None:
    _check(book, Reason.INVALID_ORDER_ID, row)


@pytest.mark.parametrize(
    "row", CASES[Reason.DUPLICATE_ORDER_ID], ids=_ids(CASES[Reason.DUPLICATE_ORDER_ID])
)
def test_duplicate_order_id(book: Engine, row: Command) -> None:
    _check(book, Reason.DUPLICATE_ORDER_ID, row)


@pytest.mark.parametrize(
    "row", CASES[Reason.UNKNOWN_ORDER_ID], ids=_ids(CASES[Reason.UNKNOWN_ORDER_ID])
)
def test_unknown_order_id(book: Engine, row: Command) -> None:
    _check(book, Reason.UNKNOWN_ORDER_ID, row)


@pytest.mark.parametrize("row", CASES[Reason.INVALID_SIDE], ids=_ids(CASES[Reason.INVALID_SIDE]))
def test_invalid_side(book: Engine, row: Command) -> None:
    _check(book, Reason.INVALID_SIDE, row)


@pytest.mark.parametrize("row", CASES[Reason.INVALID_TIF], ids=_ids(CASES[Reason.INVALID_TIF]))
def test_invalid_tif(book: Engine, row: Command) -> None:
    _check(book, Reason.INVALID_TIF, row)


@pytest.mark.parametrize("row", CASES[Reason.INVALID_FLAGS], ids=_ids(CASES[Reason.INVALID_FLAGS]))
def test_invalid_flags(book: Engine, row: Command) -> None:
    _check(book, Reason.INVALID_FLAGS, row)


@pytest.mark.parametrize("row", CASES[Reason.INVALID_STP], ids=_ids(CASES[Reason.INVALID_STP]))
def test_invalid_stp(book: Engine, row: Command) -> None:
    _check(book, Reason.INVALID_STP, row)


@pytest.mark.parametrize(
    "row", CASES[Reason.INVALID_QUANTITY], ids=_ids(CASES[Reason.INVALID_QUANTITY])
)
def test_invalid_quantity(book: Engine, row: Command) -> None:
    _check(book, Reason.INVALID_QUANTITY, row)


@pytest.mark.parametrize(
    "row", CASES[Reason.PRICE_OFF_LADDER], ids=_ids(CASES[Reason.PRICE_OFF_LADDER])
)
def test_price_off_ladder(book: Engine, row: Command) -> None:
    _check(book, Reason.PRICE_OFF_LADDER, row)


@pytest.mark.parametrize(
    "row", CASES[Reason.POST_ONLY_WOULD_TRADE], ids=_ids(CASES[Reason.POST_ONLY_WOULD_TRADE])
)
def test_post_only_would_trade(book: Engine, row: Command) -> None:
    _check(book, Reason.POST_ONLY_WOULD_TRADE, row)


@pytest.mark.parametrize(
    "row", CASES[Reason.BATCH_ORDER_TYPE], ids=_ids(CASES[Reason.BATCH_ORDER_TYPE])
)
def test_batch_order_type(book: Engine, row: Command) -> None:
    _check(book, Reason.BATCH_ORDER_TYPE, row)


def test_a_batch_of_rejections_changes_nothing(book: Engine) -> None:
    rows = [(reason, row) for reason, cases in CASES.items() for row in cases]
    before = book.state_hash()
    assert run(book, *(row for _, row in rows)) == [rejected(row, reason) for reason, row in rows]
    assert book.state_hash() == before


def test_a_rejected_command_leaves_the_queue_order_alone(book: Engine) -> None:
    # a refused amend of order 1 must not move it behind a later order at its level
    run(book, add(11, BUY, 99, 2, account=MAKER))
    run(book, amend(1, 99, 0), amend(1, 0, 5))
    assert run(book, add(12, SELL, 99, 6)) == [
        {"kind": "ACCEPTED", "order_id": 12, "account": 1, "price": 99, "quantity": 6,
         "remaining": 6, "side": SELL},
        {"kind": "TRADE", "order_id": 12, "maker_order_id": 1, "account": 1,
         "maker_account": MAKER, "price": 99, "quantity": 5, "remaining": 1, "side": SELL},
        {"kind": "TRADE", "order_id": 12, "maker_order_id": 11, "account": 1,
         "maker_account": MAKER, "price": 99, "quantity": 1, "maker_remaining": 1,
         "side": SELL},
        {"kind": "LEVEL", "price": 99, "quantity": 1},
    ]  # fmt: skip
