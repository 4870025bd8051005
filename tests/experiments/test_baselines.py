"""Non-market baselines hand out each unit once and respect their own rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from experiments import baselines, population
from experiments.population import BLOCK, BUYER, SELLER


def build(**overrides: Any) -> population.Population:
    settings = {"preset": "h100", "providers": 5, "training": 4, "inference": 12} | overrides
    return population.build(settings, 1000, np.random.default_rng([3, 0]))


def check_valid(pop: population.Population, alloc: baselines.Allocation) -> None:
    agents = pop.agents
    n = len(agents)
    held = alloc.positions(n)
    sold = alloc.owner >= 0
    # each unit has one supplier and at most one owner; providers give at most their capacity
    for j in np.flatnonzero(agents["kind"] == SELLER):
        assert np.count_nonzero(sold & (alloc.supplier == j)) <= alloc.capacity[j]
    assert np.all(np.isin(agents["kind"][alloc.owner[sold]], (BUYER, BLOCK)))
    for i in np.flatnonzero(np.isin(agents["kind"], (BUYER, BLOCK))):
        assert 0 <= held[i] <= agents[i]["n_units"]
        if agents[i]["kind"] == BLOCK:
            assert held[i] in (0, agents[i]["n_units"])  # all or nothing
    assert held.sum() == 0  # every unit held was sold by someone


@pytest.mark.parametrize("mechanism", baselines.BASELINES)
@pytest.mark.parametrize("shock", ["none", "outage", "surge"])
def test_allocations_are_valid(mechanism: str, shock: str) -> None:
    pop = build(shock=shock)
    check_valid(pop, baselines.allocate(pop, mechanism, np.random.default_rng(1)))


def test_quotas_are_respected() -> None:
    pop = build(quota=0.04)
    alloc = baselines.allocate(pop, "quota", np.random.default_rng(1))
    held = alloc.positions(len(pop.agents))
    total = int(pop.agents["n_units"][pop.agents["kind"] == SELLER].sum())
    assert alloc.quota == int(0.04 * total)
    assert held.max() <= alloc.quota
    blocks = np.flatnonzero(pop.agents["kind"] == BLOCK)
    assert all(held[i] == 0 for i in blocks if pop.agents[i]["n_units"] > alloc.quota)


def test_fcfs_serves_in_arrival_order() -> None:
    pop = build(training=0)  # divisible demand only: the first arrivals are served in full
    alloc = baselines.allocate(pop, "fcfs", np.random.default_rng(1))
    held = alloc.positions(len(pop.agents))
    users = sorted(
        np.flatnonzero(pop.agents["kind"] == BUYER), key=lambda i: pop.agents[i]["arrival"]
    )
    full = [held[i] == alloc.requested[i] for i in users]
    # once someone is not served in full, nobody after them gets anything
    first_short = full.index(False) if False in full else len(full)
    assert all(held[i] == 0 for i in users[first_short + 1 :])


def test_priority_serves_the_vip_tier_first() -> None:
    pop = build(training=0, vip_share=0.3)
    alloc = baselines.allocate(pop, "priority", np.random.default_rng(1))
    held = alloc.positions(len(pop.agents))
    users = np.flatnonzero(pop.agents["kind"] == BUYER)
    vip = [i for i in users if pop.agents[i]["tier"] == 0]
    others = [i for i in users if pop.agents[i]["tier"] == 1]
    if any(held[i] > 0 for i in others):
        assert all(held[i] == alloc.requested[i] for i in vip)


def test_spot_is_not_sold_to_training_jobs() -> None:
    pop = build()
    alloc = baselines.allocate(pop, "posted", np.random.default_rng(1))
    spot = pop.posted["spot"]
    owners = alloc.owner[(alloc.owner >= 0) & (alloc.price == spot)]
    assert not np.any(pop.agents["kind"][owners] == BLOCK)


def test_an_outage_takes_the_lost_units_away() -> None:
    pop = build(shock="outage", outage_fraction=0.4)
    alloc = baselines.allocate(pop, "fcfs", np.random.default_rng(1))
    for j in np.flatnonzero(pop.agents["shock_hit"] == 1):
        units = np.flatnonzero(alloc.supplier == j)
        assert np.all(alloc.owner[units[pop.capacity_after_shock(int(j)) :]] == -1)


def test_unknown_baseline() -> None:
    with pytest.raises(ValueError, match="unknown baseline"):
        baselines.allocate(build(), "lottery", np.random.default_rng(1))
