"""The ``cfx`` command line."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="cfx",
    help="cfx: a compute futures exchange for GPU-hours.",
    no_args_is_help=True,
    add_completion=False,
)
bench_app = typer.Typer(
    help="Load benchmarks that print numbers you can defend.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
