"""From positions to GPU-hours delivered and surplus: the accounting every mechanism shares.

A mechanism, market or not, ends with net positions: units each agent bought (positive) or
sold (negative). Delivery then happens:

- Each provider produces what it sold, up to its capacity (after an outage shock). With
  ``outages``, each provider independently fails with its ``outage_prob`` and loses
  ``outage_severity`` of its capacity at delivery.
- The GPU-hours produced form one pool, shared among the agents holding long positions in a
  random order (a claim is served whole before the next one; the last served may get part).
  Short positions of intermediaries (makers, momentum takers) have no capacity behind them,
  so they shrink the pool: someone who bought does not get GPU time.
- A consumer's value is the sum of the values of the units it received, in schedule order;
  a training job (block) has its value only if it received the whole block. Intermediaries
  value GPU-hours at nothing (an idle GPU-hour is lost).

The surplus benchmark is the best allocation of the same units: the cheapest capacity serves
the most valuable demand, with blocks all or nothing (a knapsack over the blocks, solved
exactly by dynamic programming over quantities).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from experiments import metrics as m
from experiments.population import (
    BLOCK,
    BUYER,
    G_INFERENCE,
    G_SURGE,
    G_TRAINING,
    MAKER,
    MOMENTUM,
    SELLER,
    Population,
)


@dataclass
class Delivery:
    """Who received what at delivery."""

    received: np.ndarray  #: units each agent received (0 for sellers)
    produced: np.ndarray  #: units each provider produced
    capacity: np.ndarray  #: each provider's capacity at delivery
    failed: np.ndarray  #: providers that suffered a delivery outage
    claims: int  #: units held long, in total
    pool: int  #: units produced, in total


def value_of(pop: Population, i: int, units: int) -> float:
    """Return agent ``i``'s value of holding ``units`` units (all or nothing for a block)."""
    a = pop.agents[i]
    if units <= 0 or a["kind"] not in (BUYER, BLOCK):
        return 0.0
    u = pop.unit_slice(i)
    if a["kind"] == BLOCK:
        return float(u.sum()) if units >= len(u) else 0.0
    return float(u[: min(units, len(u))].sum())


def cost_of(pop: Population, i: int, units: int) -> float:
    """Return provider ``i``'s cost of producing ``units`` units."""
    if units <= 0 or pop.agents[i]["kind"] != SELLER:
        return 0.0
    return float(pop.unit_slice(i)[:units].sum())


def deliver(pop: Population, positions: np.ndarray, capacity: np.ndarray,
            rng: np.random.Generator | None) -> Delivery:  # fmt: skip
    """Deliver ``positions`` given provider ``capacity``; ``rng``: draw delivery outages."""
    n = len(pop.agents)
    kinds = pop.agents["kind"]
    cap = capacity.astype(np.int64).copy()
    failed = np.zeros(n, dtype=bool)
    if rng is not None:
        draws = rng.random(n)  # one draw per agent, so every mechanism sees the same outages
        failed = (kinds == SELLER) & (draws < pop.agents["outage_prob"])
        severity = float(pop.settings["outage_severity"])
        cap[failed] = np.floor(cap[failed] * (1.0 - severity)).astype(np.int64)
    sold = np.where(kinds == SELLER, np.maximum(-positions, 0), 0)
    produced = np.minimum(sold, np.where(kinds == SELLER, cap, 0))
    pool = int(produced.sum())
    longs = np.flatnonzero(positions > 0)
    received = np.zeros(n, dtype=np.int64)
    order = rng.permutation(longs) if rng is not None else longs
    left = pool
    for i in order:
        if kinds[i] == SELLER:
            continue  # a provider that bought back more than it sold keeps no GPU-hours
        take = min(int(positions[i]), left)
        received[i] = take
        left -= take
    claims = int(positions[longs][kinds[longs] != SELLER].sum())
    return Delivery(received, produced, cap, failed, claims, pool)


@njit(cache=True)
def _optimum(costs, steady, block_sizes, block_values):
    """Best surplus: ``costs`` ascending, ``steady`` unit values descending, blocks 0/1."""
    q_max = len(costs)
    c_sum = np.zeros(q_max + 1)
    for i in range(q_max):
        c_sum[i + 1] = c_sum[i] + costs[i]
    s_sum = np.zeros(len(steady) + 1)
    for i in range(len(steady)):
        s_sum[i + 1] = s_sum[i] + steady[i]
    dp = np.full(q_max + 1, -np.inf)  # best block value using exactly q units
    dp[0] = 0.0
    for b in range(len(block_sizes)):
        size = block_sizes[b]
        for q in range(q_max, size - 1, -1):
            if dp[q - size] + block_values[b] > dp[q]:
                dp[q] = dp[q - size] + block_values[b]
    best = 0.0
    for q0 in range(q_max + 1):
        if dp[q0] == -np.inf:
            continue
        # steady units added after q0 block units gain steady[i] - costs[q0 + i], which
        # falls with i: take every positive one (binary search for the last)
        lo = 0
        hi = min(len(steady), q_max - q0)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if steady[mid - 1] - costs[q0 + mid - 1] > 0:
                lo = mid
            else:
                hi = mid - 1
        total = dp[q0] - c_sum[q0] + s_sum[lo] - (c_sum[q0 + lo] - c_sum[q0])
        if total > best:
            best = total
    return best


def optimum(pop: Population, capacity: np.ndarray, arrived: bool = True) -> float:
    """Return the largest total surplus the population's units allow with ``capacity``."""
    costs: list[np.ndarray] = []
    steady: list[np.ndarray] = []
    sizes: list[int] = []
    block_values: list[float] = []
    for i, a in enumerate(pop.agents):
        u = pop.unit_slice(i)
        if a["kind"] == SELLER:
            costs.append(u[: int(capacity[i])])
        elif a["kind"] == BUYER and (arrived or a["group"] != G_SURGE):
            steady.append(u)
        elif a["kind"] == BLOCK:
            sizes.append(len(u))
            block_values.append(float(u.sum()))
    c = np.sort(np.concatenate(costs)) if costs else np.zeros(0)
    s = np.sort(np.concatenate(steady))[::-1].copy() if steady else np.zeros(0)
    return float(_optimum(c, s, np.array(sizes, dtype=np.int64), np.array(block_values)))


def evaluate(pop: Population, positions: np.ndarray, cash: np.ndarray, capacity: np.ndarray,
             delivery_rng: np.random.Generator) -> dict[str, Any]:  # fmt: skip
    """Return efficiency, its losses, who got the GPUs and how delivery went."""
    kinds = pop.agents["kind"]
    groups = pop.agents["group"]
    n = len(kinds)
    consumer = np.isin(kinds, (BUYER, BLOCK))
    provider = kinds == SELLER
    middle = np.isin(kinds, (MAKER, MOMENTUM))
    # contracted: the allocation as traded, every provider delivering what it can
    contracted = deliver(pop, positions, capacity, None)
    delivered = deliver(pop, positions, capacity, delivery_rng)
    out: dict[str, Any] = {}
    for name, d in (("contracted", contracted), ("delivered", delivered)):
        value = sum(value_of(pop, int(i), int(d.received[i])) for i in np.flatnonzero(consumer))
        cost = sum(cost_of(pop, int(i), int(d.produced[i])) for i in np.flatnonzero(provider))
        best = optimum(pop, d.capacity)
        out[f"{name}_surplus"] = value - cost
        out[f"{name}_optimum"] = best
    out["efficiency"] = m.efficiency(out["delivered_surplus"], out["delivered_optimum"])
    out["contracted_efficiency"] = m.efficiency(out["contracted_surplus"],
                                                out["contracted_optimum"])  # fmt: skip
    # losses against the equilibrium price of the (divisible) post-shock schedules
    eq = pop.equilibrium(after_shock=True)
    values: list[np.ndarray] = []
    bought: list[np.ndarray] = []
    costs: list[np.ndarray] = []
    sold: list[np.ndarray] = []
    for i in range(n):
        u = pop.unit_slice(i)
        if consumer[i]:
            values.append(u)
            bought.append(np.arange(len(u)) < contracted.received[i])
        elif provider[i]:
            costs.append(u[: int(capacity[i])])
            sold.append(np.arange(int(capacity[i])) < contracted.produced[i])
    if values and costs and out["contracted_optimum"] > 0:
        loss = m.losses(np.concatenate(values), np.concatenate(bought), np.concatenate(costs),
                        np.concatenate(sold), eq.price)  # fmt: skip
        best = out["contracted_optimum"]
        out["loss_missed"] = loss.missed / best
        out["loss_extra_marginal"] = loss.extra_marginal / best
        out["loss_other"] = (
            1.0 - out["contracted_efficiency"] - out["loss_missed"] - out["loss_extra_marginal"]
        )
    else:
        out["loss_missed"] = out["loss_extra_marginal"] = out["loss_other"] = math.nan
    # who gets the GPUs
    got = delivered.received
    total = max(int(got.sum()), 1)
    for name, group in (("training", G_TRAINING), ("inference", G_INFERENCE), ("surge", G_SURGE)):
        out[f"share_{name}"] = float(got[groups == group].sum()) / total
    out["share_intermediaries"] = float(got[middle].sum()) / total
    blocks = np.flatnonzero(kinds == BLOCK)
    done = [got[i] >= pop.agents[i]["n_units"] for i in blocks]
    out["blocks_completed"] = float(np.mean(done)) if len(blocks) else math.nan
    out["blocks_fragmented"] = int(sum(0 < got[i] < pop.agents[i]["n_units"] for i in blocks))
    demanded = int(pop.agents["n_units"][consumer].sum())
    useful = sum(min(int(got[i]), int(pop.agents[i]["n_units"])) for i in np.flatnonzero(consumer))
    out["demand_served"] = useful / demanded if demanded else math.nan
    values_got = sum(value_of(pop, int(i), int(got[i])) for i in np.flatnonzero(consumer))
    out["value_per_unit_served"] = values_got / useful if useful else math.nan
    # delivery
    out["delivery_rate"] = delivered.pool / delivered.claims if delivered.claims else math.nan
    out["units_contracted"] = int(contracted.claims)
    out["units_delivered"] = int(min(delivered.pool, delivered.claims))
    sold_units = np.where(provider, np.maximum(-positions, 0), 0)
    out["providers_failed"] = int((delivered.failed & (sold_units > 0)).sum())
    out["overcommitted_units"] = int(np.maximum(sold_units - capacity, 0)[provider].sum())
    out["intermediary_short_units"] = int(np.maximum(-positions[middle], 0).sum())
    # profits at the contracted allocation against profits at the equilibrium price
    profits = np.zeros(n)
    eq_profits = np.zeros(n)
    for i in range(n):
        u = pop.unit_slice(i)
        if consumer[i]:
            profits[i] = value_of(pop, i, int(contracted.received[i])) + cash[i]
            eq_profits[i] = float(np.clip(u - eq.price, 0, None).sum())
        elif provider[i]:
            profits[i] = cash[i] - cost_of(pop, i, int(contracted.produced[i]))
            eq_profits[i] = float(np.clip(eq.price - u[: int(capacity[i])], 0, None).sum())
    mask = consumer | provider
    out["profit_dispersion"] = m.profit_dispersion(profits[mask], eq_profits[mask])
    out["eq_price"] = eq.price
    out["eq_quantity"] = eq.quantity
    return out
