"""A bounded soak: eight bots trade six day contracts for about a hundred seconds while the
simulated clock moves five days (daily settlements, expiries, deliveries and their
settlement). The server's memory stays flat after warm-up, and the ledger balances and
holds exactly what the exchange shows at the end.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import psutil

from exchange.engine.kernels import LEVEL_DTYPE
from exchange.sequencer.state import Rules
from tests.reliability.conftest import (
    Bot,
    Server,
    account_cash,
    assert_ledger_matches,
    run_bots,
    start_server,
    stop_server,
)

STEPS = 16
STEP_S = 5.0
HOURS_PER_STEP = 8
WARM_UP = 4  #: steps before the memory baseline is taken
#: RSS growth allowed after warm-up: a fixed 24 MiB (allocator arenas, numba and SQLite
#: caches settling) plus 4 KiB per order acknowledged after warm-up, since every order, with
#: its fills and client id, is kept for the life of the process by design.
FIXED_MIB = 16
PER_ORDER_BYTES = 4096
#: ... and the price ladder of each book open at the end beyond those open at warm-up (the
#: rolling calendar lists new day, week and month contracts at 00:00 UTC; a contract's book
#: is removed when it expires): the numba book holds two sides of ``n_ticks`` levels.
PER_BOOK_BYTES = 2 * Rules().n_ticks * LEVEL_DTYPE.itemsize


def _trading(server: Server) -> dict[str, int]:
    """Day contracts still trading, three nearest per product, with their reference cents."""
    contracts = httpx.get(server.url + "/v1/contracts", timeout=30).json()
    out: dict[str, int] = {}
    for product in ("H100", "A100"):
        days = [c for c in contracts if c["product"] == product and len(c["symbol"]) == 15
                and c["status"] == "trading"]  # fmt: skip
        for c in days[:3]:
            out[c["symbol"]] = int(Decimal(c["reference_price"]) * 100)
    return out


def _attest(bot: Bot) -> int:
    done = 0
    for delivery in bot.client.request("GET", "/v1/deliveries").json():
        owed = delivery["gpu_hours"] - delivery["attested_gpu_hours"]
        if (
            delivery["provider_account"] == bot.client.account_id
            and owed
            and delivery["status"] == "pending"
        ):
            body = {
                "gpu_hours": owed,
                "period_start": "2026-12-01T00:00:00Z",
                "period_end": "2026-12-02T00:00:00Z",
            }
            response = bot.client.request(
                "POST", f"/v1/deliveries/{delivery['delivery_id']}/attestations", body
            )
            assert response.status_code in (201, 409), response.text
            done += response.status_code == 201
    return done


def test_soak_memory_flat_ledger_exact(tmp_path: Path) -> None:
    data = tmp_path / "cfx"
    server = start_server(data)
    process = psutil.Process(server.process.pid)
    rng = random.Random(99)
    bots = [
        Bot(server.account(f"s{i}", "1000000.00", "provider" if i % 2 else "trader"), f"s{i}", [],
            random.Random(rng.random()))
        for i in range(8)
    ]  # fmt: skip
    for bot in bots:  # keep-alive connections, as trading bots hold them
        bot.client.session = httpx.Client()
    clock = datetime(2026, 12, 1)
    rss: list[int] = []
    ran: dict[str, int] = {}
    attested = 0
    orders_at_warm_up = books_at_warm_up = 0
    try:
        for step in range(STEPS):
            mids = _trading(server)
            for bot in bots:
                bot.symbols, bot.mids = list(mids), mids
            stop = threading.Event()
            threads = run_bots(bots, stop)
            time.sleep(STEP_S)
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            clock += timedelta(hours=HOURS_PER_STEP)
            for event in server.advance(clock.strftime("%Y-%m-%dT%H:%M:%SZ"))["ran"]:
                ran[event["event"]] = ran.get(event["event"], 0) + 1
            attested += sum(_attest(bot) for bot in bots)
            rss.append(process.memory_info().rss)
            if step == WARM_UP - 1:
                orders_at_warm_up = sum(len(bot.latencies) for bot in bots)
                books_at_warm_up = len(_open_books(server))
        books = max(0, len(_open_books(server)) - books_at_warm_up)
        check = server.admin("GET", "/v1/admin/ledger/check").json()
        seen = {bot.client.account_id: account_cash(bot.client) for bot in bots}
        trades = sum(
            len(httpx.get(server.url + f"/v1/trades/{s}?limit=1000").json())
            for s in _all_days(server)
        )
    finally:
        stop_server(server)
        for bot in bots:
            assert bot.client.session is not None
            bot.client.session.close()
    assert check["balanced"] is True, check
    assert_ledger_matches([bot.client for bot in bots], seen, f"sqlite:///{data / 'ledger.db'}")
    latencies = sorted(x for bot in bots for x in bot.latencies)
    orders = len(latencies)
    growth = rss[-1] - rss[WARM_UP - 1]
    bound = (
        FIXED_MIB * 2**20 + PER_ORDER_BYTES * (orders - orders_at_warm_up) + PER_BOOK_BYTES * books
    )
    print(
        f"soak: {orders} orders acknowledged, {sum(b.sent for b in bots)} requests, {trades} trades "
        f"(recent, capped per symbol), events {ran}, {attested} attestations; "
        f"RSS {rss[WARM_UP - 1] / 2**20:.1f} MiB after warm-up -> {rss[-1] / 2**20:.1f} MiB at the end "
        f"(max {max(rss) / 2**20:.1f}), {books} more books open, bound {bound / 2**20:.1f} MiB; "
        f"ack latency p50 "
        f"{statistics.median(latencies) * 1e3:.1f} ms, p99 {latencies[int(0.99 * orders)] * 1e3:.1f} ms"
    )
    assert ran.get("daily_settlement") and ran.get("expiry") and ran.get("delivery_settlement")
    assert growth <= bound, (growth, bound)


def _open_books(server: Server) -> list[str]:
    """Contracts whose book the engine still holds: those not yet expired."""
    contracts = httpx.get(server.url + "/v1/contracts", timeout=30).json()
    return [c["symbol"] for c in contracts if c["status"] in ("listed", "trading", "halted")]


def _all_days(server: Server) -> list[str]:
    contracts = httpx.get(server.url + "/v1/contracts", timeout=30).json()
    return [c["symbol"] for c in contracts if len(c["symbol"]) == 15]
