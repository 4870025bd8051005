"""Experiment benchmark: the Gode-Sunder reproduction and the simulators' order rates.

Run ``python -m bench.experiments`` (``--json`` for scripts, ``--quick`` for a smoke run).
What it measures:

- the full Gode & Sunder (1993) reproduction (5 markets x 2 trader types x 100 periods of
  2000 orders): the first call in this process (which loads the compiled code from numba's
  cache, or compiles it) and warm calls; outside ``--quick`` also a fresh process with an
  empty numba cache, which compiles everything, the engine's kernels included;
- agent orders per second of the Gode-Sunder loop (ZI traders drawing orders and calling
  the engine kernel in compiled code), warm;
- agent orders and simulation steps per second of the market simulator on the H100
  population, continuous trading and batch auctions, warm.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

from bench import machine
from bench.machine import machine_info

TARGETS = {"gode_sunder_s": 30.0, "agent_orders_per_s": 1_000_000}


def bench_gode_sunder(repeats: int, periods: int) -> dict[str, Any]:
    """Time the full reproduction: first call in this process, then warm calls."""
    from experiments import gode_sunder as gs

    t0 = time.perf_counter()
    result = gs.run(periods=periods)
    first = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = gs.run(periods=periods)
        warm.append(time.perf_counter() - t0)
    return {
        "periods": periods,
        "orders_per_period": gs.DEFAULT_ORDERS_PER_PERIOD,
        "orders": result.orders,
        "first_call_s": first,
        "warm_s": statistics.median(warm),
        "table": result.to_json()["markets"],
    }


def bench_cold_process(periods: int) -> dict[str, Any]:
    """Time the reproduction in a fresh process with an empty numba cache (compiles all)."""
    code = ("import time; t = time.perf_counter(); from experiments import gode_sunder as gs; "
            f"gs.run(periods={periods}); print(time.perf_counter() - t)")  # fmt: skip
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)  # fmt: skip
        wall = time.perf_counter() - t0
    return {"inside_s": float(out.stdout.strip().splitlines()[-1]), "wall_s": wall}


def bench_zi_orders(orders: int, repeats: int) -> dict[str, Any]:
    """Agent orders/s of the Gode-Sunder loop: ZI-U and ZI-C in market 1, warm."""
    from experiments import gode_sunder as gs

    mkt = gs.market(1)
    out: dict[str, Any] = {}
    for trader in gs.TRADERS:
        gs.simulate(mkt, trader, periods=2, orders_per_period=100)  # warm-up
        rates = []
        for r in range(repeats):
            # orders the traders drew, over the loop's own time (inside compiled code)
            s = gs.simulate(mkt, trader, periods=max(1, orders // 10_000),
                            orders_per_period=10_000, seed=r)  # fmt: skip
            rates.append(s.orders / s.seconds)
        out[trader] = {"orders_per_s": statistics.median(rates), "min": min(rates),
                       "max": max(rates)}  # fmt: skip
    return out


def bench_market(steps: int, repeats: int) -> dict[str, Any]:
    """Agent orders/s and steps/s of the market simulator on the H100 population, warm."""
    from experiments import market, population

    pop = population.build({"preset": "h100"}, steps, np.random.default_rng([0, 0]))
    out: dict[str, Any] = {}
    for mechanism in ("continuous", "batch"):
        settings = {"mechanism": mechanism, "steps": steps}
        market.run_session(pop, settings | {"steps": 1000}, np.random.default_rng(0))
        orders, secs, commands = [], [], []
        for r in range(repeats):
            t0 = time.perf_counter()
            s = market.run_session(pop, settings, np.random.default_rng([0, 1, r]))
            secs.append(time.perf_counter() - t0)
            orders.append(s.counters["orders"])
            commands.append(s.commands)
        i = secs.index(statistics.median(secs)) if repeats % 2 else int(np.argmin(secs))
        out[mechanism] = {"steps": steps, "orders": orders[i], "engine_commands": commands[i],
                          "seconds": secs[i], "orders_per_s": orders[i] / secs[i],
                          "steps_per_s": steps / secs[i]}  # fmt: skip
    return out


def run(quick: bool = False) -> dict[str, Any]:
    """Run every experiment benchmark and return the results as a dict."""
    repeats = 1 if quick else 3
    result: dict[str, Any] = {"benchmark": "experiments", "machine": machine_info(),
                              "targets": TARGETS}  # fmt: skip
    result["gode_sunder"] = bench_gode_sunder(repeats, 20 if quick else 100)
    if not quick:
        result["gode_sunder"]["cold_process"] = bench_cold_process(100)
    result["zi_loop"] = bench_zi_orders(100_000 if quick else 1_000_000, repeats)
    result["market"] = bench_market(20_000 if quick else 200_000, repeats)
    return result


def render(result: dict[str, Any]) -> None:
    """Print the results as rich tables."""
    from rich.table import Table

    from bench.machine import console as wide_console

    console = wide_console()
    m = result["machine"]
    console.print("[bold]cfx experiments benchmark[/]")
    console.print(machine.describe(m), markup=False, highlight=False)
    g = result["gode_sunder"]
    table = Table(title=f"Gode & Sunder reproduction: 5 markets x 2 trader types x "
                        f"{g['periods']} periods x {g['orders_per_period']} orders")  # fmt: skip
    for col in ("run", "seconds", "target"):
        table.add_column(col, justify="left" if col == "run" else "right")
    target = f"<= {TARGETS['gode_sunder_s']:.0f}"
    table.add_row("first call in this process (cache load or compile)",
                  f"{g['first_call_s']:.2f}", target)  # fmt: skip
    table.add_row("warm", f"{g['warm_s']:.2f}", target)
    if "cold_process" in g:
        table.add_row("fresh process, empty numba cache (compiles everything)",
                      f"{g['cold_process']['wall_s']:.2f}", target)  # fmt: skip
    console.print(table)
    table = Table(title="agent orders per second")
    for col in ("simulator", "orders/s", "steps/s", "target"):
        table.add_column(col, justify="left" if col == "simulator" else "right")
    best = f">= {TARGETS['agent_orders_per_s']:,}"
    for trader, r in result["zi_loop"].items():
        table.add_row(f"Gode-Sunder loop, {trader.upper().replace('_', '-')}",
                      f"{r['orders_per_s']:,.0f}", "", best)  # fmt: skip
    for mech, r in result["market"].items():
        table.add_row(f"market simulator, H100, {mech}", f"{r['orders_per_s']:,.0f}",
                      f"{r['steps_per_s']:,.0f}", "")  # fmt: skip
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.experiments",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    args = parser.parse_args(argv)
    emit(run(args.quick), args.json)
    return 0


def emit(result: dict[str, Any], as_json: bool) -> None:
    """Print ``result`` as JSON or as tables."""
    machine.emit(result, as_json, render)


if __name__ == "__main__":
    raise SystemExit(main())
