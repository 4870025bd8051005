"""``cfx bench``: load benchmarks that print numbers you can defend."""

from __future__ import annotations

import typer

app = typer.Typer(help="Load benchmarks that print numbers you can defend.", no_args_is_help=True)
bench_app = app


@bench_app.command("engine")
def bench_engine(
    json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    quick: bool = typer.Option(False, "--quick", help="A small smoke run (seconds, not minutes)."),
    commands: int | None = typer.Option(None, help="Commands in the standard flow (default 1M)."),
    books: int = typer.Option(10, help="Order books the flow spreads over."),
    seed: int = typer.Option(1, help="Seed of the generated flow."),
    repeats: int | None = typer.Option(None, help="Timed repetitions per measurement."),
) -> None:
    """Both engine backends on the standard flow: throughput, latency, memory."""
    from bench.engine import emit, run_from_options

    emit(run_from_options(quick, commands, books, seed, repeats), json)


@bench_app.command("experiments")
def bench_experiments(
    json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    quick: bool = typer.Option(False, "--quick", help="A small smoke run."),
) -> None:
    """Gode-Sunder reproduction time and simulator order rates."""
    from bench.experiments import emit, run

    emit(run(quick), json)


@bench_app.command("gateway")
def bench_gateway(
    url: str | None = typer.Option(None, help="A running exchange (default: start one)."),
    token: str | None = typer.Option(
        None, envvar="CFX_ADMIN_TOKEN", help="Admin token with --url."
    ),
    json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    quick: bool = typer.Option(False, "--quick", help="A small smoke run."),
) -> None:
    """Order entry over the websocket and REST: throughput and latency."""
    from bench.gateway import main as gateway_main

    args = (["--url", url] if url else []) + (["--token", token] if token else [])
    gateway_main(args + (["--json"] if json else []) + (["--quick"] if quick else []))


@bench_app.command("ledger")
def bench_ledger(
    json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    quick: bool = typer.Option(False, "--quick", help="A small smoke run."),
) -> None:
    """Ledger postings per second on SQLite and PostgreSQL."""
    from bench.ledger import main as ledger_main

    ledger_main((["--json"] if json else []) + (["--quick"] if quick else []))
