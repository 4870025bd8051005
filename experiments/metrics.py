"""Market-performance metrics: equilibrium, efficiency and its losses, prices, profits.

Every function takes plain arrays, so a metric can be checked by hand on a small case. Units
are whatever the caller uses (GS prices, dollars per GPU-hour); surplus is price times units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class Equilibrium:
    """The competitive equilibrium of unit demand and supply schedules.

    ``quantity`` counts every unit pair with value >= cost, ``quantity_strict`` only those
    with value > cost (the zero-surplus pairs may or may not trade). Any price in
    ``[price_low, price_high]`` clears; ``price`` is its midpoint.
    """

    price_low: float
    price_high: float
    quantity: int
    quantity_strict: int
    max_surplus: float

    @property
    def price(self) -> float:
        """Return the midpoint of the equilibrium price interval."""
        return (self.price_low + self.price_high) / 2


def equilibrium(values: ArrayLike, costs: ArrayLike) -> Equilibrium:
    """Return the competitive equilibrium of unit ``values`` (demand) and ``costs`` (supply)."""
    v = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    c = np.sort(np.asarray(costs, dtype=np.float64))
    if len(v) == 0 or len(c) == 0:
        return Equilibrium(math.nan, math.nan, 0, 0, 0.0)
    n = min(len(v), len(c))
    gains = v[:n] - c[:n]  # falls with the unit index: values fall and costs rise
    q = int(np.count_nonzero(gains >= 0))
    q_strict = int(np.count_nonzero(gains > 0))
    if q == 0:
        return Equilibrium(float(v[0]), float(c[0]), 0, 0, 0.0)
    low = float(c[q - 1]) if q >= len(v) else max(float(c[q - 1]), float(v[q]))
    high = float(v[q - 1]) if q >= len(c) else min(float(v[q - 1]), float(c[q]))
    return Equilibrium(low, high, q, q_strict, float(gains[:q].sum()))


def efficiency(realized_surplus: float, max_surplus: float) -> float:
    """Return allocative efficiency: realized over maximum total surplus (NaN if none exists)."""
    return realized_surplus / max_surplus if max_surplus > 0 else math.nan


@dataclass(frozen=True)
class Losses:
    """Where surplus was lost, measured from the equilibrium price ``p*``.

    ``missed``: intra-marginal units that did not trade (buyers' value - p*, sellers'
    p* - cost). ``extra_marginal``: extra-marginal units that did trade (p* - value,
    cost - p*). With as many units bought as sold and p* in the equilibrium interval,
    ``missed + extra_marginal`` equals the maximum surplus minus the realized surplus.
    """

    missed: float
    extra_marginal: float

    @property
    def total(self) -> float:
        """Return the total loss."""
        return self.missed + self.extra_marginal


def losses(
    values: ArrayLike,
    bought: ArrayLike,
    costs: ArrayLike,
    sold: ArrayLike,
    price: float,
) -> Losses:
    """Decompose the efficiency loss of a unit allocation.

    ``values``/``costs`` are every unit's value or cost; ``bought``/``sold`` flag the units
    that traded; ``price`` is the equilibrium price.
    """
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(costs, dtype=np.float64)
    b = np.asarray(bought, dtype=bool)
    s = np.asarray(sold, dtype=bool)
    missed = np.sum(np.clip(v[~b] - price, 0, None)) + np.sum(np.clip(price - c[~s], 0, None))
    extra = np.sum(np.clip(price - v[b], 0, None)) + np.sum(np.clip(c[s] - price, 0, None))
    return Losses(float(missed), float(extra))


def price_rmsd(prices: ArrayLike, p_star: float) -> float:
    """Return the root-mean-square deviation of trade prices from ``p_star`` (NaN: no trades)."""
    p = np.asarray(prices, dtype=np.float64)
    return float(np.sqrt(np.mean((p - p_star) ** 2))) if len(p) else math.nan


def smith_alpha(prices: ArrayLike, p_star: float) -> float:
    """Return Smith's alpha: 100 * RMS deviation of prices around ``p_star``, over ``p_star``."""
    return 100.0 * price_rmsd(prices, p_star) / p_star


def convergence_slope(prices: ArrayLike, p_star: float, order: ArrayLike | None = None) -> float:
    """Return the OLS slope of ``|price - p_star|`` on the trade's ``order`` (default 0, 1, ...).

    Negative: prices approach equilibrium as trading goes on. Pass the trade's rank within
    its period to pool periods.
    """
    p = np.asarray(prices, dtype=np.float64)
    x = np.arange(len(p), dtype=np.float64) if order is None else np.asarray(order, np.float64)
    if len(p) < 2 or np.all(x == x[0]):
        return math.nan
    y = np.abs(p - p_star)
    xc = x - x.mean()
    return float(np.sum(xc * (y - y.mean())) / np.sum(xc * xc))


def equilibrium_profits(unit_values: list[ArrayLike], unit_costs: list[ArrayLike],
                        p_star: float) -> np.ndarray:  # fmt: skip
    """Return each trader's profit at equilibrium: buyers first, then sellers."""
    buyers = [
        float(np.clip(np.asarray(v, np.float64) - p_star, 0, None).sum()) for v in unit_values
    ]
    sellers = [
        float(np.clip(p_star - np.asarray(c, np.float64), 0, None).sum()) for c in unit_costs
    ]
    return np.array(buyers + sellers)


def profit_dispersion(actual: ArrayLike, at_equilibrium: ArrayLike) -> float:
    """Return sqrt(mean over traders of (actual profit - equilibrium profit)^2)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(at_equilibrium, dtype=np.float64)
    return float(np.sqrt(np.mean((a - e) ** 2))) if len(a) else math.nan


def volatility(prices: ArrayLike) -> float:
    """Return the standard deviation of log price changes between consecutive prices."""
    p = np.asarray(prices, dtype=np.float64)
    p = p[p > 0]
    if len(p) < 3:
        return math.nan
    return float(np.std(np.diff(np.log(p))))


def gini(x: ArrayLike) -> float:
    """Return the Gini coefficient of non-negative amounts (0: equal, 1: one holds all)."""
    a = np.sort(np.asarray(x, dtype=np.float64))
    if len(a) == 0 or a.sum() <= 0:
        return math.nan
    n = len(a)
    ranks = np.arange(1, n + 1)
    return float((2 * np.sum(ranks * a) / (n * a.sum())) - (n + 1) / n)
