"""Experiment configs: a short TOML file, validated, expanded into a grid of runs.

Schema (every table and key is optional unless marked)::

    [experiment]
    name = "h100-mechanisms"      # default: the file's stem
    description = "..."           # shown in the report
    kind = "market"               # "market" or "gode_sunder"
    seeds = 4                     # runs per grid point (--seeds overrides)
    seed = 0                      # the first seed; runs use seed, seed + 1, ...
    metrics = ["efficiency"]      # metrics the report tables and plots (default: by kind)

    [scenario]                    # kind = "market": who trades (experiments.population)
    preset = "h100"               # h100, a100, gs1 .. gs5
    shock = "outage"              # none, outage, surge
    ...                           # see SCENARIO_DEFAULTS

    [market]                      # kind = "market": how (experiments.market, .baselines)
    mechanism = "continuous"      # continuous, batch, open, fcfs, priority, quota, posted
    batch_interval = 100          # steps between auctions
    ...                           # see MARKET_DEFAULTS

    [gode_sunder]                 # kind = "gode_sunder"
    market = 1                    # 1 .. 5
    trader = "zi_c"               # zi_u, zi_c
    periods = 100
    orders_per_period = 2000
    rule = "improve"              # improve, replace, queue

Any value in ``[scenario]``, ``[market]`` or ``[gode_sunder]`` may be a list: the run grid is
the product of all lists, in file order. Settings that do not apply to a grid point (the
batch interval of a continuous market, the outage size without an outage, every market
setting of a non-market baseline) are dropped from it, and points that then coincide are
run once.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from experiments import baselines, market, population, scenarios
from experiments import gode_sunder as gs

KINDS: Final = ("market", "gode_sunder")

EXPERIMENT_DEFAULTS: Final[dict[str, Any]] = {
    "name": None,
    "description": "",
    "kind": "market",
    "seeds": 3,
    "seed": 0,
    "metrics": None,
}
GODE_SUNDER_DEFAULTS: Final[dict[str, Any]] = {
    "market": [1, 2, 3, 4, 5],
    "trader": ["zi_u", "zi_c"],
    "periods": gs.DEFAULT_PERIODS,
    "orders_per_period": gs.DEFAULT_ORDERS_PER_PERIOD,
    "rule": gs.DEFAULT_RULE,
}
#: Metrics the report shows unless the config names its own.
DEFAULT_METRICS: Final[dict[str, list[str]]] = {
    "market": [
        "efficiency",
        "contracted_efficiency",
        "loss_missed",
        "loss_extra_marginal",
        "price_rmsd",
        "volatility",
        "relative_spread",
        "blocks_completed",
        "share_training",
        "delivery_rate",
    ],
    "gode_sunder": ["efficiency", "smith_alpha", "profit_dispersion", "volume_per_period"],
}

#: Every metric a run reports, by kind: the names ``metrics`` may list.
METRICS: Final[dict[str, tuple[str, ...]]] = {
    "market": (
        "allocation_ratio", "auction_volume", "auctions", "auctions_crossed", "band_rejects",
        "blocks_completed", "blocks_fragmented", "cancels", "commands", "contracted_efficiency",
        "contracted_optimum", "contracted_surplus", "convergence_slope", "delivered_optimum",
        "delivered_surplus", "delivery_rate", "demand_served", "depth", "efficiency",
        "engine_rejects", "eq_price", "eq_price_before_shock", "eq_quantity", "fees", "fok_killed",
        "idle_steps", "improvement_rejects", "in_flight_at_close", "intermediary_short_units",
        "loss_extra_marginal", "loss_missed", "loss_other", "margin_blocks", "orders",
        "overcommitted_units", "preempted_units", "price_rmsd", "profit_dispersion",
        "providers_failed", "quota", "rationed_orders", "rationed_quantity", "relative_spread",
        "requests_served", "share_inference", "share_intermediaries", "share_surge",
        "share_training", "smith_alpha", "spread", "trades", "units_contracted", "units_delivered",
        "value_per_unit_served", "volatility", "volume", "volume_ratio", "vwap"),
    "gode_sunder": (
        "convergence_slope", "efficiency", "efficiency_std", "eq_price", "eq_quantity",
        "eq_quantity_max", "loss_extra_marginal", "loss_missed", "mean_price",
        "orders_drawn_per_period", "orders_sent_per_period", "price_rmsd", "profit_dispersion",
        "smith_alpha", "volume_per_period"),
}  # fmt: skip

#: Allowed values of the settings that take names.
_CHOICES: Final[dict[str, tuple[Any, ...]]] = {
    "preset": population.PRESETS,
    "trader": gs.TRADERS,
    "shock": population.SHOCKS,
    "block_orders": ("fok", "gtc"),
    "mechanism": scenarios.MECHANISMS,
    "rationing": market.RATIONING,
    "rule": gs.RULES,
    "market": (1, 2, 3, 4, 5),
    "kind": KINDS,
}
#: Types of settings whose default is ``None`` (a preset's value, or derived).
_TYPES: Final[dict[str, type | tuple[type, ...]]] = {
    "providers": int,
    "training": int,
    "inference": int,
    "market_makers": int,
    "momentum": int,
    "snipers": int,
    "on_demand": (int, float),
    "reserved": (int, float),
    "spot": (int, float),
    "price_low": (int, float),
    "price_high": (int, float),
    "open_steps": int,
    "tick": (int, float),
    "name": str,
    "metrics": list,
    "market": int,
    "trader": str,
}
#: Settings that matter only for some grid points: (section, key) -> applies(point).
_APPLIES: Final[dict[tuple[str, str], Any]] = {
    ("market", "batch_interval"): lambda p: p["market"]["mechanism"] == "batch",
    ("market", "rationing"): lambda p: p["market"]["mechanism"] in ("batch", "open"),
    ("market", "open_steps"): lambda p: p["market"]["mechanism"] == "open",
    ("scenario", "shock_at"): lambda p: p["scenario"].get("shock", "none") != "none",
    ("scenario", "outage_fraction"): lambda p: p["scenario"].get("shock") == "outage",
    ("scenario", "outage_share"): lambda p: p["scenario"].get("shock") == "outage",
    ("scenario", "surge_fraction"): lambda p: p["scenario"].get("shock") == "surge",
    ("scenario", "surge_value"): lambda p: p["scenario"].get("shock") == "surge",
}


class ConfigError(ValueError):
    """A config that cannot be run; the message names the file, the table and the key."""


@dataclass(frozen=True)
class Task:
    """One run: a grid point and a seed."""

    index: int  #: position in the grid (rows of the results keep this order)
    point: int  #: grid point number
    kind: str
    settings: dict[str, dict[str, Any]]  #: section -> settings for this point
    swept: dict[str, Any]  #: "section.key" -> value, for the swept keys only
    seed: int


@dataclass
class Config:
    """A parsed, validated config."""

    name: str
    description: str
    kind: str
    seeds: int
    seed: int
    metrics: list[str]
    sections: dict[str, dict[str, Any]]  #: section -> key -> value or list of values
    source: str = ""
    path: Path | None = None
    swept_keys: list[str] = field(default_factory=list)

    def points(self) -> list[dict[str, dict[str, Any]]]:
        """Return the grid points: every combination of the listed values, deduplicated."""
        axes: list[tuple[str, str, list[Any]]] = []
        for section, values in self.sections.items():
            for key, value in values.items():
                axes.append((section, key, value if isinstance(value, list) else [value]))
        points: list[dict[str, dict[str, Any]]] = []
        seen: set[str] = set()
        for combo in itertools.product(*(a[2] for a in axes)):
            point: dict[str, dict[str, Any]] = {s: {} for s in self.sections}
            for (section, key, _), value in zip(axes, combo, strict=True):
                point[section][key] = value
            _drop_irrelevant(point, self.kind)
            label = repr(sorted((s, sorted(v.items())) for s, v in point.items()))
            if label not in seen:
                seen.add(label)
                points.append(point)
        return points

    def tasks(self, seeds: int | None = None) -> list[Task]:
        """Return every run: grid points times seeds (``seeds`` overrides the config)."""
        n = self.seeds if seeds is None else seeds
        if n < 1:
            raise ConfigError(f"{self.name}: seeds must be at least 1, not {n}")
        out: list[Task] = []
        for p, point in enumerate(self.points()):
            swept = {}
            for full in self.swept_keys:
                section, key = full.split(".", 1)
                swept[full] = point.get(section, {}).get(key)
            for s in range(n):
                out.append(Task(len(out), p, self.kind, point, swept, self.seed + s))
        return out


def _drop_irrelevant(point: dict[str, dict[str, Any]], kind: str) -> None:
    if kind != "market":
        return
    point.setdefault("market", {}).setdefault("mechanism", "continuous")
    point.setdefault("scenario", {})
    if point["market"]["mechanism"] in baselines.BASELINES:
        keep = {"mechanism", "steps"}
        point["market"] = {k: v for k, v in point["market"].items() if k in keep}
    for (section, key), applies in _APPLIES.items():
        if key in point.get(section, {}) and not applies(point):
            del point[section][key]


def load(path: str | Path) -> Config:
    """Read and validate a TOML config file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror})") from exc
    return parse(text, name=path.stem, where=str(path), path=path)


def parse(text: str, name: str = "experiment", where: str = "<config>",
          path: Path | None = None) -> Config:  # fmt: skip
    """Parse and validate config ``text``; ``where`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
    exp = data.pop("experiment", {})
    if not isinstance(exp, dict):
        raise ConfigError(f"{where}: [experiment] must be a table")
    _check_keys(where, "experiment", exp, EXPERIMENT_DEFAULTS)
    for key, value in exp.items():
        _check_value(where, "experiment", key, value, EXPERIMENT_DEFAULTS[key], sweep=False)
    exp = EXPERIMENT_DEFAULTS | exp
    kind = exp["kind"]
    for metric in exp["metrics"] or ():
        if metric not in METRICS[kind]:
            raise ConfigError(f"{where}: [experiment] metrics: unknown metric {metric!r} for kind "
                              f"{kind!r}; known metrics: {', '.join(METRICS[kind])}")  # fmt: skip
    allowed = {"market": {"scenario": population.SCENARIO_DEFAULTS,
                          "market": market.MARKET_DEFAULTS},
               "gode_sunder": {"gode_sunder": GODE_SUNDER_DEFAULTS}}[kind]  # fmt: skip
    for section in data:
        if section not in allowed:
            raise ConfigError(f"{where}: unknown table [{section}] for kind {kind!r}; "
                              f"expected {', '.join(f'[{s}]' for s in allowed)}")  # fmt: skip
    sections: dict[str, dict[str, Any]] = {}
    swept: list[str] = []
    for section, defaults in allowed.items():
        values = data.get(section, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        _check_keys(where, section, values, defaults)
        if section == "gode_sunder":
            values = GODE_SUNDER_DEFAULTS | values
        for key, value in values.items():
            _check_value(where, section, key, value, defaults[key], sweep=True)
            if isinstance(value, list) and len(value) > 1:
                swept.append(f"{section}.{key}")
        sections[section] = dict(values)
    config = Config(exp["name"] or name, exp["description"], kind, exp["seeds"], exp["seed"],
                    list(exp["metrics"] or DEFAULT_METRICS[kind]), sections, text, path,
                    swept)  # fmt: skip
    _check_points(where, config)
    return config


def _check_keys(where: str, section: str, values: dict[str, Any],
                defaults: dict[str, Any]) -> None:  # fmt: skip
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} in [{section}]; known keys: "
                          f"{', '.join(sorted(defaults))}")  # fmt: skip


def _check_value(where: str, section: str, key: str, value: Any, default: Any,
                 sweep: bool) -> None:  # fmt: skip
    at = f"{where}: [{section}] {key}"
    if isinstance(value, list) and (sweep or key != "metrics"):
        if not sweep:
            raise ConfigError(f"{at}: takes one value, not a list")
        if not value:
            raise ConfigError(f"{at}: an empty list sweeps over nothing")
        for v in value:
            if isinstance(v, list | dict):
                raise ConfigError(f"{at}: a sweep lists plain values, not {type(v).__name__}s")
            _check_value(where, section, key, v, default, sweep=False)
        return
    expected = _TYPES.get(key) or type(default)
    if default is None and key not in _TYPES:
        expected = (int, float, str, bool)
    ok = isinstance(value, expected)
    if isinstance(value, bool) and expected is not bool and expected != (int, float, str, bool):
        ok = False  # TOML true is not a number
    if expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok:
        names = (
            expected.__name__
            if isinstance(expected, type)
            else " or ".join(t.__name__ for t in expected)
        )
        raise ConfigError(f"{at}: expected {names}, got {value!r}")
    has_choices = key in _CHOICES and (section != "experiment" or key == "kind")
    if has_choices and value not in _CHOICES[key]:
        choices = ", ".join(str(c) for c in _CHOICES[key])
        raise ConfigError(f"{at}: unknown value {value!r}; choose one of {choices}")
    if key in ("seeds", "periods", "orders_per_period") and value < 1:
        raise ConfigError(f"{at}: must be at least 1, not {value}")
    if key == "metrics" and not all(isinstance(m, str) for m in value):
        raise ConfigError(f"{at}: expected a list of metric names")


def _check_points(where: str, config: Config) -> None:
    """Validate every value, then every grid point, with the simulators' own checks."""
    if config.kind != "market":
        return
    singles: list[dict[str, dict[str, Any]]] = []
    for section, values in config.sections.items():
        for key, value in values.items():
            for v in value if isinstance(value, list) else [value]:
                singles.append({section: {key: v}})
    for point in singles + config.points():
        try:
            population.scenario_settings(point.get("scenario", {}))
            m = dict(point.get("market", {}))
            if m.get("mechanism", "continuous") not in market.MECHANISMS:
                del m["mechanism"]
            market.market_settings(m)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
