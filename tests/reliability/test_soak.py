"""A bounded soak: twelve bots (eight over REST, four over the websocket) trade six day
contracts for about a hundred seconds while the simulated clock moves five days (daily
settlements, expiries, deliveries and their settlement). The server's memory stays flat
after warm-up, the ledger balances and holds exactly what the exchange shows at the end,
and the acknowledgement latencies are printed.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import random
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import psutil

from bench.server import Client
from clients import Feed, Rejected
from exchange.engine.kernels import LEVEL_DTYPE
from exchange.sequencer.state import Rules
from tests.reliability.conftest import (
    Bot,
    Server,
    account_cash,
    assert_ledger_matches,
    start_server,
    stop_server,
)

STEPS = 16
STEP_S = 5.0
HOURS_PER_STEP = 8
WARM_UP = 4  #: steps before the memory baseline is taken
#: Each bot sends a request every PERIOD_S seconds on a schedule, answered or not: the eight
#: REST bots offer 160 requests/s and the four websocket bots 80 more, a steady load about a
#: quarter of what REST serves at saturation. An order's latency runs from its scheduled
#: time, so a stall is charged to every order behind it.
PERIOD_S = 0.05
WS_BOTS = 4  #: more bots on the same schedule, entering orders over the websocket
#: RSS growth allowed after warm-up: a fixed 24 MiB (allocator arenas, numba and SQLite
#: caches settling) plus 4 KiB per order acknowledged after warm-up, since every order, with
#: its fills and client id, is kept for the life of the process by design.
FIXED_MIB = 16
PER_ORDER_BYTES = 4096
#: ... and the price ladder of each book open at the end beyond those open at warm-up (the
#: rolling calendar lists new day, week and month contracts at 00:00 UTC; a contract's book
#: is removed when it expires): the numba book holds two sides of ``n_ticks`` levels.
PER_BOOK_BYTES = 2 * Rules().n_ticks * LEVEL_DTYPE.itemsize


class WsBot:
    """A bot entering orders over the websocket (the SDK's ``Feed``) on a schedule.

    Places limit orders around the mid and cancels its own resting ones; an order's latency
    runs from its scheduled send to the acknowledgement.
    """

    def __init__(self, client: Client, name: str, rng: random.Random) -> None:
        self.client = client
        self.name = name
        self.rng = rng
        self.mids: dict[str, int] = {}
        self.open: list[int] = []
        self.latencies: list[float] = []
        self.sent = self.refused = self.n = 0

    def run(self, stop: threading.Event, period_s: float) -> None:
        with Feed(
            self.client.url, (), self.client.key, self.client.secret, reconnect=False
        ) as feed:
            next_at = time.perf_counter() + self.rng.random() * period_s
            while not stop.wait(max(0.0, next_at - time.perf_counter())):
                self.step(feed, next_at)
                next_at += period_s

    def step(self, feed: Feed, scheduled: float) -> None:
        self.sent += 1
        if self.open and self.rng.random() < 0.3:
            order_id = self.open.pop(self.rng.randrange(len(self.open)))
            try:
                feed.cancel(order_id)
            except Rejected:  # filled meanwhile
                self.refused += 1
            return
        self.n += 1
        symbol = self.rng.choice(list(self.mids))
        side = self.rng.choice(["buy", "sell"])
        cents = self.mids[symbol] + self.rng.randint(-8, 8) + (-4 if side == "buy" else 4)
        try:
            order = feed.place(symbol, side, self.rng.randint(1, 6), f"{cents // 100}.{cents % 100:02d}",
                               client_order_id=f"{self.name}-{self.n}")  # fmt: skip
        except Rejected:
            self.refused += 1
            return
        self.latencies.append(time.perf_counter() - scheduled)
        if order.status in ("open", "partially_filled"):
            self.open.append(order.order_id)


class BotProcess:
    """One bot in a process of its own, as bots are separate programs: no bot waits for
    another's turn at this process's interpreter lock, so the latencies are the exchange's.

    Each step the bot trades the given mids for ``STEP_S`` seconds on its schedule and
    sends back the latencies of the orders acknowledged and its request count.
    """

    def __init__(self, bot: Bot | WsBot) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=self._serve, args=(bot, child), daemon=True)
        self.process.start()
        child.close()
        self.latencies: list[float] = []
        self.sent = 0

    @staticmethod
    def _serve(bot: Bot | WsBot, conn: Connection) -> None:  # in the child
        gc.disable()  # collected between steps, while no request is in flight
        if isinstance(bot, Bot):
            bot.client.session = httpx.Client()  # keep-alive, as a trading bot holds one
        while (mids := conn.recv()) is not None:
            if isinstance(bot, Bot):
                bot.symbols, bot.mids = list(mids), mids
            else:
                bot.mids = mids
                bot.open.clear()  # expired books took their orders with them
            before = len(bot.latencies)
            stop = threading.Event()
            timer = threading.Timer(STEP_S, stop.set)
            timer.start()
            bot.run(stop, PERIOD_S)
            conn.send((bot.latencies[before:], bot.sent))
            gc.collect()

    def start_step(self, mids: dict[str, int]) -> None:
        self.conn.send(mids)

    def finish_step(self) -> None:
        if not self.conn.poll(STEP_S + 60):
            raise AssertionError(f"a bot process did not finish its step: {self.process}")
        latencies, self.sent = self.conn.recv()
        self.latencies.extend(latencies)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()


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
            # the hours of the delivery window gone by (an attestation covers no later ones)
            contract = bot.client.request("GET", f"/v1/contracts/{delivery['symbol']}").json()
            now = bot.client.request("GET", "/v1/health").json()["clock"]
            end = min(now.replace("Z", "+00:00"), contract["delivery_end"].replace("Z", "+00:00"))
            start = contract["delivery_start"].replace("Z", "+00:00")
            if end <= start:
                continue
            body = {"gpu_hours": owed, "period_start": start, "period_end": end}
            response = bot.client.request(
                "POST", f"/v1/deliveries/{delivery['delivery_id']}/attestations", body
            )
            assert response.status_code in (201, 409), response.text
            done += response.status_code == 201
    return done


def test_soak_memory_flat_ledger_exact(tmp_path: Path) -> None:
    data = tmp_path / "cfx"
    server = start_server(data)
    gc.disable()  # the bot processes forked from this one collect only between steps
    process = psutil.Process(server.process.pid)
    rng = random.Random(99)
    bots = [
        Bot(server.account(f"s{i}", "1000000.00", "provider" if i % 2 else "trader"), f"s{i}", [],
            random.Random(rng.random()))
        for i in range(8)
    ]  # fmt: skip
    ws_bots = [
        WsBot(server.account(f"w{i}", "1000000.00", "trader"), f"w{i}", random.Random(rng.random()))
        for i in range(WS_BOTS)
    ]
    workers = [BotProcess(bot) for bot in [*bots, *ws_bots]]
    clock = datetime(2026, 12, 1)
    rss: list[int] = []
    ran: dict[str, int] = {}
    attested = 0
    orders_at_warm_up = books_at_warm_up = 0
    try:
        for step in range(STEPS):
            mids = _trading(server)
            for worker in workers:
                worker.start_step(mids)
            for worker in workers:
                worker.finish_step()
            gc.collect()
            clock += timedelta(hours=HOURS_PER_STEP)
            for event in server.advance(clock.strftime("%Y-%m-%dT%H:%M:%SZ"))["ran"]:
                ran[event["event"]] = ran.get(event["event"], 0) + 1
            attested += sum(_attest(bot) for bot in bots)
            rss.append(process.memory_info().rss)
            if step == WARM_UP - 1:
                orders_at_warm_up = sum(len(w.latencies) for w in workers)
                books_at_warm_up = len(_open_books(server))
        books = max(0, len(_open_books(server)) - books_at_warm_up)
        check = server.admin("GET", "/v1/admin/ledger/check").json()
        clients = [b.client for b in [*bots, *ws_bots]]
        seen = {client.account_id: account_cash(client) for client in clients}
        trades = sum(
            len(httpx.get(server.url + f"/v1/trades/{s}?limit=1000").json())
            for s in _all_days(server)
        )
    finally:
        gc.enable()
        for worker in workers:
            worker.close()
        stop_server(server)
    assert check["balanced"] is True, check
    assert_ledger_matches(clients, seen, f"sqlite:///{data / 'ledger.db'}")
    rest = sorted(x for w in workers[: len(bots)] for x in w.latencies)
    ws = sorted(x for w in workers[len(bots) :] for x in w.latencies)
    orders = len(rest) + len(ws)
    growth = rss[-1] - rss[WARM_UP - 1]
    bound = (
        FIXED_MIB * 2**20 + PER_ORDER_BYTES * (orders - orders_at_warm_up) + PER_BOOK_BYTES * books
    )
    print(
        f"soak: {orders} orders acknowledged ({len(ws)} over the websocket), "
        f"{sum(w.sent for w in workers)} requests, {trades} trades "
        f"(recent, capped per symbol), events {ran}, {attested} attestations; "
        f"RSS {rss[WARM_UP - 1] / 2**20:.1f} MiB after warm-up -> {rss[-1] / 2**20:.1f} MiB at the end "
        f"(max {max(rss) / 2**20:.1f}), {books} more books open, bound {bound / 2**20:.1f} MiB; "
        f"order ack latency from the scheduled send: REST {_percentiles(rest)}; "
        f"websocket {_percentiles(ws)}"
    )
    assert ran.get("daily_settlement") and ran.get("expiry") and ran.get("delivery_settlement")
    assert growth <= bound, (growth, bound)


def _percentiles(latencies: list[float]) -> str:
    """p50, p90, p99, p99.9 and max of sorted ``latencies`` (seconds), in milliseconds."""
    n = len(latencies)
    marks = [f"p{q * 100:g} {latencies[int(q * n)] * 1e3:.1f}" for q in (0.5, 0.9, 0.99, 0.999)]
    return ", ".join(marks) + f", max {latencies[-1] * 1e3:.1f} ms"


def _open_books(server: Server) -> list[str]:
    """Contracts whose book the engine still holds: those not yet expired."""
    contracts = httpx.get(server.url + "/v1/contracts", timeout=30).json()
    return [c["symbol"] for c in contracts if c["status"] in ("listed", "trading", "halted")]


def _all_days(server: Server) -> list[str]:
    contracts = httpx.get(server.url + "/v1/contracts", timeout=30).json()
    return [c["symbol"] for c in contracts if len(c["symbol"]) == 15]
