"""Who trades: providers, consumers and intermediaries, drawn from a scenario and a seed.

A :class:`Population` is the supply and demand of one delivery period plus the traders who
stand between them. Every mechanism, market or not, runs on the same population for a seed,
so a study compares allocations of one and the same economy.

Presets (numbers from ``/shared/MARKET.md``, approximate, USD per GPU-hour):

- ``h100``: providers with marginal cost 0.6-1.5 (power plus depreciation) and a small
  delivery outage risk; training labs wanting a whole block of GPU-hours (all or none);
  inference users with a steady demand of diminishing value; market makers, momentum
  takers and a sniper. Posted prices: on demand 10, reserved 6, spot 3.5.
- ``a100``: the same economy at A100 prices (cost 0.3-0.8; on demand 4, reserved 2.25,
  spot 1.25).
- ``gs1`` .. ``gs5``: the Gode-Sunder markets, six ZI buyers and six ZI sellers with one
  unit per order (``trader = "zi_c"`` or ``"zi_u"``), prices 1..200.

Shocks: ``"outage"`` takes ``outage_fraction`` of the providers (their ``outage_share`` of
capacity) off line at ``shock_at`` of the session; ``"surge"`` brings ``surge_fraction``
more inference users, valuing GPU-hours ``surge_value`` times more, into the market then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from experiments import metrics as m

# Agent kinds
BUYER: Final = 0  #: buys units of a value schedule (inference user, ZI buyer)
SELLER: Final = 1  #: sells units of a cost schedule (GPU provider, ZI seller)
BLOCK: Final = 2  #: buys a whole block of units or nothing (training job)
MAKER: Final = 3  #: quotes both sides around a reference price
MOMENTUM: Final = 4  #: takes liquidity in the direction of the last price move

KIND_NAMES: Final = ("buyer", "seller", "block", "maker", "momentum")
#: Most live orders an agent may hold (the simulator keeps slots for twice as many, so
#: orders whose cancel is on its way do not block new ones).
MAX_LIVE: Final = 4

# Groups, for "who gets the GPUs"
G_PROVIDER: Final = 0
G_TRAINING: Final = 1
G_INFERENCE: Final = 2
G_MAKER: Final = 3
G_MOMENTUM: Final = 4
G_SNIPER: Final = 5
G_SURGE: Final = 6  #: inference users who arrive with a demand surge
GROUP_NAMES: Final = ("provider", "training", "inference", "maker", "momentum", "sniper",
                      "surge")  # fmt: skip

#: One agent. Units (values for buyers, costs for sellers) live in ``Population.units`` at
#: ``unit_start .. unit_start + n_units``; for a seller ``n_units`` is its capacity.
AGENT_DTYPE: Final = np.dtype(
    [
        ("kind", np.int64),
        ("group", np.int64),
        ("constrained", np.int64),  #: 1: ZI-C (never trades at a loss), 0: ZI-U
        ("unit_start", np.int64),
        ("n_units", np.int64),
        ("clip", np.int64),  #: most units per order
        ("max_open", np.int64),  #: most live orders; a new one replaces the oldest
        ("latency", np.int64),  #: steps from decision to arrival at the exchange
        ("active_from", np.int64),  #: first step the agent may act
        ("tier", np.int64),  #: priority tier for the priority baseline (0 first)
        ("shock_hit", np.int64),  #: 1: loses capacity in an outage shock
        ("weight", np.float64),  #: relative chance of acting at a step
        ("collateral", np.float64),  #: money backing margin, same unit as prices
        ("outage_prob", np.float64),  #: chance of failing to deliver at delivery
        ("arrival", np.float64),  #: place in the queue of the non-market baselines
        ("spread", np.float64),  #: maker: quoted spread, fraction of the reference price
        ("size", np.int64),  #: maker/momentum: order size
        ("limit", np.int64),  #: maker/momentum: largest absolute position
        ("window", np.int64),  #: momentum: trades looked back
        ("threshold", np.float64),  #: momentum: move (fraction of price) that triggers
        ("fok", np.int64),  #: block: 1 buys with fill-or-kill in a continuous book, 0 with GTC
    ],
    align=True,
)

#: Scenario settings and their defaults (``None``: the preset's value).
SCENARIO_DEFAULTS: Final[dict[str, Any]] = {
    "preset": "h100",
    "trader": "zi_c",
    "providers": None,
    "training": None,
    "inference": None,
    "market_makers": None,
    "momentum": None,
    "snipers": None,
    "shock": "none",
    "shock_at": 0.5,
    "outage_fraction": 0.3,
    "outage_share": 1.0,
    "surge_fraction": 0.5,
    "surge_value": 1.5,
    "outage_risk": 1.0,
    "outage_severity": 1.0,
    "vip_share": 0.2,
    "queue_price": 0.0,
    "quota": 0.05,
    "reserved_share": 0.5,
    "on_demand": None,
    "reserved": None,
    "spot": None,
    "price_low": None,
    "price_high": None,
    "collateral": 0.25,
    "provider_clip": 10,
    "provider_max_open": 2,
    "block_orders": "fok",
}
SHOCKS: Final = ("none", "outage", "surge")
PRESETS: Final = ("h100", "a100", "gs1", "gs2", "gs3", "gs4", "gs5")

_PRODUCTS: Final[dict[str, dict[str, Any]]] = {
    # cost and value ranges per GPU-hour; values of training blocks and inference users
    "h100": {
        "cost": (0.6, 1.5),
        "train_value": (4.0, 9.0),
        "infer_top": (2.5, 11.0),
        "on_demand": 10.0,
        "reserved": 6.0,
        "spot": 3.5,
        "low": 0.5,
        "high": 12.0,
        "tick": 0.01,
        "ref": 4.0,
    },
    "a100": {
        "cost": (0.3, 0.8),
        "train_value": (1.8, 4.0),
        "infer_top": (1.0, 4.6),
        "on_demand": 4.0,
        "reserved": 2.25,
        "spot": 1.25,
        "low": 0.2,
        "high": 5.0,
        "tick": 0.01,
        "ref": 1.6,
    },
}
_COUNTS: Final = {"providers": 16, "training": 8, "inference": 40, "market_makers": 2,
                  "momentum": 2, "snipers": 1}  # fmt: skip


@dataclass
class Population:
    """Agents and their units for one delivery period, plus the prices the scenario sets."""

    agents: np.ndarray  #: ``AGENT_DTYPE`` rows
    units: np.ndarray  #: float64: values (buyers, blocks) or costs (sellers)
    tick: float  #: default price tick
    price_low: float  #: lowest price a ZI trader draws
    price_high: float  #: highest price a ZI trader draws
    reference: float  #: opening reference price (makers, price bands)
    penalty: float  #: what a provider pays per GPU-hour it fails to deliver
    posted: dict[str, float]  #: on_demand, reserved, spot
    settings: dict[str, Any]  #: the scenario settings, defaults filled in
    notes: list[str] = field(default_factory=list)

    def unit_slice(self, i: int) -> np.ndarray:
        """Return agent ``i``'s values or costs."""
        a = self.agents[i]
        return self.units[a["unit_start"] : a["unit_start"] + a["n_units"]]

    def is_consumer(self) -> np.ndarray:
        """Return a mask of the agents that consume GPU-hours (buyers and blocks)."""
        return np.isin(self.agents["kind"], (BUYER, BLOCK))

    def is_provider(self) -> np.ndarray:
        """Return a mask of the agents that supply GPU-hours."""
        return self.agents["kind"] == SELLER

    def schedules(self, hit: bool, arrived: bool) -> tuple[np.ndarray, np.ndarray]:
        """Return every consumer unit value and provider unit cost, pooled.

        ``hit``: providers hit by an outage shock keep only their remaining capacity;
        ``arrived``: include consumers who arrive with a demand surge.
        """
        values: list[np.ndarray] = []
        costs: list[np.ndarray] = []
        for i, a in enumerate(self.agents):
            u = self.unit_slice(i)
            if a["kind"] in (BUYER, BLOCK) and (arrived or a["group"] != G_SURGE):
                values.append(u)
            elif a["kind"] == SELLER:
                costs.append(u[: self.capacity_after_shock(i)] if hit else u)
        return (np.concatenate(values) if values else np.zeros(0),
                np.concatenate(costs) if costs else np.zeros(0))  # fmt: skip

    def capacity_after_shock(self, i: int) -> int:
        """Return provider ``i``'s capacity once an outage shock (if any) has hit."""
        a = self.agents[i]
        if self.settings["shock"] == "outage" and a["shock_hit"]:
            return int(np.floor(a["n_units"] * (1.0 - self.settings["outage_share"])))
        return int(a["n_units"])

    def equilibrium(self, after_shock: bool) -> m.Equilibrium:
        """Return the competitive equilibrium before or after the shock (blocks divisible)."""
        values, costs = self.schedules(hit=after_shock, arrived=after_shock)
        return m.equilibrium(values, costs)


def scenario_settings(overrides: dict[str, Any]) -> dict[str, Any]:
    """Return the scenario settings: defaults, then ``overrides``; unknown keys raise."""
    unknown = set(overrides) - set(SCENARIO_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown scenario settings: {', '.join(sorted(unknown))}")
    s = dict(SCENARIO_DEFAULTS) | overrides
    if s["preset"] not in PRESETS:
        raise ValueError(f"unknown preset {s['preset']!r}; choose one of {PRESETS}")
    if s["shock"] not in SHOCKS:
        raise ValueError(f"unknown shock {s['shock']!r}; choose one of {SHOCKS}")
    if s["trader"] not in ("zi_c", "zi_u"):
        raise ValueError(f"unknown trader {s['trader']!r}; choose zi_c or zi_u")
    if s["block_orders"] not in ("fok", "gtc"):
        raise ValueError(f"unknown block_orders {s['block_orders']!r}; choose fok or gtc")
    for key in ("provider_clip", "provider_max_open"):
        if int(s[key]) < 1:
            raise ValueError(f"scenario setting {key} = {s[key]} must be at least 1")
    if int(s["provider_max_open"]) > MAX_LIVE:
        raise ValueError(f"scenario setting provider_max_open must be at most {MAX_LIVE}")
    for key in ("shock_at", "outage_fraction", "outage_share", "vip_share", "quota",
                "reserved_share", "outage_severity"):  # fmt: skip
        if not 0.0 <= float(s[key]) <= 1.0:
            raise ValueError(f"scenario setting {key} = {s[key]} is outside 0..1")
    return s


def build(settings: dict[str, Any], steps: int, rng: np.random.Generator) -> Population:
    """Draw a population for ``settings`` (see :func:`scenario_settings`) from ``rng``."""
    s = scenario_settings(settings)
    if s["preset"].startswith("gs"):
        return _gode_sunder(s, steps, rng)
    return _compute(s, steps, rng)


class _Builder:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.units: list[np.ndarray] = []
        self.n_units = 0

    def add(self, units: np.ndarray, **fields: Any) -> None:
        row = {"unit_start": self.n_units, "n_units": len(units), "weight": 1.0,
               "max_open": 1, "clip": 1, "constrained": 1, "limit": 0} | fields  # fmt: skip
        self.rows.append(row)
        self.units.append(np.asarray(units, dtype=np.float64))
        self.n_units += len(units)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        agents = np.zeros(len(self.rows), dtype=AGENT_DTYPE)
        for i, row in enumerate(self.rows):
            for key, value in row.items():
                agents[i][key] = value
        units = np.concatenate(self.units) if self.units else np.zeros(0)
        return agents, units


def _count(s: dict[str, Any], key: str) -> int:
    value = s[key]
    n = _COUNTS[key] if value is None else int(value)
    if n < 0:
        raise ValueError(f"scenario setting {key} = {n} is negative")
    return n


def _compute(s: dict[str, Any], steps: int, rng: np.random.Generator) -> Population:
    prod = _PRODUCTS[s["preset"]]
    low = float(s["price_low"] if s["price_low"] is not None else prod["low"])
    high = float(s["price_high"] if s["price_high"] is not None else prod["high"])
    posted = {k: float(s[k] if s[k] is not None else prod[k])
              for k in ("on_demand", "reserved", "spot")}  # fmt: skip
    ref = float(prod["ref"])
    shock_step = int(s["shock_at"] * steps)
    zi_c = int(s["trader"] == "zi_c")  # providers and consumers draw prices as ZI-C or ZI-U
    b = _Builder()
    # the base economy is drawn first, so shocks change nothing else for the same seed
    n_prov = _count(s, "providers")
    for _ in range(n_prov):
        cap = int(rng.integers(50, 201))
        cost = float(rng.uniform(*prod["cost"]))
        b.add(np.full(cap, cost), kind=SELLER, group=G_PROVIDER, clip=int(s["provider_clip"]),
              max_open=int(s["provider_max_open"]), constrained=zi_c,
              outage_prob=float(rng.uniform(0.01, 0.05)) * s["outage_risk"],
              collateral=s["collateral"] * cap * ref, arrival=float(rng.random()))  # fmt: skip
    for _ in range(_count(s, "training")):
        size = int(rng.integers(60, 241))
        value = float(rng.uniform(*prod["train_value"]))
        b.add(np.full(size, value), kind=BLOCK, group=G_TRAINING, clip=size, max_open=1,
              fok=int(s["block_orders"] == "fok"), constrained=zi_c,
              collateral=s["collateral"] * size * value, arrival=float(rng.random()),
              tier=int(rng.random() >= s["vip_share"]))  # fmt: skip
    n_inf = _count(s, "inference")
    for _ in range(n_inf):
        _inference(b, s, prod, rng, surge=False, shock_step=shock_step, zi_c=zi_c)
    for _ in range(_count(s, "market_makers")):
        b.add(np.zeros(0), kind=MAKER, group=G_MAKER, weight=3.0, max_open=2,
              spread=float(rng.uniform(0.02, 0.06)), size=int(rng.integers(5, 16)), limit=60,
              collateral=s["collateral"] * 200 * ref, arrival=2.0)  # fmt: skip
    for _ in range(_count(s, "momentum")):
        b.add(np.zeros(0), kind=MOMENTUM, group=G_MOMENTUM, max_open=1,
              size=int(rng.integers(5, 11)), limit=40, window=int(rng.integers(3, 9)),
              threshold=float(rng.uniform(0.01, 0.04)), collateral=s["collateral"] * 100 * ref,
              arrival=2.0)  # fmt: skip
    for _ in range(_count(s, "snipers")):
        b.add(np.zeros(0), kind=MOMENTUM, group=G_SNIPER, weight=3.0, max_open=1, size=10,
              limit=40, window=1, threshold=0.0, collateral=s["collateral"] * 100 * ref,
              arrival=2.0)  # fmt: skip
    if s["shock"] == "surge":
        for _ in range(round(s["surge_fraction"] * n_inf)):
            _inference(b, s, prod, rng, surge=True, shock_step=shock_step, zi_c=zi_c)
    if s["shock"] == "outage" and n_prov:
        for i in rng.permutation(n_prov)[: round(s["outage_fraction"] * n_prov)]:
            b.rows[int(i)]["shock_hit"] = 1  # providers are the first rows
    agents, units = b.arrays()
    return Population(agents, units, float(prod["tick"]), low, high, ref, posted["on_demand"],
                      posted, s)  # fmt: skip


def _inference(b: _Builder, s: dict[str, Any], prod: dict[str, Any], rng: np.random.Generator,
               surge: bool, shock_step: int, zi_c: int) -> None:  # fmt: skip
    """Add an inference user: a steady demand whose value falls from its top to 30% of it."""
    demand = int(rng.integers(10, 61))
    top = float(rng.uniform(*prod["infer_top"])) * (s["surge_value"] if surge else 1.0)
    values = top * np.linspace(1.0, 0.3, demand)
    arrival = float(rng.random())
    if surge:  # surge users arrive (and may act) only after the shock
        arrival = s["shock_at"] + (1.0 - s["shock_at"]) * arrival
    b.add(values, kind=BUYER, group=G_SURGE if surge else G_INFERENCE, clip=5, max_open=2,
          collateral=s["collateral"] * float(values.sum()), arrival=arrival,
          active_from=shock_step if surge else 0, constrained=zi_c,
          tier=int(rng.random() >= s["vip_share"]))  # fmt: skip


def _gode_sunder(s: dict[str, Any], steps: int, rng: np.random.Generator) -> Population:
    from experiments import gode_sunder as gs

    mkt = gs.market(int(s["preset"][2:]))
    constrained = int(s["trader"] == "zi_c")
    b = _Builder()
    for values in mkt.values:
        b.add(np.array(values, np.float64), kind=BUYER, group=G_INFERENCE, clip=1,
              constrained=constrained, arrival=float(rng.random()),
              collateral=s["collateral"] * float(sum(values)),
              tier=int(rng.random() >= s["vip_share"]))  # fmt: skip
    for costs in mkt.costs:
        b.add(np.array(costs, np.float64), kind=SELLER, group=G_PROVIDER, clip=1,
              constrained=constrained, arrival=float(rng.random()),
              collateral=s["collateral"] * float(sum(costs)))  # fmt: skip
    agents, units = b.arrays()
    eq = mkt.equilibrium.price
    notes = [gs.MARKET5_NOTE] if mkt.constructed else []
    posted = {"on_demand": eq, "reserved": eq, "spot": eq}
    return Population(agents, units, 1.0, 1.0, float(gs.PRICE_MAX), eq, float(gs.PRICE_MAX),
                      posted, s, notes)  # fmt: skip
