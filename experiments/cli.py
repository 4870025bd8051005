"""``cfx experiment``: run experiment configs and reproduce Gode & Sunder (1993).

Wire it into the main CLI with ``app.add_typer(experiments.cli.app, name="experiment")``.
"""

from __future__ import annotations

import itertools
import json
import re
from importlib import resources
from pathlib import Path

import typer

app = typer.Typer(help="Market-design experiments on the cfx engine.", no_args_is_help=True)


@app.command("run")
def run(
    config: Path = typer.Argument(..., help="Experiment config (TOML); see docs/experiments.md."),
    seeds: int | None = typer.Option(None, "--seeds", help="Seeds per setting (default: config)."),
    out: Path | None = typer.Option(
        None, "--out", help="Output directory (default: ./experiment-results/NAME)."
    ),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="Ray cluster address (default: a local Ray with --cpus)."
    ),
    cpus: int = typer.Option(2, "--cpus", help="CPUs of the local Ray instance."),
    no_ray: bool = typer.Option(False, "--no-ray", help="Run in this process, without Ray."),
) -> None:
    """Run every setting and seed of CONFIG; write results.csv, plots and report.md."""
    from experiments.config import ConfigError, load
    from experiments.runner import run_experiment

    for option, value in (("--seeds", seeds), ("--cpus", cpus)):
        if value is not None and value < 1:
            typer.echo(f"error: {option} must be at least 1, not {value}", err=True)
            raise typer.Exit(2)
    try:
        conf = load(config)
        target = out or Path("experiment-results") / conf.name
        result = run_experiment(conf, seeds=seeds, out=target, ray_address=ray_address,
                                parallel=not no_ray, num_cpus=cpus)  # fmt: skip
    except (ConfigError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{len(result.tasks)} runs in {result.seconds:.1f} s ({result.where}); "
               f"report: {target / 'report.md'}")  # fmt: skip


@app.command("gode-sunder")
def gode_sunder(
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    periods: int = typer.Option(100, help="Periods per market and trader type."),
    orders: int = typer.Option(2000, "--orders", help="Orders per period."),
    rule: str = typer.Option("improve", help="Standing-order rule: improve, replace or queue."),
    seed: int = typer.Option(1993, help="Seed."),
    sensitivity: bool = typer.Option(
        False, "--sensitivity", help="Also show efficiency against orders per period and rule."
    ),
) -> None:
    """Reproduce Gode & Sunder (1993): ZI-U and ZI-C efficiency beside the published table."""
    from experiments import gode_sunder as gs

    if seed < 0:
        typer.echo(f"error: --seed must be at least 0, not {seed}", err=True)
        raise typer.Exit(2)
    try:
        result = gs.run(periods, orders, rule, seed)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    out = result.to_json()
    if sensitivity:
        rows = gs.sensitivity(periods=periods, seed=seed)
        out["sensitivity"] = rows
    if json_out:
        typer.echo(json.dumps(out))
        return
    typer.echo("Gode & Sunder (1993), allocative efficiency (%), cfx engine beside the paper")
    typer.echo(result.table())
    if sensitivity:
        typer.echo("\nefficiency (%) ZI-U/ZI-C by standing-order rule and orders per period")
        typer.echo(gs.sensitivity_table(out["sensitivity"]))


@app.command("examples")
def examples() -> None:
    """List the example configs shipped with cfx."""
    for item in sorted(resources.files("experiments").joinpath("configs").iterdir(),
                       key=lambda p: p.name):  # fmt: skip
        if item.name.endswith(".toml"):
            typer.echo(f"{item}\n    {_first_sentence(item.read_text())}")


def _first_sentence(text: str) -> str:
    """Return the first sentence of the comment that opens a config, whole."""
    comment = itertools.takewhile(lambda line: line.startswith("#"), text.splitlines())
    words = " ".join(line.lstrip("# ") for line in comment)
    return re.split(r"(?<=[.?!])\s", words, maxsplit=1)[0]
