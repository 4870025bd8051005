"""How GPU time is allocated without a market: queues, tiers, quotas and posted prices.

Each baseline hands out the population's capacity unit by unit (every provider's GPU-hours,
cheapest first, as an operator would dispatch its own fleet) to the consumers' requests:

- ``fcfs``: requests are served in arrival order at the internal ``queue_price`` (default
  0, as on a company's or a research centre's own cluster); a training job gets its whole
  block or nothing (and is skipped if the block does not fit: the queue backfills), an
  inference user gets what is left if not all of its request.
- ``priority``: the same, but tier 0 (paying or VIP users, ``vip_share`` of them) first.
- ``quota``: first come first served, no user gets more than ``quota`` of the total
  capacity; a block larger than the quota cannot run.
- ``posted``: reserved, on-demand and spot prices. Users arriving in the first half of the
  period reserve the units they value above the reserved price, up to ``reserved_share`` of
  capacity; everyone then buys on demand what they value above the on-demand price; the
  capacity left is sold as spot at the spot price to inference users (spot can be preempted,
  so training jobs do not buy it), in random order.

A user requests the units it values above zero and at or above the price it would pay (for a block: the
whole block if its value per GPU-hour reaches the price). An outage shock takes the hit
providers' units away when the first user arrives after it: their holders are preempted and
re-queued at the front, to be served again from what is free. Every unit has one owner or
none, so no unit can be given twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from experiments.population import BLOCK, BUYER, G_SURGE, SELLER, Population

BASELINES: Final = ("fcfs", "priority", "quota", "posted")


@dataclass
class Allocation:
    """Which consumer got each unit of capacity, and at what price."""

    supplier: np.ndarray  #: provider of each unit (agent index)
    owner: np.ndarray  #: consumer holding each unit (agent index), -1: none
    price: np.ndarray  #: price paid for each unit (0 if unsold)
    capacity: np.ndarray  #: per agent: provider capacity after the shock (0 for others)
    requested: np.ndarray  #: per agent: units requested at the first price offered
    quota: int  #: the per-user cap (``quota`` baseline), else 0
    preempted: int  #: units taken back from their holders by an outage shock

    def positions(self, n: int) -> np.ndarray:
        """Return net units per agent: held by consumers, minus sold by providers."""
        pos = np.zeros(n, dtype=np.int64)
        sold = self.owner >= 0
        np.add.at(pos, self.owner[sold], 1)
        np.add.at(pos, self.supplier[sold], -1)
        return pos

    def cash(self, n: int) -> np.ndarray:
        """Return money per agent: providers receive, consumers pay."""
        cash = np.zeros(n, dtype=np.float64)
        sold = self.owner >= 0
        np.add.at(cash, self.owner[sold], -self.price[sold])
        np.add.at(cash, self.supplier[sold], self.price[sold])
        return cash


def _supply(pop: Population) -> tuple[np.ndarray, np.ndarray]:
    """Return every unit of capacity as (provider, cost), cheapest first."""
    suppliers: list[np.ndarray] = []
    costs: list[np.ndarray] = []
    for i, a in enumerate(pop.agents):
        if a["kind"] == SELLER:
            u = pop.unit_slice(i)
            suppliers.append(np.full(len(u), i, dtype=np.int64))
            costs.append(u)
    if not suppliers:
        return np.zeros(0, np.int64), np.zeros(0)
    sup = np.concatenate(suppliers)
    cost = np.concatenate(costs)
    order = np.argsort(cost, kind="stable")
    return sup[order], cost[order]


def _wanted(pop: Population, i: int, price: float) -> int:
    """Return the units consumer ``i`` requests at ``price``."""
    u = pop.unit_slice(i)
    if pop.agents[i]["kind"] == BLOCK:
        return len(u) if len(u) and u[0] >= price and u[0] > 0 else 0
    return int(np.count_nonzero((u >= price) & (u > 0)))


class _Pool:
    """Free units, handed out cheapest first; shocks take units away."""

    def __init__(self, pop: Population) -> None:
        self.pop = pop
        self.supplier, _ = _supply(pop)
        self.owner = np.full(len(self.supplier), -1, dtype=np.int64)
        self.price = np.zeros(len(self.supplier))
        self.alive = np.ones(len(self.supplier), dtype=bool)
        self.preempted = 0

    def free(self, limit: int | None = None) -> np.ndarray:
        idx = np.flatnonzero(self.alive & (self.owner < 0))
        return idx if limit is None else idx[:limit]

    def give(self, i: int, units: int, price: float, block: bool, cap: int | None = None) -> int:
        """Give consumer ``i`` up to ``units`` (all or none for a block); return how many."""
        idx = self.free()
        if cap is not None:
            idx = idx[: max(cap, 0)]
        if block and len(idx) < units:
            return 0
        take = idx[:units]
        self.owner[take] = i
        self.price[take] = price
        return len(take)

    def held(self, i: int) -> int:
        return int(np.count_nonzero(self.owner == i))

    def outage(self) -> list[int]:
        """Take the hit providers' lost units away; return the consumers preempted."""
        pop = self.pop
        hit: list[int] = []
        for j in np.flatnonzero(pop.agents["shock_hit"] == 1):
            units = np.flatnonzero(self.supplier == j)
            lost = units[pop.capacity_after_shock(int(j)) :]
            holders = self.owner[lost]
            hit.extend(int(v) for v in holders[holders >= 0])
            self.preempted += int(np.count_nonzero(holders >= 0))
            self.alive[lost] = False
            self.owner[lost] = -1
        victims = sorted(set(hit))
        for v in victims:
            if pop.agents[v]["kind"] == BLOCK:  # a block that lost part of itself cannot run
                self.owner[self.owner == v] = -1
        return victims


def allocate(pop: Population, mechanism: str, rng: np.random.Generator) -> Allocation:
    """Allocate the population's capacity with a non-market ``mechanism``."""
    if mechanism not in BASELINES:
        raise ValueError(f"unknown baseline {mechanism!r}; choose one of {BASELINES}")
    s = pop.settings
    agents = pop.agents
    n = len(agents)
    pool = _Pool(pop)
    consumers = [int(i) for i in np.flatnonzero(np.isin(agents["kind"], (BUYER, BLOCK)))]
    order = sorted(consumers, key=lambda i: (float(agents[i]["arrival"]), i))
    if mechanism == "priority":
        order = sorted(order, key=lambda i: int(agents[i]["tier"]))
    queue_price = float(s["queue_price"])
    total = int(agents["n_units"][agents["kind"] == SELLER].sum())
    quota = max(1, int(s["quota"] * total)) if mechanism == "quota" else 0
    requested = np.zeros(n, dtype=np.int64)
    shock_pending = s["shock"] == "outage"
    queue = list(order)
    served: set[int] = set()
    if mechanism == "posted":
        _posted(pop, pool, queue, requested, rng)
    else:
        while queue:
            i = queue.pop(0)
            if shock_pending and agents[i]["arrival"] >= s["shock_at"]:
                shock_pending = False
                # preempted users go back to the front of the queue
                queue = [v for v in pool.outage() if v in served] + [i, *queue]
                i = queue.pop(0)
            block = agents[i]["kind"] == BLOCK
            want = _wanted(pop, i, queue_price)
            if i not in served:
                requested[i] = want
            served.add(i)
            need = want - pool.held(i)
            if quota:
                if block and want > quota:
                    continue
                need = min(need, quota - pool.held(i))
            if need > 0:
                pool.give(i, need, queue_price, block)
    if shock_pending:
        pool.outage()
    capacity = np.zeros(n, dtype=np.int64)
    for j in np.flatnonzero(agents["kind"] == SELLER):
        capacity[j] = pop.capacity_after_shock(int(j))
    return Allocation(pool.supplier, pool.owner, pool.price, capacity, requested, quota,
                      pool.preempted)  # fmt: skip


def _posted(pop: Population, pool: _Pool, order: list[int], requested: np.ndarray,
            rng: np.random.Generator) -> None:  # fmt: skip
    """Reserved, then on-demand, then spot (see the module docstring)."""
    s = pop.settings
    agents = pop.agents
    reserved, on_demand, spot = (pop.posted[k] for k in ("reserved", "on_demand", "spot"))
    reserve_cap = int(s["reserved_share"] * len(pool.supplier))
    reserved_used = 0
    shock_pending = s["shock"] == "outage"
    for i in order:
        if shock_pending and agents[i]["arrival"] >= s["shock_at"]:
            shock_pending = False
            for v in pool.outage():  # preempted users buy again on demand
                _buy(pop, pool, v, on_demand)
        block = agents[i]["kind"] == BLOCK
        requested[i] = _wanted(pop, i, on_demand)
        if agents[i]["arrival"] < 0.5 and agents[i]["group"] != G_SURGE:
            want = _wanted(pop, i, reserved)
            reserved_used += pool.give(i, want, reserved, block, cap=reserve_cap - reserved_used)
            requested[i] = max(requested[i], want)
        _buy(pop, pool, i, on_demand)
    if shock_pending:
        for v in pool.outage():
            _buy(pop, pool, v, on_demand)
    buyers = [i for i in order if agents[i]["kind"] == BUYER]
    for i in rng.permutation(np.array(buyers, dtype=np.int64)):
        need = _wanted(pop, int(i), spot) - pool.held(int(i))
        if need > 0:
            pool.give(int(i), need, spot, False)


def _buy(pop: Population, pool: _Pool, i: int, price: float) -> None:
    block = pop.agents[i]["kind"] == BLOCK
    need = _wanted(pop, i, price) - pool.held(i)
    if need > 0:
        pool.give(i, need, price, block)
