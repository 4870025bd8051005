"""Gode & Sunder (1993) on the engine: the schedules, the table, the paper's rules."""

from __future__ import annotations

import json

import numpy as np
import pytest

from exchange.engine import TRADE, Engine
from experiments import gode_sunder as gs


@pytest.fixture(scope="module")
def table() -> gs.Reproduction:
    return gs.run()


def test_the_data_ships_with_the_package() -> None:
    data = gs.load_data()
    assert data["published_efficiency_percent"]["zi_c"]["1"] == 99.9
    assert set(data["schedules"]) == {"1", "2", "3", "4"}


@pytest.mark.parametrize(("number", "price", "quantity"), [(1, 83, 24), (2, 69, 24), (3, 95, 6),
                                                           (4, 170, 12)])  # fmt: skip
def test_equilibria_match_the_paper(number: int, price: float, quantity: int) -> None:
    eq = gs.market(number).equilibrium
    assert (eq.price, eq.quantity_strict) == (price, quantity)


def test_market_5_is_constructed_as_the_data_note_says() -> None:
    mkt = gs.market(5)
    eq = mkt.equilibrium
    assert mkt.constructed
    assert max(mkt.values[0]) == 160 and min(mkt.costs[0]) == 98
    assert 127 in mkt.values[0] and 132 in mkt.costs[0]
    assert 128 <= eq.price <= 130


def test_json_has_the_published_shape(table: gs.Reproduction) -> None:
    out = json.loads(json.dumps(table.to_json()))
    rows = out["markets"]
    assert [r["market"] for r in rows] == [1, 2, 3, 4, 5]
    for r in rows:
        assert set(r) == {"market", "zi_u", "zi_c", "paper_zi_u", "paper_zi_c"}
        for key in ("zi_u", "zi_c", "paper_zi_u", "paper_zi_c"):
            assert 0.0 < r[key] <= 1.0  # fractions, not percent
    assert rows[0]["paper_zi_c"] == pytest.approx(0.999)
    assert out["constructed_markets"] == [5]
    assert any("market 5" in note for note in out["notes"])


def test_zi_c_is_efficient_and_beats_zi_u(table: gs.Reproduction) -> None:
    for r in table.rows:
        if r["market"] <= 4:
            assert r["zi_c"] > 0.95
        assert r["zi_u"] < r["zi_c"]


def test_zi_u_trades_every_unit_when_orders_are_plenty(table: gs.Reproduction) -> None:
    # with every unit traded, ZI-U efficiency is fixed by the schedules: the paper's 90.0,
    # 90.0 and 76.7 in markets 1-3
    assert [round(r["zi_u"], 3) for r in table.rows[:3]] == [0.9, 0.9, 0.767]


def test_same_seed_same_trades_other_seed_other_trades() -> None:
    mkt = gs.market(2)
    a = gs.simulate(mkt, "zi_c", periods=5, orders_per_period=300, seed=1)
    b = gs.simulate(mkt, "zi_c", periods=5, orders_per_period=300, seed=1)
    c = gs.simulate(mkt, "zi_c", periods=5, orders_per_period=300, seed=2)
    assert a.trades.tobytes() == b.trades.tobytes()
    assert a.summary() == b.summary()
    assert a.trades.tobytes() != c.trades.tobytes()


def test_paper_rules_hold_in_the_trade_log() -> None:
    mkt = gs.market(1)
    s = gs.simulate(mkt, "zi_c", periods=3, orders_per_period=500, seed=3)
    t = s.trades
    assert np.all(t[:, gs.T_VALUE] >= t[:, gs.T_PRICE])  # ZI-C never trades at a loss
    assert np.all(t[:, gs.T_COST] <= t[:, gs.T_PRICE])
    for period in range(3):
        rows = t[t[:, gs.T_PERIOD] == period]
        for buyer in set(rows[:, gs.T_BUYER].tolist()):
            values = rows[rows[:, gs.T_BUYER] == buyer][:, gs.T_VALUE].tolist()
            assert values == list(mkt.values[buyer][: len(values)])  # unit i before i + 1


def test_queue_and_improvement_rule_trade_alike() -> None:
    # under cancel-on-trade, a bid below the best can never trade before the book clears
    mkt = gs.market(4)
    a = gs.simulate(mkt, "zi_u", periods=4, orders_per_period=400, rule="improve", seed=5)
    b = gs.simulate(mkt, "zi_u", periods=4, orders_per_period=400, rule="queue", seed=5)
    c = gs.simulate(mkt, "zi_u", periods=4, orders_per_period=400, rule="replace", seed=5)
    assert a.trades.tobytes() == b.trades.tobytes()
    assert a.trades.tobytes() != c.trades.tobytes()


@pytest.mark.parametrize("rule", gs.RULES)
def test_replaying_the_commands_on_the_reference_engine_gives_the_same_trades(rule: str) -> None:
    s = gs.simulate(gs.market(3), "zi_c", periods=2, orders_per_period=200, rule=rule, seed=9,
                    record=True)  # fmt: skip
    assert s.commands is not None
    engine = Engine(backend="reference")
    engine.add_book(0, gs.PRICE_MAX + 1)
    events = engine.process(s.commands)
    trades = events[events["kind"] == TRADE]
    assert trades["price"].tolist() == s.trades[:, gs.T_PRICE].tolist()
    buyers = np.where(trades["side"] == 0, trades["account"], trades["maker_account"])
    assert buyers.tolist() == s.trades[:, gs.T_BUYER].tolist()
    assert len(engine.resting_orders()) == 0  # every period ends with an empty book


def test_fewer_orders_per_period_leave_trades_undone() -> None:
    rows = gs.sensitivity(orders=(30, 2000), rules=("improve",), periods=10)
    short = [r for r in rows if r["orders_per_period"] == 30]
    long = [r for r in rows if r["orders_per_period"] == 2000]
    assert all(s["zi_c"] < lg["zi_c"] for s, lg in zip(short, long, strict=True))
    assert "improve" in gs.sensitivity_table(rows)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="trader"):
        gs.simulate(gs.market(1), "zi_x")
    with pytest.raises(ValueError, match="rule"):
        gs.simulate(gs.market(1), "zi_c", rule="sometimes")
    with pytest.raises(ValueError, match="market"):
        gs.market(6)
