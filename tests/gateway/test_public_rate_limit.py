"""Requests that no API key's rate limit counts are counted per client address."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from clients import Feed, RateLimited
from tests.gateway.conftest import Server, start_server, stop_server

RATE = 2  # a second, bursts of 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("public") / "data"
    running = start_server(data_dir, env={"CFX_PUBLIC_RATE_LIMIT": str(RATE)})
    yield running
    stop_server(running)
    for client in _clients.values():
        client.close()


_clients: dict[str, httpx.Client] = {}


def _get(server: Server, path: str = "/v1/health", source: str = "127.0.0.1", **headers: str):
    """GET on a keep-alive connection from ``source``: quick, while the bucket refills."""
    client = _clients.get(source)
    if client is None:
        transport = httpx.HTTPTransport(local_address=source)
        client = _clients[source] = httpx.Client(transport=transport, timeout=10)
    return client.get(server.url + path, headers=headers)


def _refused(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["retry-after"] == "1"
    error = answer.json()["error"]
    assert error["code"] == "RATE_LIMITED", error
    assert f"more than {RATE} requests a second from one address (127.0.0.1)" in error["message"]


def _drained(server: Server) -> None:
    """Spend the address's burst: the next request without a key is refused."""
    deadline = time.monotonic() + 10
    while _get(server).status_code != 429:
        assert time.monotonic() < deadline


def test_an_address_gets_its_burst_then_its_rate(server: Server) -> None:
    _get(server)  # the connection, opened
    time.sleep(2.0)  # a full bucket: 2 s of the rate
    answers = [_get(server, "/v1/contracts").status_code for _ in range(2 * RATE + 2)]
    assert answers[: 2 * RATE] == [200] * 2 * RATE and answers[-1] == 429, answers
    _refused(_get(server))
    _refused(_get(server, **{"CFX-KEY": "not-a-key"}))  # an unknown key counts as none
    _refused(_get(server, Authorization="Bearer wrong"))  # as does a wrong admin token
    assert _get(server, source="127.0.0.2").status_code == 200  # another address
    time.sleep(1.0)
    assert _get(server).status_code == 200  # the rate came back


def test_keyed_and_admin_requests_have_their_own_limits(server: Server, symbol: str) -> None:
    bot = server.account("keyed")  # admin requests pass whatever the address has left
    _drained(server)
    assert server.admin("GET", "/v1/admin/journal").status_code == 200
    assert bot.request("GET", "/v1/account").status_code == 200
    answer = bot.request("POST", "/v1/orders", {"symbol": "NOPE", "side": "buy", "type": "limit",
                                                "quantity": 1, "price": "2.00"})  # fmt: skip
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "UNKNOWN_SYMBOL"
    # a key does not lift the address's limit off the public views, which take no signature
    _drained(server)
    _refused(_get(server, "/v1/contracts", **{"CFX-KEY": bot.key}))
    # the key's requests its owner did not sign count against the address
    forged = {"CFX-KEY": bot.key, "CFX-TIMESTAMP": str(int(time.time())), "CFX-SIGNATURE": "0" * 64}
    _refused(_get(server, "/v1/account", **forged))
    unsigned = {"CFX-KEY": bot.key}
    _refused(_get(server, "/v1/account", **unsigned))
    time.sleep(2.0)  # the debt paid off, and a token more
    answer = _get(server, "/v1/account", **forged)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "UNAUTHORIZED"
    time.sleep(2.0)  # a full bucket again
    # refused before the signature is looked at (a method the path does not take, a path
    # with no route, a body too large): the address counts it all the same
    client = _clients["127.0.0.1"]
    wrong = [client.put(server.url + "/v1/orders", headers=unsigned).status_code for _ in range(8)]
    assert wrong[: 2 * RATE] == [405] * 2 * RATE and wrong[-1] == 429, wrong
    time.sleep(2.0)
    nowhere = [client.get(server.url + "/v1/orders/1/x", headers=unsigned).status_code
               for _ in range(8)]  # fmt: skip
    assert nowhere[: 2 * RATE] == [404] * 2 * RATE and nowhere[-1] == 429, nowhere
    time.sleep(2.0)
    # nor sent side by side, each held before its signature is looked at (a chunked body
    # that has not come): no more of them at a time than the burst
    host, port = server.url.removeprefix("http://").split(":")
    socks = [socket.create_connection((host, int(port)), timeout=10) for _ in range(6 * RATE)]
    try:
        for sock in socks:
            sock.sendall(f"PUT /v1/orders HTTP/1.1\r\nHost: x\r\nCFX-KEY: {bot.key}\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n".encode())  # fmt: skip
        time.sleep(0.5)
        for sock in socks:
            sock.sendall(b"2\r\n{}\r\n0\r\n\r\n")
        statuses = [int(sock.recv(65536).split()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert statuses.count(405) <= 2 * RATE + 1 and statuses.count(429) >= 3 * RATE, statuses
    time.sleep(2.0)
    order = orjson.dumps({"symbol": symbol, "side": "buy", "type": "limit", "quantity": 1,
                          "price": "2.00"})  # fmt: skip
    headers = forged | {"Content-Type": "application/json"}
    with httpx.Client(timeout=10) as client:  # the order path below the router too
        answer = client.post(server.url + "/v1/orders", content=order, headers=headers)
        assert answer.status_code == 401, answer.text
        _drained(server)
        _refused(client.post(server.url + "/v1/orders", content=order, headers=headers))


def test_a_websocket_handshake_counts_and_is_refused_with_the_error(server: Server) -> None:
    _drained(server)
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(server.url.replace("http", "ws") + "/v1/ws", open_timeout=10)
    response = refused.value.response
    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    assert orjson.loads(response.body)["error"]["code"] == "RATE_LIMITED"
    _drained(server)
    with pytest.raises(RateLimited) as told:  # the SDK's feed: the refusal, as it is
        Feed(server.url).open()
    assert (told.value.code, told.value.retry_after) == ("RATE_LIMITED", 1.0)
    time.sleep(1.0)
    with ws_connect(server.url.replace("http", "ws") + "/v1/ws", open_timeout=10) as ws:
        ws.send(orjson.dumps({"op": "ping", "id": 1}).decode())
        assert orjson.loads(ws.recv(timeout=10))["id"] == 1
    # an auth that fails counts against the address too
    time.sleep(2.0)
    with ws_connect(server.url.replace("http", "ws") + "/v1/ws", open_timeout=10) as ws:
        codes = []
        for n in range(2 * RATE + 2):
            ws.send(orjson.dumps({"op": "auth", "id": n, "key": "nobody", "timestamp": "1",
                                  "signature": "0" * 64}).decode())  # fmt: skip
            codes.append(orjson.loads(ws.recv(timeout=10))["error"]["code"])
    assert codes[0] == "UNAUTHORIZED" and codes[-1] == "RATE_LIMITED", codes
    log = server.data_dir.with_name(server.data_dir.name + ".log").read_text()
    assert "Traceback" not in log, log[-2000:]
