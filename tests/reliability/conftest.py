"""Helpers for the reliability tests: real servers, bots that remember what was acknowledged,
and an exchange run in this process when a fault has to be injected from inside."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.server import ADMIN_TOKEN, START, Client, Server, start_server, stop_server
from exchange.gateway.auth import sign
from exchange.ledger import Ledger
from exchange.service import ExchangeService

__all__ = [
    "ADMIN_TOKEN",
    "START",
    "Bot",
    "Client",
    "Server",
    "start_server",
    "stop_server",
]

#: Cash sub-accounts as the ledger names them, and as ``GET /v1/account`` names them.
CASH = {"available": "available", "margin": "margin_locked", "escrow": "delivery_escrow"}


def day_symbols(server: Server, product: str = "H100") -> list[str]:
    """The listed day contracts of ``product``, nearest delivery first."""
    contracts = httpx.get(server.url + "/v1/contracts", timeout=30).json()
    return [
        c["symbol"]
        for c in contracts
        if c["product"] == product and len(c["symbol"]) == len("H100-2026-12-01")
    ]


@dataclass
class Bot:
    """A trading bot on a signed client that records what the exchange acknowledged.

    ``orders`` holds the last acknowledged view of each order; ``in_flight`` the body of a
    place request whose answer never came (the server died), to be retried after restart.
    """

    client: Client
    name: str
    symbols: list[str]
    rng: random.Random
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    in_flight: dict[str, Any] | None = None
    mids: dict[str, int] = field(default_factory=dict)  #: cents to trade around, per symbol
    latencies: list[float] = field(default_factory=list)  #: seconds to each acknowledgement
    sent: int = 0
    refused: int = 0
    n: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _open: list[int] | None = None
    _open_at: dict[int, int] = field(default_factory=dict)

    def step(self, intended: float | None = None) -> None:
        """Send one request (place, cancel or amend); record it if acknowledged.

        An order's latency runs from ``intended`` (a paced bot's schedule) when given, else
        from the send: a bot that falls behind its schedule is charged for it.
        """
        open_ids = self.open_ids
        roll = self.rng.random()
        if open_ids and roll < 0.2:
            order_id = self.rng.choice(open_ids)
            response = self.client.request("DELETE", f"/v1/orders/{order_id}")
        elif open_ids and roll < 0.3:
            order_id = self.rng.choice(open_ids)
            quantity = self.orders[order_id]["quantity"] + self.rng.randint(1, 3)
            response = self.client.request(
                "PATCH", f"/v1/orders/{order_id}", {"quantity": quantity}
            )
        else:
            self.n += 1
            side = self.rng.choice(["buy", "sell"])
            symbol = self.rng.choice(self.symbols)
            mid = self.mids.get(symbol, 300)
            cents = mid + self.rng.randint(-8, 8) + (-4 if side == "buy" else 4)
            body = {
                "symbol": symbol,
                "side": side,
                "type": "limit",
                "price": f"{cents // 100}.{cents % 100:02d}",
                "quantity": self.rng.randint(1, 6),
                "client_order_id": f"{self.name}-{self.n}",
            }
            self.in_flight = body
            started = time.perf_counter() if intended is None else intended
            response = self.client.request("POST", "/v1/orders", body)
            if response.status_code == 201:
                self.latencies.append(time.perf_counter() - started)
            self.in_flight = None
        self.sent += 1
        self.record(response)

    @property
    def open_ids(self) -> list[int]:
        """Orders last acknowledged open, in a list kept as answers come (no scan per step)."""
        if self._open is None:
            self._open = [
                i for i, o in self.orders.items() if o["status"] in ("open", "partially_filled")
            ]
            self._open_at = {order_id: n for n, order_id in enumerate(self._open)}
        return self._open

    def record(self, response: httpx.Response) -> None:
        if response.status_code in (200, 201):
            order = response.json()
            with self.lock:
                self.orders[order["order_id"]] = order
                self._track(order["order_id"], order["status"] in ("open", "partially_filled"))
        else:
            assert response.status_code < 500, response.text
            self.refused += 1

    def _track(self, order_id: int, is_open: bool) -> None:
        open_ids, at = self.open_ids, self._open_at
        if is_open and order_id not in at:
            at[order_id] = len(open_ids)
            open_ids.append(order_id)
        elif not is_open and order_id in at:
            n = at.pop(order_id)
            last = open_ids.pop()
            if last != order_id:  # move the last into the hole
                open_ids[n], at[last] = last, n

    def reset_orders(self, orders: dict[int, dict[str, Any]]) -> None:
        """Replace what the bot knows of its orders (after a restart, from the exchange)."""
        self.orders = orders
        self._open = None

    def run(self, stop: threading.Event, period_s: float | None = None) -> None:
        """Trade until ``stop`` is set or the server stops answering.

        With ``period_s`` the bot keeps a schedule, one request every ``period_s`` seconds
        whether or not the last answer was slow (an open loop, as a trading bot on a timer
        behaves); without, it sends the next request as soon as the last is answered.
        """
        # bots on the same period start out of phase, as independent bots would be
        next_at = time.perf_counter() + (self.rng.random() * period_s if period_s else 0.0)
        while not stop.is_set():
            if period_s is not None:
                stop.wait(max(0.0, next_at - time.perf_counter()))
                if stop.is_set():
                    return
            try:
                self.step(next_at if period_s is not None else None)
            except httpx.HTTPError:
                return
            if period_s is not None:
                next_at += period_s


def run_bots(
    bots: list[Bot], stop: threading.Event, period_s: float | None = None
) -> list[threading.Thread]:
    threads = [threading.Thread(target=bot.run, args=(stop, period_s), daemon=True) for bot in bots]
    for thread in threads:
        thread.start()
    return threads


def ledger_cash(url: str) -> dict[int, dict[str, int]]:
    """Every participant's cash balances in the ledger, in integer cents."""
    with Ledger(url) as ledger:
        out: dict[int, dict[str, int]] = {}
        for (owner, name), amount in ledger.trial_balance().items():
            if owner.startswith("acct:") and name in CASH:
                out.setdefault(int(owner[5:]), {})[CASH[name]] = amount
        return out


def cents(text: str) -> int:
    return int(Decimal(text) * 100)


def account_cash(client: Client) -> dict[str, int]:
    """An account's cash balances as the API shows them, in integer cents."""
    view = client.request("GET", "/v1/account").json()
    return {v: cents(view[v]) for v in CASH.values()}


def assert_ledger_matches(clients: list[Client], seen: dict[int, dict[str, int]], url: str) -> None:
    """The ledger holds exactly the balances the exchange showed each account."""
    ledger = ledger_cash(url)
    for client in clients:
        want = {k: v for k, v in seen[client.account_id].items() if v}
        got = {k: v for k, v in ledger.get(client.account_id, {}).items() if v}
        assert got == want, (client.account_id, got, want)


def all_orders(client: Client) -> list[dict[str, Any]]:
    """Every order of the account, oldest first, read page by page."""
    orders: list[dict[str, Any]] = []
    path = "/v1/orders"
    while page := client.request("GET", path).json():
        orders[:0] = page
        path = f"/v1/orders?before={page[0]['order_id']}"
    return orders


def _retry_in_flight(bot: Bot) -> int:
    """Resend the place whose answer died with the server; return 1 if it was a replay."""
    if bot.in_flight is None:
        return 0
    body, bot.in_flight = bot.in_flight, None
    listing = all_orders(bot.client)
    before = [o for o in listing if o["client_order_id"] == body["client_order_id"]]
    response = bot.client.request("POST", "/v1/orders", body)
    if response.status_code != 201:  # refused now (say, margin): then it never went in either
        assert response.status_code < 500 and not before, response.text
        return 0
    if before:
        assert response.json()["order_id"] == before[0]["order_id"]
        return 1
    return 0


def verify_acknowledged(server: Server, bots: list[Bot], symbols: list[str]) -> dict[str, int]:
    """Check the restarted exchange against what every bot had acknowledged."""
    retried = sum(_retry_in_flight(bot) for bot in bots)
    fills_by_trade: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    resting: dict[str, int] = defaultdict(int)
    for bot in bots:
        listing = {o["order_id"]: o for o in all_orders(bot.client)}
        for order_id, acked in bot.orders.items():
            now = listing.get(order_id)
            assert now is not None, f"acknowledged order {order_id} of {bot.name} is gone"
            for key in ("client_order_id", "symbol", "side", "price", "created_at"):
                assert now[key] == acked[key], (key, now, acked)
            assert now["quantity"] >= acked["quantity"]  # amends only ever raised it
            assert now["filled_quantity"] >= acked["filled_quantity"]
            if acked["status"] in ("filled", "cancelled"):
                assert (now["status"], now["filled_quantity"]) == (
                    acked["status"],
                    acked["filled_quantity"],
                )
            assert all(fill in now["fills"] for fill in acked["fills"]), (now, acked)
        ids = [o["client_order_id"] for o in listing.values()]
        assert len(ids) == len(set(ids)), "a client_order_id was used twice"
        net: dict[str, int] = defaultdict(int)
        for order in listing.values():
            sign = 1 if order["side"] == "buy" else -1
            for fill in order["fills"]:
                net[order["symbol"]] += sign * fill["quantity"]
                fills_by_trade[fill["trade_id"]].append(
                    (order["side"], fill["price"], fill["quantity"])
                )
            if order["status"] in ("open", "partially_filled"):
                resting[order["symbol"]] += order["remaining_quantity"]
        positions = {
            p["symbol"]: p["quantity"] for p in bot.client.request("GET", "/v1/positions").json()
        }
        assert positions == {s: q for s, q in net.items() if q}, (positions, dict(net))
        bot.reset_orders(listing)
    for trade_id, sides in fills_by_trade.items():  # each trade: one buyer, one seller
        assert sorted(s for s, _, _ in sides) == ["buy", "sell"], (trade_id, sides)
        assert len({(p, q) for _, p, q in sides}) == 1, (trade_id, sides)
    for symbol in symbols:
        book = httpx.get(server.url + f"/v1/book/{symbol}?depth=1000", timeout=30).json()
        assert sum(int(q) for _, q in book["bids"] + book["asks"]) == resting[symbol]
    check = server.admin("GET", "/v1/admin/ledger/check").json()
    assert check["balanced"] is True, check
    return {"trades": len(fills_by_trade), "retried": retried}


# -- an exchange in this process --------------------------------------------------------------
START_TIME = datetime.fromisoformat(START.replace("Z", "+00:00"))


@contextlib.asynccontextmanager
async def in_process(data_dir: Path, **options: Any) -> AsyncIterator[ExchangeService]:
    """Run an exchange on ``data_dir`` in this event loop; stop it cleanly afterwards."""
    svc = ExchangeService(
        data_dir, clock="sim", start=START_TIME, admin_token=ADMIN_TOKEN, **options
    )
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


async def crash(svc: ExchangeService) -> None:
    """Stop ``svc`` as ``kill -9`` would: no ledger flush, nothing written on the way out."""
    for task in svc._tasks:
        task.cancel()
    for task in svc._tasks:
        with contextlib.suppress(BaseException):
            await task
    svc._tasks.clear()
    svc._pending_postings.clear()
    await svc.sequencer.stop()
    if svc.follower is not None:  # its parent's death stops it too
        svc.follower.kill()
    svc.journal.close()
    svc._lock.close()


class Signed:
    """Signed requests to an in-process app through httpx's ASGI transport."""

    def __init__(self, http: httpx.AsyncClient, creds: dict[str, Any]) -> None:
        self.http = http
        self.key = creds["api_key"]
        self.secret = creds["api_secret"]
        self.account_id = int(creds["account_id"])

    async def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        data = orjson.dumps(body) if body is not None else b""
        ts = str(int(time.time()))
        headers = {
            "CFX-KEY": self.key,
            "CFX-TIMESTAMP": ts,
            "CFX-SIGNATURE": sign(self.secret, ts, method, path, data),
            "Content-Type": "application/json",
        }
        return await self.http.request(method, path, content=data, headers=headers)


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
