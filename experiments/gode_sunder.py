"""Gode & Sunder (1993): zero-intelligence traders in a double auction, on the cfx engine.

Six buyers and six sellers trade one unit per order in a continuous book of the real engine
(prices 1..200 ticks). Each buyer holds one unit per step of the market's value schedule and
trades unit i before unit i+1; sellers likewise with costs. ZI-U traders draw bids and asks
uniformly on 1..200; ZI-C traders bid uniformly on [1, value of their next unit] and ask on
[cost of their next unit, 200]. A trade happens at the earlier order's price (the engine's
maker price) and cancels every unaccepted bid and ask (engine CANCELs).

The paper leaves two settings open, both explicit here:

- ``orders_per_period``: how many bids and asks traders generate per period. At each step a
  trader is drawn uniformly from those with units left; the period ends after this many
  orders, or earlier when no further trade is possible.
- ``rule``: what happens to the standing bid (ask) when a new one arrives.
  ``"improve"``: a new bid must beat the standing bid and then replaces it (others are
  discarded); ``"replace"``: every new bid replaces the standing bid, better or not;
  ``"queue"``: every order rests in the book until a trade clears it. Under the paper's
  cancel-on-trade rule ``"queue"`` trades exactly as ``"improve"`` does (a bid below the best
  can never trade before a trade clears the book), which the tests check.

The compiled loop (:func:`_periods`) draws the orders and calls the engine kernels directly.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from numba import njit

from exchange.engine import ADD, BUY, CANCEL, CONTINUOUS, GTC, SELL, TRADE
from experiments import _engine
from experiments import metrics as m

#: Trader types, as in the paper.
TRADERS = ("zi_u", "zi_c")
#: Standing-order rules (see the module docstring), in their kernel codes' order.
RULES = ("improve", "replace", "queue")
#: Prices are integer ticks 1..PRICE_MAX.
PRICE_MAX = 200
#: Defaults: chosen as explained in docs/experiments.md (section "Gode & Sunder").
DEFAULT_PERIODS = 100
DEFAULT_ORDERS_PER_PERIOD = 2000
DEFAULT_RULE = "improve"
DEFAULT_SEED = 1993
#: Columns of the trade log the kernel writes.
T_PERIOD, T_STEP, T_PRICE, T_BUYER, T_SELLER, T_VALUE, T_COST, T_COLS = 0, 1, 2, 3, 4, 5, 6, 7

# Typed (non-literal) constants for call arguments: numba compiles a specialisation of the
# callee for every literal value it is passed.
_ADD = np.int64(ADD)
_CANCEL = np.int64(CANCEL)
_GTC = np.int64(GTC)
_ZERO = np.int64(0)
_ONE = np.int64(1)

MARKET5_NOTE = (
    "market 5: the paper prints its schedules only as a chart too fine to read; cfx uses a "
    "constructed schedule of the same character (buyer values 160 down to 130 in steps of 3, "
    "seller costs 98 up to 128 in steps of 3, the staircases continuing past equilibrium with "
    "4 extra-marginal units per trader from 127 down for buyers and from 132 up for sellers; "
    "P* = 129)"
)


def load_data() -> dict[str, Any]:
    """Return the paper's setup, schedules and published table (the shipped JSON)."""
    text = resources.files("experiments").joinpath("data/gode_sunder_1993.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass(frozen=True)
class Market:
    """One of the paper's markets: every buyer's unit values and every seller's unit costs."""

    number: int
    values: tuple[tuple[int, ...], ...]
    costs: tuple[tuple[int, ...], ...]
    constructed: bool = False

    @property
    def equilibrium(self) -> m.Equilibrium:
        """Return the competitive equilibrium of the pooled schedules."""
        return m.equilibrium(
            [v for b in self.values for v in b], [c for s in self.costs for c in s]
        )


def market(number: int, data: dict[str, Any] | None = None) -> Market:
    """Return market ``number`` (1..5); market 5 is constructed (see :data:`MARKET5_NOTE`)."""
    data = data or load_data()
    traders = int(data["setup"]["buyers"])
    if number == 5:
        values = (*range(160, 129, -3), 127, 124, 121, 118)
        costs = (*range(98, 129, 3), 132, 135, 138, 141)
        return Market(5, (values,) * traders, (costs,) * traders, constructed=True)
    sched = data["schedules"].get(str(number))
    if sched is None:
        raise ValueError(f"no market {number}: choose 1..5")
    # each step is one unit for each of the traders, so every trader holds the whole schedule
    values = tuple(int(v) for v in sched["buyer_values"])
    costs = tuple(int(c) for c in sched["seller_costs"])
    return Market(number, (values,) * traders, (costs,) * int(data["setup"]["sellers"]))


def _padded(units: tuple[tuple[int, ...], ...]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(u) for u in units)
    out = np.zeros((len(units), width), dtype=np.int64)
    for i, u in enumerate(units):
        out[i, : len(u)] = u
    return out, np.array([len(u) for u in units], dtype=np.int64)


# -- the compiled loop ------------------------------------------------------------------


@njit(cache=True)
def _periods(st, values, n_values, costs, n_costs, constrained, periods, opp, rule, rng,
             trades, period_stats, profits, cmd_log):  # fmt: skip
    """Run ``periods`` periods on book 0 of the engine state ``st``.

    Write trades (``T_*`` columns) into ``trades``, per period [trades, orders, orders that
    reached the engine, surplus] into ``period_stats``, per trader profits into ``profits``,
    and every engine command into ``cmd_log`` when it is not empty. Return the trade count,
    or -1 if the engine was sized too small.
    """
    nb = values.shape[0]
    ns = costs.shape[0]
    n = nb + ns
    ev = st[8]
    record = len(cmd_log) > 0
    next_unit = np.zeros(n, np.int64)
    active = np.zeros(n, np.int64)
    rest_ids = np.zeros(opp + 1, np.int64)  # orders resting in the book (rule "queue")
    rest_acc = np.zeros(opp + 1, np.int64)
    n_trades = 0
    order_id = 0
    seq = 0
    for period in range(periods):
        next_unit[:] = 0
        n_active = 0
        for t in range(n):
            units = n_values[t] if t < nb else n_costs[t - nb]
            if units > 0:
                active[n_active] = t
                n_active += 1
        buyers_left = 0
        for t in range(nb):
            buyers_left += n_values[t] > 0
        sellers_left = n_active - buyers_left
        std_id = np.zeros(2, np.int64)  # standing bid and ask order ids (0: none)
        std_px = np.zeros(2, np.int64)
        std_acc = np.zeros(2, np.int64)
        n_rest = 0
        orders = 0
        sent = 0
        surplus = 0
        while orders < opp and buyers_left > 0 and sellers_left > 0:
            orders += 1
            pick = rng.integers(0, n_active)
            t = active[pick]
            side = BUY if t < nb else SELL
            if side == BUY:
                hi = values[t, next_unit[t]] if constrained else PRICE_MAX
                price = rng.integers(1, hi + 1)
            else:
                lo = costs[t - nb, next_unit[t]] if constrained else 1
                price = rng.integers(lo, PRICE_MAX + 1)
            if rule == 0 and std_id[side] != 0:
                better = price > std_px[side] if side == BUY else price < std_px[side]
                if not better:
                    continue
            ts = period * opp + orders
            if rule != 2 and std_id[side] != 0:
                seq += 1
                if record:
                    _log(cmd_log, seq, ts, _CANCEL, std_id[side], std_acc[side], side, _ZERO, _ZERO)
                if _engine.submit(st, _CANCEL, _ZERO, std_id[side], std_acc[side], side, _ZERO, _ZERO, _GTC,
                                  _ZERO, seq, ts) < 0:  # fmt: skip
                    return -1
                std_id[side] = 0
            order_id += 1
            seq += 1
            sent += 1
            if record:
                _log(cmd_log, seq, ts, _ADD, order_id, t, side, price, _ONE)
            n_ev = _engine.submit(
                st, _ADD, _ZERO, order_id, t, side, price, _ONE, _GTC, _ZERO, seq, ts
            )
            if n_ev < 0:
                return -1
            traded = False
            for j in range(n_ev):
                if ev[j].kind != TRADE:
                    continue
                traded = True
                buyer = ev[j].account if side == BUY else ev[j].maker_account
                seller = ev[j].maker_account if side == BUY else ev[j].account
                p = ev[j].price
                v = values[buyer, next_unit[buyer]]
                c = costs[seller - nb, next_unit[seller]]
                trades[n_trades, T_PERIOD] = period
                trades[n_trades, T_STEP] = orders
                trades[n_trades, T_PRICE] = p
                trades[n_trades, T_BUYER] = buyer
                trades[n_trades, T_SELLER] = seller
                trades[n_trades, T_VALUE] = v
                trades[n_trades, T_COST] = c
                n_trades += 1
                surplus += v - c
                profits[period, buyer] += v - p
                profits[period, seller] += p - c
                for trader in (buyer, seller):
                    next_unit[trader] += 1
                    units = n_values[trader] if trader < nb else n_costs[trader - nb]
                    if next_unit[trader] == units:  # done: leaves the active set
                        for a in range(n_active):
                            if active[a] == trader:
                                active[a] = active[n_active - 1]
                                n_active -= 1
                                break
                        if trader < nb:
                            buyers_left -= 1
                        else:
                            sellers_left -= 1
            if traded:
                # a trade cancels every unaccepted bid and ask
                if rule == 2:
                    for r in range(n_rest):
                        seq += 1
                        if record:
                            _log(
                                cmd_log,
                                seq,
                                ts,
                                _CANCEL,
                                rest_ids[r],
                                rest_acc[r],
                                _ZERO,
                                _ZERO,
                                _ZERO,
                            )
                        _engine.submit(st, _CANCEL, _ZERO, rest_ids[r], rest_acc[r], _ZERO, _ZERO, _ZERO, _GTC,
                                       _ZERO, seq, ts)  # fmt: skip
                    n_rest = 0
                else:
                    # the standing ask (bid) filled and the standing bid (ask) was replaced
                    # by the order that traded: the book is empty
                    std_id[:] = 0
                if constrained and not _can_trade(values, n_values, costs, n_costs, next_unit):
                    break
            elif rule == 2:
                rest_ids[n_rest] = order_id
                rest_acc[n_rest] = t
                n_rest += 1
            else:
                std_id[side] = order_id
                std_px[side] = price
                std_acc[side] = t
        # the period closes: whatever still rests is cancelled
        ts = (period + 1) * opp
        for side in (BUY, SELL):
            if rule != 2 and std_id[side] != 0:
                seq += 1
                if record:
                    _log(cmd_log, seq, ts, _CANCEL, std_id[side], std_acc[side], side, _ZERO, _ZERO)
                _engine.submit(st, _CANCEL, _ZERO, std_id[side], std_acc[side], side, _ZERO, _ZERO, _GTC, _ZERO,
                               seq, ts)  # fmt: skip
        if rule == 2:
            for r in range(n_rest):
                seq += 1
                if record:
                    _log(cmd_log, seq, ts, _CANCEL, rest_ids[r], rest_acc[r], _ZERO, _ZERO, _ZERO)
                _engine.submit(st, _CANCEL, _ZERO, rest_ids[r], rest_acc[r], _ZERO, _ZERO, _ZERO, _GTC, _ZERO, seq,
                               ts)  # fmt: skip
        period_stats[period, 0] = 0
        period_stats[period, 1] = orders
        period_stats[period, 2] = sent
        period_stats[period, 3] = surplus
    for r in range(n_trades):
        period_stats[trades[r, T_PERIOD], 0] += 1
    return n_trades


@njit(cache=True)
def _can_trade(values, n_values, costs, n_costs, next_unit):
    """Whether some buyer's next value reaches some seller's next cost (ZI-C can trade)."""
    nb = values.shape[0]
    top = -1
    for t in range(nb):
        if next_unit[t] < n_values[t] and values[t, next_unit[t]] > top:
            top = values[t, next_unit[t]]
    for s in range(costs.shape[0]):
        if next_unit[nb + s] < n_costs[s] and costs[s, next_unit[nb + s]] <= top:
            return True
    return False


@njit(cache=True)
def _log(cmd_log, seq, ts, kind, order_id, account, side, price, quantity):
    i = seq - 1
    if i < len(cmd_log):
        cmd_log[i].seq = seq
        cmd_log[i].ts = ts
        cmd_log[i].kind = kind
        cmd_log[i].order_id = order_id
        cmd_log[i].account = account
        cmd_log[i].side = side
        cmd_log[i].price = price
        cmd_log[i].quantity = quantity


# -- one market, one trader type ----------------------------------------------------------


@dataclass
class Session:
    """The outcome of one market with one trader type over many periods."""

    market: int
    trader: str
    periods: int
    orders_per_period: int
    rule: str
    seed: int
    trades: np.ndarray  #: one row per trade, ``T_*`` columns
    period_stats: np.ndarray  #: per period: trades, orders drawn, orders sent, surplus
    profits: np.ndarray  #: per period and trader (buyers, then sellers)
    equilibrium: m.Equilibrium
    equilibrium_profits: np.ndarray
    seconds: float
    mkt: Market
    commands: np.ndarray | None = None  #: every engine command, when recorded

    @property
    def efficiencies(self) -> np.ndarray:
        """Return each period's allocative efficiency."""
        return self.period_stats[:, 3] / self.equilibrium.max_surplus

    @property
    def orders(self) -> int:
        """Return the number of orders the traders drew."""
        return int(self.period_stats[:, 1].sum())

    def summary(self) -> dict[str, Any]:
        """Return the session's metrics (means over periods) as a flat dict."""
        eq = self.equilibrium
        p_star = eq.price
        prices = self.trades[:, T_PRICE].astype(np.float64)
        periods = self.trades[:, T_PERIOD]
        alphas = [m.smith_alpha(prices[periods == p], p_star) for p in range(self.periods)]
        alphas = [a for a in alphas if not math.isnan(a)]
        dispersion = [m.profit_dispersion(self.profits[p], self.equilibrium_profits)
                      for p in range(self.periods)]  # fmt: skip
        missed, extra = self._losses()
        eff = self.efficiencies
        return {
            "market": self.market,
            "trader": self.trader,
            "periods": self.periods,
            "orders_per_period": self.orders_per_period,
            "rule": self.rule,
            "seed": self.seed,
            "efficiency": float(eff.mean()),
            "efficiency_std": float(eff.std()),
            "loss_missed": missed,
            "loss_extra_marginal": extra,
            "volume_per_period": float(self.period_stats[:, 0].mean()),
            "eq_quantity": eq.quantity_strict,
            "eq_quantity_max": eq.quantity,
            "eq_price": p_star,
            "mean_price": float(prices.mean()) if len(prices) else math.nan,
            "price_rmsd": m.price_rmsd(prices, p_star),
            "smith_alpha": float(np.mean(alphas)) if alphas else math.nan,
            "convergence_slope": m.convergence_slope(prices, p_star, self._rank()),
            "profit_dispersion": float(np.mean(dispersion)),
            "orders_drawn_per_period": float(self.period_stats[:, 1].mean()),
            "orders_sent_per_period": float(self.period_stats[:, 2].mean()),
        }

    def _rank(self) -> np.ndarray:
        """Return each trade's rank within its period (0, 1, ...)."""
        periods = self.trades[:, T_PERIOD]
        rank = np.zeros(len(periods), dtype=np.int64)
        for i in range(1, len(periods)):
            rank[i] = rank[i - 1] + 1 if periods[i] == periods[i - 1] else 0
        return rank

    def _losses(self) -> tuple[float, float]:
        """Return the mean per-period loss shares (missed trades, extra-marginal trades)."""
        p_star = self.equilibrium.price
        values = np.concatenate([np.asarray(v, np.float64) for v in self.mkt.values])
        costs = np.concatenate([np.asarray(c, np.float64) for c in self.mkt.costs])
        v_off = np.cumsum([0] + [len(v) for v in self.mkt.values])
        c_off = np.cumsum([0] + [len(c) for c in self.mkt.costs])
        nb = len(self.mkt.values)
        missed = extra = 0.0
        for p in range(self.periods):
            rows = self.trades[self.trades[:, T_PERIOD] == p]
            bought = np.zeros(len(values), dtype=bool)
            sold = np.zeros(len(costs), dtype=bool)
            nb_done = np.bincount(rows[:, T_BUYER], minlength=nb)
            ns_done = np.bincount(rows[:, T_SELLER] - nb, minlength=len(self.mkt.costs))
            for b, k in enumerate(nb_done):
                bought[v_off[b] : v_off[b] + k] = True
            for s, k in enumerate(ns_done):
                sold[c_off[s] : c_off[s] + k] = True
            loss = m.losses(values, bought, costs, sold, p_star)
            missed += loss.missed
            extra += loss.extra_marginal
        scale = self.periods * self.equilibrium.max_surplus
        return missed / scale, extra / scale


def simulate(mkt: Market, trader: str, periods: int = DEFAULT_PERIODS,
             orders_per_period: int = DEFAULT_ORDERS_PER_PERIOD, rule: str = DEFAULT_RULE,
             seed: int = DEFAULT_SEED, record: bool = False) -> Session:  # fmt: skip
    """Run ``periods`` periods of market ``mkt`` with ``trader`` ("zi_u" or "zi_c") traders.

    The random stream is ``numpy.random.default_rng([seed, market, trader index])``, so every
    market and trader type has its own reproducible stream. ``record`` keeps every engine
    command (for replaying the session through another engine backend).
    """
    if trader not in TRADERS:
        raise ValueError(f"unknown trader type {trader!r}; choose one of {TRADERS}")
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose one of {RULES}")
    if periods < 1 or orders_per_period < 1:
        raise ValueError("periods and orders_per_period must be at least 1")
    values, n_values = _padded(mkt.values)
    costs, n_costs = _padded(mkt.costs)
    rng = np.random.default_rng([seed, mkt.number, TRADERS.index(trader)])
    max_live = orders_per_period + 4 if rule == "queue" else 4
    _, st = _engine.new_engine([(0, PRICE_MAX + 1, CONTINUOUS)], max_live)
    cap = periods * int(min(n_values.sum(), n_costs.sum()))
    trades = np.zeros((cap, T_COLS), dtype=np.int64)
    stats = np.zeros((periods, 4), dtype=np.int64)
    profits = np.zeros((periods, len(values) + len(costs)), dtype=np.int64)
    from exchange.engine import COMMAND_DTYPE

    n_cmds = periods * (2 * orders_per_period + len(values) + len(costs) + 4) if record else 0
    cmd_log = np.zeros(n_cmds, dtype=COMMAND_DTYPE)
    start = time.perf_counter()
    n = _periods(st, values, n_values, costs, n_costs, trader == "zi_c", periods,
                 orders_per_period, RULES.index(rule), rng, trades, stats, profits, cmd_log)  # fmt: skip
    seconds = time.perf_counter() - start
    if n < 0:
        raise RuntimeError("engine sized too small for the simulation (a bug in cfx)")
    eq = mkt.equilibrium
    eq_profits = m.equilibrium_profits(list(mkt.values), list(mkt.costs), eq.price)
    commands = cmd_log[: int(np.count_nonzero(cmd_log["seq"]))] if record else None
    return Session(mkt.number, trader, periods, orders_per_period, rule, seed, trades[:n], stats,
                   profits, eq, eq_profits, seconds, mkt, commands)  # fmt: skip


# -- the table ----------------------------------------------------------------------------


@dataclass
class Reproduction:
    """Our efficiencies beside the published ones, for every market."""

    rows: list[dict[str, Any]]
    periods: int
    orders_per_period: int
    rule: str
    seed: int
    seconds: float
    orders: int
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        """Return ``{"markets": [{"market", "zi_u", "zi_c", "paper_zi_u", "paper_zi_c"}, ...]}``.

        Efficiencies are fractions. Settings, timing and notes ride along as extra top-level
        keys; the market rows hold exactly these five.
        """
        return {
            "markets": [
                {k: r[k] for k in ("market", "zi_u", "zi_c", "paper_zi_u", "paper_zi_c")}
                for r in self.rows
            ],
            "constructed_markets": [r["market"] for r in self.rows if r["constructed"]],
            "settings": {
                "periods": self.periods,
                "orders_per_period": self.orders_per_period,
                "rule": self.rule,
                "seed": self.seed,
            },
            "seconds": round(self.seconds, 3),
            "orders": self.orders,
            "notes": self.notes,
        }

    def table(self) -> str:
        """Return the table as plain text (percent, like the paper)."""
        head = (f"{'market':>6} {'ZI-U':>7} {'paper':>7} {'ZI-C':>7} {'paper':>7} "
                f"{'alpha U':>8} {'alpha C':>8} {'disp U':>7} {'disp C':>7}")  # fmt: skip
        lines = [head]
        for r in self.rows:
            mark = "*" if r["constructed"] else " "
            lines.append(
                f"{r['market']:>5}{mark} {100 * r['zi_u']:7.1f} {100 * r['paper_zi_u']:7.1f} "
                f"{100 * r['zi_c']:7.1f} {100 * r['paper_zi_c']:7.1f} "
                f"{r['zi_u_alpha']:8.1f} {r['zi_c_alpha']:8.1f} "
                f"{r['zi_u_dispersion']:7.1f} {r['zi_c_dispersion']:7.1f}"
            )
        lines.append(f"settings: {self.periods} periods, {self.orders_per_period} orders per "
                     f"period, rule {self.rule!r}, seed {self.seed}; {self.orders:,} orders in "
                     f"{self.seconds:.2f} s")  # fmt: skip
        lines += [f"* {n}" for n in self.notes]
        return "\n".join(lines)


def run(periods: int = DEFAULT_PERIODS, orders_per_period: int = DEFAULT_ORDERS_PER_PERIOD,
        rule: str = DEFAULT_RULE, seed: int = DEFAULT_SEED,
        markets: tuple[int, ...] = (1, 2, 3, 4, 5)) -> Reproduction:  # fmt: skip
    """Reproduce the paper's efficiency table: ZI-U and ZI-C in every market."""
    data = load_data()
    paper = data["published_efficiency_percent"]
    start = time.perf_counter()
    rows = []
    orders = 0
    for number in markets:
        mkt = market(number, data)
        row: dict[str, Any] = {"market": number, "constructed": mkt.constructed}
        for trader in TRADERS:
            s = simulate(mkt, trader, periods, orders_per_period, rule, seed)
            summary = s.summary()
            orders += s.orders
            row[trader] = round(summary["efficiency"], 4)
            row[f"paper_{trader}"] = round(paper[trader][str(number)] / 100, 4)
            row[f"{trader}_alpha"] = summary["smith_alpha"]
            row[f"{trader}_dispersion"] = summary["profit_dispersion"]
        rows.append(row)
    notes = [MARKET5_NOTE] if 5 in markets else []
    return Reproduction(rows, periods, orders_per_period, rule, seed,
                        time.perf_counter() - start, orders, notes)  # fmt: skip


def sensitivity(orders: tuple[int, ...] = (50, 200, 1000, 2000, 10000),
                rules: tuple[str, ...] = RULES, periods: int = DEFAULT_PERIODS,
                seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:  # fmt: skip
    """Return mean ZI-U and ZI-C efficiency per market for each orders-per-period and rule."""
    out = []
    data = load_data()
    for rule in rules:
        for opp in orders:
            for number in (1, 2, 3, 4, 5):
                mkt = market(number, data)
                row: dict[str, Any] = {"rule": rule, "orders_per_period": opp, "market": number}
                for trader in TRADERS:
                    s = simulate(mkt, trader, periods, opp, rule, seed).summary()
                    row[trader] = round(s["efficiency"], 4)
                    row[f"{trader}_volume"] = s["volume_per_period"]
                out.append(row)
    return out


def sensitivity_table(rows: list[dict[str, Any]]) -> str:
    """Return :func:`sensitivity` rows as text: one line per rule and orders-per-period."""
    lines = [
        f"{'rule':>8} {'orders':>7}  "
        + " ".join(f"{'M' + str(k) + ' U/C':>13}" for k in range(1, 6))
    ]
    keys = sorted({(r["rule"], r["orders_per_period"]) for r in rows},
                  key=lambda x: (RULES.index(x[0]), x[1]))  # fmt: skip
    for rule, opp in keys:
        cells = []
        for k in range(1, 6):
            r = next(
                x
                for x in rows
                if (x["rule"], x["orders_per_period"], x["market"]) == (rule, opp, k)
            )
            cells.append(f"{100 * r['zi_u']:6.1f}/{100 * r['zi_c']:5.1f}")
        lines.append(f"{rule:>8} {opp:>7}  " + " ".join(f"{c:>13}" for c in cells))
    return "\n".join(lines)
