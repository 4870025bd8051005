"""kill -9 in the middle of order flow: every acknowledged order survives the restart."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

from exchange.gateway.auth import sign
from tests.gateway.conftest import Client, start_server, stop_server


def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        contracts = httpx.get(server.url + "/v1/contracts").json()
        symbol = next(c["symbol"] for c in contracts if c["symbol"].startswith("H100-"))
        traders = [server.account(f"t{i}") for i in range(2)]
        acked: list[tuple[int, int]] = []  # (account, order id)
        stop = threading.Event()

        def flow(i: int) -> None:
            n = 0
            while not stop.is_set():
                side, price = (
                    ("buy", f"3.{10 + n % 30:02d}")
                    if (n + i) % 2
                    else ("sell", f"3.{20 + n % 30:02d}")
                )
                try:
                    response = traders[i].place(symbol, side, price, 1 + n % 5)
                except httpx.HTTPError:
                    return  # the server died under us: this request was never acknowledged
                if response.status_code == 201:
                    acked.append((i, response.json()["order_id"]))
                n += 1

        threads = [threading.Thread(target=flow, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        while len(acked) < 150:
            threading.Event().wait(0.05)
        stop_server(server, kill=True)  # SIGKILL, mid-stream
        stop.set()
        for t in threads:
            t.join()
    finally:
        stop_server(server, kill=True)

    restarted = start_server(tmp_path, port=server.port)
    try:
        for i, order_id in acked:
            response = traders[i].request("GET", f"/v1/orders/{order_id}")
            assert response.status_code == 200, (order_id, response.text)
        book = httpx.get(restarted.url + f"/v1/book/{symbol}?depth=1000").json()
        open_orders = [
            o
            for i in range(2)
            for o in traders[i].request("GET", f"/v1/orders?symbol={symbol}&status=open").json()
        ]
        resting = sum(o["remaining_quantity"] for o in open_orders)
        assert resting == sum(int(q) for _, q in book["bids"] + book["asks"])
        assert restarted.admin("GET", "/v1/admin/ledger/check").json()["balanced"] is True
    finally:
        stop_server(restarted)


def _signed(client: Client, method: str, path: str, body: Any) -> tuple[bytes, dict[str, str]]:
    """A request signed once, to be sent as it is more than once."""
    data = orjson.dumps(body)
    ts = str(int(time.time()))
    return data, {"CFX-KEY": client.key, "CFX-TIMESTAMP": ts, "Content-Type": "application/json",
                  "CFX-SIGNATURE": sign(client.secret, ts, method, path, data)}  # fmt: skip


def test_a_signature_used_before_a_restart_stays_used(tmp_path: Path) -> None:
    """Single use survives kill -9: a captured request sent again after the restart, within
    its timestamp's window, is refused as before, REST and websocket alike."""
    server = start_server(tmp_path)
    try:
        contracts = httpx.get(server.url + "/v1/contracts").json()
        symbol = next(c["symbol"] for c in contracts if c["symbol"].startswith("H100-"))
        trader = server.account("captured")
        order = trader.place(symbol, "buy", "3.00", 3).json()
        path = f"/v1/orders/{order['order_id']}"
        amend = _signed(trader, "PATCH", path, {"price": "3.01"})
        arm = _signed(trader, "POST", "/v1/orders/cancel-after", {"timeout_s": 60})
        for method, where, (data, headers) in (("PATCH", path, amend),
                                               ("POST", "/v1/orders/cancel-after", arm)):  # fmt: skip
            assert httpx.request(
                method, server.url + where, content=data, headers=headers
            ).is_success
        assert trader.request("POST", "/v1/orders/cancel-after", {"timeout_s": 0}).is_success
        ts = str(int(time.time()))
        login = orjson.dumps({"op": "auth", "id": "a", "key": trader.key, "timestamp": ts,
                              "signature": sign(trader.secret, ts, "GET", "/v1/ws", b"")})  # fmt: skip

        async def auth() -> dict[str, Any]:
            async with websockets.connect(server.url.replace("http", "ws") + "/v1/ws") as ws:
                await ws.send(login.decode())
                answer: dict[str, Any] = orjson.loads(await ws.recv())
                return answer

        assert asyncio.run(auth())["op"] == "ack"
    finally:
        stop_server(server, kill=True)

    restarted = start_server(tmp_path, port=server.port)
    try:
        assert trader.request("PATCH", path, {"price": "3.02"}).json()["price"] == "3.02"
        for method, where, (data, headers) in (("PATCH", path, amend),
                                               ("POST", "/v1/orders/cancel-after", arm)):  # fmt: skip
            again = httpx.request(method, restarted.url + where, content=data, headers=headers)
            assert again.status_code == 401, (where, again.text)
            assert "already used" in again.json()["error"]["message"]
        assert trader.request("GET", path).json()["price"] == "3.02"  # the old amend did not run
        refused = asyncio.run(auth())
        assert refused["op"] == "error" and refused["error"]["code"] == "UNAUTHORIZED", refused
        # the switch the replayed cancel-after would have armed again stays off
        restarted.advance("2026-12-01T00:05:00Z")
        assert trader.request("GET", path).json()["status"] == "open"
        assert restarted.admin("GET", "/v1/admin/ledger/check").json()["balanced"] is True
    finally:
        stop_server(restarted)
