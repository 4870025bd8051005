"""The benchmark's lean HTTP client against a real server: what it sends is what httpx sends."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from bench.gateway import create_account, signed_headers
from bench.http import HttpConnection, HttpError
from bench.server import ADMIN_TOKEN, Server


def test_requests_on_one_keep_alive_connection(server: Server) -> None:
    creds = create_account(server.url, ADMIN_TOKEN, "lean")
    contract = next(c for c in httpx.get(server.url + "/v1/contracts").json()
                    if c["status"] == "trading")  # fmt: skip
    symbol, price = contract["symbol"], contract["reference_price"]

    async def run() -> None:
        http = HttpConnection(server.url)
        status, body = await http.request("GET", "/v1/health", {})
        assert status == 200 and orjson.loads(body)["status"] == "ok"
        transport = http._protocol.transport if http._protocol else None
        order = orjson.dumps({"symbol": symbol, "side": "buy", "type": "limit", "price": price,
                              "quantity": 1, "client_order_id": "lean-1"})  # fmt: skip
        headers = signed_headers(creds, "POST", "/v1/orders", order)
        status, body = await http.request("POST", "/v1/orders", headers, order)
        assert status == 201, body
        placed = orjson.loads(body)
        path = f"/v1/orders/{placed['order_id']}"
        status, body = await http.request(
            "DELETE", path, signed_headers(creds, "DELETE", path, b"")
        )
        assert status == 200 and orjson.loads(body)["status"] == "cancelled"
        status, body = await http.request("POST", "/v1/orders", headers, b"{not json")
        assert status in (400, 401) and orjson.loads(body)["error"]["code"]
        assert http._protocol is not None and http._protocol.transport is transport  # reused
        await http.close()

    asyncio.run(run())


def test_a_closed_connection_is_an_error_and_the_next_request_reconnects() -> None:
    async def run() -> None:
        async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.close()  # no answer at all

        listener = await asyncio.start_server(answer_once, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        http = HttpConnection(f"http://127.0.0.1:{port}")
        for _ in range(2):
            with pytest.raises(HttpError, match="closed"):
                await http.request("GET", "/", {})
        await http.close()
        listener.close()

    asyncio.run(run())


def test_only_plain_http_urls() -> None:
    with pytest.raises(ValueError, match="http://"):
        HttpConnection("https://example.com")
