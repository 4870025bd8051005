"""Gateway benchmark: order entry over the websocket and over REST against a real server.

``python -m bench.gateway [--url URL] [--json] [--quick]``: starts an exchange on a
simulated clock in a temporary data dir (or uses ``--url`` with ``--token``), creates one
account per connection, and sends limit orders that rest (bids far below the reference
price, so the book grows but nothing trades). Closed loop: each websocket connection keeps
``--window`` orders in flight; latency is from send to acknowledgement. Acknowledgement
means journaled with fsync and applied.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets
from hdrh.histogram import HdrHistogram

from bench import machine
from bench.machine import machine_info
from exchange.gateway.auth import sign

TOKEN = "bench-admin-token"


def _account(url: str, token: str, name: str) -> dict[str, Any]:
    response = httpx.post(url + "/v1/admin/accounts", json={"name": name, "deposit": "100000000.00"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


async def _ws_client(url: str, creds: dict[str, Any], symbol: str, n: int, window: int,
                     hist: HdrHistogram) -> int:  # fmt: skip
    async with websockets.connect(url.replace("http", "ws", 1) + "/v1/ws", max_size=None) as ws:
        ts = str(int(time.time()))
        await ws.send(orjson.dumps({"op": "auth", "id": "auth", "key": creds["api_key"], "timestamp": ts,
                                    "signature": sign(creds["api_secret"], ts, "GET", "/v1/ws", b"")}).decode())  # fmt: skip
        while orjson.loads(await ws.recv()).get("id") != "auth":
            pass
        sent: dict[int, int] = {}
        acked = 0
        next_id = 0

        async def send_one() -> None:
            nonlocal next_id
            price = f"{1 + (next_id % 50) / 100:.2f}"
            sent[next_id] = time.perf_counter_ns()
            await ws.send(orjson.dumps({"op": "place", "id": next_id, "symbol": symbol, "side": "buy",
                                        "type": "limit", "price": price, "quantity": 1}).decode())  # fmt: skip
            next_id += 1

        for _ in range(min(window, n)):
            await send_one()
        while acked < n:
            message = orjson.loads(await ws.recv())
            request_id = message.get("id")
            if isinstance(request_id, int) and request_id in sent:
                hist.record_value(max(1, (time.perf_counter_ns() - sent.pop(request_id)) // 1000))
                acked += message.get("op") == "ack"
                if next_id < n:
                    await send_one()
        return acked


async def bench_ws(
    url: str, token: str, symbol: str, connections: int, orders: int, window: int
) -> dict[str, Any]:
    creds = [_account(url, token, f"ws-bench-{i}-{time.time_ns()}") for i in range(connections)]
    hist = HdrHistogram(1, 60_000_000, 3)
    start = time.perf_counter()
    acked = await asyncio.gather(*(_ws_client(url, c, symbol, orders, window, hist) for c in creds))
    seconds = time.perf_counter() - start
    return _result(sum(acked), seconds, hist) | {"connections": connections, "window": window}


def bench_rest(url: str, token: str, symbol: str, orders: int) -> dict[str, Any]:
    creds = _account(url, token, f"rest-bench-{time.time_ns()}")
    hist = HdrHistogram(1, 60_000_000, 3)
    acked = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        start = time.perf_counter()
        for i in range(orders):
            body = orjson.dumps({"symbol": symbol, "side": "buy", "type": "limit",
                                 "price": f"{1 + (i % 50) / 100:.2f}", "quantity": 1})  # fmt: skip
            ts = str(int(time.time()))
            headers = {"CFX-KEY": creds["api_key"], "CFX-TIMESTAMP": ts, "Content-Type": "application/json",
                       "CFX-SIGNATURE": sign(creds["api_secret"], ts, "POST", "/v1/orders", body)}  # fmt: skip
            t0 = time.perf_counter_ns()
            response = client.post("/v1/orders", content=body, headers=headers)
            hist.record_value(max(1, (time.perf_counter_ns() - t0) // 1000))
            acked += response.status_code == 201
        seconds = time.perf_counter() - start
    return _result(acked, seconds, hist) | {"connections": 1}


def _result(acked: int, seconds: float, hist: HdrHistogram) -> dict[str, Any]:
    latency = {f"p{p:g}_us": hist.get_value_at_percentile(p) for p in (50, 90, 99, 99.9)}
    return {"acked": acked, "seconds": round(seconds, 3), "orders_per_s": acked / seconds,
            "latency": latency | {"max_us": hist.get_max_value()}}  # fmt: skip


def run(
    url: str | None = None, token: str | None = None, quick: bool = False, repeats: int = 3
) -> dict[str, Any]:
    """Run the websocket and REST order-entry benchmarks; start a server unless ``url``."""
    from bench.server import ADMIN_TOKEN, start_server, stop_server  # a real uvicorn process

    server = None
    tmp = None
    if url is None:
        tmp = tempfile.TemporaryDirectory(prefix="cfx-bench-")
        server = start_server(Path(tmp.name))
        url, token = server.url, ADMIN_TOKEN
    assert token is not None
    try:
        symbol = httpx.get(url + "/v1/contracts").json()[0]["symbol"]
        ws_orders, rest_orders = (500, 300) if quick else (5_000, 2_000)
        ws_runs = [
            asyncio.run(bench_ws(url, token, symbol, 4, ws_orders, 64)) for _ in range(repeats)
        ]
        rest_runs = [bench_rest(url, token, symbol, rest_orders) for _ in range(repeats)]
    finally:
        if server is not None:
            stop_server(server)
        if tmp is not None:
            tmp.cleanup()

    def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
        rates = [r["orders_per_s"] for r in runs]
        best = sorted(runs, key=lambda r: r["orders_per_s"])[len(runs) // 2]
        return {"orders_per_s_median": statistics.median(rates), "orders_per_s_min": min(rates),
                "orders_per_s_max": max(rates), "median_run": best}  # fmt: skip

    return {"benchmark": "gateway", "machine": machine_info(), "url": url if server is None else "(started)",
            "websocket": summary(ws_runs), "rest": summary(rest_runs),
            "targets": {"websocket_orders_per_s": 20_000, "websocket_p99_ms": 10, "rest_orders_per_s": 3_000}}  # fmt: skip


def render(result: dict[str, Any]) -> None:
    """Print throughput and latency per path."""
    for name in ("websocket", "rest"):
        r = result[name]
        lat = r["median_run"]["latency"]
        print(f"{name:9s}: {r['orders_per_s_median']:>9,.0f} orders/s (min {r['orders_per_s_min']:,.0f}, "
              f"max {r['orders_per_s_max']:,.0f}); p50 {lat['p50_us']:,} us, p99 {lat['p99_us']:,} us, "
              f"max {lat['max_us']:,} us")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--url")
    parser.add_argument("--token")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(args.url, args.token, args.quick, 1 if args.quick else args.repeats)
    machine.emit(result, args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
