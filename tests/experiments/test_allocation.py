"""Delivery and the surplus benchmark: hand cases and a brute-force check."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments import allocation, population
from experiments.population import AGENT_DTYPE, BLOCK, BUYER, SELLER, Population


def make(consumers: list[tuple[int, list[float]]], providers: list[list[float]],
         outage_prob: float = 0.0) -> Population:  # fmt: skip
    """A population from (kind, unit values) consumers and provider unit costs."""
    rows = [(kind, units) for kind, units in consumers] + [(SELLER, c) for c in providers]
    agents = np.zeros(len(rows), dtype=AGENT_DTYPE)
    units: list[float] = []
    for i, (kind, u) in enumerate(rows):
        agents[i]["kind"] = kind
        agents[i]["unit_start"] = len(units)
        agents[i]["n_units"] = len(u)
        agents[i]["outage_prob"] = outage_prob if kind == SELLER else 0.0
        units += u
    settings_ = population.scenario_settings({"preset": "h100"})
    return Population(agents, np.array(units), 0.01, 0.1, 10.0, 1.0, 10.0,
                      {"on_demand": 10.0, "reserved": 6.0, "spot": 3.0}, settings_)  # fmt: skip


def test_blocks_are_all_or_nothing_in_the_optimum() -> None:
    # 3 units at cost 1; a block of 2 at 5 each beats a steady user valuing 4 and 3,
    # but the block and one steady unit fill the capacity: 10 + 4 - 3 = 11
    pop = make([(BLOCK, [5.0, 5.0]), (BUYER, [4.0, 3.0])], [[1.0, 1.0, 1.0]])
    cap = pop.agents["n_units"].copy()
    assert allocation.optimum(pop, cap) == 11.0
    # a block of 4 cannot fit in 3 units: only the steady user is served
    pop = make([(BLOCK, [5.0] * 4), (BUYER, [4.0, 3.0])], [[1.0, 1.0, 1.0]])
    assert allocation.optimum(pop, pop.agents["n_units"].copy()) == 5.0


def brute_force(pop: Population) -> float:
    """Best surplus by trying every subset of blocks and every steady quantity."""
    costs = np.sort(
        np.concatenate([pop.unit_slice(int(i)) for i in np.flatnonzero(pop.is_provider())])
    )
    blocks = [pop.unit_slice(i) for i, a in enumerate(pop.agents) if a["kind"] == BLOCK]
    steady = np.sort(np.concatenate([pop.unit_slice(i) for i, a in enumerate(pop.agents)
                                     if a["kind"] == BUYER] or [np.zeros(0)]))[::-1]  # fmt: skip
    best = 0.0
    for pick in itertools.product((0, 1), repeat=len(blocks)):
        size = sum(len(b) for b, p in zip(blocks, pick, strict=True) if p)
        value = sum(b.sum() for b, p in zip(blocks, pick, strict=True) if p)
        for k in range(len(steady) + 1):
            if size + k <= len(costs):
                best = max(best, value + steady[:k].sum() - costs[: size + k].sum())
    return float(best)


@settings(max_examples=60, deadline=None)
@given(
    blocks=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 9)), max_size=3),
    steady=st.lists(st.integers(1, 9), max_size=6),
    costs=st.lists(st.integers(1, 9), min_size=1, max_size=8),
)
def test_the_optimum_equals_brute_force(blocks: list[tuple[int, int]], steady: list[int],
                                        costs: list[int]) -> None:  # fmt: skip
    consumers = [(BLOCK, [float(v)] * n) for n, v in blocks]
    if steady:
        consumers.append((BUYER, sorted((float(v) for v in steady), reverse=True)))
    pop = make(consumers, [[float(c) for c in costs]])
    assert np.isclose(allocation.optimum(pop, pop.agents["n_units"].copy()), brute_force(pop))


def test_delivery_pools_what_providers_produce() -> None:
    pop = make([(BUYER, [5.0, 4.0]), (BLOCK, [6.0, 6.0])], [[1.0, 1.0], [2.0, 2.0]])
    positions = np.array([2, 2, -2, -2])
    d = allocation.deliver(pop, positions, pop.agents["n_units"].copy(), None)
    assert d.received.tolist() == [2, 2, 0, 0] and d.pool == 4 and d.claims == 4
    # capacity of the second provider gone: 2 units for 4 claimed, served whole in order
    d = allocation.deliver(pop, positions, np.array([0, 0, 2, 0]), None)
    assert d.received.tolist() == [2, 0, 0, 0] and d.produced.tolist() == [0, 0, 2, 0]
    assert allocation.value_of(pop, 1, 1) == 0.0  # part of a block is worth nothing
    assert allocation.value_of(pop, 1, 2) == 12.0
    assert allocation.value_of(pop, 0, 5) == 9.0  # units beyond the schedule are worthless


def test_delivery_outages_come_from_the_rng() -> None:
    pop = make([(BUYER, [5.0, 4.0])], [[1.0, 1.0]], outage_prob=1.0)
    d = allocation.deliver(pop, np.array([2, -2]), pop.agents["n_units"].copy(),
                           np.random.default_rng(0))  # fmt: skip
    assert d.failed.tolist() == [False, True] and d.pool == 0


def test_evaluate_reports_full_efficiency_for_the_optimum() -> None:
    pop = make([(BUYER, [5.0, 4.0]), (BLOCK, [6.0, 6.0])], [[1.0, 1.0], [2.0, 2.0]])
    out = allocation.evaluate(pop, np.array([2, 2, -2, -2]), np.zeros(4),
                              pop.agents["n_units"].copy(), np.random.default_rng(0))  # fmt: skip
    assert out["efficiency"] == 1.0
    assert out["loss_missed"] == 0.0 and out["loss_extra_marginal"] == 0.0
    assert out["blocks_completed"] == 1.0 and out["delivery_rate"] == 1.0
