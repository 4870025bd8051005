"""The order store answers exactly as a dict of every order would, closed orders included."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.sequencer.orders import CANCEL_REASONS, CHUNK, CLOSED_DTYPE, Order, OrderStore

SYMBOLS = ["A100-2026-12-01", "H100-2026-W49", "H100-2026-12"]


def _order(order_id: int, account: int, symbol: str, client: str | None) -> Order:
    return Order(order_id=order_id, account=account, symbol=symbol, side=order_id % 2,
                 type="market" if order_id % 7 == 0 else "limit", price=0 if order_id % 7 == 0 else 400 + order_id % 13,
                 quantity=5 + order_id % 4, time_in_force=("GTC", "IOC", "FOK")[order_id % 3],
                 post_only=order_id % 5 == 0, client_order_id=client, created_at=1_000 * order_id,
                 stp=order_id % 4)  # fmt: skip


def _fill(order: Order, trade_id: int, quantity: int, maker: bool) -> None:
    order.filled += quantity
    order.fills.append({"trade_id": trade_id, "price": order.price + trade_id % 3,
                        "quantity": quantity, "liquidity": "maker" if maker else "taker",
                        "time": 7 * trade_id})  # fmt: skip
    if order.filled == order.quantity:
        order.status = "filled"
    else:
        order.status = "partially_filled"


# steps: ("new", account, symbol, client?) | ("fill", which, quantity, maker) | ("cancel", which)
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("new"), st.integers(1, 3), st.sampled_from(SYMBOLS), st.booleans()),
        st.tuples(st.just("fill"), st.integers(0, 50), st.integers(1, 3), st.booleans()),
        st.tuples(st.just("cancel"), st.integers(0, 50)),
    ),
    max_size=120,
)


def _run(steps: list[Any], store: OrderStore) -> dict[int, Order]:
    """Apply ``steps`` to ``store`` and to a plain dict; return the dict (deep copies)."""
    model: dict[int, Order] = {}
    trade_id = 0
    for step in steps:
        if step[0] == "new":
            order_id = len(model) + 1
            client = (f"c{order_id}", f"ü-{order_id}")[order_id % 2] if step[3] else None
            order = _order(order_id, step[1], step[2], client)
            model[order_id] = order
            store.add(order)
            continue
        live = store.open()
        if not live:
            continue
        order = live[step[1] % len(live)]
        if step[0] == "fill":
            trade_id += 1
            _fill(order, trade_id, min(step[2], order.remaining), step[3])
        else:
            order.status = "cancelled"
            order.cancel_reason = CANCEL_REASONS[1 + order.order_id % (len(CANCEL_REASONS) - 1)]
        if order.remaining == 0:
            store.close(order)
    return {i: pickle.loads(pickle.dumps(o)) for i, o in model.items()}


def _same(store: OrderStore, model: dict[int, Order], pages: bool = True) -> None:
    assert len(store) == len(model)
    assert list(store.values()) == list(model.values())
    for order_id, order in model.items():
        assert store.get(order_id) == order
        assert store[order_id] == order
        assert order_id in store
        assert store.owner(order_id) == (order.account, order.client_order_id)
        assert store.account_of(order_id) == order.account
    assert store.get(len(model) + 1) is None and len(model) + 1 not in store
    assert store.account_of(len(model) + 1) is None and store.account_of(0) is None
    assert store.account_of(-3) is None and store.account_of(2**70) is None
    assert store.get(0) is None and store.get(-3) is None and "1" not in store
    assert store.open() == [o for o in model.values() if o.remaining]
    newest_first = sorted(model.values(), key=lambda o: -o.order_id)
    for account in (1, 2, 3, 4):
        mine = [o for o in newest_first if o.account == account]
        assert list(store.select(account)) == mine
        for symbol, statuses, before in (
            (SYMBOLS[1], None, None), (None, ("filled",), None), (None, ("open", "partially_filled"), 9),
            (SYMBOLS[0], ("cancelled", "open"), 30), (None, None, 1), ("X", None, None),
        ):  # fmt: skip
            assert list(store.select(account, symbol=symbol, statuses=statuses, before=before)) == [
                o for o in mine
                if (symbol is None or o.symbol == symbol) and (statuses is None or o.status in statuses)
                and (before is None or o.order_id < before)
            ]  # fmt: skip
        fills = sorted(
            ((f["trade_id"], o.order_id, o.symbol, o.side, f["price"], f["quantity"],
              f["liquidity"], f["time"]) for o in mine for f in o.fills),
            key=lambda f: (-f[0], f[1]),
        )  # fmt: skip
        assert store.fills_of(account, limit=len(fills) + 1) == fills
        assert store.fills_of(account, symbol=SYMBOLS[2], limit=len(fills) + 1) == [
            f for f in fills if f[2] == SYMBOLS[2]
        ]
        if pages:
            _pages_cover(store, account, fills)
    assert store.taker_fills() == sorted(
        (f["trade_id"], o.symbol, f["price"], f["quantity"], o.side, f["time"])
        for o in model.values() for f in o.fills if f["liquidity"] == "taker"
    )  # fmt: skip


def _pages_cover(store: OrderStore, account: int, fills: list[Any]) -> None:
    """Reading fills page by page, each below the last trade id of the one before, reads them
    all once, and a page splits no trade."""
    for limit in (1, 2, 3):
        read: list[Any] = []
        before = None
        while page := store.fills_of(account, before=before, limit=limit):
            assert len(page) <= limit or (len(page) == limit + 1 and page[-1][0] == page[-2][0])
            read += page
            before = page[-1][0]
        assert read == fills


@settings(max_examples=150, deadline=None)
@given(_steps, st.integers(1, 8))
def test_the_store_answers_as_a_dict_of_every_order(steps: list[Any], flush_every: int) -> None:
    store = OrderStore(flush_every=flush_every)
    model = _run(steps, store)
    _same(store, model)
    _same(pickle.loads(pickle.dumps(store)), model)
    store.flush()
    _same(store, model)
    assert not store._recent  # everything closed is in the columns now


def test_closed_orders_span_chunks_and_keep_their_fills() -> None:
    store = OrderStore(flush_every=1000)
    model = {}
    for order_id in range(1, CHUNK + 2500):
        order = _order(order_id, 1 + order_id % 2, SYMBOLS[order_id % 3], None)
        store.add(order)
        model[order_id] = order
        if order_id % 10:  # one in ten stays open; the others fill in two trades
            _fill(order, 2 * order_id, 1, order_id % 3 == 0)
            _fill(order, 2 * order_id + 1, order.remaining, order_id % 3 == 1)
            store.close(order)
    model = {i: pickle.loads(pickle.dumps(o)) for i, o in model.items()}
    assert len(store._rows) == 2 and len(store._fills) == 2
    assert store.get(CHUNK - 1) == model[CHUNK - 1] and store.get(CHUNK + 1) == model[CHUNK + 1]
    _same(store, model, pages=False)
    newest = sorted(  # account 1: the even ids, and in one in ten of them no fill
        ((2 * i + j, i) for i in range(2, CHUNK + 2500, 2) if i % 10 for j in (0, 1)), reverse=True
    )[:3]
    assert [(f[0], f[1]) for f in store.fills_of(1, limit=3)] == newest
    assert OrderStore.of(model.values()).open() == store.open()


def _state_without(store: OrderStore, columns: tuple[str, ...]) -> dict[str, Any]:
    """The store's attributes as an earlier layout pickled them: rows without ``columns``."""
    old_dtype = np.dtype([(n, CLOSED_DTYPE[n]) for n in CLOSED_DTYPE.names or ()
                          if n not in columns])  # fmt: skip
    old = store.__dict__.copy()
    old["_rows"] = [None if c is None else np.zeros(CHUNK, dtype=old_dtype) for c in store._rows]
    for new, rows in zip(store._rows, old["_rows"], strict=True):
        if new is not None:
            for name in old_dtype.names or ():
                rows[name] = new[name]
    return old


def test_a_store_pickled_in_the_earlier_layout_loads() -> None:
    """Before the arena: 64-byte rows, client order ids in a dict, no fill chunk maxima."""
    store = OrderStore(flush_every=1)
    model = {}
    for order_id in range(1, 40):
        order = store_order = _order(order_id, 1 + order_id % 2, SYMBOLS[order_id % 3],
                                     f"ç{order_id}" if order_id % 3 else None)  # fmt: skip
        store.add(store_order)
        if order_id % 4:
            _fill(order, order_id, order.remaining, order_id % 2 == 0)
            store.close(order)
        model[order_id] = pickle.loads(pickle.dumps(order))
    store.add(_order(40, 1, SYMBOLS[0], None))  # moves the last closed one to the columns
    model[40] = _order(40, 1, SYMBOLS[0], None)
    old = _state_without(store, ("client_at", "client_len", "cancel_reason"))
    old["_client_order_ids"] = {
        i: o.client_order_id for i, o in model.items()
        if o.client_order_id is not None and i not in store._live and i not in store._recent
    }  # fmt: skip
    del old["_client_bytes"], old["_fill_top"]
    was = OrderStore.__new__(OrderStore)
    was.__dict__.update(old)
    loaded = pickle.loads(pickle.dumps(was))
    assert list(loaded.values()) == list(model.values())
    assert loaded.owner(2) == (1, "ç2") and loaded.owner(3) == (2, None)
    assert loaded.fills_of(2, limit=2) == store.fills_of(2, limit=2)


def test_rows_pickled_before_cancel_reasons_load_without_one() -> None:
    store = OrderStore(flush_every=1)
    for order_id in range(1, 6):
        order = _order(order_id, 1, SYMBOLS[0], None)
        store.add(order)
        order.status, order.cancel_reason = "cancelled", "margin_call"
        store.close(order)
    store.flush()
    assert [o.cancel_reason for o in store.values()] == ["margin_call"] * 5
    old = _state_without(store, ("cancel_reason",))
    was = OrderStore.__new__(OrderStore)
    was.__dict__.update(old)
    loaded = pickle.loads(pickle.dumps(was))
    assert [(o.status, o.cancel_reason) for o in loaded.values()] == [("cancelled", None)] * 5
    order = _order(6, 1, SYMBOLS[0], None)  # and it takes new ones with theirs
    loaded.add(order)
    order.status, order.cancel_reason = "cancelled", "user"
    loaded.close(order)
    loaded.flush()
    assert loaded[6].cancel_reason == "user"
