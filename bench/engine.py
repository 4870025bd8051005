"""Engine benchmark: both backends on the standard flow, side by side in one run.

Run ``cfx bench engine`` or ``python -m bench.engine`` (``--json`` for scripts,
``--quick`` for a smoke run). What it measures:

- batch throughput of the numba engine at several batch sizes (median of repetitions after a
  warm-up run that pays for compilation and first-touch page faults);
- the reference engine on the same flow, and a check that both wrote identical events;
- one command per call from Python (``Engine.process_one``): throughput, and per-command
  latency percentiles from an HDR histogram;
- memory for a book of resting orders (default 1M) in the numba engine.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from bench import machine, options
from bench.flows import N_TICKS, resting_flow, standard_flow
from bench.machine import machine_info
from exchange.engine import Engine

TARGETS = {
    "numba_batch_cmd_per_s": 5_000_000,
    "one_call_cmd_per_s": 500_000,
    "resting_1m_mb": 200,
}


def _engine(backend: str, n_books: int) -> Engine:
    engine = Engine(backend=backend)
    for b in range(n_books):
        engine.add_book(b, N_TICKS)
    return engine


def _run_batches(backend: str, flow: np.ndarray, n_books: int, batch: int, copy: bool = True,
                 keep: bool = False) -> tuple[float, list[np.ndarray]]:  # fmt: skip
    """Time one fresh engine over the flow; ``keep`` holds on to every batch's events."""
    engine = _engine(backend, n_books)
    out = []
    gc.collect()
    start = time.perf_counter()
    for i in range(0, len(flow), batch):
        events = engine.process(flow[i : i + batch], copy=copy)
        if keep:
            out.append(events)
    return time.perf_counter() - start, out


def _summary(rates: list[float]) -> dict[str, float]:
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def bench_batches(
    flow: np.ndarray, n_books: int, batch_sizes: list[int], repeats: int
) -> dict[str, Any]:
    """Median commands/s of the numba engine per batch size (after one warm-up run).

    ``copied``: each batch returns its own event array; ``viewed``: each batch's events are a
    view of the engine's buffer, consumed before the next batch (as the sequencer does).
    """
    _run_batches("numba", flow, n_books, batch_sizes[0])  # warm-up: compile, touch pages
    results = {}
    for batch in batch_sizes:
        for mode in ("copied", "viewed"):
            rates = [len(flow) / _run_batches("numba", flow, n_books, batch, mode == "copied")[0]
                     for _ in range(repeats)]  # fmt: skip
            results[f"{batch} {mode}"] = _summary(rates)
    return results


def bench_reference(flow: np.ndarray, n_books: int, batch: int) -> dict[str, Any]:
    """Reference engine throughput, and whether its events equal the numba engine's."""
    seconds, ref_events = _run_batches("reference", flow, n_books, batch, keep=True)
    _, numba_events = _run_batches("numba", flow, n_books, batch, keep=True)
    identical = all(
        a.tobytes() == b.tobytes() for a, b in zip(ref_events, numba_events, strict=True)
    )
    n_events = sum(len(e) for e in ref_events)
    return {"cmd_per_s": len(flow) / seconds, "events": n_events, "identical_events": identical}


def bench_one_call(flow: np.ndarray, n_books: int, repeats: int) -> dict[str, Any]:
    """Throughput and latency of one ``process_one`` call per command."""
    names = ("kind", "book", "order_id", "account", "side", "price", "quantity", "tif", "flags",
             "stp", "seq", "ts")  # fmt: skip
    rows = list(zip(*(flow[n].tolist() for n in names), strict=True))
    rates = []
    for _ in range(repeats + 1):
        engine = _engine("numba", n_books)
        call = engine.process_one
        gc.collect()
        start = time.perf_counter()
        for row in rows:
            call(*row)
        rates.append(len(rows) / (time.perf_counter() - start))
    rates = rates[1:]  # the first run is the warm-up
    engine = _engine("numba", n_books)
    call = engine.process_one
    hist = HdrHistogram(1, 10_000_000_000, 3)
    clock = time.perf_counter_ns
    for row in rows:
        t0 = clock()
        call(*row)
        hist.record_value(max(1, clock() - t0))
    latency = {f"p{p:g}": hist.get_value_at_percentile(p) for p in (50, 90, 99, 99.9)}
    latency["max"] = hist.get_max_value()
    return {"cmd_per_s": _summary(rates), "latency_ns": latency}


def bench_memory(n_orders: int, n_books: int) -> dict[str, Any]:
    """Memory of the numba engine holding ``n_orders`` resting orders."""
    flow = resting_flow(n_orders, n_books)
    gc.collect()
    tracemalloc.start()
    engine = _engine("numba", n_books)
    for i in range(0, len(flow), 100_000):
        engine.process(flow[i : i + 100_000])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    held = engine.memory_bytes()  # type: ignore[attr-defined]
    assert len(engine.resting_orders()) == n_orders
    return {"orders": n_orders, "held_mb": held / 1e6, "peak_mb": peak / 1e6,
            "bytes_per_order": held / n_orders}  # fmt: skip


def run(n_commands: int = 1_000_000, n_books: int = 10, seed: int = 1, repeats: int = 3,
        batch_sizes: tuple[int, ...] = (1_000, 10_000, 100_000), one_call: int = 200_000,
        resting: int = 1_000_000) -> dict[str, Any]:  # fmt: skip
    """Run every engine benchmark and return the results as a dict."""
    t0 = time.perf_counter()
    flow = standard_flow(n_commands, n_books, seed)
    kinds = np.bincount(flow["kind"], minlength=4)
    result: dict[str, Any] = {
        "benchmark": "engine",
        "machine": machine_info(),
        "flow": {
            "commands": n_commands,
            "books": n_books,
            "seed": seed,
            "adds": int(kinds[1]),
            "cancels": int(kinds[2]),
            "amends": int(kinds[3]),
            "generated_s": round(time.perf_counter() - t0, 2),
        },
        "targets": TARGETS,
    }
    result["numba_batch"] = bench_batches(flow, n_books, list(batch_sizes), repeats)
    result["reference"] = bench_reference(flow, n_books, batch_sizes[1])
    best = max(r["median"] for r in result["numba_batch"].values())
    result["ratio_numba_to_reference"] = best / result["reference"]["cmd_per_s"]
    result["one_call"] = bench_one_call(flow[:one_call], n_books, repeats)
    result["memory"] = bench_memory(resting, n_books)
    return result


def render(result: dict[str, Any]) -> None:
    """Print the results as rich tables."""
    from rich.table import Table

    from bench.machine import console as wide_console

    console = wide_console()
    m = result["machine"]
    f = result["flow"]
    console.print("[bold]cfx engine benchmark[/]")
    console.print(machine.describe(m), markup=False, highlight=False)
    console.print(f"flow: {f['commands']:,} commands over {f['books']} books "
                  f"({f['adds']:,} adds, {f['cancels']:,} cancels, {f['amends']:,} amends), seed {f['seed']}")  # fmt: skip
    table = Table(title="throughput (commands/s)")
    for col in ("path", "median", "min", "max", "target"):
        table.add_column(col, justify="right" if col != "path" else "left")
    target = TARGETS["numba_batch_cmd_per_s"]
    for key, r in result["numba_batch"].items():
        batch, mode = key.split()
        table.add_row(f"numba, batches of {int(batch):,}, events {mode}", f"{r['median']:,.0f}", f"{r['min']:,.0f}",
                      f"{r['max']:,.0f}", f">= {target:,}")  # fmt: skip
    oc = result["one_call"]["cmd_per_s"]
    table.add_row("numba, one command per call", f"{oc['median']:,.0f}", f"{oc['min']:,.0f}",
                  f"{oc['max']:,.0f}", f">= {TARGETS['one_call_cmd_per_s']:,}")  # fmt: skip
    ref = result["reference"]
    table.add_row("reference", f"{ref['cmd_per_s']:,.0f}", "", "", "")
    console.print(table)
    console.print(f"numba / reference: {result['ratio_numba_to_reference']:,.1f}x; "
                  f"identical events: {ref['identical_events']} ({ref['events']:,} events)")  # fmt: skip
    lat = result["one_call"]["latency_ns"]
    console.print("one call latency (ns): " + ", ".join(f"{k} {v:,}" for k, v in lat.items()))
    mem = result["memory"]
    console.print(f"memory: {mem['orders']:,} resting orders held in {mem['held_mb']:,.1f} MB "
                  f"({mem['bytes_per_order']:.0f} B/order incl. ladders; peak traced {mem['peak_mb']:,.1f} MB; "
                  f"target <= {TARGETS['resting_1m_mb']} MB)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--commands", type=int, default=None)
    parser.add_argument("--books", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        result = run_from_options(args.quick, args.commands, args.books, args.seed, args.repeats)
    except options.OptionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    emit(result, args.json)
    return 0


def run_from_options(quick: bool, commands: int | None, books: int, seed: int,
                     repeats: int | None) -> dict[str, Any]:  # fmt: skip
    """Run with the command-line defaults (``quick`` shrinks every size).

    Raise :class:`bench.options.OptionError` naming the option for a value it cannot run with.
    """
    commands = options.at_least(commands, "--commands", 1, 20_000 if quick else 1_000_000)
    books = options.at_least(books, "--books", 1, 10)
    seed = options.at_least(seed, "--seed", 0, 1)
    repeats = options.at_least(repeats, "--repeats", 1, 1 if quick else 3)
    if quick:
        return run(commands, books, seed, repeats, (1_000, 5_000), 5_000, 20_000)
    return run(commands, books, seed, repeats)


def emit(result: dict[str, Any], as_json: bool) -> None:
    """Print ``result`` as JSON or as tables."""
    machine.emit(result, as_json, render)


if __name__ == "__main__":
    raise SystemExit(main())
