"""Market mechanisms on the engine: accounting, auctions, the exchange's rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from experiments import market, population, scenarios
from experiments.population import Population


def session(pop: Population, **settings: Any) -> market.Session:
    return market.run_session(pop, {"steps": 3000} | settings, np.random.default_rng(11))


@pytest.mark.parametrize("mechanism", market.MECHANISMS)
def test_every_unit_bought_was_sold_and_money_only_leaves_as_fees(h100: Population,
                                                                 mechanism: str) -> None:  # fmt: skip
    s = session(h100, mechanism=mechanism, maker_fee=0.001, taker_fee=0.002)
    assert len(s.trades) > 0
    assert s.positions.sum() == 0
    assert s.cash.sum() == pytest.approx(-s.fees.sum())
    assert s.fees.sum() > 0
    traded = np.zeros(len(h100.agents), dtype=np.int64)
    np.add.at(traded, s.trades[:, market.TR_BUYER], s.trades[:, market.TR_QTY])
    np.add.at(traded, s.trades[:, market.TR_SELLER], -s.trades[:, market.TR_QTY])
    assert traded.tolist() == s.positions.tolist()


def test_batch_auctions_run_every_interval(h100: Population) -> None:
    s = session(h100, mechanism="batch", batch_interval=100)
    assert s.counters["auctions"] == 30
    assert (s.trades[:, market.TR_TAKER] == 2).all()  # only auctions trade
    assert set((s.trades[:, market.TR_STEP] + 1) % 100) == {0}


def test_an_opening_auction_then_continuous_trading(h100: Population) -> None:
    s = session(h100, mechanism="open", open_steps=500)
    assert s.counters["auctions"] == 1
    taker = s.trades[:, market.TR_TAKER]
    steps = s.trades[:, market.TR_STEP]
    assert (steps[taker == 2] == 499).all()
    assert (steps[taker != 2] >= 499).all()


def test_continuous_trading_has_no_auctions(h100: Population) -> None:
    s = session(h100, mechanism="continuous")
    assert s.counters["auctions"] == 0 and (s.trades[:, market.TR_TAKER] < 2).all()


def test_pro_rata_and_time_priority_ration_differently(h100: Population) -> None:
    a = session(h100, mechanism="batch", batch_interval=50, rationing="pro_rata")
    b = session(h100, mechanism="batch", batch_interval=50, rationing="time")
    assert a.counters["rationed_orders"] > 0
    assert a.trades.tobytes() != b.trades.tobytes()


def test_the_exchange_rules_refuse_orders(h100: Population) -> None:
    assert session(h100, improvement_rule=True).counters["improvement_rejects"] > 0
    assert session(h100, price_band=0.05).counters["band_rejects"] > 0
    tight = session(h100, margin_rate=1.0)
    assert tight.counters["margin_blocks"] > 0
    assert session(h100).counters["margin_blocks"] == 0


def test_latency_delays_orders(h100: Population) -> None:
    fast = session(h100, latency=0)
    slow = session(h100, latency=50)
    assert fast.trades.tobytes() != slow.trades.tobytes()
    assert slow.positions.sum() == 0


def test_tick_size_puts_prices_on_the_grid(h100: Population) -> None:
    s = session(h100, tick=0.25)
    assert s.tick == 0.25
    prices = s.trades[:, market.TR_PRICE] * s.tick
    assert np.allclose(prices / 0.25, np.round(prices / 0.25))


def test_an_outage_cuts_capacity_and_sends_providers_to_buy_back() -> None:
    pop = population.build({"preset": "h100", "shock": "outage", "outage_fraction": 0.5},
                           3000, np.random.default_rng([1, 0]))  # fmt: skip
    s = session(pop)
    hit = np.flatnonzero(pop.agents["shock_hit"] == 1)
    assert (s.capacity[hit] == 0).all()
    buys = s.trades[np.isin(s.trades[:, market.TR_BUYER], hit)]
    assert (buys[:, market.TR_STEP] >= 1500).all() and len(buys) > 0


def test_surge_users_act_only_after_the_shock() -> None:
    pop = population.build(
        {"preset": "h100", "shock": "surge"}, 3000, np.random.default_rng([1, 0])
    )
    surge = np.flatnonzero(pop.agents["group"] == population.G_SURGE)
    assert len(surge) == 20
    s = session(pop)
    rows = s.trades[np.isin(s.trades[:, market.TR_BUYER], surge)]
    assert len(rows) > 0 and (rows[:, market.TR_STEP] >= 1500).all()


def test_a_run_reports_the_metrics_of_the_issue() -> None:
    r = scenarios.run(
        {"preset": "a100", "shock": "outage"}, {"mechanism": "batch", "steps": 3000}, 4
    )
    for key in ("efficiency", "loss_missed", "loss_extra_marginal", "volume_ratio", "price_rmsd",
                "smith_alpha", "convergence_slope", "profit_dispersion", "spread", "depth",
                "volatility", "rationed_orders", "share_training", "delivery_rate",
                "blocks_completed"):  # fmt: skip
        assert key in r.metrics
    assert 0 < r.metrics["efficiency"] <= 1
    assert len(r.series["last"]) == len(r.series["step"]) > 0


def test_gode_sunder_traders_are_efficient_on_the_cfx_market() -> None:
    zi_c = scenarios.run({"preset": "gs1", "market_makers": 0}, {"steps": 3000}, 1).metrics
    zi_u = scenarios.run({"preset": "gs1", "trader": "zi_u"}, {"steps": 3000}, 1).metrics
    assert zi_c["efficiency"] > 0.95 > zi_u["efficiency"]
    assert abs(zi_c["loss_other"]) < 1e-9  # no blocks or intermediaries: two kinds of loss


def test_bad_market_settings() -> None:
    with pytest.raises(ValueError, match="mechanism"):
        market.market_settings({"mechanism": "sealed_bid"})
    with pytest.raises(ValueError, match="unknown market settings"):
        market.market_settings({"latencyy": 3})
    with pytest.raises(ValueError, match="open_steps"):
        market.market_settings({"open_steps": 10, "steps": 10})
