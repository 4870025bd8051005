"""Running configs: outputs, determinism, and the Ray path (once)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from experiments import config as cfg
from experiments import scenarios
from experiments.runner import run_experiment

TINY = """
[experiment]
name = "tiny"
seeds = 2
metrics = ["efficiency", "price_rmsd", "delivery_rate"]

[scenario]
preset = "gs2"

[market]
mechanism = ["continuous", "batch", "fcfs"]
batch_interval = 20
steps = 1500
"""


def test_same_seed_same_metrics_other_seed_other_metrics() -> None:
    scenario = {"preset": "h100", "shock": "surge", "providers": 6, "inference": 10}
    a = scenarios.run(scenario, {"mechanism": "continuous", "steps": 2000}, 3)
    b = scenarios.run(scenario, {"mechanism": "continuous", "steps": 2000}, 3)
    c = scenarios.run(scenario, {"mechanism": "continuous", "steps": 2000}, 4)
    assert repr(a.metrics) == repr(b.metrics) and repr(a.series) == repr(b.series)
    assert a.metrics != c.metrics


def test_a_local_run_writes_csv_plots_and_report(tmp_path: Path) -> None:
    conf = cfg.parse(TINY, name="tiny")
    first = run_experiment(conf, out=tmp_path / "a", parallel=False, progress=False)
    again = run_experiment(conf, out=tmp_path / "b", parallel=False, progress=False)
    names = {p.name for p in first.files}
    assert {"results.csv", "summary.csv", "report.md", "efficiency.png", "prices.png"} <= names
    a = (tmp_path / "a" / "results.csv").read_bytes()
    assert a == (tmp_path / "b" / "results.csv").read_bytes()  # byte for byte
    rows = list(csv.DictReader((tmp_path / "a" / "results.csv").read_text().splitlines()))
    assert len(rows) == 6
    assert [r["market.mechanism"] for r in rows[::2]] == ["continuous", "batch", "fcfs"]
    assert all(0 < float(r["efficiency"]) <= 1 for r in rows)
    report = (tmp_path / "a" / "report.md").read_text()
    assert "![efficiency](efficiency.png)" in report and "mechanism=batch" in report
    assert len(again.summary()) == 3


def test_a_gode_sunder_sweep(tmp_path: Path) -> None:
    conf = cfg.parse("""
        [experiment]
        kind = "gode_sunder"
        seeds = 1
        [gode_sunder]
        market = [1, 3]
        periods = 5
        orders_per_period = [50, 500]
    """, name="gs")  # fmt: skip
    result = run_experiment(conf, out=tmp_path, parallel=False, progress=False)
    assert len(result.rows()) == 8
    assert (tmp_path / "sensitivity.png").exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_sweep_on_ray_matches_the_local_run(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    conf = cfg.parse(TINY, name="tiny")
    on_ray = run_experiment(conf, out=tmp_path / "ray", parallel=True, progress=False)
    local = run_experiment(conf, out=tmp_path / "local", parallel=False, progress=False)
    assert on_ray.where.startswith("local Ray")
    ray_csv = (tmp_path / "ray" / "results.csv").read_bytes()
    assert ray_csv == (tmp_path / "local" / "results.csv").read_bytes()
    assert local.where == "in process"


def test_one_seed_reports_no_spread(tmp_path: Path) -> None:
    conf = cfg.parse(TINY.replace("seeds = 2", "seeds = 1"), name="tiny")
    report = run_experiment(conf, out=tmp_path, parallel=False, progress=False)
    rows = [line for line in (tmp_path / "report.md").read_text().splitlines()
            if line.startswith("| mechanism=")]  # fmt: skip
    assert len(rows) == 3 and report.summary()[0]["runs"] == 1
    assert not any("±" in row for row in rows)
    assert "One seed: no standard deviation." in (tmp_path / "report.md").read_text()
