"""Accounts cannot see or touch each other's orders and deliveries; admin endpoints need the
token; forged, tampered and replayed signatures are refused; one key's flood is rate
limited while another key trades on. (tests/gateway covers the basic forged, stale and
replayed signature cases and GET/DELETE of another account's order.)"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from exchange.gateway.auth import sign
from tests.reliability.conftest import Client, Server, start_server, stop_server


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("iso") / "cfx")
    yield server
    stop_server(server)


def _trading(server: Server) -> str:
    """An H100 contract still trading, whatever the tests before moved the clock to."""
    contracts = httpx.get(server.url + "/v1/contracts").json()
    return max(
        c["symbol"] for c in contracts if c["product"] == "H100" and c["status"] == "trading"
    )


def _code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_another_accounts_orders_and_deliveries_are_not_found(isolated: Server) -> None:
    server = isolated
    symbol = "H100-2026-12-02"
    alice, bob, mallory = (server.account(n) for n in ("alice", "bob", "mallory"))
    assert alice.place(symbol, "sell", "3.00", 5).status_code == 201
    order = bob.place(symbol, "buy", "3.00", 5).json()
    resting = alice.place(symbol, "sell", "3.40", 2).json()
    server.advance("2026-12-02T01:00:00Z")  # expiry: alice delivers 5 hours to bob
    [delivery] = bob.request("GET", "/v1/deliveries").json()
    tries = [
        ("GET", f"/v1/orders/{order['order_id']}", None, "ORDER_NOT_FOUND"),
        ("DELETE", f"/v1/orders/{resting['order_id']}", None, "ORDER_NOT_FOUND"),
        ("PATCH", f"/v1/orders/{resting['order_id']}", {"quantity": 9}, "ORDER_NOT_FOUND"),
        ("POST", f"/v1/deliveries/{delivery['delivery_id']}/attestations",
         {"gpu_hours": 1, "period_start": "2026-12-02T00:00:00Z", "period_end": "2026-12-02T01:00:00Z"},
         "DELIVERY_NOT_FOUND"),
        ("POST", f"/v1/deliveries/{delivery['delivery_id']}/disputes",
         {"gpu_hours": 1, "reason": "not mine"}, "DELIVERY_NOT_FOUND"),
    ]  # fmt: skip
    for method, path, body, code in tries:
        assert _code(mallory.request(method, path, body)) == (404, code), (method, path)
    assert mallory.request("GET", "/v1/deliveries").json() == []
    assert mallory.request("GET", "/v1/fills").json() == []
    assert mallory.request("GET", "/v1/orders").json() == []
    # the owners still see theirs, unchanged
    assert alice.request("GET", f"/v1/orders/{resting['order_id']}").json()["quantity"] == 2
    assert bob.request("GET", "/v1/deliveries").json() == [delivery]

    async def over_ws() -> dict[str, object]:
        async with websockets.connect(server.ws_url) as ws:
            ts = str(int(time.time()))
            auth = {"op": "auth", "id": 1, "key": mallory.key, "timestamp": ts,
                    "signature": sign(mallory.secret, ts, "GET", "/v1/ws", b"")}  # fmt: skip
            await ws.send(orjson.dumps(auth).decode())
            await ws.send(
                orjson.dumps({"op": "cancel", "id": 2, "order_id": resting["order_id"]}).decode()
            )
            while True:
                message: dict[str, object] = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                if message.get("id") == 2:
                    return message

    reply = asyncio.run(over_ws())
    assert reply["op"] == "error" and reply["error"] == {  # type: ignore[comparison-overlap]
        "code": "ORDER_NOT_FOUND",
        "message": f"order {resting['order_id']} not found",
    }


def test_every_admin_endpoint_needs_the_token(isolated: Server) -> None:
    server = isolated
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    admin = [(m.upper(), p) for p, ops in paths.items() if p.startswith("/v1/admin/") for m in ops]
    assert len(admin) >= 10
    for method, path in admin:
        url = server.url + path.replace("{account_id}", "1").replace("{delivery_id}", "1").replace(
            "{symbol}", "H100-2026-12-03"
        )
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "local-admin-token"},
        ):
            response = httpx.request(method, url, headers=headers, json={})
            assert _code(response) == (401, "UNAUTHORIZED"), (method, path, headers)


def test_tampered_and_replayed_signatures_are_refused(isolated: Server) -> None:
    server = isolated
    trader = server.account("signer")
    symbol = "H100-2026-12-04"
    body = orjson.dumps(
        {"symbol": symbol, "side": "buy", "type": "limit", "price": "3.00", "quantity": 1}
    )
    ts = str(int(time.time()))
    good = sign(trader.secret, ts, "POST", "/v1/orders", body)
    headers = {"CFX-KEY": trader.key, "CFX-TIMESTAMP": ts, "CFX-SIGNATURE": good,
               "Content-Type": "application/json"}  # fmt: skip
    tampered = body.replace(b'"quantity":1', b'"quantity":9')
    assert _code(httpx.post(server.url + "/v1/orders", content=tampered, headers=headers)) == (
        401,
        "UNAUTHORIZED",
    )
    elsewhere = httpx.post(server.url + "/v1/orders/cancel-after", content=body, headers=headers)
    assert _code(elsewhere) == (401, "UNAUTHORIZED")
    future = str(int(time.time()) + 120)
    ahead = headers | {
        "CFX-TIMESTAMP": future,
        "CFX-SIGNATURE": sign(trader.secret, future, "POST", "/v1/orders", body),
    }
    assert _code(httpx.post(server.url + "/v1/orders", content=body, headers=ahead)) == (
        401,
        "UNAUTHORIZED",
    )
    other = server.account("other")  # someone else's key with this account's signature
    assert _code(httpx.post(server.url + "/v1/orders", content=body,
                            headers=headers | {"CFX-KEY": other.key})) == (401, "UNAUTHORIZED")  # fmt: skip
    order = httpx.post(server.url + "/v1/orders", content=body, headers=headers).json()
    path = f"/v1/orders/{order['order_id']}"
    amend = orjson.dumps({"quantity": 3})
    signed = {"CFX-KEY": trader.key, "CFX-TIMESTAMP": ts, "CFX-SIGNATURE": sign(trader.secret, ts, "PATCH", path, amend),
              "Content-Type": "application/json"}  # fmt: skip
    assert httpx.patch(server.url + path, content=amend, headers=signed).status_code == 200
    assert _code(httpx.patch(server.url + path, content=amend, headers=signed)) == (
        401,
        "UNAUTHORIZED",
    )
    assert trader.request("GET", path).json()["quantity"] == 3
    assert trader.request("GET", "/v1/orders").json() == [trader.request("GET", path).json()]


def test_a_flood_from_one_key_is_limited_while_another_key_trades(isolated: Server) -> None:
    server = isolated
    flooder, bystander = server.account("flood"), server.account("calm")
    statuses: Counter[int] = Counter()
    retry_after: set[str] = set()
    stop = threading.Event()

    def flood() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            while not stop.is_set():
                ts = str(int(time.time()))
                path = "/v1/orders/999999"
                response = http.get(path, headers={"CFX-KEY": flooder.key, "CFX-TIMESTAMP": ts,
                                                   "CFX-SIGNATURE": sign(flooder.secret, ts, "GET", path, b"")})  # fmt: skip
                statuses[response.status_code] += 1
                if response.status_code == 429:
                    assert response.json()["error"]["code"] == "RATE_LIMITED"
                    retry_after.add(response.headers["Retry-After"])

    threads = [threading.Thread(target=flood) for _ in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while statuses[429] < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    calm = [_calm(bystander) for _ in range(20)]
    stop.set()
    for thread in threads:
        thread.join()
    assert statuses[429] >= 50, statuses
    assert all(value.isdigit() and int(value) >= 1 for value in retry_after)
    assert calm == [200] * 20


def _calm(client: Client) -> int:
    return client.request("GET", "/v1/account").status_code


def test_a_signature_is_single_use_in_either_case_and_junk_is_refused(isolated: Server) -> None:
    server = isolated
    trader = server.account("cased")
    order = trader.place(_trading(server), "buy", "3.00", 1).json()
    ts, path = str(int(time.time())), f"/v1/orders/{order['order_id']}"
    amend = orjson.dumps({"quantity": 2})
    signature = sign(trader.secret, ts, "PATCH", path, amend)
    assert any(c in "abcdef" for c in signature)
    headers = {"CFX-KEY": trader.key, "CFX-TIMESTAMP": ts, "Content-Type": "application/json"}
    assert httpx.patch(server.url + path, content=amend,
                       headers=headers | {"CFX-SIGNATURE": signature}).status_code == 200  # fmt: skip
    for again in (signature, signature.upper(), signature[:10].upper() + signature[10:]):
        replay = httpx.patch(
            server.url + path, content=amend, headers=headers | {"CFX-SIGNATURE": again}
        )
        assert _code(replay) == (401, "UNAUTHORIZED")
    for junk in ("é" * 64, signature[:-1] + "g", signature + "0", "+" + signature[1:]):
        response = httpx.get(
            server.url + "/v1/account", headers=headers | {"CFX-SIGNATURE": junk.encode("latin-1")}
        )
        assert _code(response) == (401, "UNAUTHORIZED"), junk

    async def over_the_websocket() -> None:
        ts = str(int(time.time()))
        signature = sign(trader.secret, ts, "GET", "/v1/ws", b"")
        async with websockets.connect(server.ws_url) as ws:
            for i, sig in enumerate((signature, signature.upper(), "é" * 64)):
                await ws.send(orjson.dumps({"op": "auth", "id": i, "key": trader.key,
                                            "timestamp": ts, "signature": sig}).decode())  # fmt: skip
                reply = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                assert reply["op"] == ("ack" if i == 0 else "error"), reply
            await ws.send('{"op": "ping", "id": "still-open"}')
            assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["op"] == "pong"

    asyncio.run(over_the_websocket())


async def _cancel_burst(ws: Any, trader: Client, order_id: int, n: int = 900) -> Counter[str]:
    """Authenticate ``ws`` as ``trader``, send ``n`` cancels of ``order_id`` at once (the key's
    bucket holds 400, twice the 200 a second); count the answers by code (``ack`` if none)."""
    ts = str(int(time.time()))
    await ws.send(orjson.dumps({"op": "auth", "id": "a", "key": trader.key, "timestamp": ts,
                                "signature": sign(trader.secret, ts, "GET", "/v1/ws", b"")}).decode())  # fmt: skip
    assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["op"] == "ack"
    for i in range(n):
        await ws.send(orjson.dumps({"op": "cancel", "id": i, "order_id": order_id}).decode())
    codes: Counter[str] = Counter()
    while sum(codes.values()) < n:
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if isinstance(reply.get("id"), int):
            codes[reply["error"]["code"] if reply["op"] == "error" else "ack"] += 1
    return codes


def test_websocket_cancels_and_control_messages_are_rate_limited(isolated: Server) -> None:
    server = isolated
    trader = server.account("canceller")
    order = trader.place(_trading(server), "buy", "3.00", 1).json()

    async def run() -> None:
        async with websockets.connect(server.ws_url) as ws:
            codes = await _cancel_burst(ws, trader, order["order_id"])
            assert codes["RATE_LIMITED"] >= 300 and codes["ack"] >= 1, codes
            for i in range(170):  # 100 at once, then 20 a second
                await ws.send(
                    orjson.dumps(
                        {"op": "unsubscribe", "id": f"u{i}", "channels": ["fills"]}
                    ).decode()
                )
            replies = [orjson.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(170)]
            limited = [r for r in replies if r["op"] == "error"]
            assert limited and all(r["error"]["code"] == "RATE_LIMITED" for r in limited)

    asyncio.run(run())


def test_a_connection_flooding_unlimited_messages_is_closed(isolated: Server) -> None:
    """Pings, garbage and orders before auth draw on no key's bucket: past 1,000 at once
    (100 a second after) the connection gets RATE_LIMITED and a 1008 close, every earlier
    message answered first; another connection pings on."""
    from exchange.gateway.ws import OTHER_BURST

    frames = ["{", "[1]", '{"op": "dance"}', b"\x00binary",
              '{"op": "place", "symbol": "X", "side": "buy", "type": "market", "quantity": 1}']  # fmt: skip

    async def run() -> None:
        async with websockets.connect(server.ws_url) as calm:
            async with websockets.connect(server.ws_url) as ws:
                sent = OTHER_BURST + 500
                for i in range(sent):
                    await ws.send(
                        orjson.dumps({"op": "ping", "id": i}).decode()
                        if i % 2
                        else frames[i // 2 % 5]
                    )
                replies: list[dict[str, Any]] = []
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    async with asyncio.timeout(30):  # not closed: fail, not wait on heartbeats
                        while True:
                            reply = orjson.loads(await ws.recv())
                            if reply.get("channel") != "heartbeat":
                                replies.append(reply)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
                *answered, farewell = replies
                assert farewell["op"] == "error" and farewell["error"]["code"] == "RATE_LIMITED"
                assert "connection is closed" in farewell["error"]["message"]
                # every message before the budget ran out was answered, in order
                assert OTHER_BURST <= len(answered) < sent
                pongs = [r["id"] for r in answered if r["op"] == "pong"]
                assert pongs == list(range(1, 2 * len(pongs), 2))
                assert all(r["op"] in ("pong", "error") for r in answered)
                assert {r["error"]["code"] for r in answered if r["op"] == "error"} == {
                    "INVALID_REQUEST", "UNAUTHORIZED"
                }  # fmt: skip
            await calm.send(orjson.dumps({"op": "ping", "id": "still"}).decode())
            reply = orjson.loads(await asyncio.wait_for(calm.recv(), 10))
            while reply.get("channel") == "heartbeat":
                reply = orjson.loads(await asyncio.wait_for(calm.recv(), 10))
            assert (reply["op"], reply["id"]) == ("pong", "still")

    server = isolated
    asyncio.run(run())


def test_one_api_key_has_one_rate_limit_over_rest_and_the_websocket(isolated: Server) -> None:
    """Every order request counts, refused or not (a cancel of an order id that is not the
    account's, too), and the websocket draws on the bucket its key's REST requests use."""
    server = isolated
    trader = server.account("one-bucket")

    async def drain() -> Counter[str]:
        async with websockets.connect(server.ws_url) as ws:
            # an order id never given; more refusals for the rate than the connection's
            # budget for refused messages: a bot over its rate is slowed, not disconnected
            return await _cancel_burst(ws, trader, 10**12, n=1_600)

    codes = asyncio.run(drain())
    assert codes["RATE_LIMITED"] > 1_000 and codes["ORDER_NOT_FOUND"] >= 300, codes
    with httpx.Client() as http:  # at once, over REST: the same bucket, nearly empty
        trader.session = http
        statuses = Counter(trader.request("GET", "/v1/account").status_code for _ in range(100))
    assert statuses[429] >= 20, statuses


def test_a_request_refused_for_its_rate_keeps_its_signature(tmp_path: Path) -> None:
    """429 changes nothing, the signature included: the same signed request sent again
    after Retry-After is served, not refused as a replay."""
    from exchange.gateway.app import create_app
    from exchange.gateway.ratelimit import TokenBucket
    from tests.reliability.conftest import Signed, admin_headers, in_process

    async def run() -> None:
        async with in_process(tmp_path / "cfx") as svc:
            transport = httpx.ASGITransport(app=create_app(svc))
            async with httpx.AsyncClient(transport=transport, base_url="http://cfx") as http:
                made = await http.post("/v1/admin/accounts", headers=admin_headers(),
                                       json={"name": "slow", "deposit": "100.00"})  # fmt: skip
                trader = Signed(http, made.json())
                svc.limiter = TokenBucket(rate=20, burst=1)
                assert (await trader.request("GET", "/v1/account")).status_code == 200
                ts, path = str(int(time.time())), "/v1/orders/424242"
                headers = {"CFX-KEY": trader.key, "CFX-TIMESTAMP": ts,
                           "CFX-SIGNATURE": sign(trader.secret, ts, "DELETE", path, b"")}  # fmt: skip
                assert (await http.delete(path, headers=headers)).status_code == 429
                await asyncio.sleep(0.1)
                again = await http.delete(path, headers=headers)
                assert _code(again) == (404, "ORDER_NOT_FOUND")  # served, not a replay

    asyncio.run(run())
