"""A ``symbol`` filter names a known contract or is refused; a trailing slash is no redirect.

A real server of this module's own: the last test moves its simulated clock past a
contract's last trade.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import websockets

from exchange.gateway.auth import sign
from tests.gateway.conftest import ADMIN_TOKEN, Server

#: Every REST request that narrows a list by a ``symbol`` query.
FILTERED = [
    ("GET", "/v1/orders"),
    ("DELETE", "/v1/orders"),
    ("GET", "/v1/fills"),
    ("GET", "/v1/market/deliveries"),
]


def test_an_unknown_symbol_filter_is_404_unknown_symbol(server: Server, symbol: str) -> None:
    trader = server.account("filterer")
    resting = trader.place(symbol, "buy", "3.00", 1).json()
    for method, path in FILTERED:
        for unknown in ("XX", "H100-1999-01-01", symbol.lower(), "", "H100-" * 10):
            response = trader.request(method, f"{path}?symbol={unknown}")
            assert response.status_code == 404, (method, path, unknown, response.text)
            error = response.json()["error"]
            assert error["code"] == "UNKNOWN_SYMBOL" and repr(unknown) in error["message"]
    # the refused cancel-all changed nothing
    assert trader.request("GET", f"/v1/orders/{resting['order_id']}").json()["status"] == "open"
    listed = trader.request("GET", f"/v1/orders?symbol={symbol}")
    assert [o["order_id"] for o in listed.json()] == [resting["order_id"]]
    assert trader.request("GET", f"/v1/fills?symbol={symbol}").json() == []
    # authentication still comes first
    assert httpx.get(server.url + "/v1/orders?symbol=XX").status_code == 401


def test_openapi_documents_the_filter_and_its_404(server: Server) -> None:
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    for method, path in FILTERED:
        operation = paths[path][method.lower()]
        assert {"404", "405"} <= set(operation["responses"]), (method, path)
        [param] = [p for p in operation["parameters"] if p["name"] == "symbol"]
        assert param["in"] == "query" and not param.get("required", False)


def test_a_trailing_slash_is_404_not_a_redirect(server: Server, symbol: str) -> None:
    trader = server.account("slasher")
    order = trader.place(symbol, "buy", "3.00", 1).json()
    unknown = httpx.get(server.url + "/v1/nowhere")
    assert unknown.status_code == 404
    attempts = [
        ("GET", "/v1/orders/"),
        ("POST", "/v1/orders/"),
        ("DELETE", "/v1/orders/"),
        ("GET", f"/v1/orders/{order['order_id']}/"),
        ("DELETE", f"/v1/orders/{order['order_id']}/"),
        ("GET", "/v1/fills/"),
        ("GET", "/v1/account//"),
    ]
    for method, path in attempts:
        body = (
            {"symbol": symbol, "side": "buy", "type": "limit", "price": "3.00", "quantity": 1}
            if method == "POST"
            else None
        )
        response = trader.request(method, path, body)  # signed over the path it sends
        assert response.status_code == 404, (method, path, response.status_code)
        assert "location" not in response.headers
        assert response.json() == unknown.json(), (method, path)
    for path in ("/v1/health/", "/v1/contracts/", f"/v1/book/{symbol}/", "/docs/"):
        response = httpx.get(server.url + path)
        assert (response.status_code, response.json()) == (404, unknown.json()), path
    # nothing was placed or cancelled on the way
    open_ = trader.request("GET", "/v1/orders?status=open").json()
    assert [o["order_id"] for o in open_] == [order["order_id"]]
    # the paths without the slash, and the dashboard at /, are served as before
    assert httpx.get(server.url + "/v1/health").status_code == 200
    assert httpx.get(server.url + "/").status_code == 200


def test_a_query_key_or_a_signing_header_given_twice_is_refused(
    server: Server, symbol: str
) -> None:
    """Which copy would count is a guess, and a proxy in front could guess the other way:
    refused, and nothing changes."""
    trader = server.account("twice")
    resting = trader.place(symbol, "buy", "3.00", 1).json()
    for path in (f"/v1/orders?symbol={symbol}&symbol={symbol}", "/v1/orders?limit=1&limit=2"):
        for method in ("GET", "DELETE"):
            response = trader.request(method, path)
            assert response.status_code == 400, (method, path, response.text)
            assert response.json()["error"]["code"] == "INVALID_REQUEST"
            assert "given more than once" in response.json()["error"]["message"]
    order = orjson.dumps({"symbol": symbol, "side": "buy", "type": "limit", "price": "3.00",
                          "quantity": 1})  # fmt: skip
    for method, path, body in (("GET", "/v1/account", b""), ("POST", "/v1/orders", order)):
        ts = str(int(time.time()))
        signed = [("CFX-KEY", trader.key), ("CFX-TIMESTAMP", ts),
                  ("CFX-SIGNATURE", sign(trader.secret, ts, method, path, body)),
                  ("Content-Type", "application/json")]  # fmt: skip
        assert httpx.request(method, server.url + path, content=body, headers=signed).is_success
        for extra in (("CFX-SIGNATURE", "0" * 64), ("cfx-key", trader.key), ("CFX-TIMESTAMP", ts)):
            response = httpx.request(method, server.url + path, content=body,
                                     headers=[*signed, extra])  # fmt: skip
            assert response.status_code == 401, (path, extra, response.text)
            assert "once" in response.json()["error"]["message"]
    placed = trader.request("GET", "/v1/orders?status=open").json()
    assert len(placed) == 2 and placed[0]["order_id"] == resting["order_id"]  # one POST passed
    bearer = ("Authorization", f"Bearer {ADMIN_TOKEN}")
    assert httpx.get(server.url + "/v1/admin/journal", headers=[bearer]).status_code == 200
    assert httpx.get(server.url + "/v1/admin/journal", headers=[bearer, bearer]).status_code == 401


def test_integers_in_paths_and_queries_are_plain_decimal_digits(
    server: Server, symbol: str
) -> None:
    """``+1``, ``01``, ``1_0`` and ``1.0`` would each name a number, but no client means to
    write one that way: 400, and nothing changes."""
    trader = server.account("digits")
    order = trader.place(symbol, "buy", "3.00", 1).json()
    oid = order["order_id"]
    for odd in (f"+{oid}", f"0{oid}", f"{oid}.0", f"{oid}_0", f"%20{oid}", "-1", "0x1"):
        for method, path in (
            ("GET", f"/v1/orders/{odd}"),
            ("DELETE", f"/v1/orders/{odd}"),
            ("PATCH", f"/v1/orders/{odd}"),
            ("GET", f"/v1/orders?before={odd}"),
            ("GET", f"/v1/orders?limit={odd}"),
            ("GET", f"/v1/fills?before={odd}"),
            ("GET", f"/v1/book/{symbol}?depth={odd}"),
            ("GET", f"/v1/trades/{symbol}?limit={odd}"),
            ("GET", f"/v1/candles/{symbol}?limit={odd}"),
            ("GET", f"/v1/market/deliveries?limit={odd}"),
        ):
            body = {"quantity": 2} if method == "PATCH" else None
            response = trader.request(method, path, body)
            assert response.status_code == 400, (method, path, response.text)
            assert response.json()["error"]["code"] == "INVALID_REQUEST", response.text
        response = server.admin("POST", f"/v1/admin/accounts/{odd}/deposits", {"amount": "1.00"})
        assert response.status_code == 400, (odd, response.text)
    assert trader.request("GET", f"/v1/orders/{oid}").json() == order  # nothing changed
    assert trader.request("GET", f"/v1/orders?before={oid + 1}&limit=1").json() == [order]
    assert len(trader.request("GET", f"/v1/book/{symbol}?depth=10").json()["bids"]) >= 1
    message = trader.request("GET", "/v1/orders/+1").json()["error"]["message"]
    assert "decimal digits" in message, message


def test_an_expired_contract_is_still_a_known_filter(server: Server) -> None:
    expiring = "H100-2026-12-02"  # last trade 2026-12-01T23:00Z
    seller, buyer = server.account("exp-seller"), server.account("exp-buyer")
    assert seller.place(expiring, "sell", "3.50", 2).status_code == 201
    bought = buyer.place(expiring, "buy", "3.50", 2).json()
    resting = buyer.place(expiring, "buy", "3.00", 1).json()
    server.advance("2026-12-01T23:30:00Z")
    contract = httpx.get(server.url + f"/v1/contracts/{expiring}").json()
    assert contract["status"] == "expired"

    [fill] = buyer.request("GET", f"/v1/fills?symbol={expiring}").json()
    assert (fill["order_id"], fill["symbol"], fill["quantity"]) == (bought["order_id"], expiring, 2)
    orders = buyer.request("GET", f"/v1/orders?symbol={expiring}").json()
    assert [o["order_id"] for o in orders] == [bought["order_id"], resting["order_id"]]
    cancelled = buyer.request("DELETE", f"/v1/orders?symbol={expiring}")
    assert cancelled.status_code == 200, cancelled.text
    deliveries = httpx.get(server.url + f"/v1/market/deliveries?symbol={expiring}")
    assert deliveries.status_code == 200, deliveries.text


def test_ticker_star_leaves_out_contracts_whose_trading_is_over(server: Server) -> None:
    expired = "H100-2026-12-02"  # last trade 2026-12-01T23:00Z
    if httpx.get(server.url + f"/v1/contracts/{expired}").json()["status"] == "trading":
        server.advance("2026-12-01T23:30:00Z")  # unless the test above did
    open_books = {
        c["symbol"]
        for c in httpx.get(server.url + "/v1/contracts").json()
        if c["status"] in ("listed", "trading")
    }

    async def tickers(channel: str) -> set[str]:
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(
                orjson.dumps({"op": "subscribe", "id": 1, "channels": [channel]}).decode()
            )
            seen: set[str] = set()
            while True:
                try:
                    message = orjson.loads(await asyncio.wait_for(ws.recv(), 1.0))
                except TimeoutError:
                    return seen
                if message.get("channel") == "ticker":
                    seen.add(message["symbol"])

    assert asyncio.run(tickers("ticker:*")) == open_books
    assert asyncio.run(tickers(f"ticker:{expired}")) == {expired}
