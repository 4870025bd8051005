"""The state machine's shortcuts give exactly what the plain way gives.

``ExchangeState`` lists the calendar's window when the clock's UTC day changes (not on every
move of the clock) and copies engine events without ``ndarray.copy``; these tests hold each
shortcut against the straightforward version.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from contracts import ListingCalendar
from exchange.engine import EVENT_DTYPE, Engine
from exchange.sequencer.state import DAY_NS, NS, ExchangeState, Refused, _own

START = 1_796_083_200 * NS  # 2026-12-01T00:00:00Z


class _ListsOnEveryMove(ExchangeState):
    """Lists the calendar's window after every move of the clock (listing is idempotent)."""

    def _run_due(self, until: int) -> None:
        super()._run_due(until)
        self._list_calendar()


def _apply(state: ExchangeState, seq: int, command: dict[str, Any]) -> Any:
    try:
        outcome = state.apply(seq, dict(command))
        reply: Any = outcome.reply
    except Refused as refused:
        assert refused.outcome is not None
        outcome, reply = refused.outcome, (refused.reason, refused.message)
    events = [(symbol, e.dtype, e.tobytes()) for symbol, e in outcome.events]
    return (reply, events, outcome.trades, outcome.postings, outcome.touched_accounts, outcome.ran)


def test_listing_once_a_day_lists_what_listing_on_every_move_lists() -> None:
    rng = random.Random(5)
    fast = ExchangeState(backend="reference", calendar=ListingCalendar())
    every = _ListsOnEveryMove(backend="reference", calendar=ListingCalendar())
    seq = 0

    def run(**command: Any) -> None:
        nonlocal seq
        seq += 1
        assert _apply(fast, seq, command) == _apply(every, seq, command)
        assert [(s, c.book, c.status) for s, c in fast.contracts.items()] == [
            (s, c.book, c.status) for s, c in every.contracts.items()
        ]

    run(op="advance", to=START - 3 * DAY_NS // 2)  # the first move lists, mid-day
    for k in range(5):  # then across midnight in steps of hours
        run(op="tick", ts=START - DAY_NS + k * 7 * 3600 * NS)
    for name in "abc":
        run(op="create_account", name=name, deposit=10_000_000, ts=START)
    ts = START
    for _ in range(400):
        ts += rng.choice([0, 1, NS, 17 * 60 * NS, 5 * 3600 * NS, 23 * 3600 * NS, 3 * DAY_NS])
        r = rng.random()
        if r < 0.1:
            run(op="advance", to=ts)
        elif r < 0.6:
            symbol = rng.choice(sorted(s for s, c in fast.contracts.items() if c.trading)[-2:])
            reference = fast.contracts[symbol].reference
            run(op="place", account_id=rng.randint(1, 3), symbol=symbol,
                side=rng.choice(["buy", "sell"]), type="limit",
                price=reference + rng.randint(-3, 3), quantity=rng.randint(1, 5), ts=ts)  # fmt: skip
        else:
            run(op="tick", ts=ts)
    assert fast.now > START + 30 * DAY_NS  # many days, contracts listed and expired on the way
    assert len(fast.contracts) > 60
    assert any(c.status != "trading" for c in fast.contracts.values())
    assert fast.next_trade_id > 30
    assert fast.state_hash() == every.state_hash()


def test_own_copies_engine_events_like_ndarray_copy() -> None:
    engine = Engine(backend="numba")
    engine.add_book(0, 1_000, 0)
    engine.process_one(1, 0, 1, 1, 1, 500, 5, seq=1, ts=7)  # ADD: a resting sell
    view = engine.process_one(1, 0, 2, 2, 0, 500, 2, seq=2, ts=8)  # ADD: a buy that trades
    expected = view.copy()
    events = _own(view)
    assert events.dtype == expected.dtype == EVENT_DTYPE
    assert events.shape == expected.shape and len(events) >= 2
    assert events.tobytes() == expected.tobytes()
    assert events.flags.writeable and events.flags.c_contiguous
    assert events.tolist() == expected.tolist()
    engine.process_one(2, 0, 1, 1, seq=3, ts=9)  # CANCEL: the engine's buffer is reused
    assert events.tobytes() == expected.tobytes()
    assert not np.shares_memory(events, view)
    assert _own(view[:0]).shape == (0,)
