"""Feed benchmark: many websocket subscribers to one symbol's book and trades.

``cfx bench feed [--subscribers 500] [--rate 2000] [--duration 10] [--url URL --token T]``
starts ``cfx serve`` on the wall clock (or uses ``--url``), spreads the subscribers over
several client processes (one Python process cannot read hundreds of busy sockets fast
enough to be fair to the server), and subscribes each to ``book:SYM`` and ``trades:SYM``.
A driver then changes the book at ``--rate`` commands per second on an open-loop schedule
(:mod:`bench.openloop`): limit orders near the reference price from several accounts, each
cancelled again later, and every 20th order a market order that trades. Every such command
is one book update (the service sends one per command), some also a trade.

Lag is the time from the engine's event time to a client's receipt: book updates and
trades carry the sequencer's stamp as ``"ts"`` (integer ns, the wall clock of this machine),
and the client takes ``time.time_ns()`` as each message arrives. Messages whose event time
falls in the measured window count (the warm-up is excluded); clients keep reading for a
grace period after it so late messages are measured, not dropped. Each connection checks
that book sequence numbers rise by exactly 1 and trade ids without holes: a gap is
reported, as is a connection the server closed for falling behind (``SLOW_CONSUMER``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import math
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from hdrh.histogram import HdrHistogram
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect
from picows.common import WSInvalidStatusError

from bench import machine, options
from bench.machine import machine_info
from bench.openloop import latency_summary, open_loop

TARGETS = {"subscribers": 500, "updates_per_s": 2_000, "p99_lag_ms": 50}
#: Seconds clients keep reading after the measured window, so late messages are counted.
GRACE_S = 3.0
#: Handshakes one subscriber tries before giving up, each refused 429 for the address's rate.
HANDSHAKE_TRIES = 60
_HIST_MAX_US = 3_600_000_000


# -- the subscriber processes -------------------------------------------------------------


class _Tally:
    """What one client process saw, over all its connections."""

    def __init__(self) -> None:
        self.lag = HdrHistogram(1, _HIST_MAX_US, 3)
        self.book_updates = 0
        self.trades = 0
        self.gaps = 0
        self.slow_consumer = 0
        self.closed = 0
        self.window: tuple[int, int] | None = None

    def result(self) -> dict[str, Any]:
        return {
            "lag": base64.b64encode(self.lag.encode()).decode(),
            "book_updates": self.book_updates,
            "trades": self.trades,
            "gaps": self.gaps,
            "slow_consumer": self.slow_consumer,
            "closed": self.closed,
        }


class _Subscriber(WSListener):
    """One subscriber connection: checks sequences and trade ids, records each lag.

    Built on picows (a websocket library written in Cython): the subscribers run on the
    same 2 cores as the server they measure, and a general asyncio client spent more CPU
    reading 500 busy sockets than the server spent writing them, which made the lag the
    clients' own.
    """

    def __init__(self, symbol: str, tally: _Tally, ready: asyncio.Event) -> None:
        self.subscribe = orjson.dumps({"op": "subscribe", "id": 1,
                                       "channels": [f"book:{symbol}", f"trades:{symbol}"]})  # fmt: skip
        self.tally = tally
        self.ready = ready
        self.sequence: int | None = None
        self.last_trade: int | None = None
        self.stopping = False

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(WSMsgType.TEXT, self.subscribe)
        self.ready.set()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.stopping:
            self.tally.closed += 1

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            return
        received = time.time_ns()
        message = orjson.loads(frame.get_payload_as_bytes())
        tally = self.tally
        channel = message.get("channel")
        if channel == "book":
            if message["type"] == "snapshot":
                self.sequence = message["sequence"]
                return
            if self.sequence is not None and message["sequence"] != self.sequence + 1:
                tally.gaps += 1
            self.sequence = message["sequence"]
        elif channel == "trades":
            trade_id = message["trade_id"]
            if self.last_trade is not None and trade_id != self.last_trade + 1:
                tally.gaps += 1
            self.last_trade = trade_id
        else:
            error = message.get("error") if message.get("op") == "error" else None
            if error and error.get("code") == "SLOW_CONSUMER":
                tally.slow_consumer += 1
            return
        window = tally.window
        ts = message.get("ts")
        if window is None or ts is None or not window[0] <= ts < window[1]:
            return
        tally.lag.record_value(max(1, (received - ts) // 1000))
        if channel == "book":
            tally.book_updates += 1
        else:
            tally.trades += 1


async def _connect(ws_url: str, listener: Any) -> tuple[WSTransport, WSListener]:
    """Open one subscriber's websocket; a handshake refused for the address's rate of
    requests without a key (429, a server of ``--url``'s) is tried again when it says."""
    tries = 1
    while True:
        try:
            return await ws_connect(listener, ws_url, max_frame_size=1 << 24,
                                    websocket_handshake_timeout=60)  # fmt: skip
        except WSInvalidStatusError as refused:
            answer = refused.response
            if answer is None or answer.status != 429 or tries == HANDSHAKE_TRIES:
                raise
            tries += 1
            await asyncio.sleep(float(answer.headers.get("retry-after", "1")))


async def _client_main(ws_url: str, symbol: str, connections: int, ready_q: Any, go_q: Any,
                       result_q: Any) -> None:  # fmt: skip
    tally = _Tally()
    events = [asyncio.Event() for _ in range(connections)]
    opened: list[tuple[WSTransport, _Subscriber]] = []
    for event in events:  # connect a few at a time: a burst of handshakes is not the test
        transport, listener = await _connect(
            ws_url, lambda event=event: _Subscriber(symbol, tally, event)
        )
        assert isinstance(listener, _Subscriber)
        opened.append((transport, listener))
        await asyncio.sleep(0.002)
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 120)
    ready_q.put(connections)
    loop = asyncio.get_running_loop()
    window = await loop.run_in_executor(None, go_q.get)
    tally.window = (window[0], window[1])
    stop_at = window[1] + int(GRACE_S * 1e9)
    await asyncio.sleep(max(0.0, (stop_at - time.time_ns()) / 1e9))
    for transport, listener in opened:
        listener.stopping = True
        transport.disconnect()
    result_q.put(tally.result())


def _client_process(ws_url: str, symbol: str, connections: int, ready_q: Any, go_q: Any,
                    result_q: Any) -> None:  # fmt: skip
    """Entry point of one client process (spawned)."""
    asyncio.run(_client_main(ws_url, symbol, connections, ready_q, go_q, result_q))


# -- the driver ---------------------------------------------------------------------------


class _Driver:
    """Accounts on websocket connections that change the book: place, later cancel, trade."""

    def __init__(self, sessions: list[Any], book: Any) -> None:
        self.sessions = sessions
        self.book = book
        self.count = 0

    async def call(self, i: int) -> str | None:
        session = self.sessions[i % len(self.sessions)]
        flow = session.flow
        self.count += 1
        turn = i // len(self.sessions)  # this account's own count: place, cancel, place, ...
        if flow.live and (turn % 2 or len(flow.live) >= 500):  # cancel its oldest order
            order_id = flow.live.pop(0)
            return await session.send("cancel", {"order_id": order_id})
        m = self.book
        side = "buy" if (turn // 2) % 2 else "sell"
        if i % 20 == 0:
            return await session.send(
                "place", {"symbol": m.symbol, "side": side, "type": "market", "quantity": 1}
            )
        sign_ = 1 if side == "buy" else -1
        offset = 1 + (i * 7) % max(1, min(30, m.band - 1))
        return await session.send("place", {"symbol": m.symbol, "side": side, "type": "limit",
                                            "quantity": 1 + i % 3, "price": m.price(m.reference - sign_ * offset)})  # fmt: skip


class _DriverSession:
    """A websocket order session that sends explicit requests (not a random mix)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.flow = inner.flow

    async def send(self, op: str, body: dict[str, Any]) -> str | None:
        return await self.inner.submit(op, body)


async def _drive(url: str, token: str, book: Any, rate: float, duration: float, warmup: float,
                 window: tuple[int, int]) -> dict[str, Any]:  # fmt: skip
    import random

    from bench.gateway import OrderFlow, WsSession, create_account
    from bench.scenario import Mix

    # the exchange limits each account to 200 new orders/s: stay under it even if every
    # request were a new order
    n_accounts = max(2, math.ceil(rate / 150))
    stamp = time.time_ns()
    sessions = []
    for i in range(n_accounts):
        creds = create_account(url, token, f"feed-driver-{i}-{stamp}")
        flow = OrderFlow([book], Mix(), random.Random(i))
        sessions.append(_DriverSession(await WsSession.open(url, creds, flow)))
    driver = _Driver(sessions, book)
    sequences: list[int] = []

    async def sequence_at(when_ns: int) -> None:
        await asyncio.sleep(max(0.0, (when_ns - time.time_ns()) / 1e9))
        async with httpx.AsyncClient(timeout=60) as client:
            r = await client.get(f"{url}/v1/book/{book.symbol}", params={"depth": 1})
            sequences.append(int(r.json()["sequence"]))

    # the book's sequence at both ends of the window: the updates every subscriber is owed
    marks = [asyncio.create_task(sequence_at(t)) for t in window]
    recorder = await open_loop(driver.call, rate, duration, warmup)
    await asyncio.gather(*marks)
    for s in sessions:
        with contextlib.suppress(Exception):
            await s.inner.close()
    result = recorder.result(rate)
    result.pop("timeline")
    return {"accounts": n_accounts, "commands": result, "book_updates": sequences[1] - sequences[0]}


def _seed(url: str, token: str, book: Any) -> None:
    """Resting liquidity on both sides so market orders trade."""
    from bench.gateway import seed_books

    seed_books(url, token, [book])


# -- one run and the whole benchmark ------------------------------------------------------


def run_once(url: str, token: str, book: Any, subscribers: int, rate: float, duration: float,
             warmup: float, processes: int) -> dict[str, Any]:  # fmt: skip
    """Subscribe, drive the book, gather what every client process saw."""
    ctx = mp.get_context("spawn")
    ws_url = url.replace("http", "ws", 1) + "/v1/ws"
    ready_q, result_q = ctx.Queue(), ctx.Queue()
    per = [
        subscribers // processes + (1 if i < subscribers % processes else 0)
        for i in range(processes)
    ]
    per = [n for n in per if n]
    go_qs = [ctx.Queue() for _ in per]
    procs = [ctx.Process(target=_client_process, args=(ws_url, book.symbol, n, ready_q, go, result_q),
                         daemon=True) for n, go in zip(per, go_qs, strict=True)]  # fmt: skip
    for p in procs:
        p.start()
    try:
        connected = sum(ready_q.get(timeout=180) for _ in procs)
        # the window is known before the driver starts: clients measure by event time
        start_ns = time.time_ns() + 500_000_000
        window = (start_ns + int(warmup * 1e9), start_ns + int((warmup + duration) * 1e9))
        for go in go_qs:
            go.put(window)
        time.sleep(max(0.0, (start_ns - time.time_ns()) / 1e9))
        driven = asyncio.run(_drive(url, token, book, rate, duration, warmup, window))
        tallies = [result_q.get(timeout=120 + GRACE_S) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
    lag = HdrHistogram(1, _HIST_MAX_US, 3)
    for t in tallies:
        lag.add(HdrHistogram.decode(base64.b64decode(t["lag"])))
    book_updates = sum(t["book_updates"] for t in tallies)
    trades = sum(t["trades"] for t in tallies)
    owed = driven["book_updates"] * connected
    return {
        "subscribers": subscribers,
        "connected": connected,
        "rate": rate,
        "duration_s": duration,
        "book_updates_sent": driven["book_updates"],
        # book updates of the window that reached a subscriber in time to be measured
        "delivered_fraction": book_updates / owed if owed else 0.0,
        "lag": latency_summary(lag),
        "book_updates_per_subscriber_per_s": book_updates / max(1, connected) / duration,
        "messages_per_s": (book_updates + trades) / duration,
        "gaps": sum(t["gaps"] for t in tallies),
        "slow_consumer_disconnects": sum(t["slow_consumer"] for t in tallies),
        "closed_by_server": sum(t["closed"] for t in tallies),
        "driver": driven,
    }


def _combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    r0 = runs[0]
    out: dict[str, Any] = {
        "subscribers": r0["subscribers"],
        "rate": r0["rate"],
        "repetitions": len(runs),
    }
    stats: dict[str, Callable[[list[Any]], Any]] = {
        "median": statistics.median,
        "min": min,
        "max": max,
    }
    for name, fn in stats.items():
        out[name] = {
            "lag": {k: fn([r["lag"][k] for r in runs]) for k in runs[0]["lag"]},
            "messages_per_s": fn([r["messages_per_s"] for r in runs]),
            "book_updates_per_subscriber_per_s": fn([r["book_updates_per_subscriber_per_s"] for r in runs]),
            "delivered_fraction": fn([r["delivered_fraction"] for r in runs]),
            "book_updates_sent_per_s": fn([r["book_updates_sent"] for r in runs]) / r0["duration_s"],
        }  # fmt: skip
    for key in ("gaps", "slow_consumer_disconnects", "closed_by_server"):
        out[key] = sum(r[key] for r in runs)
    out["runs"] = runs
    return out


def run(subscribers: list[int], rates: list[float], duration: float = 10.0, warmup: float = 2.0,
        repetitions: int = 3, processes: int | None = None, url: str | None = None,
        token: str | None = None, out: Path | None = None, log: Any = None) -> dict[str, Any]:  # fmt: skip
    """Every (subscribers, rate) pair, repeated; start a wall-clock server unless ``url``."""
    from bench.gateway import markets
    from bench.server import ADMIN_TOKEN, start_server, stop_server

    say = log or (lambda text: None)
    server = tmp = None
    if url is None:
        tmp = tempfile.TemporaryDirectory(prefix="cfx-bench-feed-")
        # its subscribers open hundreds of websockets from this one address
        server = start_server(Path(tmp.name) / "data", clock="real",
                              env={"CFX_PUBLIC_RATE_LIMIT": "0"})  # fmt: skip
        url, token = server.url, ADMIN_TOKEN
    if token is None:
        raise ValueError("--url needs --token (or CFX_ADMIN_TOKEN): accounts are created as admin")
    disk = tmp.name if tmp is not None else None  # the server's data dir, when it is ours
    result: dict[str, Any] = {"benchmark": "feed", "machine": machine_info(disk), "targets": TARGETS,
                              "duration_s": duration, "warmup_s": warmup}  # fmt: skip
    try:
        book = markets(url, 1)[0]
        result["symbol"] = book.symbol
        _seed(url, token, book)
        combined = []
        for n in subscribers:
            for rate in rates:
                procs = processes if processes is not None else max(2, min(8, n // 64 + 1))
                runs = []
                for rep in range(repetitions):
                    say(f"{n} subscribers, {rate:g} commands/s, repetition {rep + 1}")
                    runs.append(run_once(url, token, book, n, rate, duration, warmup, procs))
                combined.append(_combine(runs) | {"client_processes": procs})
        result["runs"] = combined
    finally:
        if server is not None:
            stop_server(server)
        if tmp is not None:
            tmp.cleanup()
    if out is not None:
        from bench.plots import feed_plot

        result["plots"] = [str(p) for p in feed_plot(result, out)]
    return result


def render(result: dict[str, Any]) -> None:
    from rich.table import Table

    console = machine.console()
    m = result["machine"]
    console.print(f"[bold]cfx feed benchmark[/]: {result['symbol']}, {result['duration_s']:g} s after "
                  f"{result['warmup_s']:g} s warm-up")  # fmt: skip
    console.print(machine.describe(m), markup=False, highlight=False)
    table = Table(
        title="delivery lag, event time to receipt: median of repetitions \\[min-max of p99]"
    )
    for col in ("subscribers", "offered cmd/s", "book updates/s sent to each", "delivered", "messages/s (all)",
                "p50 ms", "p99 ms", "p99.9 ms", "max ms", "gaps", "slow consumers"):  # fmt: skip
        table.add_column(col, justify="right", overflow="fold")
    for r in result["runs"]:
        med, lo, hi = r["median"], r["min"], r["max"]

        def lag(d: dict[str, Any], k: str, got: bool = bool(med["messages_per_s"])) -> str:
            return f"{d['lag'][k] / 1000:,.2f}" if got else "-"

        table.add_row(f"{r['subscribers']:,}", f"{r['rate']:,.0f}", f"{med['book_updates_sent_per_s']:,.0f}",
                      f"{med['delivered_fraction']:.1%}", f"{med['messages_per_s']:,.0f}", lag(med, "p50_us"),
                      f"{lag(med, 'p99_us')} [{lag(lo, 'p99_us')}-{lag(hi, 'p99_us')}]",
                      lag(med, "p99.9_us"), lag(med, "max_us"),
                      str(r["gaps"]), str(r["slow_consumer_disconnects"]))  # fmt: skip
    console.print(table)
    for plot in result.get("plots", []):
        console.print(f"plot: {plot}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.feed", description=__doc__.splitlines()[0])
    p.add_argument("--subscribers", default=None, help="subscribers, or a list: 50,200,500")
    p.add_argument("--rate", default=None, help="offered commands/s, or a list: 500,2000")
    p.add_argument("--duration", type=float, default=None)
    p.add_argument("--warmup", type=float, default=None)
    p.add_argument("--repetitions", type=int, default=None)
    p.add_argument("--processes", type=int, default=None, help="client processes")
    p.add_argument("--url")
    p.add_argument("--token")
    p.add_argument("--out", type=Path, default=Path("bench-results"))
    p.add_argument("--json", action="store_true")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    q = args.quick
    subscribers, rates = [20 if q else 500], [50.0 if q else 2000.0]
    try:
        if args.subscribers is not None:
            subscribers = options.positive_list(args.subscribers, "--subscribers", int,
                                                "counts like 50,200,500")  # fmt: skip
        if args.rate is not None:
            rates = options.positive_list(args.rate, "--rate", float, "commands/s like 500,2000")
        duration = options.positive(args.duration, "--duration", 1.0 if q else 10.0)
        warmup = options.at_least(args.warmup, "--warmup", 0.0, 0.3 if q else 2.0)
        repetitions = options.at_least(args.repetitions, "--repetitions", 1, 1 if q else 3)
        processes = options.at_least(args.processes, "--processes", 1, default=None)
        if args.url is not None and args.token is None:
            raise options.OptionError("--url needs --token (or CFX_ADMIN_TOKEN): accounts are "
                                      "created as admin")  # fmt: skip
    except options.OptionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log = None if args.json else (lambda text: print(f"... {text}", file=sys.stderr, flush=True))
    result = run(subscribers, rates, duration, warmup, repetitions, processes, args.url,
                 args.token, args.out, log)  # fmt: skip
    machine.emit(result, args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
