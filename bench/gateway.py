"""Gateway benchmark: order entry over the websocket and REST against a real server.

``cfx bench gateway [--url URL --token T] [--scenario file.toml] [--sweep 500,1000,...]``
starts ``cfx serve`` on the wall clock, as deployed, in a temporary data dir (or uses ``--url``, where
accounts are created through the admin API with ``--token``), creates one account per
connection, seeds each symbol's book with resting orders on both sides, and sends the
scenario's order mix (:mod:`bench.scenario`): limit orders resting near the reference price,
limit orders priced to trade at once ("crossing"), market orders, and cancels of the
connection's own resting orders. Acknowledgement means journaled with fsync and applied.

Two kinds of run, each repeated (medians, with min and max):

- **closed loop**: ``window`` requests in flight per connection: the throughput at
  saturation, and the latency that queueing for it costs;
- **open loop** at each offered rate of the sweep (:mod:`bench.openloop`): requests on a
  fixed schedule, latency from the intended send time so a stall cannot hide. The knee is
  the highest offered rate whose p99 stays within ``p99_target_ms`` with the load served.

Each run records the server's CPU and peak RSS (psutil, when the server is on this
machine) and the load generator's own CPU, which tells whether the client was the limit.
Plots go to ``--out`` (default ``./bench-results``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import orjson
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench import machine
from bench.http import HttpConnection
from bench.machine import machine_info
from bench.openloop import closed_loop, combine, holds, knee, open_loop, served
from bench.scenario import QUICK, Mix, Scenario, ScenarioError, load_scenario, parse_rates
from bench.scenario import with_overrides as _with
from contracts.prices import to_ticks
from exchange.gateway.auth import sign

TARGETS = {"websocket_orders_per_s": 20_000, "websocket_p99_ms": 10, "rest_orders_per_s": 3_000}
#: Open-loop rates swept when neither ``--rate`` nor ``--sweep`` is given, per transport.
DEFAULT_SWEEP = {
    "websocket": (250.0, 500.0, 1000.0, 2000.0, 4000.0),
    "rest": (50.0, 100.0, 200.0, 400.0, 800.0, 1600.0),
}
#: A connection with this many resting orders cancels instead of placing more (the
#: exchange allows 1,000 open orders per account).
MAX_LIVE = 400
#: Resting orders per side per symbol placed before any run.
SEED_LEVELS = 10


# -- the exchange ----------------------------------------------------------------------


@dataclass(frozen=True)
class Market:
    """One symbol the orders go to, with prices in ticks."""

    symbol: str
    tick_size: Decimal
    reference: int
    band: int  # ticks either side of the reference that the exchange accepts

    def price(self, ticks: int) -> str:
        return str(ticks * self.tick_size)


def markets(url: str, count: int) -> list[Market]:
    """The ``count`` longest-lived continuous contracts that are trading, H100 first."""
    contracts = httpx.get(url + "/v1/contracts", timeout=30).json()
    usable = [c for c in contracts if c["status"] == "trading" and c["mechanism"] == "continuous"
              and c["reference_price"] is not None]  # fmt: skip
    usable.sort(key=lambda c: c["last_trade_time"], reverse=True)
    usable.sort(key=lambda c: c["product"] != "H100")  # stable: H100 first, longest-lived first
    if len(usable) < count:
        raise ScenarioError(f"the exchange trades {len(usable)} continuous contracts, not {count}")
    out = []
    for c in usable[:count]:
        tick = Decimal(c["tick_size"])
        reference = to_ticks(c["reference_price"], tick)
        band = int(reference * Decimal(c["price_band"]))
        out.append(Market(c["symbol"], tick, reference, band))
    return out


def create_account(url: str, token: str, name: str) -> dict[str, Any]:
    """A funded trading account through the admin API: its id, key and secret."""
    response = httpx.post(url + "/v1/admin/accounts", json={"name": name, "deposit": "100000000.00"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
    if response.status_code != 201:
        raise RuntimeError(f"cannot create an account ({response.status_code}): {response.text}")
    result: dict[str, Any] = response.json()
    return result


def signed_headers(creds: dict[str, Any], method: str, path: str, body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    return {"CFX-KEY": creds["api_key"], "CFX-TIMESTAMP": ts, "Content-Type": "application/json",
            "CFX-SIGNATURE": sign(creds["api_secret"], ts, method, path, body)}  # fmt: skip


def seed_books(url: str, token: str, books: list[Market]) -> None:
    """Rest ``SEED_LEVELS`` bids and asks on every symbol, so crossing orders find liquidity."""
    maker = create_account(url, token, f"bench-maker-{time.time_ns()}")
    with httpx.Client(base_url=url, timeout=30) as client:
        for m in books:
            for k in range(1, SEED_LEVELS + 1):
                for side, price in (("buy", m.reference - k), ("sell", m.reference + k)):
                    body = orjson.dumps({"symbol": m.symbol, "side": side, "type": "limit",
                                         "price": m.price(price), "quantity": 20})  # fmt: skip
                    r = client.post("/v1/orders", content=body,
                                    headers=signed_headers(maker, "POST", "/v1/orders", body))  # fmt: skip
                    if r.status_code == 429:  # the maker's own rate limit: wait and go on
                        time.sleep(1.0)


# -- what to send -----------------------------------------------------------------------


@dataclass
class OrderFlow:
    """The next request of one connection: the scenario's mix over the markets."""

    books: list[Market]
    mix: Mix
    rng: random.Random
    live: list[int] = field(default_factory=list)

    def next(self) -> tuple[str, dict[str, Any]]:
        """``("place", order body)`` or ``("cancel", {"order_id": n})``."""
        r = self.rng.random()
        if (r < self.mix.cancel or len(self.live) >= MAX_LIVE) and self.live:
            i = self.rng.randrange(len(self.live))
            self.live[i], self.live[-1] = self.live[-1], self.live[i]
            return "cancel", {"order_id": self.live.pop()}
        m = self.rng.choice(self.books)
        side = self.rng.choice(("buy", "sell"))
        body: dict[str, Any] = {"symbol": m.symbol, "side": side, "quantity": 1}
        if r >= 1.0 - self.mix.market:
            return "place", body | {"type": "market"}
        reach = max(1, min(20, m.band - 1))
        sign_ = 1 if side == "buy" else -1
        if self.rng.random() < self.mix.crossing:  # through the touch: trades at once
            price = m.reference + sign_ * reach
        else:  # rests on its own side of the reference
            price = m.reference - sign_ * self.rng.randint(1, reach)
        return "place", body | {"type": "limit", "price": m.price(price)}

    def on_order(self, order: dict[str, Any]) -> None:
        """Remember an acknowledged order that rests, so a later request can cancel it."""
        if order.get("status") in ("open", "partially_filled"):
            self.live.append(int(order["order_id"]))


class _OrderListener(WSListener):
    """The reading side of a :class:`WsSession`: resolves each request's future by its id.

    picows calls :meth:`on_ws_frame` from its protocol's data callback, one call per frame,
    without a reader task or an async iterator in between; PING frames never get here
    (``enable_auto_pong``, on by default, answers them).
    """

    def __init__(self, flow: OrderFlow) -> None:
        self.flow = flow
        self.pending: dict[int, asyncio.Future[str | None]] = {}
        self.auth: asyncio.Future[dict[str, Any]] | None = None
        self.fragments: list[bytes] | None = None  # a text message in more than one frame
        self.writable = asyncio.Event()  # cleared while the socket's send buffer is full
        self.writable.set()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type == WSMsgType.TEXT and frame.fin:
            raw = frame.get_payload_as_bytes()
        elif msg_type == WSMsgType.TEXT:
            self.fragments = [frame.get_payload_as_bytes()]
            return
        elif msg_type == WSMsgType.CONTINUATION and self.fragments is not None:
            self.fragments.append(frame.get_payload_as_bytes())
            if not frame.fin:
                return
            raw, self.fragments = b"".join(self.fragments), None
        elif msg_type == WSMsgType.CLOSE:  # answer the server's close (or ours), then hang up
            if not transport.is_close_frame_sent:
                code = frame.get_close_code()
                transport.send_close(WSCloseCode.OK if code == WSCloseCode.NO_INFO else code)
            transport.disconnect()
            return
        else:
            return
        message = orjson.loads(raw)
        future = self.pending.pop(message.get("id"), None)  # type: ignore[arg-type]
        if future is None:
            if message.get("id") == "auth" and self.auth is not None and not self.auth.done():
                self.auth.set_result(message)
            return
        if future.done():
            return
        if message.get("op") == "ack":
            self.flow.on_order(message.get("order", {}))
            future.set_result(None)
        else:
            future.set_result(message.get("error", {}).get("code", "ERROR"))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        waiting: list[asyncio.Future[Any]] = [*self.pending.values()]
        if self.auth is not None:
            waiting.append(self.auth)
        self.pending.clear()
        for future in waiting:
            if not future.done():
                future.set_exception(ConnectionError("websocket closed"))
        self.writable.set()  # a sender waiting for room fails on its future instead

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


class WsSession:
    """One authenticated websocket connection sending orders without waiting for answers.

    Built on picows (a websocket library written in Cython), like the feed benchmark's
    subscribers: ``transport.send`` writes each frame at once and answers are parsed in
    :meth:`_OrderListener.on_ws_frame`, with no send coroutine, drain or reader task per
    order. The asyncio ``websockets`` client used before cost the load generator about twice
    the CPU per order: a third of a core at 10,000 orders/s, on the 2 cores it shares with
    the server.
    """

    def __init__(self, transport: WSTransport, listener: _OrderListener) -> None:
        self.transport = transport
        self.listener = listener
        self.flow = listener.flow
        self.pending = listener.pending
        self.ids = itertools.count(1)

    @classmethod
    async def open(cls, url: str, creds: dict[str, Any], flow: OrderFlow) -> WsSession:
        transport, listener = await ws_connect(
            lambda: _OrderListener(flow),
            url.replace("http", "ws", 1) + "/v1/ws",
            max_frame_size=1 << 24,
            websocket_handshake_timeout=30,
        )
        assert isinstance(listener, _OrderListener)
        listener.auth = asyncio.get_running_loop().create_future()
        ts = str(int(time.time()))
        transport.send(WSMsgType.TEXT, orjson.dumps({"op": "auth", "id": "auth", "key": creds["api_key"], "timestamp": ts,
                                                     "signature": sign(creds["api_secret"], ts, "GET", "/v1/ws", b"")}))  # fmt: skip
        try:
            message = await listener.auth
        except BaseException:
            transport.disconnect()
            raise
        if message.get("op") != "ack":
            transport.disconnect()
            raise RuntimeError(f"websocket auth refused: {message}")
        return cls(transport, listener)

    def submit(self, op: str, body: dict[str, Any]) -> asyncio.Future[str | None]:
        """Send one request; the future resolves to None (acked) or the error code."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        if self.transport.is_disconnected or self.transport.is_close_frame_sent:
            future.set_exception(ConnectionError("websocket closed"))
            return future
        request_id = next(self.ids)
        self.pending[request_id] = future
        self.transport.send(WSMsgType.TEXT, orjson.dumps({"op": op, "id": request_id} | body))
        return future

    async def call(self) -> str | None:
        if not self.listener.writable.is_set():  # the send buffer is full: wait, as a drain would
            await self.listener.writable.wait()
        op, body = self.flow.next()
        return await self.submit(op, body)

    async def close(self) -> None:
        """Close handshake (the server answers and hangs up), then drop the socket anyway."""
        transport = self.transport
        if not transport.is_disconnected:
            transport.send_close(WSCloseCode.OK)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(transport.wait_disconnected(), 5)
            transport.disconnect()
        with contextlib.suppress(Exception):
            await transport.wait_disconnected()


class RestSession:
    """One account over one keep-alive HTTP connection; overlapping requests queue for it.

    The queue is an :class:`asyncio.Lock` (first come, first served, one wake-up per
    release): an overloaded server must not turn into an overloaded client. Over http:// the
    requests go through :class:`bench.http.HttpConnection`, which costs the load generator
    a small fraction of what a general client does; https:// URLs go through httpx.
    """

    def __init__(self, url: str, creds: dict[str, Any], flow: OrderFlow) -> None:
        self.creds = creds
        self.flow = flow
        self.lock = asyncio.Lock()
        self.http = HttpConnection(url) if url.startswith("http://") else None
        self.client = (
            None
            if self.http is not None
            else httpx.AsyncClient(
                base_url=url,
                timeout=httpx.Timeout(60.0),
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
        )

    async def _send(self, method: str, path: str, data: bytes) -> tuple[int, bytes]:
        headers = signed_headers(self.creds, method, path, data)
        if self.http is not None:
            return await self.http.request(method, path, headers, data)
        assert self.client is not None
        response = await self.client.request(method, path, content=data, headers=headers)
        return response.status_code, response.content

    async def call(self) -> str | None:
        async with self.lock:
            op, body = self.flow.next()
            if op == "place":
                path, method, data = "/v1/orders", "POST", orjson.dumps(body)
            else:
                path, method, data = f"/v1/orders/{body['order_id']}", "DELETE", b""
            status, content = await self._send(method, path, data)
        if status in (200, 201):
            self.flow.on_order(orjson.loads(content))
            return None
        try:
            code: str = orjson.loads(content)["error"]["code"]
        except Exception:
            code = f"HTTP_{status}"
        return code

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self.client is not None:
            await self.client.aclose()


# -- resources ----------------------------------------------------------------------------


def local_pid(url: str) -> int | None:
    """The pid listening on ``url``'s port, if the server runs on this machine."""
    try:
        import psutil

        parsed = urlparse(url)
        host = parsed.hostname or ""
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            return None
        port = parsed.port or 80
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return int(conn.pid) if conn.pid else None
    except Exception:
        return None
    return None


class Usage:
    """CPU and peak RSS of a process (and of this load generator) while a run lasts."""

    def __init__(self, pid: int | None) -> None:
        import psutil

        self.process = psutil.Process(pid) if pid else None
        self.me = psutil.Process()
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            with contextlib.suppress(Exception):
                if self.process is not None:
                    self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)

    def _server_cpu(self) -> float:
        """CPU seconds of the server and its child processes (the ledger writer, say)."""
        assert self.process is not None
        total = 0.0
        for process in [self.process, *self.process.children(recursive=True)]:
            with contextlib.suppress(Exception):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def _loop_cpu(self) -> float | None:
        """CPU seconds of the server's main thread: its event loop, where the gateway, the
        sequencer and the state all run (the single writer). ``None`` where threads are not
        listed."""
        assert self.process is not None
        for thread in self.process.threads():
            if thread.id == self.process.pid:
                return float(thread.user_time + thread.system_time)
        return None

    def __enter__(self) -> Usage:
        self.t0 = time.perf_counter()
        self.me0 = self.me.cpu_times()
        self.cpu0 = self._server_cpu() if self.process else None
        self.loop0: float | None = None
        if self.process is not None:
            with contextlib.suppress(Exception):
                self.loop0 = self._loop_cpu()
            self.peak_rss = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        wall = time.perf_counter() - self.t0
        me = self.me.cpu_times()
        self.client_cpu = 100 * (me.user + me.system - self.me0.user - self.me0.system) / wall
        self.server_cpu = None
        if self.process is not None and self.cpu0 is not None:
            with contextlib.suppress(Exception):
                used = self._server_cpu() - self.cpu0
                self.server_cpu = 100 * used / wall
        self.loop_cpu = None
        if self.process is not None and self.loop0 is not None:
            with contextlib.suppress(Exception):
                loop = self._loop_cpu()
                if loop is not None:
                    self.loop_cpu = 100 * (loop - self.loop0) / wall

    def result(self) -> dict[str, Any]:
        return {
            "server_cpu_percent": None if self.server_cpu is None else round(self.server_cpu, 1),
            "server_loop_cpu_percent": None if self.loop_cpu is None else round(self.loop_cpu, 1),
            "server_peak_rss_mb": round(self.peak_rss / 1e6, 1) if self.process else None,
            "client_cpu_percent": round(self.client_cpu, 1),
        }


# -- runs ---------------------------------------------------------------------------------


class Target:
    """The exchange under test: its URL, admin token, symbols and local pid."""

    def __init__(self, url: str, token: str, books: list[Market], pid: int | None) -> None:
        self.url = url
        self.token = token
        self.books = books
        self.pid = pid
        self.accounts: dict[str, list[dict[str, Any]]] = {}
        self.flows: dict[str, list[OrderFlow]] = {}

    def sessions_for(self, transport: str, scenario: Scenario) -> list[OrderFlow]:
        """One account and order flow per connection, kept across runs of a transport."""
        if transport not in self.flows:
            stamp = time.time_ns()
            self.accounts[transport] = [
                create_account(self.url, self.token, f"bench-{transport}-{i}-{stamp}")
                for i in range(scenario.connections)
            ]
            self.flows[transport] = [
                OrderFlow(self.books, scenario.mix, random.Random(1000 * i + len(transport)))
                for i in range(scenario.connections)
            ]
        return self.flows[transport]


async def _one_run(
    target: Target, transport: str, scenario: Scenario, rate: float | None
) -> dict[str, Any]:
    flows = target.sessions_for(transport, scenario)
    creds = target.accounts[transport]
    sessions: list[WsSession] | list[RestSession]
    if transport == "websocket":
        sessions = [
            await WsSession.open(target.url, c, f) for c, f in zip(creds, flows, strict=True)
        ]
    else:
        sessions = [RestSession(target.url, c, f) for c, f in zip(creds, flows, strict=True)]
    n = len(sessions)

    async def call(i: int) -> str | None:
        return await sessions[i % n].call()

    try:
        with Usage(target.pid) as usage:
            if rate is None:
                window = scenario.window if transport == "websocket" else 1
                recorder = await closed_loop(call, window * n, scenario.duration, scenario.warmup)
            else:
                recorder = await open_loop(call, rate, scenario.duration, scenario.warmup)
    finally:
        for session in sessions:
            with contextlib.suppress(Exception):
                await session.close()
    result = recorder.result(rate) | usage.result()
    if rate is None:
        result["in_flight"] = (scenario.window if transport == "websocket" else 1) * n
    return result


def run_point(
    target: Target, transport: str, scenario: Scenario, rate: float | None
) -> dict[str, Any]:
    """Repeat one run ``scenario.repetitions`` times; medians with min and max."""
    runs = [asyncio.run(_one_run(target, transport, scenario, rate))
            for _ in range(scenario.repetitions)]  # fmt: skip
    point = combine(runs)
    for key in ("server_cpu_percent", "server_loop_cpu_percent", "server_peak_rss_mb",
                "client_cpu_percent"):  # fmt: skip
        values = [r[key] for r in runs if r[key] is not None]
        point[key] = statistics.median(values) if values else None
    point["holds"] = holds(point, scenario.p99_target_ms * 1000)
    point["served"] = served(point)
    return point


#: Requests per second per key for a server the benchmark starts (CFX_RATE_LIMIT).
UNLIMITED = os.environ.get("CFX_RATE_LIMIT", "1000000")


def run(
    scenario: Scenario,
    url: str | None = None,
    token: str | None = None,
    out: Path | None = None,
    closed: bool = True,
    log: Any = None,
) -> dict[str, Any]:
    """Run the scenario's closed-loop and open-loop measurements; start a server unless ``url``."""
    from bench.server import ADMIN_TOKEN, start_server, stop_server  # a real uvicorn process

    say = log or (lambda text: None)
    server = None
    tmp = None
    if url is None:
        tmp = tempfile.TemporaryDirectory(prefix="cfx-bench-")
        # The benchmark measures the order path, not the per-key rate limiter: the server it
        # starts takes CFX_RATE_LIMIT from the environment, unlimited by default.
        # the wall clock, as deployed: every batch then moves the clock and runs what is due
        server = start_server(
            Path(tmp.name) / "data", clock="real", env={"CFX_RATE_LIMIT": UNLIMITED}
        )
        url, token = server.url, ADMIN_TOKEN
    if token is None:
        raise ScenarioError(
            "--url needs --token (or CFX_ADMIN_TOKEN): accounts are created as admin"
        )
    # the disk's sync time when the server's data dir is ours to know
    disk = tmp.name if tmp is not None else None
    result: dict[str, Any] = {"benchmark": "gateway", "machine": machine_info(disk),
                              "scenario": scenario.to_json(), "targets": TARGETS}  # fmt: skip
    try:
        pid = server.process.pid if server is not None else local_pid(url)
        target = Target(url, token, markets(url, scenario.symbols), pid)
        result["server"] = {"url": url if server is None else "(started)", "pid_measured": pid is not None,
                            "symbols": [m.symbol for m in target.books],
                            "rate_limit_per_key": UNLIMITED if server is not None else "the server's own"}  # fmt: skip
        seed_books(url, token, target.books)
        if closed:
            result["closed_loop"] = {}
            for transport in scenario.transports:
                say(f"closed loop, {transport}")
                result["closed_loop"][transport] = run_point(target, transport, scenario, None)
        result["sweep"] = {}
        target_us = scenario.p99_target_ms * 1000
        for transport in scenario.transports:
            points = []
            rates = scenario.rates or DEFAULT_SWEEP[transport]
            for rate in rates:
                say(f"open loop, {transport}, {rate:g} orders/s")
                point = run_point(target, transport, scenario, rate)
                points.append(point)
                if not point["holds"] and len(rates) > 1:
                    break  # the knee is below; higher rates would only queue further
            result["sweep"][transport] = {"points": points, "knee_per_s": knee(points, target_us)}
    finally:
        if server is not None:
            stop_server(server)
        if tmp is not None:
            tmp.cleanup()
    if out is not None:
        from bench.plots import gateway_plots

        result["plots"] = [str(p) for p in gateway_plots(result, out)]
    return result


# -- output -------------------------------------------------------------------------------


def _ms(us: float) -> str:
    return f"{us / 1000:,.2f}"


def render(result: dict[str, Any]) -> None:
    """Rich tables: closed-loop saturation, then the open-loop sweep per transport."""
    from rich.table import Table

    console = machine.console()
    m = result["machine"]
    s = result["scenario"]
    console.print(f"[bold]cfx gateway benchmark[/]: {s['connections']} connections, {s['symbols']} symbol(s), "
                  f"mix {s['mix']}, {s['repetitions']} x {s['duration']:g} s after {s['warmup']:g} s warm-up")  # fmt: skip
    console.print(machine.describe(m), markup=False, highlight=False)
    if result.get("closed_loop"):
        table = Table(title="closed loop (saturation): median of repetitions \\[min-max]")
        for col in ("transport", "in flight", "acked/s", "answers/s", "p50 ms", "p99 ms", "p99.9 ms",
                    "max ms", "server CPU %", "loop CPU %", "client CPU %", "errors (median run)"):  # fmt: skip
            table.add_column(
                col,
                justify="left" if col in ("transport", "errors (median run)") else "right",
                overflow="fold",
            )
        for transport, p in result["closed_loop"].items():
            med, lo, hi = p["median"], p["min"], p["max"]
            table.add_row(transport, str(p["median_run"].get("in_flight", "")),
                          f"{med['ok_per_s']:,.0f} [{lo['ok_per_s']:,.0f}-{hi['ok_per_s']:,.0f}]",
                          f"{med['achieved_per_s']:,.0f}", _ms(med["latency"]["p50_us"]),
                          f"{_ms(med['latency']['p99_us'])} [{_ms(lo['latency']['p99_us'])}-{_ms(hi['latency']['p99_us'])}]",
                          _ms(med["latency"]["p99.9_us"]), _ms(med["latency"]["max_us"]),
                          _pct(p["server_cpu_percent"]), _pct(p.get("server_loop_cpu_percent")),
                          _pct(p["client_cpu_percent"]), _errors(p["errors"]))  # fmt: skip
        console.print(table)
    target_ms = s["p99_target_ms"]
    for transport, sweep in result.get("sweep", {}).items():
        table = Table(title=f"open loop, {transport}: latency from the intended send time, "
                            f"median of repetitions \\[min-max of p99]")  # fmt: skip
        for col in ("offered/s", "acked/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms",
                    "server CPU %", "loop CPU %", "RSS MB", "client CPU %", f"p99 <= {target_ms:g} ms",
                    "errors (median run)"):  # fmt: skip
            table.add_column(col, justify="left" if col.startswith("errors") else "right",
                             overflow="fold")  # fmt: skip
        for p in sweep["points"]:
            lat, lo, hi = p["median"]["latency"], p["min"]["latency"], p["max"]["latency"]
            table.add_row(f"{p['offered_per_s']:,.0f}", f"{p['median']['ok_per_s']:,.0f}", _ms(lat["p50_us"]),
                          _ms(lat["p90_us"]), f"{_ms(lat['p99_us'])} [{_ms(lo['p99_us'])}-{_ms(hi['p99_us'])}]",
                          _ms(lat["p99.9_us"]), _ms(lat["max_us"]), _pct(p["server_cpu_percent"]),
                          _pct(p.get("server_loop_cpu_percent")), _pct(p["server_peak_rss_mb"]),
                          _pct(p["client_cpu_percent"]),
                          "yes" if p["holds"] else "no", _errors(p["errors"]))  # fmt: skip
        console.print(table)
        k = sweep["knee_per_s"]
        console.print(
            f"knee ({transport}): " + (f"{k:,.0f} orders/s" if k else "below the lowest rate swept")
        )
    for plot in result.get("plots", []):
        console.print(f"plot: {plot}")


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def _errors(errors: dict[str, int]) -> str:
    return (
        ", ".join(f"{code} {n:,}" for code, n in sorted(errors.items(), key=lambda x: -x[1])) or "-"
    )


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """The scenario file (or the defaults), then the flags over it, then ``--quick``."""
    scenario = load_scenario(args.scenario) if args.scenario else Scenario()
    sweep = parse_rates(args.sweep) if args.sweep else None
    scenario = _with(scenario, transport=args.transport, connections=args.connections,
                     rate=args.rate, sweep=sweep, window=args.window, duration=args.duration,
                     warmup=args.warmup, repetitions=args.repetitions, symbols=args.symbols,
                     p99_target_ms=args.p99_target_ms)  # fmt: skip
    if args.quick:
        quick = dict(QUICK)
        if scenario.rate or sweep or (args.scenario and scenario.sweep):
            quick.pop("sweep")
        scenario = _with(scenario, **quick)
    return scenario  # no rates: each transport sweeps its DEFAULT_SWEEP


def parser(prog: str = "python -m bench.gateway") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("--url", help="a running exchange (default: start one)")
    p.add_argument("--token", help="admin token for --url")
    p.add_argument("--scenario", type=Path, help="TOML scenario file (flags override it)")
    p.add_argument("--transport", choices=("websocket", "rest", "both"))
    p.add_argument("--connections", type=int)
    p.add_argument("--rate", type=float, help="offered orders/s, open loop")
    p.add_argument("--sweep", help="offered rates to sweep, e.g. 500,1000,2000")
    p.add_argument("--window", type=int, help="closed loop: in flight per websocket connection")
    p.add_argument("--duration", type=float, help="measured seconds per repetition")
    p.add_argument("--warmup", type=float, help="seconds before measuring")
    p.add_argument("--repetitions", type=int)
    p.add_argument("--symbols", type=int)
    p.add_argument("--p99-target-ms", type=float, dest="p99_target_ms")
    p.add_argument("--no-closed", action="store_true", help="skip the closed-loop runs")
    p.add_argument("--out", type=Path, default=Path("bench-results"), help="directory for plots")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quick", action="store_true")
    return p


def main(argv: list[str] | None = None, prog: str = "python -m bench.gateway") -> int:
    args = parser(prog).parse_args(argv)
    log = None if args.json else (lambda text: print(f"... {text}", file=sys.stderr, flush=True))
    try:
        scenario = scenario_from_args(args)
        result = run(scenario, args.url, args.token, args.out, closed=not args.no_closed, log=log)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    machine.emit(result, args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
