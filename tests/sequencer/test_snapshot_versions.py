"""Snapshots from the previous version still load: positions held exact fractions then."""

from __future__ import annotations

import contextlib
import pickle
import random
from fractions import Fraction

import pytest

from contracts import ListingCalendar
from exchange.sequencer.loop import SNAPSHOT_VERSION, restore_state, snapshot_state
from exchange.sequencer.state import DAY_NS, NS, ExchangeState, Refused

START = 1_796_083_200 * NS  # 2026-12-01T00:00:00Z


def _trading_state() -> ExchangeState:
    """Three accounts that have traded one contract back and forth."""
    rng = random.Random(3)
    state = ExchangeState(backend="reference", calendar=ListingCalendar())
    seq = 0

    def run(**command: object) -> None:
        nonlocal seq
        seq += 1
        with contextlib.suppress(Refused):  # an order past the margin, say: refused, fine
            state.apply(seq, dict(command))

    run(op="advance", to=START - DAY_NS // 2)
    for name in "abc":
        run(op="create_account", name=name, deposit=10_000_000, ts=START - DAY_NS // 2)
    symbol = sorted(s for s, c in state.contracts.items() if c.trading)[-1]
    reference = state.contracts[symbol].reference
    for i in range(300):
        run(op="place", account_id=rng.randint(1, 3), symbol=symbol,
            side=rng.choice(["buy", "sell"]), type="limit",
            price=reference + rng.randint(-2, 2), quantity=rng.randint(1, 7),
            client_order_id=f"c-{i}" if i % 2 else None, ts=START - DAY_NS // 2)  # fmt: skip
    return state


def _as_version(data: bytes, version: int) -> bytes:
    outer = pickle.loads(data)
    outer["version"] = version
    return pickle.dumps(outer)


def test_a_version_1_snapshot_loads_with_whole_tick_positions() -> None:
    state = _trading_state()
    positions = [p for a in state.accounts.values() for p in a.positions.values() if p.quantity]
    assert positions and any(p.realized for p in positions)
    want = state.state_hash()  # covers quantities and marks, not cost or realized P&L
    whole = [(p.cost, p.realized) for p in positions]
    cash = [p.realized - p.cost for p in positions]
    # what version 1 held: exact fractions, with realized - cost the trades' cash
    for position in positions:
        position.cost = Fraction(position.cost) + Fraction(1, 3)  # type: ignore[assignment]
        position.realized = Fraction(position.realized) + Fraction(1, 3)  # type: ignore[assignment]
    old = _as_version(snapshot_state(state), 1)

    restored = restore_state(old)
    back = [p for a in restored.accounts.values() for p in a.positions.values() if p.quantity]
    assert all(type(p.cost) is int and type(p.realized) is int for p in back)
    assert [p.realized - p.cost for p in back] == cash
    assert [(p.cost, p.realized) for p in back] == whole  # + 1/3 rounds back to the tick
    assert restored.state_hash() == want


@pytest.mark.parametrize("version", [0, SNAPSHOT_VERSION + 1])
def test_a_snapshot_of_another_version_is_refused(version: int) -> None:
    with pytest.raises(ValueError, match="unsupported snapshot version"):
        restore_state(_as_version(snapshot_state(_trading_state()), version))


def test_a_version_2_snapshot_with_every_order_an_object_loads() -> None:
    state = _trading_state()
    orders = list(state.orders.values())
    assert any(o.remaining == 0 for o in orders) and any(o.remaining for o in orders)
    want = state.state_hash()
    state.orders = {o.order_id: o for o in orders}  # type: ignore[assignment]  # as in version 2
    pairs = {(o.account, o.client_order_id): o.order_id for o in orders if o.client_order_id}
    assert len(pairs) == 150
    state.client_ids = pairs  # type: ignore[assignment]  # as before version 4
    old = _as_version(snapshot_state(state), 2)

    restored = restore_state(old)
    assert list(restored.orders.values()) == orders
    for (account, client), order_id in pairs.items():
        assert restored.client_ids.get(account, client, restored.orders.owner) == order_id
    assert restored.client_ids.get(1, "c-0", restored.orders.owner) is None
    assert restored.orders.open() == [o for o in orders if o.remaining]
    assert restored.state_hash() == want


def test_a_snapshot_from_before_bonds_loads_with_the_bonds_its_deliveries_need() -> None:
    state = _trading_state()
    traded = next(c for c in state.contracts.values() if c.last_price is not None)
    state.apply(10_000, {"op": "advance", "to": traded.last_trade_time})  # deliveries pending
    bonds = {a.account_id: a.bond for a in state.accounts.values()}
    assert state.deliveries and any(bonds.values())
    for account in state.accounts.values():
        del account.bond  # as pickled before accounts had one: the class default, 0
    restored = restore_state(_as_version(snapshot_state(state), 2))
    assert {a.account_id: a.bond for a in restored.accounts.values()} == bonds
