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
    from bench.options import OptionError

    try:
        result = run_from_options(quick, commands, books, seed, repeats)
    except OptionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    emit(result, json)


@bench_app.command("experiments")
def bench_experiments(
    json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    quick: bool = typer.Option(False, "--quick", help="A small smoke run."),
) -> None:
    """Gode-Sunder reproduction time and simulator order rates."""
    from bench.experiments import emit, run

    emit(run(quick), json)


@bench_app.command(
    "gateway", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def bench_gateway(
    ctx: typer.Context,
    url: str | None = typer.Option(None, help="A running exchange (default: start one)."),
    token: str | None = typer.Option(
        None, envvar="CFX_ADMIN_TOKEN", help="Admin token with --url."
    ),
    scenario: str | None = typer.Option(None, help="TOML scenario file (flags override it)."),
    sweep: str | None = typer.Option(None, help="Offered rates to sweep, e.g. 500,1000,2000."),
    rate: float | None = typer.Option(None, help="One offered rate, orders/s (open loop)."),
    p99_target_ms: float | None = typer.Option(None, help="p99 target for the knee (10 ms)."),
    out: str = typer.Option("bench-results", help="Directory for the PNG plots."),
    json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    quick: bool = typer.Option(False, "--quick", help="A small smoke run."),
) -> None:
    """Order entry over the websocket and REST: open-loop sweeps, knee, latency, CPU.

    More flags pass through, with their defaults:
    --transport websocket, rest or both (both); --connections (4);
    --window, in flight per websocket connection in the closed loop (16);
    --duration, measured seconds (10); --warmup, seconds (2);
    --repetitions (3); --symbols (1); --no-closed skips the closed loop.
    """
    from bench.gateway import main as gateway_main

    args = ["--out", out, *ctx.args]
    for flag, value in (("--url", url), ("--token", token), ("--scenario", scenario),
                        ("--sweep", sweep), ("--rate", rate), ("--p99-target-ms", p99_target_ms)):  # fmt: skip
        if value is not None:
            args.append(f"{flag}={value}")
    args += (["--json"] if json else []) + (["--quick"] if quick else [])
    raise typer.Exit(gateway_main(args, prog="cfx bench gateway"))


@bench_app.command("feed")
def bench_feed(
    subscribers: str | None = typer.Option(None, help="Subscribers (or a list: 50,200,500)."),
    rate: str | None = typer.Option(None, help="Offered commands/s (or a list: 500,2000)."),
    duration: float | None = typer.Option(None, help="Measured seconds per repetition."),
    warmup: float | None = typer.Option(None, help="Seconds before measuring."),
    repetitions: int | None = typer.Option(None, help="Repetitions (median, min, max)."),
    processes: int | None = typer.Option(None, help="Client processes for the subscribers."),
    url: str | None = typer.Option(None, help="A running exchange on the wall clock."),
    token: str | None = typer.Option(None, envvar="CFX_ADMIN_TOKEN", help="Admin token."),
    out: str = typer.Option("bench-results", help="Directory for the PNG plots."),
    json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    quick: bool = typer.Option(False, "--quick", help="A small smoke run."),
) -> None:
    """Market-data fan-out: delivery lag from event time to each subscriber, gaps."""
    from bench.feed import main as feed_main

    args = ["--out", out]
    for flag, value in (("--subscribers", subscribers), ("--rate", rate), ("--duration", duration),
                        ("--warmup", warmup), ("--repetitions", repetitions), ("--processes", processes),
                        ("--url", url), ("--token", token)):  # fmt: skip
        if value is not None:
            args.append(f"{flag}={value}")
    args += (["--json"] if json else []) + (["--quick"] if quick else [])
    raise typer.Exit(feed_main(args))


@bench_app.command("recovery")
def bench_recovery(
    sizes: str | None = typer.Option(None, help="Journal lengths, e.g. 10000,100000,1000000."),
    repetitions: int | None = typer.Option(None, help="Repetitions (median, min, max)."),
    no_serve: bool = typer.Option(False, "--no-serve", help="Skip timing cfx serve."),
    out: str = typer.Option("bench-results", help="Directory for the PNG plot."),
    json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    quick: bool = typer.Option(False, "--quick", help="A small smoke run."),
) -> None:
    """Journal replay and restart time as the journal grows."""
    from bench.recovery import main as recovery_main

    args = ["--out", out]
    if sizes is not None:
        args.append(f"--sizes={sizes}")
    if repetitions is not None:
        args += ["--repetitions", str(repetitions)]
    args += (["--no-serve"] if no_serve else []) + (["--json"] if json else [])
    args += ["--quick"] if quick else []
    raise typer.Exit(recovery_main(args))


@bench_app.command("ledger")
def bench_ledger(
    json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    quick: bool = typer.Option(False, "--quick", help="A small smoke run."),
) -> None:
    """Ledger postings per second on SQLite and PostgreSQL."""
    from bench.ledger import main as ledger_main

    ledger_main((["--json"] if json else []) + (["--quick"] if quick else []))
