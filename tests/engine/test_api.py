"""The engine's calling conventions: process, process_one, queries, seq and ts."""

from __future__ import annotations

import numpy as np
import pytest

from exchange.engine import (
    ADD,
    BUY,
    COMMAND_DTYPE,
    EVENT_DTYPE,
    SELL,
    STP_CANCEL_OLDEST,
    Engine,
    commands,
    describe,
)

from .conftest import N_TICKS
from .helpers import (
    TAKER,
    accepted,
    add,
    amend,
    book_from,
    cancel,
    level,
    market,
)

#: One of every command shape, with trades, cancels, amends and a rejection.
FLOW = [
    add(1, SELL, 101, 5, account=2),
    add(2, SELL, 102, 5, account=3, stp=STP_CANCEL_OLDEST),
    add(3, BUY, 102, 7),
    amend(2, 103, 9, account=3),
    add(4, BUY, 99, 4),
    cancel(4, account=TAKER),
    market(5, SELL, 2),
    cancel(77),
    add(6, SELL, 100, 1, account=3),
]


def test_process_one_writes_the_same_events_as_process(backend: str) -> None:
    batch, single = Engine(backend=backend), Engine(backend=backend)
    for e in (batch, single):
        e.add_book(0, n_ticks=N_TICKS)
    cmds = commands(FLOW)
    cmds["ts"] = np.arange(len(cmds)) * 1_000 + 7
    expected = batch.process(cmds)
    got = []
    for c in cmds:
        fields = {name: int(c[name]) for name in COMMAND_DTYPE.names or ()}
        got.append(single.process_one(**fields).copy())
    assert np.concatenate(got).tobytes() == expected.tobytes()
    assert single.snapshot() == batch.snapshot()


def test_process_without_copy_returns_the_same_events(backend: str) -> None:
    copied, viewed = Engine(backend=backend), Engine(backend=backend)
    for e in (copied, viewed):
        e.add_book(0, n_ticks=N_TICKS)
    cmds = commands(FLOW)
    expected = copied.process(cmds)
    events = viewed.process(cmds, copy=False)
    assert events.dtype == EVENT_DTYPE
    assert events.tobytes() == expected.tobytes()


def test_a_copied_result_survives_the_next_call(engine: Engine) -> None:
    first = engine.process(commands([add(1, BUY, 100, 5)]))
    kept = first.tobytes()
    engine.process(commands([add(2, SELL, 100, 5)] * 1))
    assert first.tobytes() == kept


def test_every_event_carries_its_commands_seq_and_ts(engine: Engine) -> None:
    book_from(engine, asks=[(101, [1, 1]), (102, [1])])
    cmds = commands([add(10, BUY, 102, 5), cancel(11), add(12, SELL, 150, 1)])
    cmds["seq"] = [1_000, 1_001, 1_002]
    cmds["ts"] = [5, 6, 7]
    events = engine.process(cmds)
    assert events.dtype == EVENT_DTYPE
    outcome = np.isin(events["kind"], [1, 2])  # ACCEPTED, REJECTED
    assert list(zip(events["seq"].tolist(), events["ts"].tolist(), outcome.tolist(), strict=True)) == [
        (1_000, 5, True),  # ACCEPTED
        (1_000, 5, False),  # TRADE
        (1_000, 5, False),  # TRADE
        (1_000, 5, False),  # LEVEL 101
        (1_000, 5, False),  # TRADE
        (1_000, 5, False),  # LEVEL 102
        (1_000, 5, False),  # LEVEL bid 102
        (1_001, 6, True),  # REJECTED
        (1_002, 7, True),  # ACCEPTED
        (1_002, 7, False),  # LEVEL
    ]  # fmt: skip


def test_an_empty_batch_has_no_events(engine: Engine) -> None:
    events = engine.process(np.zeros(0, dtype=COMMAND_DTYPE))
    assert events.dtype == EVENT_DTYPE
    assert len(events) == 0


def test_process_refuses_other_dtypes(engine: Engine) -> None:
    with pytest.raises(TypeError):
        engine.process(np.zeros(1, dtype=np.int64))


def test_an_unknown_backend_is_an_error() -> None:
    with pytest.raises(ValueError):
        Engine(backend="quantum")


def test_engine_reports_its_backend(backend: str) -> None:
    engine = Engine(backend=backend)
    assert isinstance(engine, Engine)
    assert engine.backend == backend


def test_order_returns_the_whole_resting_order(engine: Engine) -> None:
    book_from(engine, bids=[(99, [5])])
    engine.process(commands([add(10, SELL, 101, 8, flags=1, stp=2, account=4)]))
    assert engine.order(10) == {"order_id": 10, "account": 4, "book": 0, "side": SELL,
                                "price": 101, "remaining": 8, "stp": 2, "flags": 1}  # fmt: skip
    assert engine.order(11) is None
    assert engine.order(0) is None
    assert engine.order(-1) is None


def test_the_state_hash_follows_the_book_not_the_history(backend: str) -> None:
    a, b = Engine(backend=backend), Engine(backend=backend)
    for e in (a, b):
        e.add_book(0, n_ticks=N_TICKS)
    empty = a.state_hash()
    a.process(commands([add(1, BUY, 100, 5)]))
    assert a.state_hash() != empty
    a.process(commands([cancel(1, account=TAKER)]))
    assert a.state_hash() == empty
    # a different path to the same book gives the same hash
    a.process(commands([add(2, BUY, 100, 9), amend(2, 100, 4, account=TAKER)]))
    b.process(commands([add(2, BUY, 100, 4)]))
    assert a.state_hash() == b.state_hash()


def test_the_snapshot_and_hash_do_not_depend_on_the_backend() -> None:
    engines = [Engine(backend=name) for name in ("reference", "numba")]
    for e in engines:
        e.add_book(0, n_ticks=N_TICKS)
        e.add_book(4, n_ticks=50)
        e.process(commands(FLOW))
    assert engines[0].snapshot() == engines[1].snapshot()
    assert engines[0].state_hash() == engines[1].state_hash()
    assert engines[0].resting_orders().tolist() == engines[1].resting_orders().tolist()


def test_describe_renders_events_without_zero_fields(engine: Engine) -> None:
    events = engine.process(commands([{"kind": ADD, "order_id": 1, "account": 0, "side": BUY,
                                       "price": 100, "quantity": 5}]))  # fmt: skip
    assert describe(events) == [
        {"kind": "ACCEPTED", "order_id": 1, "price": 100, "quantity": 5, "remaining": 5},
        {"kind": "LEVEL", "price": 100, "quantity": 5},
    ]
    assert describe(events) == [accepted(1, BUY, 100, 5, account=0), level(BUY, 100, 5)]
