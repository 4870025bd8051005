"""Metrics on small cases computed by hand."""

from __future__ import annotations

import math

import pytest

from experiments import metrics as m


def test_equilibrium_of_a_small_schedule() -> None:
    # values 10, 8, 6, 4 against costs 2, 5, 7, 9: two pairs gain (8, 3); the third loses
    eq = m.equilibrium([8, 10, 4, 6], [9, 2, 7, 5])
    assert (eq.quantity, eq.quantity_strict, eq.max_surplus) == (2, 2, 11.0)
    # any price in [max(c2, v3), min(v2, c3)] = [6, 7] clears
    assert (eq.price_low, eq.price_high, eq.price) == (6.0, 7.0, 6.5)


def test_equilibrium_counts_zero_surplus_pairs_in_the_weak_quantity() -> None:
    eq = m.equilibrium([10, 5], [3, 5])
    assert (eq.quantity, eq.quantity_strict, eq.max_surplus) == (2, 1, 7.0)
    assert eq.price == 5.0


def test_equilibrium_without_gains_from_trade() -> None:
    eq = m.equilibrium([3], [5])
    assert (eq.quantity, eq.max_surplus, eq.price_low, eq.price_high) == (0, 0.0, 3.0, 5.0)


def test_efficiency_of_a_known_set_of_trades() -> None:
    # trades (value, cost): (10, 2) and (6, 5): 8 + 1 = 9 of the 11 possible
    realized = (10 - 2) + (6 - 5)
    assert m.efficiency(realized, 11.0) == pytest.approx(9 / 11)
    assert math.isnan(m.efficiency(0.0, 0.0))


def test_losses_split_missed_and_extra_marginal_trades() -> None:
    values, costs = [10, 8, 6, 4], [2, 5, 7, 9]
    # p* = 6.5; units 10 and 6 bought, costs 2 and 5 sold: buyer unit 8 missed (8 - 6.5),
    # buyer unit 6 is extra-marginal (6.5 - 6)
    loss = m.losses(values, [True, False, True, False], costs, [True, True, False, False], 6.5)
    assert (loss.missed, loss.extra_marginal) == (1.5, 0.5)
    # the two parts add up to the surplus lost: 11 - ((10 + 6) - (2 + 5))
    assert loss.total == 11 - 9


def test_smith_alpha_and_price_rmsd() -> None:
    prices = [90, 110, 100, 100]  # deviations -10, 10, 0, 0 from 100: RMS sqrt(50)
    assert m.price_rmsd(prices, 100) == pytest.approx(math.sqrt(50))
    assert m.smith_alpha(prices, 100) == pytest.approx(100 * math.sqrt(50) / 100)
    assert math.isnan(m.price_rmsd([], 100))


def test_convergence_slope_is_negative_when_prices_approach_equilibrium() -> None:
    assert m.convergence_slope([130, 120, 110, 100], 100) == pytest.approx(-10.0)
    assert m.convergence_slope([100, 104, 108], 100) == pytest.approx(4.0)
    assert math.isnan(m.convergence_slope([100], 100))


def test_profit_dispersion() -> None:
    # differences 3, -4, 0, 0 from equilibrium profits: sqrt((9 + 16) / 4)
    assert m.profit_dispersion([13, 6, 5, 5], [10, 10, 5, 5]) == pytest.approx(2.5)


def test_equilibrium_profits_of_buyers_then_sellers() -> None:
    profits = m.equilibrium_profits([[10, 8, 6]], [[2, 5, 7]], 6.5)
    assert profits.tolist() == [3.5 + 1.5, 4.5 + 1.5]


def test_volatility_and_gini() -> None:
    assert m.volatility([100, 100, 100, 100]) == 0.0
    assert m.volatility([100, 110, 100]) > 0
    assert m.gini([1, 1, 1, 1]) == pytest.approx(0.0)
    assert m.gini([0, 0, 0, 4]) == pytest.approx(0.75)
