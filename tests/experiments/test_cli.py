"""The ``cfx experiment`` commands, through typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from experiments.cli import app

runner = CliRunner()


def test_gode_sunder_json() -> None:
    result = runner.invoke(app, ["gode-sunder", "--json", "--periods", "10"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert [set(r) for r in out["markets"]] == [
        {"market", "zi_u", "zi_c", "paper_zi_u", "paper_zi_c"}
    ] * 5
    assert out["settings"]["periods"] == 10


def test_gode_sunder_table() -> None:
    result = runner.invoke(app, ["gode-sunder", "--periods", "5", "--rule", "replace"])
    assert result.exit_code == 0, result.output
    assert "paper" in result.output and "market 5" in result.output


def test_run_without_ray(tmp_path: Path) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(
        '[scenario]\npreset = "gs3"\n[market]\nsteps = 800\n[experiment]\nseeds = 1\n'
    )
    result = runner.invoke(app, ["run", str(config), "--no-ray", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "report.md").exists()


def test_run_with_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[market]\nmechanism = 'barter'\n")
    result = runner.invoke(app, ["run", str(config), "--no-ray"])
    assert result.exit_code == 2
    assert "unknown value 'barter'" in result.output


def test_run_refuses_fewer_than_one_cpu_or_seed(tmp_path: Path) -> None:
    config = tmp_path / "exp.toml"
    config.write_text("[experiment]\nseeds = 1\n")
    for option in ("--cpus", "--seeds"):
        result = runner.invoke(app, ["run", str(config), option, "0"])
        assert result.exit_code == 2, result.output
        assert result.stderr == f"error: {option} must be at least 1, not 0\n"


def test_gode_sunder_names_a_negative_seed() -> None:
    result = runner.invoke(app, ["gode-sunder", "--seed", "-1"])
    assert result.exit_code == 2
    assert result.stderr == "error: --seed must be at least 0, not -1\n"


def test_gode_sunder_sensitivity_rounds_both_trader_types() -> None:
    result = runner.invoke(app, ["gode-sunder", "--json", "--periods", "2", "--sensitivity"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["sensitivity"]
    assert all(row[t] == round(row[t], 4) for row in rows for t in ("zi_u", "zi_c"))


def test_examples_show_each_first_sentence_whole() -> None:
    result = runner.invoke(app, ["examples"])
    assert result.exit_code == 0, result.output
    descriptions = result.output.splitlines()[1::2]
    assert len(descriptions) == 3
    assert all(d.startswith("    ") and d.rstrip()[-1] in ".?!" for d in descriptions)
    assert (
        "    Which mechanism allocates scarce H100 time best, in calm times, after an outage and "
        "after a demand surge?"
    ) in descriptions
