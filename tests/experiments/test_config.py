"""Configs: the shipped examples load, lists expand into a grid, mistakes are explained."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from experiments import config as cfg
from experiments import gode_sunder as gs
from experiments import population, scenarios


def shipped() -> list[Path]:
    root = resources.files("experiments").joinpath("configs")
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".toml"))


@pytest.mark.parametrize("path", shipped(), ids=lambda p: p.stem)
def test_the_example_configs_load(path: Path) -> None:
    conf = cfg.load(path)
    assert conf.points() and conf.tasks(1)


def test_lists_expand_into_a_grid_without_irrelevant_settings() -> None:
    conf = cfg.parse("""
        [scenario]
        shock = ["none", "outage"]
        outage_fraction = [0.2, 0.5]
        [market]
        mechanism = ["continuous", "batch", "fcfs"]
        batch_interval = [10, 100]
    """)
    points = conf.points()
    # none: 1 + 2 + 1 mechanisms; outage: twice as many (two outage sizes)
    assert len(points) == 4 + 8
    continuous = [p for p in points if p["market"]["mechanism"] == "continuous"]
    assert all("batch_interval" not in p["market"] for p in continuous)
    assert all("outage_fraction" not in p["scenario"] for p in points
               if p["scenario"]["shock"] == "none")  # fmt: skip
    assert conf.swept_keys == ["scenario.shock", "scenario.outage_fraction", "market.mechanism",
                               "market.batch_interval"]  # fmt: skip
    tasks = conf.tasks(seeds=2)
    assert len(tasks) == 24 and [t.seed for t in tasks[:2]] == [0, 1]


def test_defaults_and_seeds() -> None:
    conf = cfg.parse("[experiment]\nseeds = 4\nseed = 10\n", name="x")
    assert (conf.name, conf.kind, conf.seeds) == ("x", "market", 4)
    assert [t.seed for t in conf.tasks()] == [10, 11, 12, 13]
    assert [t.seed for t in conf.tasks(seeds=2)] == [10, 11]
    gs = cfg.parse('[experiment]\nkind = "gode_sunder"\n')
    assert len(gs.points()) == 10  # five markets, two trader types


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[market\nmechanism = 1", "not valid TOML"),
        ("[markets]\nmechanism = 'batch'", "unknown table [markets]"),
        ("[market]\nmechanizm = 'batch'", "unknown key 'mechanizm' in [market]"),
        ("[market]\nmechanism = 'auction'", "[market] mechanism: unknown value 'auction'"),
        ("[market]\nbatch_interval = '10'", "[market] batch_interval: expected int"),
        ("[market]\nimprovement_rule = 1", "[market] improvement_rule: expected bool"),
        ("[market]\nlatency = true", "[market] latency: expected int"),
        ("[market]\nbatch_interval = []", "an empty list"),
        ("[market]\nbatch_interval = 0", "batch_interval = 0 must be at least 1"),
        ("[scenario]\nshock_at = 2.0", "shock_at = 2.0 is outside 0..1"),
        ("[experiment]\nseeds = 0", "[experiment] seeds: must be at least 1"),
        ("[experiment]\nseeds = [1, 2]", "takes one value"),
        ("[experiment]\nkind = 'lab'", "unknown value 'lab'"),
        ("[experiment]\nkind = 'gode_sunder'\n[market]\nsteps = 1", "unknown table [market]"),
        ("[experiment]\nkind = 'gode_sunder'\n[gode_sunder]\nmarket = 7", "unknown value 7"),
        (
            "[experiment]\nmetrics = ['effciency']",
            "[experiment] metrics: unknown metric 'effciency'",
        ),
        (
            "[experiment]\nkind = 'gode_sunder'\nmetrics = ['blocks_completed']",
            "unknown metric 'blocks_completed' for kind 'gode_sunder'; known metrics: convergence_slope",
        ),
    ],
)
def test_config_errors_name_the_file_table_and_key(text: str, message: str) -> None:
    with pytest.raises(cfg.ConfigError) as err:
        cfg.parse(text, where="exp.toml")
    assert str(err.value).startswith("exp.toml: ")
    assert message in str(err.value)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError, match="cannot read"):
        cfg.load(tmp_path / "nope.toml")


def test_the_known_metrics_are_what_runs_report() -> None:
    market: set[str] = set()
    for mechanism in scenarios.MECHANISMS:
        for shock in population.SHOCKS:
            run = scenarios.run({"preset": "gs3", "shock": shock},
                                {"mechanism": mechanism, "steps": 400}, 0)  # fmt: skip
            market |= set(run.metrics)
    assert market == set(cfg.METRICS["market"])
    summary = gs.simulate(gs.market(1), "zi_c", 2, 50, "improve", 1).summary()
    settings = {"market", "trader", "periods", "orders_per_period", "rule", "seed"}
    assert set(summary) - settings == set(cfg.METRICS["gode_sunder"])
    for kind, metrics in cfg.DEFAULT_METRICS.items():
        assert set(metrics) <= set(cfg.METRICS[kind])
