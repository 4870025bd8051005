"""Recovery benchmark: restart time as the journal grows.

``cfx bench recovery [--sizes 10000,100000,1000000]`` writes, for each size, a data dir
the way the exchange does: an :class:`~exchange.service.ExchangeService` on a simulated
clock, orders submitted through its sequencer in batches (journal append with fsync, then
apply; a snapshot every 100,000 commands as ``cfx serve`` takes them). The mix: 20
accounts placing limit orders near the reference price (a fifth of them crossing), some
market orders, and cancels of resting orders. Then it times, each repeated (median):

- **journal read**: every record read back with its checksum verified, nothing applied;
- **replay only**: a fresh state replays the whole journal (the snapshots ignored);
- **snapshot + replay**: what a restart does: load the newest snapshot, replay the rest;
- **cfx serve**: from starting the process to the first 200 from ``/v1/health`` (Python
  start-up, imports, recovery, market data rebuilt, the ledger reopened).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import machine, options
from bench.machine import machine_info

TARGETS = {"journal_replay_cmd_per_s": 1_000_000}
ACCOUNTS = 20
WAVE = 512  #: commands submitted together: one sequencer batch, one fsync
SNAPSHOT_EVERY = 100_000


async def _write(data_dir: Path, commands: int, seed: int) -> dict[str, Any]:
    from exchange.sequencer.state import Refused
    from exchange.service import ExchangeService

    svc = ExchangeService(data_dir, clock="sim", start=datetime(2026, 12, 1, tzinfo=UTC),
                          admin_token="bench", snapshot_every=SNAPSHOT_EVERY)  # fmt: skip
    await svc.start()
    rng = random.Random(seed)
    refused = 0
    try:
        accounts = [(await svc.create_account(f"trader-{i}", "trader", "100000000.00"))["account_id"]
                    for i in range(ACCOUNTS)]  # fmt: skip
        symbol = next(
            s
            for s in svc.symbols()
            if s.startswith("H100") and not svc.state.contracts[s].mechanism
        )
        contract = svc.state.contracts[symbol]
        reference = contract.reference
        reach = max(1, min(20, reference * contract.band_bps // 10_000 - 1))
        live: dict[int, list[int]] = {a: [] for a in accounts}

        def one() -> dict[str, Any]:
            account = rng.choice(accounts)
            r = rng.random()
            if (r < 0.35 or len(live[account]) > 500) and live[account]:
                orders = live[account]
                i = rng.randrange(len(orders))
                orders[i], orders[-1] = orders[-1], orders[i]
                return {"op": "cancel", "account_id": account, "order_id": orders.pop()}
            side = rng.choice(("buy", "sell"))
            body: dict[str, Any] = {"symbol": symbol, "side": side, "quantity": rng.randint(1, 5)}
            if r > 0.95:
                return svc.place_command(account, body | {"type": "market"})
            sign_ = 1 if side == "buy" else -1
            ticks = (
                reference + sign_ * reach
                if rng.random() < 0.2
                else reference - sign_ * rng.randint(1, reach)
            )
            return svc.place_command(
                account, body | {"type": "limit", "price": svc.price_str(symbol, ticks)}
            )

        async def submit(command: dict[str, Any]) -> Any:
            try:
                return await svc.sequencer.submit(command)
            except Refused:
                return None

        while svc.state.seq < commands:
            wave = [one() for _ in range(min(WAVE, commands - svc.state.seq))]
            outcomes = await asyncio.gather(*(submit(c) for c in wave))
            for command, outcome in zip(wave, outcomes, strict=True):
                if outcome is None:
                    refused += 1
                    continue
                reply = outcome.reply
                if command["op"] == "place" and reply.get("status") in ("open", "partially_filled"):
                    live[command["account_id"]].append(reply["order_id"])
        resting = sum(len(v) for v in live.values())
    finally:
        await svc.stop()
    return {"refused": refused, "resting_orders": resting}


def write_data_dir(data_dir: Path, commands: int, seed: int = 1) -> dict[str, Any]:
    """Write a data dir whose journal holds ``commands`` commands; return what was written."""
    t0 = time.perf_counter()
    info = asyncio.run(_write(data_dir, commands, seed))
    journal_bytes = sum(p.stat().st_size for p in (data_dir / "journal").glob("journal-*.log"))
    snapshots = sorted((data_dir / "journal").glob("snapshot-*"))
    return info | {"write_s": round(time.perf_counter() - t0, 2), "journal_mb": journal_bytes / 1e6,
                   "snapshots": len(snapshots)}  # fmt: skip


def time_recovery(data_dir: Path, snapshots: bool) -> dict[str, Any]:
    """Recover a fresh sequencer from the data dir's journal, as the service does on start."""
    from contracts import ListingCalendar
    from exchange.journal import Journal
    from exchange.sequencer.loop import Clock, Sequencer
    from exchange.sequencer.state import ExchangeState

    journal = Journal(data_dir / "journal")
    try:
        sequencer = Sequencer(
            ExchangeState(backend="numba", calendar=ListingCalendar()), journal, Clock(True)
        )
        t0 = time.perf_counter()
        report = sequencer.recover(None if snapshots else 0)  # at_most=0: no snapshot is used
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "snapshot_seq": report["snapshot_seq"], "replayed": report["replayed"],
                "last_seq": sequencer.state.seq}  # fmt: skip
    finally:
        journal.close()


def time_journal_read(data_dir: Path) -> dict[str, Any]:
    """Read every record back, checksums verified, nothing applied."""
    from exchange.journal import Journal

    journal = Journal(data_dir / "journal")
    try:
        t0 = time.perf_counter()
        n = sum(1 for _ in journal.replay(0))
        return {"records": n, "seconds": time.perf_counter() - t0}
    finally:
        journal.close()


def time_serve(data_dir: Path, timeout_s: float = 600.0) -> float:
    """Seconds from starting ``cfx serve`` on the data dir to its first healthy response."""
    from bench.server import free_port

    port = free_port()
    env = dict(os.environ, CFX_ADMIN_TOKEN="bench")
    args = [sys.executable, "-m", "clients.cli", "serve", "--port", str(port), "--data-dir", str(data_dir),
            "--clock", "sim", "--snapshot-every", str(SNAPSHOT_EVERY)]  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1/health"
    log = data_dir.with_name(data_dir.name + ".log")
    with open(log, "ab") as out:
        t0 = time.perf_counter()
        process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(timeout=1.0) as client:
            while time.perf_counter() - t0 < timeout_s:
                if process.poll() is not None:
                    raise RuntimeError(f"cfx serve exited: {log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return time.perf_counter() - t0
                time.sleep(0.01)
        raise RuntimeError(f"cfx serve was not healthy within {timeout_s:g} s")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _median(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(sizes: list[int], repetitions: int = 3, serve: bool = True, out: Path | None = None,
        log: Any = None) -> dict[str, Any]:  # fmt: skip
    """Write a journal of each size, then time reading, replaying and restarting it."""
    say = log or (lambda text: None)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cfx-bench-recovery-") as tmp:
        for i, n in enumerate(sizes):
            data_dir = Path(tmp) / f"data-{n}"
            say(f"writing a journal of {n:,} commands")
            row: dict[str, Any] = {"commands": n} | write_data_dir(data_dir, n)
            if i == 0:  # warm-up, not timed: load the compiled engine kernels in this process
                time_recovery(data_dir, snapshots=False)
            reads = [time_journal_read(data_dir) for _ in range(repetitions)]
            row["journal_read"] = _median([r["seconds"] for r in reads])
            row["journal_read_s"] = row["journal_read"]["median"]
            row["journal_read_cmd_per_s"] = reads[0]["records"] / row["journal_read_s"]
            say(f"replaying {n:,} commands")
            full = [time_recovery(data_dir, snapshots=False) for _ in range(repetitions)]
            row["replay_only"] = _median([r["seconds"] for r in full])
            row["replay_only_s"] = row["replay_only"]["median"]
            row["replay_only_cmd_per_s"] = full[0]["replayed"] / row["replay_only_s"]
            snap = [time_recovery(data_dir, snapshots=True) for _ in range(repetitions)]
            row["snapshot_replay"] = _median([r["seconds"] for r in snap])
            row["snapshot_replay_s"] = row["snapshot_replay"]["median"]
            row["snapshot_seq"] = snap[0]["snapshot_seq"]
            row["replayed_after_snapshot"] = snap[0]["replayed"]
            if serve:
                say(f"cfx serve on {n:,} commands")
                row["serve_healthy"] = _median([time_serve(data_dir) for _ in range(repetitions)])
                row["serve_healthy_s"] = row["serve_healthy"]["median"]
            rows.append(row)
    result = {"benchmark": "recovery", "machine": machine_info(tempfile.gettempdir()), "targets": TARGETS,
              "repetitions": repetitions, "journals": rows}  # fmt: skip
    if out is not None:
        from bench.plots import recovery_plot

        result["plots"] = [str(p) for p in recovery_plot(result, out)]
    return result


def render(result: dict[str, Any]) -> None:
    from rich.table import Table

    console = machine.console()
    m = result["machine"]
    console.print(f"[bold]cfx recovery benchmark[/]: median of {result['repetitions']}")
    console.print(machine.describe(m), markup=False, highlight=False)
    table = Table(title="restart time as the journal grows (seconds; commands/s)")
    for col in ("commands", "journal MB", "resting orders", "journal read", "replay only", "snapshot at",
                "snapshot + replay", "cfx serve -> healthy"):  # fmt: skip
        table.add_column(col, justify="right", overflow="fold")
    for r in result["journals"]:
        serve = r.get("serve_healthy_s")
        table.add_row(f"{r['commands']:,}", f"{r['journal_mb']:,.1f}", f"{r['resting_orders']:,}",
                      f"{r['journal_read_s']:,.3f} ({r['journal_read_cmd_per_s']:,.0f}/s)",
                      f"{r['replay_only_s']:,.3f} ({r['replay_only_cmd_per_s']:,.0f}/s)",
                      f"{r['snapshot_seq']:,}" if r["snapshot_seq"] else "none yet",
                      f"{r['snapshot_replay_s']:,.3f} ({r['replayed_after_snapshot']:,} replayed)",
                      "" if serve is None else f"{serve:,.2f}")  # fmt: skip
    console.print(table)
    for plot in result.get("plots", []):
        console.print(f"plot: {plot}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.recovery", description=__doc__.splitlines()[0]
    )
    p.add_argument("--sizes", help="journal lengths in commands, e.g. 10000,100000,1000000")
    p.add_argument("--repetitions", type=int)
    p.add_argument("--no-serve", action="store_true", help="skip timing cfx serve")
    p.add_argument("--out", type=Path, default=Path("bench-results"))
    p.add_argument("--json", action="store_true")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    sizes = [2_000, 10_000] if args.quick else [10_000, 100_000, 1_000_000]
    try:
        if args.sizes is not None:
            sizes = options.positive_list(
                args.sizes, "--sizes", int, "journal lengths like 10000,100000"
            )
        repetitions = options.at_least(args.repetitions, "--repetitions", 1, 1 if args.quick else 3)
    except options.OptionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log = None if args.json else (lambda text: print(f"... {text}", file=sys.stderr, flush=True))
    result = run(sizes, repetitions, not args.no_serve, args.out, log)
    machine.emit(result, args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
