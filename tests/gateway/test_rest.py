"""The REST API against a real uvicorn server (SPEC section 3)."""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

import httpx
import orjson
import pytest
from websockets.sync.client import connect as ws_connect

from exchange.gateway.app import UNREADABLE_JSON
from exchange.gateway.auth import sign
from exchange.gateway.protocols import REQUEST_TIMEOUT_S
from tests.gateway.conftest import ADMIN_TOKEN, Client, Server


def test_health_and_contracts(server: Server) -> None:
    health = httpx.get(server.url + "/v1/health").json()
    assert health == {"status": "ok", "clock": "2026-12-01T00:00:00.000Z"}
    contracts = httpx.get(server.url + "/v1/contracts").json()
    symbols = {c["symbol"] for c in contracts}
    # the rolling calendar: 7 days, 4 ISO weeks, 3 months, for both products
    assert {"H100-2026-12-02", "A100-2026-12-08", "H100-2026-W50", "A100-2027-01"} <= symbols
    first = httpx.get(server.url + f"/v1/contracts/{contracts[0]['symbol']}").json()
    assert set(first) >= {"symbol", "product", "delivery_start", "delivery_end", "last_trade_time", "tick_size",
                          "lot_size", "initial_margin_rate", "price_band", "status"}  # fmt: skip
    assert first["status"] == "trading"


def test_unknown_symbol_is_404_with_a_code(server: Server) -> None:
    response = httpx.get(server.url + "/v1/book/H100-1999-01-01")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "UNKNOWN_SYMBOL"


def test_trade_shows_in_book_trades_orders_and_fills(server: Server, symbol: str) -> None:
    seller, buyer = server.account("seller"), server.account("buyer")
    ask = seller.place(symbol, "sell", "3.50", 10)
    assert ask.status_code == 201, ask.text
    assert ask.json()["status"] == "open"
    book = httpx.get(server.url + f"/v1/book/{symbol}").json()
    assert book["asks"][0] == ["3.50", "10"] or book["asks"][0] == ["3.50", 10]
    bid = buyer.place(symbol, "buy", "3.60", 4, client_order_id="b-1")
    assert bid.status_code == 201, bid.text
    order = bid.json()
    assert (order["status"], order["filled_quantity"], order["remaining_quantity"]) == (
        "filled",
        4,
        0,
    )
    assert order["fills"][0]["price"] == "3.50" and order["fills"][0]["liquidity"] == "taker"
    trades = httpx.get(server.url + f"/v1/trades/{symbol}?limit=1").json()
    assert (
        trades[0]["price"] == "3.50"
        and trades[0]["quantity"] in (4, "4")
        and trades[0]["taker_side"] == "buy"
    )
    fills = buyer.request("GET", f"/v1/fills?symbol={symbol}").json()
    assert fills[0]["trade_id"] == trades[0]["trade_id"]
    # a retry with the same client_order_id returns the original order
    again = buyer.place(symbol, "buy", "3.60", 4, client_order_id="b-1")
    assert again.json()["order_id"] == order["order_id"]
    positions = buyer.request("GET", "/v1/positions").json()
    assert positions == [
        {
            "symbol": symbol,
            "quantity": 4,
            "average_price": "3.5000",
            "unrealized_pnl": "0.0000",
            "realized_pnl": "0.0000",
        }
    ]


def test_cancel_amend_and_cancel_all(server: Server, symbol: str) -> None:
    trader = server.account("amender")
    order = trader.place(symbol, "buy", "3.00", 5).json()
    amended = trader.request("PATCH", f"/v1/orders/{order['order_id']}", {"quantity": 3}).json()
    assert (amended["quantity"], amended["remaining_quantity"]) == (3, 3)
    assert amended["cancel_reason"] is None
    cancelled = trader.request("DELETE", f"/v1/orders/{order['order_id']}").json()
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "user")
    trader.place(symbol, "buy", "3.01", 1)
    trader.place(symbol, "buy", "3.02", 1)
    gone = trader.request("DELETE", f"/v1/orders?symbol={symbol}").json()
    assert len(gone) == 2 and {o["status"] for o in gone} == {"cancelled"}
    assert trader.request("GET", "/v1/orders?status=open").json() == []


def test_an_unknown_query_parameter_is_refused_not_ignored(server: Server, symbol: str) -> None:
    """A misspelt filter ignored would be no filter: cancel-all would cancel everything."""
    trader = server.account("misspeller")
    other = next(s for s in _h100_symbols(server) if s != symbol)
    kept = [trader.place(s, "buy", "3.00", 1).json()["order_id"] for s in (symbol, other)]
    for query in (f"symbl={symbol}", f"symbol={symbol}&status=open", "limit=abc", "before=-1"):
        refused = trader.request("DELETE", f"/v1/orders?{query}")
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "INVALID_REQUEST"
        assert "unknown query parameter" in refused.json()["error"]["message"]
    assert trader.request("DELETE", "/v1/orders?symbl=x").json()["error"]["message"] == (
        "unknown query parameter 'symbl'; this endpoint takes symbol"
    )
    open_ids = {o["order_id"] for o in trader.request("GET", "/v1/orders?status=open").json()}
    assert open_ids == set(kept)  # nothing was cancelled
    for path in ("/v1/orders?statu=open", f"/v1/book/{symbol}?depth=5&dept=1",
                 "/v1/account?x=1", "/v1/health?x", f"/v1/trades/{symbol}?limit=1&limt=2"):  # fmt: skip
        answer = trader.request("GET", path)
        assert answer.status_code == 400, (path, answer.text)
    assert trader.request("GET", f"/v1/book/{symbol}?depth=5").status_code == 200
    assert server.admin("GET", "/v1/admin/ledger/check?full=1").status_code == 400
    # the credentials are checked first, as for any other refusal
    unsigned = httpx.delete(server.url + "/v1/orders?symbl=x")
    assert (unsigned.status_code, unsigned.json()["error"]["code"]) == (401, "UNAUTHORIZED")
    assert httpx.get(server.url + "/v1/admin/journal?x=1").status_code == 401


def _h100_symbols(server: Server) -> list[str]:
    contracts = httpx.get(server.url + "/v1/contracts").json()
    return [c["symbol"] for c in contracts if c["product"] == "H100" and c["status"] == "trading"]


def test_orders_and_fills_are_read_page_by_page(server: Server) -> None:
    symbol = max(_h100_symbols(server))  # a book of its own
    maker, taker = server.account("pager-maker"), server.account("pager-taker")
    asks = [maker.place(symbol, "sell", "3.50", 2).json()["order_id"] for _ in range(4)]
    for _ in range(7):  # each buy takes 1 GPU-hour: fills on every ask but the last
        taker.place(symbol, "buy", "3.50", 1)
    rests = [maker.place(symbol, "sell", "3.70", 1).json()["order_id"] for _ in range(3)]
    every = [o["order_id"] for o in maker.request("GET", "/v1/orders").json()]
    assert every == asks + rests  # in order id order
    newest = maker.request("GET", "/v1/orders?limit=2").json()
    assert [o["order_id"] for o in newest] == rests[1:]  # the newest two, oldest first
    page = maker.request("GET", f"/v1/orders?limit=3&before={rests[0]}").json()
    assert [o["order_id"] for o in page] == asks[1:]
    filled = maker.request("GET", "/v1/orders?status=filled&limit=2").json()
    assert [(o["order_id"], o["status"]) for o in filled] == [
        (asks[1], "filled"),
        (asks[2], "filled"),
    ]
    open_ = maker.request("GET", "/v1/orders?status=open").json()
    assert [o["order_id"] for o in open_] == [asks[3], *rests]  # partially filled counts as open

    fills = maker.request("GET", "/v1/fills").json()
    assert len(fills) == 7 and [f["trade_id"] for f in fills] == sorted(
        (f["trade_id"] for f in fills), reverse=True
    )
    read, before = [], None
    while page := maker.request(
        "GET", "/v1/fills?limit=3" + (f"&before={before}" if before else "")
    ).json():
        assert len(page) <= 3
        read += page
        before = page[-1]["trade_id"]
    assert read == fills

    for query in ("limit=0", "limit=1001", "limit=x", "before=0", "before=-1", f"before={2**63}"):
        for path in ("/v1/orders", "/v1/fills"):
            response = maker.request("GET", f"{path}?{query}")
            assert response.status_code == 400, query
            assert response.json()["error"]["code"] == "INVALID_REQUEST"


def test_another_accounts_order_is_not_found(server: Server, symbol: str) -> None:
    alice, mallory = server.account("alice"), server.account("mallory")
    order = alice.place(symbol, "buy", "3.00", 1).json()
    for method in ("GET", "DELETE"):
        response = mallory.request(method, f"/v1/orders/{order['order_id']}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "ORDER_NOT_FOUND"
    assert alice.request("GET", f"/v1/orders/{order['order_id']}").json()["status"] == "open"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {"symbol": "X", "side": "buy", "type": "limit", "price": "3.00", "quantity": 1},
            "UNKNOWN_SYMBOL",
        ),
        (
            {"side": "buy", "type": "limit", "price": 3.0, "quantity": 1},
            "INVALID_REQUEST",
        ),  # float price
        ({"side": "buy", "type": "limit", "price": "3.001", "quantity": 1}, "INVALID_TICK"),
        ({"side": "buy", "type": "limit", "price": "NaN", "quantity": 1}, "INVALID_PRICE"),
        ({"side": "buy", "type": "limit", "price": "-1", "quantity": 1}, "INVALID_PRICE"),
        ({"side": "buy", "type": "limit", "price": "3.00", "quantity": 0}, "INVALID_REQUEST"),
        ({"side": "up", "type": "limit", "price": "3.00", "quantity": 1}, "INVALID_REQUEST"),
        (
            {"side": "buy", "type": "limit", "price": "3.00", "quantity": 1, "extra": 1},
            "INVALID_REQUEST",
        ),
        ({"side": "buy", "type": "limit", "price": "99.00", "quantity": 1}, "PRICE_OUT_OF_BAND"),
        ({"side": "buy", "type": "limit", "price": "3.00", "quantity": 10**9}, "ORDER_TOO_LARGE"),
    ],
)
def test_bad_orders_get_a_4xx_with_a_code_and_change_nothing(
    server: Server, symbol: str, body: dict[str, object], code: str
) -> None:
    trader = server.account("fuzzy")
    before = httpx.get(server.url + f"/v1/book/{symbol}").json()
    response = trader.request("POST", "/v1/orders", {"symbol": symbol} | body)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"] == code
    assert httpx.get(server.url + f"/v1/book/{symbol}").json() == before
    assert trader.request("GET", "/v1/orders").json() == []


def test_malformed_bodies_are_400(server: Server) -> None:
    trader = server.account("malformed")
    for raw in (b"{", b"[]", b"null", b'{"symbol": ', "\u00ff".encode("latin-1")):
        response = trader.request("POST", "/v1/orders", raw=raw)
        assert response.status_code == 400, (raw, response.text)
        assert response.json()["error"]["code"] == "INVALID_REQUEST"
    response = trader.request("POST", "/v1/orders", raw=b'{"symbol": ')
    assert response.json()["error"]["message"] == "the body is not valid JSON (at character 11)"
    for raw in (b"[" * 5000, b'{"symbol": "\xff"}'):  # past the decoder's depth; not UTF-8
        response = trader.request("POST", "/v1/orders", raw=raw)
        assert response.status_code == 400, (raw, response.text)
        assert response.json()["error"] == {"code": "INVALID_REQUEST", "message": UNREADABLE_JSON}


def test_oversized_body_is_413(server: Server) -> None:
    trader = server.account("big")
    response = trader.request("POST", "/v1/orders", raw=b"{" + b" " * 100_000 + b"}")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_a_chunked_body_is_held_to_the_same_limit(server: Server) -> None:
    def chunks(n: int) -> Any:
        yield b"{"
        for _ in range(n):
            yield b" " * 10_000
        yield b"}"

    for path in ("/v1/orders", "/v1/admin/accounts"):
        response = httpx.post(server.url + path, content=chunks(50))  # 500 KB, no length
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    small = httpx.post(server.url + "/v1/admin/accounts", content=chunks(0),
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})  # fmt: skip
    assert small.status_code == 400  # read whole, then refused for what it says ("{}")


def test_the_path_is_signed_as_sent(server: Server) -> None:
    trader = server.account("encoder")
    order = trader.place(max(_h100_symbols(server)), "buy", "3.00", 1).json()
    encoded = f"/v1/orders/%{ord(str(order['order_id'])[0]):X}{str(order['order_id'])[1:]}"
    response = trader.request("GET", encoded)  # signed over the encoded path it sends
    assert response.status_code == 200, response.text
    assert response.json()["order_id"] == order["order_id"]


def test_a_sim_clock_advance_spans_at_most_a_year(server: Server) -> None:
    response = server.admin("POST", "/v1/admin/clock/advance", {"to": "2036-12-01T00:00:00Z"})
    assert response.status_code == 400 and "366 days" in response.json()["error"]["message"]
    far = server.admin("POST", "/v1/admin/clock/advance", {"to": "2262-04-12T00:00:00Z"})
    assert far.status_code == 400


def test_signatures_are_checked(server: Server) -> None:
    trader = server.account("signer")
    forged = Client(trader.url, trader.key, "0" * 64, trader.account_id)
    assert forged.request("GET", "/v1/account").status_code == 401
    stale = str(int(time.time()) - 120)
    headers = {"CFX-KEY": trader.key, "CFX-TIMESTAMP": stale,
               "CFX-SIGNATURE": sign(trader.secret, stale, "GET", "/v1/account", b"")}  # fmt: skip
    response = httpx.get(server.url + "/v1/account", headers=headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == "UNAUTHORIZED"
    assert httpx.get(server.url + "/v1/account").status_code == 401
    # a captured state-changing request cannot be replayed
    now = str(int(time.time()))
    headers = {"CFX-KEY": trader.key, "CFX-TIMESTAMP": now,
               "CFX-SIGNATURE": sign(trader.secret, now, "DELETE", "/v1/orders", b"")}  # fmt: skip
    assert httpx.delete(server.url + "/v1/orders", headers=headers).status_code == 200
    assert httpx.delete(server.url + "/v1/orders", headers=headers).status_code == 401


def test_admin_needs_the_token(server: Server) -> None:
    response = httpx.post(server.url + "/v1/admin/accounts", json={"name": "x"})
    assert response.status_code == 401
    response = httpx.post(
        server.url + "/v1/admin/accounts",
        json={"name": "x"},
        headers={"Authorization": "Bearer no"},
    )
    assert response.status_code == 401
    # the scheme is case-insensitive (RFC 9110 section 11.1); the token is not
    journal = server.url + "/v1/admin/journal"
    for scheme in ("Bearer", "bearer", "BEARER"):
        answer = httpx.get(journal, headers={"Authorization": f"{scheme} {ADMIN_TOKEN}"})
        assert answer.status_code == 200, scheme
    for wrong in (f"Bearer {ADMIN_TOKEN.upper()}", f"Bearer  {ADMIN_TOKEN}", f"Basic {ADMIN_TOKEN}",
                  ADMIN_TOKEN, f"Bearer{ADMIN_TOKEN}", "Bearer"):  # fmt: skip
        assert httpx.get(journal, headers={"Authorization": wrong}).status_code == 401, wrong


def test_account_money_and_ledger_check(server: Server) -> None:
    trader = server.account("saver", deposit="250.00")
    account = trader.request("GET", "/v1/account").json()
    assert (account["cash"], account["available"], account["margin_locked"]) == (
        "250.00",
        "250.00",
        "0.00",
    )
    assert (
        server.admin(
            "POST", f"/v1/admin/accounts/{trader.account_id}/deposits", {"amount": "0.50"}
        ).status_code
        == 200
    )
    too_much = server.admin(
        "POST", f"/v1/admin/accounts/{trader.account_id}/withdrawals", {"amount": "1000.00"}
    )
    assert too_much.status_code == 422 and too_much.json()["error"]["code"] == "INSUFFICIENT_FUNDS"
    check = server.admin("GET", "/v1/admin/ledger/check").json()
    assert check["balanced"] is True


def test_insufficient_margin(server: Server, symbol: str) -> None:
    poor = server.account("poor", deposit="1.00")
    response = poor.place(symbol, "buy", "3.50", 100)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "INSUFFICIENT_MARGIN"


def test_openapi_lists_every_endpoint(server: Server) -> None:
    paths = set(httpx.get(server.url + "/openapi.json").json()["paths"])
    assert {"/v1/orders", "/v1/orders/{order_id}", "/v1/book/{symbol}", "/v1/admin/ledger/check",
            "/v1/deliveries/{delivery_id}/attestations", "/v1/index/{product}"} <= paths  # fmt: skip


def test_no_input_gets_a_500(server: Server, symbol: str) -> None:
    trader = server.account("hostile")
    order = trader.place(symbol, "buy", "3.00", 1).json()
    attempts = [
        ("GET", "/v1/orders/abc", None),
        ("GET", f"/v1/orders/{10**30}", None),
        ("GET", "/v1/orders?status=weird", None),
        ("PATCH", f"/v1/orders/{order['order_id']}", {}),
        ("PATCH", f"/v1/orders/{order['order_id']}", {"price": "1e999"}),
        (
            "PATCH",
            f"/v1/orders/{order['order_id']}",
            b'{"quantity": 1000000000000000000000000000000}',
        ),
        (
            "POST",
            "/v1/orders",
            {"symbol": symbol, "side": "buy", "type": "limit", "price": "1e30", "quantity": 1},
        ),
        (
            "POST",
            "/v1/orders",
            b'{"symbol": "%s", "side": "buy", "type": "market", "quantity": 1%s}'
            % (symbol.encode(), b"0" * 40),
        ),
        (
            "POST",
            "/v1/orders",
            {"symbol": symbol * 50, "side": "buy", "type": "market", "quantity": 1},
        ),
        ("POST", "/v1/orders", {"symbol": symbol, "side": "buy", "type": "limit", "quantity": 1}),
        ("POST", "/v1/orders", {"a": {"b": {"c": [[[[[[[[[[]]]]]]]]]]}}}),
        ("POST", "/v1/orders/cancel-after", {"timeout_s": -1}),
        (
            "POST",
            "/v1/deliveries/99999/attestations",
            {"gpu_hours": 1, "period_start": "a", "period_end": "b"},
        ),
        ("POST", f"/v1/deliveries/{10**40}/disputes", {"gpu_hours": 1, "reason": "x"}),
        ("DELETE", "/v1/orders?symbol=nope", None),
    ]
    for method, path, body in attempts:
        if isinstance(body, bytes):
            response = trader.request(method, path, raw=body)
        else:
            response = trader.request(method, path, body)
        assert 400 <= response.status_code < 500, (
            method,
            path,
            response.status_code,
            response.text,
        )
        assert response.json()["error"]["code"]
    for path in ("/v1/book/%FF", "/v1/candles/" + symbol + "?interval=5m", "/v1/trades/" + symbol + "?limit=-1",
                 "/v1/index/B200", "/v1/nowhere"):  # fmt: skip
        response = httpx.get(server.url + path)
        assert 400 <= response.status_code < 500, (path, response.text)
    for path, body in (("/v1/admin/accounts/999999/deposits", {"amount": "1.00"}),
                       ("/v1/admin/accounts/1/deposits", {"amount": "0.001"}),
                       ("/v1/admin/accounts/1/deposits", {"amount": 5}),
                       ("/v1/admin/clock/advance", {"to": "yesterday"}),
                       ("/v1/admin/clock/advance", {"to": "2020-01-01T00:00:00Z"})):  # fmt: skip
        response = server.admin("POST", path, body)
        assert 400 <= response.status_code < 500, (path, response.text)


def test_a_body_not_sent_as_json_is_told_the_content_type(server: Server, symbol: str) -> None:
    trader = server.account("plain-text")
    body = orjson.dumps({"symbol": symbol, "side": "buy", "type": "market", "quantity": 1})
    timestamp = str(int(time.time()))
    headers = {"CFX-KEY": trader.key, "CFX-TIMESTAMP": timestamp, "Content-Type": "text/plain",
               "CFX-SIGNATURE": sign(trader.secret, timestamp, "POST", "/v1/orders", body)}  # fmt: skip
    response = httpx.post(server.url + "/v1/orders", content=body, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert error["message"].startswith(
        "send the body as JSON with Content-Type: application/json (not 'text/plain')"
    )


def test_admin_odd_targets_are_4xx(server: Server) -> None:
    for bad in ("0", "-1", str(2**64)):
        response = server.admin("POST", f"/v1/admin/accounts/{bad}/disable")
        assert response.status_code == 400, (bad, response.text)
    wrong_verb = httpx.put(server.url + "/v1/health")
    assert wrong_verb.status_code == 405 and wrong_verb.headers["allow"] == "GET"


def test_allow_names_every_method_the_path_takes(server: Server) -> None:
    """Two routes share /v1/orders (and /v1/orders/{id}): Allow names the methods of both."""
    collection = httpx.put(server.url + "/v1/orders")
    assert collection.status_code == 405
    assert collection.headers["allow"] == "DELETE, GET, POST"
    assert collection.json()["error"]["code"] == "INVALID_REQUEST"
    one = httpx.put(server.url + "/v1/orders/5")
    assert one.status_code == 405 and one.headers["allow"] == "DELETE, GET, PATCH"
    # the dashboard's routes too, which the app takes from a router of their own
    for method, path in (("POST", "/v1/market/deliveries"), ("POST", "/"),
                         ("PUT", "/dashboard/app.js"), ("HEAD", "/")):  # fmt: skip
        response = httpx.request(method, server.url + path)
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == "GET", (method, path)


def _raw_exchange(server: Server, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as bytes on a socket of its own; the status, headers and body."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):  # every refusal here closes the connection
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    assert int(headers["content-length"]) == len(body)
    return int(status_line.split()[1]), headers, body


def test_input_refused_below_the_api_gets_a_json_error_too(server: Server) -> None:
    """What the HTTP server or the websocket handshake refuses before the API sees it is a
    4xx with the API's error body and a code, like everything else."""
    upgrade = ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")  # fmt: skip
    cases = [
        (b"\x16\x03\x01\x02\x00 not http\r\n\r\n", 400, "INVALID_REQUEST", "not valid HTTP/1.1"),
        (b"G@T /v1/health HTTP/1.1\r\nHost: x\r\n\r\n", 400, "INVALID_REQUEST", "not valid HTTP/1.1"),
        (b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
         400, "INVALID_REQUEST", "not valid HTTP/1.1"),
        (b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         b"Sec-WebSocket-Version: 13\r\n\r\n", 400, "INVALID_REQUEST", "missing Sec-WebSocket-Key"),
        (f"GET /v1/ws HTTP/1.1\r\nHost: x\r\n{upgrade}Sec-WebSocket-Version: 8\r\n\r\n".encode(),
         400, "INVALID_REQUEST", "Sec-WebSocket-Version"),
        (f"POST /v1/ws HTTP/1.1\r\nHost: x\r\n{upgrade}Sec-WebSocket-Version: 13\r\n\r\n".encode(),
         405, "INVALID_REQUEST", "POST"),
        (f"GET /v1/nope HTTP/1.1\r\nHost: x\r\n{upgrade}Sec-WebSocket-Version: 13\r\n\r\n".encode(),
         403, "FORBIDDEN", "/v1/ws"),
        (f"GET /v1/ws HTTP/1.1\r\nHost: x\r\n{upgrade}Sec-WebSocket-Version: 13\r\n"
         f"X-Big: {'a' * 9000}\r\n\r\n".encode(), 431, "PAYLOAD_TOO_LARGE", "8192 bytes"),
        (f"GET /v1/{'a' * 8200} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 414, "PAYLOAD_TOO_LARGE",
         "longer than 8192 bytes"),
        (f"GET /v1/health?{'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 414,
         "PAYLOAD_TOO_LARGE", "longer than 8192 bytes"),
        (f"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 9000}\r\n\r\n".encode(), 431,
         "PAYLOAD_TOO_LARGE", "up to 8192 bytes each"),
        (b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * 128 + b"\r\n", 431,
         "PAYLOAD_TOO_LARGE", "at most 128 headers"),
        (b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + b"X-A: %b\r\n" % (b"v" * 700) * 100 + b"\r\n",
         431, "PAYLOAD_TOO_LARGE", "65536 bytes in all"),
    ]  # fmt: skip
    for request, status, code, says in cases:
        got, headers, body = _raw_exchange(server, request)
        assert (got, headers["content-type"]) == (status, "application/json"), (request[:60], body)
        error = orjson.loads(body)["error"]
        assert error["code"] == code and says in error["message"], (request[:60], error)
    assert httpx.get(server.url + "/v1/health").status_code == 200


def _answers(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes."""
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def test_a_head_of_one_endless_header_line_is_cut_off_as_it_comes(server: Server) -> None:
    """The HTTP parser keeps a header line to itself until it ends: one that never does is
    refused once the head has run past its limit, in one read or over several, before the
    client has finished sending, rather than held in memory. The limits leave an ordinary
    large head alone."""
    host, port = server.url.removeprefix("http://").split(":")
    start = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Endless: "
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(start)
        for _ in range(12):  # 192 KiB, in reads of their own, of a line that never ends
            time.sleep(0.02)
            with contextlib.suppress(OSError):  # refused and closed meanwhile
                sock.sendall(b"a" * 16384)
        answers = [_answers(sock)]
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(start + b"a" * 130_000)  # in one go: nothing more is coming
        answers.append(_answers(sock))
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n" + start + b"a" * 130_000)
        first, _, rest = _answers(sock).partition(b"}")  # behind a request, in the same read
        assert first.startswith(b"HTTP/1.1 200"), first
        answers.append(rest)
    for answer in answers:
        status, _, body = answer.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 431"), answer[:200]
        assert orjson.loads(body)["error"]["code"] == "PAYLOAD_TOO_LARGE"
    large = b"".join(b"X-%d: %b\r\n" % (n, b"v" * 400) for n in range(120))  # 49 KiB
    got, _, body = _raw_exchange(
        server, b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + large + b"\r\n"
    )
    assert got == 200, body


def test_a_head_too_large_behind_an_order_waits_for_the_orders_answer(
    server: Server, symbol: str
) -> None:
    """Pipelined: the order before a refused head, or before bytes that are not HTTP, is
    carried out and answered, then the refusal is, and the connection closed."""
    trader = server.account("pipelines")

    def order(client_order_id: str) -> bytes:
        body = orjson.dumps({"symbol": symbol, "side": "buy", "type": "limit", "quantity": 1,
                             "price": "2.00", "client_order_id": client_order_id})  # fmt: skip
        ts = str(int(time.time()))
        return (f"POST /v1/orders HTTP/1.1\r\nHost: x\r\nCFX-KEY: {trader.key}\r\n"
                f"CFX-TIMESTAMP: {ts}\r\n"
                f"CFX-SIGNATURE: {sign(trader.secret, ts, 'POST', '/v1/orders', body)}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body  # fmt: skip

    host, port = server.url.removeprefix("http://").split(":")
    too_long = b"GET /v1/health?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    for before, after, status in [("before-a-big-head", too_long, b"414"),
                                  ("before-bad-bytes", b"BLAH\x01 / HTTP/1.1\r\n\r\n", b"400")]:  # fmt: skip
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(order(before) + after)
            answer = _answers(sock)
        first, _, rest = answer.partition(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 201"), answer[:300]
        assert before.encode() in rest and b"HTTP/1.1 " + status in rest, answer
    placed = trader.request("GET", "/v1/orders").json()
    assert sorted(o["client_order_id"] for o in placed) == ["before-a-big-head", "before-bad-bytes"]


def test_a_request_that_does_not_arrive_in_time_is_answered_408_and_closed(
    server: Server,
) -> None:
    """A connection that sends nothing, or trickles a request's head or body, would hold a
    socket for good: after REQUEST_TIMEOUT_S it is closed, the trickled request answered 408
    REQUEST_TIMEOUT. A websocket opened alongside is not touched."""
    host, port = server.url.removeprefix("http://").split(":")
    trader = server.account("dawdles")
    head = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n"
    ts = str(int(time.time()))
    signed = (f"POST /v1/orders HTTP/1.1\r\nHost: x\r\nCFX-KEY: {trader.key}\r\n"
              f"CFX-TIMESTAMP: {ts}\r\nCFX-SIGNATURE: {'0' * 64}\r\n"
              "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")  # fmt: skip
    opened = time.monotonic()
    sockets = {name: socket.create_connection((host, int(port)), timeout=30)
               for name in ("silent", "trickled head", "short body", "second request")}  # fmt: skip
    sockets["short body"].sendall(signed.encode() + b'{"symbol"')
    second = sockets["second request"]
    second.sendall(head)
    first_answer = b""
    while not first_answer.endswith(b"}"):  # the whole answer: head and JSON body
        first_answer += second.recv(65536)
    assert first_answer.startswith(b"HTTP/1.1 200"), first_answer
    second.sendall(head[:10])  # the next request, begun and never finished
    with ws_connect(server.url.replace("http", "ws") + "/v1/ws") as ws:
        for i in range(len(head) - 1):  # one byte every 0.2 s: the whole head would take 12 s
            if time.monotonic() - opened > REQUEST_TIMEOUT_S + 2:
                break
            with contextlib.suppress(OSError):  # closed meanwhile
                sockets["trickled head"].send(head[i : i + 1])
            time.sleep(0.2)
        for name, sock in sockets.items():
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            elapsed = time.monotonic() - opened
            sock.close()
            assert REQUEST_TIMEOUT_S - 0.5 < elapsed < REQUEST_TIMEOUT_S + 5, (name, elapsed)
            if name == "silent":  # no request to answer: closed without a word
                assert answer == b""
                continue
            status, _, body = answer.partition(b"\r\n\r\n")
            assert status.startswith(b"HTTP/1.1 408"), (name, answer[:200])
            assert orjson.loads(body)["error"]["code"] == "REQUEST_TIMEOUT", name
        ws.send(orjson.dumps({"op": "ping", "id": 1}).decode())
        while (message := orjson.loads(ws.recv(timeout=5))).get("op") != "pong":
            assert message.get("channel") == "heartbeat", message  # the websocket stays open
    assert httpx.get(server.url + "/v1/health").status_code == 200


def test_a_client_gone_before_its_body_came_is_no_server_error(server: Server) -> None:
    """A signed request whose body stops short of its Content-Length, then the client hangs
    up: nothing is done, and the server logs no exception."""
    trader = server.account("hangs-up")
    log = server.data_dir.with_name(server.data_dir.name + ".log")
    before = log.read_text(errors="replace").count("Exception in ASGI application")
    host, port = server.url.removeprefix("http://").split(":")
    for method, path in (("GET", "/v1/orders"), ("GET", "/v1/account"), ("DELETE", "/v1/orders"),
                         ("DELETE", "/v1/orders/1"), ("POST", "/v1/orders")):  # fmt: skip
        ts = str(int(time.time()))
        head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nCFX-KEY: {trader.key}\r\n"
                f"CFX-TIMESTAMP: {ts}\r\nCFX-SIGNATURE: {'0' * 64}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")  # fmt: skip
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(head.encode() + b'{"symbol"')
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert not answer.startswith(b"HTTP/1.1 5"), (method, path, answer[:200])
    assert httpx.get(server.url + "/v1/health").status_code == 200
    assert trader.request("GET", "/v1/orders").json() == []
    time.sleep(0.2)  # the server's log is written by its own process
    after = log.read_text(errors="replace").count("Exception in ASGI application")
    assert after == before, log.read_text(errors="replace")[-3000:]


def test_a_get_body_sent_in_chunks_is_cut_at_the_limit(server: Server) -> None:
    """The answer comes once the body passes 64 KiB, while the client is still sending."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /v1/account HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(7):  # 70 KB of a body that never ends
            sock.sendall(b"2710\r\n" + b" " * 10_000 + b"\r\n")
        answer = b""
        while b"}}" not in answer and (chunk := sock.recv(4096)):  # headers, then the body
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert b"PAYLOAD_TOO_LARGE" in answer


def test_a_body_that_is_not_json_is_refused_after_the_signature(server: Server) -> None:
    """FastAPI reads a body before the route's checks: the credentials still come first."""
    for method, path in (("POST", "/v1/orders"), ("PATCH", "/v1/orders/1"),
                         ("POST", "/v1/orders/cancel-after")):  # fmt: skip
        for raw in (b"{bad", "\u00ff".encode("latin-1")):
            unsigned = httpx.request(method, server.url + path, content=raw,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
            assert unsigned.status_code == 401, (method, path, raw, unsigned.text)
            assert unsigned.json()["error"]["code"] == "UNAUTHORIZED"
    admin = httpx.post(server.url + "/v1/admin/accounts", content=b"{bad",
                       headers={"Content-Type": "application/json"})  # fmt: skip
    assert admin.status_code == 401, admin.text
    trader = server.account("unparsed")
    timestamp = str(int(time.time()))
    headers = {"CFX-KEY": trader.key, "CFX-TIMESTAMP": timestamp, "Content-Type": "application/json",
               "CFX-SIGNATURE": sign(trader.secret, timestamp, "PATCH", "/v1/orders/1", b"{bad")}  # fmt: skip
    first = httpx.patch(server.url + "/v1/orders/1", content=b"{bad", headers=headers)
    again = httpx.patch(server.url + "/v1/orders/1", content=b"{bad", headers=headers)
    assert first.status_code == 400 and "not valid JSON" in first.json()["error"]["message"]
    assert again.status_code == 401 and "already used" in again.json()["error"]["message"]


def test_a_timestamp_is_plain_digits(server: Server) -> None:
    """Other spellings of the same number would be other signatures of the same request."""
    trader = server.account("spelling")
    now = str(int(time.time()))
    for spelling in ("+" + now, "0" + now, now[:4] + "_" + now[4:], now + ".0"):
        headers = {"CFX-KEY": trader.key, "CFX-TIMESTAMP": spelling,
                   "CFX-SIGNATURE": sign(trader.secret, spelling, "GET", "/v1/account", b"")}  # fmt: skip
        response = httpx.get(server.url + "/v1/account", headers=headers)
        assert response.status_code == 401, (spelling, response.text)
        assert "plain decimal digits" in response.json()["error"]["message"]
    assert trader.request("GET", "/v1/account").status_code == 200


def test_a_compressed_body_is_refused(server: Server, symbol: str) -> None:
    trader = server.account("gzip")
    body = orjson.dumps({"symbol": symbol, "side": "buy", "type": "limit", "price": "3.00",
                         "quantity": 1})  # fmt: skip
    timestamp = str(int(time.time()))
    headers = {"CFX-KEY": trader.key, "CFX-TIMESTAMP": timestamp, "Content-Type": "application/json",
               "Content-Encoding": "gzip",
               "CFX-SIGNATURE": sign(trader.secret, timestamp, "POST", "/v1/orders", body)}  # fmt: skip
    response = httpx.post(server.url + "/v1/orders", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Content-Encoding is not supported")
    assert trader.request("GET", "/v1/orders").json() == []


def test_a_sim_clock_advance_to_the_distant_past_goes_backwards(server: Server) -> None:
    for to in ("0001-01-01T00:00:00Z", "1600-01-01T00:00:00Z", "2026-11-30T00:00:00Z"):
        response = server.admin("POST", "/v1/admin/clock/advance", {"to": to})
        assert response.status_code == 409, (to, response.text)
        assert response.json()["error"]["code"] == "CLOCK_BACKWARDS"


def test_a_signature_cannot_be_moved_from_the_path_into_a_body(server: Server) -> None:
    """What is signed runs the path into the body (SPEC section 6), so a GET or DELETE with
    a body is refused (400), before its signature is checked or spent: else a captured
    ``DELETE /v1/orders?symbol=S`` would verify as ``DELETE /v1/orders`` with the body
    ``?symbol=S``, a cancel of every order, and ``DELETE /v1/orders/13`` as a cancel of 1."""
    trader = server.account("path-into-body")
    first, second = sorted(_h100_symbols(server))[-2:]
    kept = trader.place(first, "buy", "3.00", 1).json()
    target = trader.place(second, "buy", "3.00", 1).json()
    while kept["order_id"] < 10:  # ids of two digits or more, to cut one off
        kept = trader.place(first, "buy", "3.00", 1).json()
    target = trader.place(second, "buy", "3.00", 1).json()
    for method, signed, sent, body in (
        ("DELETE", f"/v1/orders?symbol={second}", "/v1/orders", f"?symbol={second}"),
        ("DELETE", f"/v1/orders/{target['order_id']}", f"/v1/orders/{str(target['order_id'])[:-1]}",
         str(target["order_id"])[-1]),
        ("GET", f"/v1/orders/{kept['order_id']}", f"/v1/orders/{str(kept['order_id'])[:-1]}",
         str(kept["order_id"])[-1]),
    ):  # fmt: skip
        timestamp = str(int(time.time()))
        headers = {"CFX-KEY": trader.key, "CFX-TIMESTAMP": timestamp,
                   "CFX-SIGNATURE": sign(trader.secret, timestamp, method, signed, b"")}  # fmt: skip
        moved = httpx.request(method, server.url + sent, content=body.encode(), headers=headers)
        assert moved.status_code == 400, (sent, moved.text)
        assert moved.json()["error"] == {
            "code": "INVALID_REQUEST",
            "message": f"a {method} request takes no body",
        }
        if method == "DELETE":  # nothing was cancelled, and the signature is not spent
            assert (
                trader.request("GET", f"/v1/orders/{kept['order_id']}").json()["status"] == "open"
            )
            assert (
                trader.request("GET", f"/v1/orders/{target['order_id']}").json()["status"] == "open"
            )
            again = httpx.request(method, server.url + signed, headers=headers)
            assert again.status_code == 200, again.text
            target = trader.place(second, "buy", "3.00", 1).json()
    assert trader.request("GET", f"/v1/orders/{kept['order_id']}").json()["status"] == "open"


def test_a_client_gone_with_pipelined_requests_unanswered_is_no_server_error(
    server: Server,
) -> None:
    """Requests pipelined on a connection whose client reads nothing, then hangs up while
    one is being answered: the answer is dropped, and the server logs no exception (uvicorn
    marks only the last request read as disconnected, and the one answered wrote to the
    closed transport)."""
    log = server.data_dir.with_name(server.data_dir.name + ".log")
    before = log.read_text(errors="replace").count("Exception in ASGI application")
    host, port = server.url.removeprefix("http://").split(":")
    for _ in range(3):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills up at once
        sock.connect((host, int(port)))
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * 40)
        time.sleep(0.5)  # answers pile up in the server's buffers, then it waits
        sock.close()
    time.sleep(0.5)
    assert httpx.get(server.url + "/v1/health").status_code == 200
    after = log.read_text(errors="replace").count("Exception in ASGI application")
    assert after == before, log.read_text(errors="replace")[-3000:]
