"""One run: a population, a mechanism, a seed; out come metrics and a price path.

Randomness comes from three numpy Generators seeded from the run's seed, one per stream:
``default_rng([seed, 0])`` draws the population, ``default_rng([seed, 1, session])`` the
agents' decisions (or the baselines' spot order), ``default_rng([seed, 2, session])`` the
delivery outages. Mechanisms compared at one seed therefore face the same economy and the
same outages; the same settings and seed give the same metrics, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from experiments import allocation, baselines, market
from experiments import metrics as m
from experiments import population as popmod

#: Every mechanism a run may use: market mechanisms, then non-market baselines.
MECHANISMS = market.MECHANISMS + baselines.BASELINES


@dataclass
class Result:
    """The metrics of one run (flat, for a CSV row) and a sampled price path for plots."""

    metrics: dict[str, Any]
    series: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run(scenario: dict[str, Any], settings: dict[str, Any], seed: int) -> Result:
    """Run ``settings['mechanism']`` on the population of ``scenario`` with ``seed``."""
    mechanism = settings.get("mechanism", "continuous")
    if mechanism not in MECHANISMS:
        raise ValueError(f"unknown mechanism {mechanism!r}; choose one of {MECHANISMS}")
    market_part = {k: v for k, v in settings.items() if k != "mechanism"}
    if mechanism in market.MECHANISMS:
        s = market.market_settings(settings)
    else:
        s = market.market_settings(market_part)
    steps = int(s["steps"])
    pop = popmod.build(scenario, steps, np.random.default_rng([seed, 0]))
    if mechanism in baselines.BASELINES:
        return _baseline(pop, mechanism, seed)
    sessions = [_session(pop, s, seed, k) for k in range(int(s["sessions"]))]
    metrics = _mean([r.metrics for r in sessions])
    return Result(metrics, sessions[0].series, pop.notes)


def _session(pop: popmod.Population, s: dict[str, Any], seed: int, k: int) -> Result:
    sess = market.run_session(pop, s, np.random.default_rng([seed, 1, k]))
    out = allocation.evaluate(pop, sess.positions, sess.cash, sess.capacity,
                              np.random.default_rng([seed, 2, k]))  # fmt: skip
    tick = sess.tick
    tr = sess.trades
    prices = tr[:, market.TR_PRICE] * tick
    qty = tr[:, market.TR_QTY]
    before = pop.equilibrium(after_shock=False).price
    after = pop.equilibrium(after_shock=True).price
    p_star = np.where(tr[:, market.TR_STEP] < sess.shock_step, before, after)
    dev = (prices - p_star) / p_star
    out["eq_price_before_shock"] = before
    out["trades"] = len(tr)
    out["volume"] = int(qty.sum())
    out["volume_ratio"] = out["volume"] / out["eq_quantity"] if out["eq_quantity"] else math.nan
    out["allocation_ratio"] = (out["units_contracted"] / out["eq_quantity"]
                               if out["eq_quantity"] else math.nan)  # fmt: skip
    out["vwap"] = float((prices * qty).sum() / qty.sum()) if len(tr) else math.nan
    out["price_rmsd"] = float(np.sqrt(np.mean((prices - p_star) ** 2))) if len(tr) else math.nan
    out["smith_alpha"] = float(100 * np.sqrt(np.mean(dev**2))) if len(tr) else math.nan
    out["convergence_slope"] = m.convergence_slope(prices - p_star, 0.0)
    last = sess.series[:, market.SR_LAST] * tick
    out["volatility"] = m.volatility(last[last > 0])
    out["spread"] = sess.spread_ticks * tick
    out["relative_spread"] = out["spread"] / after if after > 0 else math.nan
    out["depth"] = sess.depth
    out["fees"] = float(sess.fees.sum())
    out["commands"] = sess.commands
    out |= sess.counters
    ser = sess.series
    series = {
        "step": ser[:, market.SR_STEP].astype(float).tolist(),
        "bid": np.where(ser[:, market.SR_BID] > 0, ser[:, market.SR_BID] * tick, np.nan).tolist(),
        "ask": np.where(ser[:, market.SR_ASK] > 0, ser[:, market.SR_ASK] * tick, np.nan).tolist(),
        "last": np.where(
            ser[:, market.SR_LAST] > 0, ser[:, market.SR_LAST] * tick, np.nan
        ).tolist(),
        "eq_before": [before],
        "eq_after": [after],
        "shock_step": [float(sess.shock_step)],
    }
    return Result(out, series)


def _baseline(pop: popmod.Population, mechanism: str, seed: int) -> Result:
    alloc = baselines.allocate(pop, mechanism, np.random.default_rng([seed, 1, 0]))
    n = len(pop.agents)
    positions = alloc.positions(n)
    out = allocation.evaluate(pop, positions, alloc.cash(n), alloc.capacity,
                              np.random.default_rng([seed, 2, 0]))  # fmt: skip
    sold = alloc.owner >= 0
    out["volume"] = int(sold.sum())
    out["volume_ratio"] = out["volume"] / out["eq_quantity"] if out["eq_quantity"] else math.nan
    out["allocation_ratio"] = out["volume_ratio"]
    out["vwap"] = float(alloc.price[sold].mean()) if sold.any() else math.nan
    requested = int(alloc.requested.sum())
    out["requests_served"] = (float(sum(min(int(positions[i]), int(alloc.requested[i]))
                                        for i in np.flatnonzero(alloc.requested))) / requested
                              if requested else math.nan)  # fmt: skip
    out["preempted_units"] = alloc.preempted
    # units taken back by an outage never reach their holders: count them as undelivered
    promised = out["units_contracted"] + alloc.preempted
    out["delivery_rate"] = out["units_delivered"] / promised if promised else math.nan
    out["quota"] = alloc.quota
    return Result(out, {}, pop.notes)


def _mean(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Average numeric metrics over sessions (one session: unchanged)."""
    if len(rows) == 1:
        return dict(rows[0])
    out: dict[str, Any] = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            finite = [float(v) for v in values if not math.isnan(float(v))]
            out[key] = float(np.mean(finite)) if finite else math.nan
        else:
            out[key] = values[0]
    return out
