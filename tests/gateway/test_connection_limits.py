"""How many connections one client address may hold, and all of them together."""

from __future__ import annotations

import base64
import contextlib
import os
import resource
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
from exchange.gateway.protocols import (
    STALL_CHECK_S,
    WRITE_STALL_S,
    ConnectionLimits,
    raise_open_file_limit,
)
from exchange.gateway.ratelimit import address_of
from tests.gateway.conftest import Server, start_server, stop_server

PER_ADDRESS = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("limits") / "data"
    running = start_server(data_dir, extra=["--connections-per-address", str(PER_ADDRESS)])
    yield running
    stop_server(running)


def _health(server: Server, source: str = "127.0.0.1") -> httpx.Response:
    """``GET /v1/health`` on a connection of its own, from ``source``."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as client:
        return client.get(server.url + "/v1/health")


def _served_again(server: Server) -> None:
    """Wait until the server has noticed the closed connections: a request is served."""
    deadline = time.monotonic() + 10
    while (answer := _health(server)).status_code != 200:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.05)


def _assert_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["retry-after"] == "1"
    error = answer.json()["error"]
    assert error["code"] == "RATE_LIMITED" and f"at most {PER_ADDRESS}" in error["message"]


def test_an_address_holds_at_most_its_share_of_connections(server: Server) -> None:
    """Silent sockets, keep-alive HTTP connections and websockets all count; past the limit
    a request is answered 429 RATE_LIMITED (and a websocket handshake refused with it), and
    another address is served meanwhile. A connection closed makes room for one more."""
    host, port = server.url.removeprefix("http://").split(":")
    held = [socket.create_connection((host, int(port))) for _ in range(PER_ADDRESS)]
    try:
        _assert_refused(_health(server))
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n\x00not HTTP\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 429") and answer.count(b"HTTP/1.1") == 1, answer
        with httpx.Client(timeout=10) as client:  # a body the refusal leaves unread
            _assert_refused(client.post(server.url + "/v1/orders", content=b"[1]" * 20_000))
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(server.url.replace("http", "ws") + "/v1/ws", open_timeout=10)
        assert refused.value.response.status_code == 429
        assert orjson.loads(refused.value.response.body)["error"]["code"] == "RATE_LIMITED"
        with pytest.raises(RateLimited) as told:  # the SDK's feed: the refusal, as it is
            Feed(server.url).open()
        assert (told.value.code, told.value.retry_after) == ("RATE_LIMITED", 1.0)
        assert _health(server, source="127.0.0.2").status_code == 200  # another address
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            # a refused connection's head is held to the limits too: an endless header line
            # gets the refusal once it has run past them, not a second of reading
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"a" * 100_000)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 429") and b"RATE_LIMITED" in answer, answer[:200]
    finally:
        for sock in held:
            sock.close()
    _served_again(server)

    ws_url = server.url.replace("http", "ws") + "/v1/ws"
    with contextlib.ExitStack() as websockets:
        for _ in range(2):
            websockets.enter_context(ws_connect(ws_url))
        with httpx.Client(timeout=10) as client:  # one keep-alive connection, reused
            assert client.get(server.url + "/v1/health").status_code == 200
            _assert_refused(_health(server))  # two websockets and the keep-alive connection
            assert client.get(server.url + "/v1/health").status_code == 200
        _served_again(server)  # the keep-alive connection closed: room for one more...
        websockets.enter_context(ws_connect(ws_url))
        _assert_refused(_health(server))  # ... which a third websocket takes
    _served_again(server)
    log = server.data_dir.with_name(server.data_dir.name + ".log").read_text()
    assert "Traceback" not in log and "Fatal error" not in log, log[-2000:]
    assert "Unsupported upgrade" not in log, log[-2000:]  # a refused handshake is no news


def test_limits_count_each_address_and_all_connections() -> None:
    limits = ConnectionLimits(per_address=2, total=4)
    assert limits.take("a") is None and limits.take("a") is None
    refused = limits.take("a")
    assert refused is not None and (refused.status, refused.reason.name) == (429, "RATE_LIMITED")
    assert "at most 2" in refused.message and refused.headers == {"retry-after": "1"}
    assert limits.take("b") is None
    full = limits.full()  # the refused one holds its descriptor too
    assert full is not None and (full.status, full.reason.name) == (503, "UNAVAILABLE")
    assert "(4)" in full.message and limits.open == 4
    limits.release(None)  # the refused one is gone
    assert limits.full() is None and limits.take("c") is None and limits.full() is not None
    limits.release("a")
    assert limits.by_address == {"a": 1, "b": 1, "c": 1} and limits.open == 3
    unlimited = ConnectionLimits(per_address=0, total=10)
    assert all(unlimited.take("a") is None for _ in range(10)) and unlimited.full() is not None


def test_an_ipv6_client_is_counted_by_its_64_network() -> None:
    """A host is usually given a whole /64: its addresses share one count, or it could
    open the per-address share from each of them."""
    assert address_of("203.0.113.7") == "203.0.113.7"
    network = "2001:db8:1:2::/64"
    assert address_of("2001:db8:1:2:aaaa::1") == address_of("2001:db8:1:2:ffff::9") == network
    assert address_of("2001:db8:1:3::1") == "2001:db8:1:3::/64"  # the next /64: another
    assert address_of("::ffff:203.0.113.7") == "203.0.113.7"  # IPv4 on a dual-stack socket
    assert address_of("fe80::1%eth0") == "fe80::/64"
    assert address_of("") == "" and address_of("not:an:address") == "not:an:address"
    limits = ConnectionLimits(per_address=2, total=100)
    assert limits.take(address_of("2001:db8::1")) is None
    assert limits.take(address_of("2001:db8::2")) is None
    refused = limits.take(address_of("2001:db8::3"))
    assert refused is not None and "(2001:db8::/64)" in refused.message


def test_an_ipv6_server_limits_its_clients_too(tmp_path: Path) -> None:
    """``cfx serve --host ::1``: the share of the loopback's /64 is held, then refused."""
    running = start_server(tmp_path / "data", host="::1", extra=["--connections-per-address", "2"])
    try:
        held = [socket.create_connection(("::1", running.port)) for _ in range(2)]
        try:
            with httpx.Client(timeout=10) as client:
                answer = client.get(running.url + "/v1/health")
            assert answer.status_code == 429, answer.text
            assert "from one address (::/64)" in answer.json()["error"]["message"]
        finally:
            for sock in held:
                sock.close()
    finally:
        stop_server(running)


def test_the_total_leaves_file_descriptors_for_the_exchange_itself() -> None:
    soft = raise_open_file_limit()
    assert soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert ConnectionLimits().total == max(64, soft - 256)


def test_an_unlimited_hard_limit_is_raised_to_what_a_process_may_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """macOS reports no hard limit yet refuses more than 10,240 files a process."""
    limits = {"soft": 256}

    def setrlimit(which: int, values: tuple[int, int]) -> None:
        if values[0] > 10_240:
            raise ValueError("not allowed")
        limits["soft"] = values[0]

    monkeypatch.setattr(
        resource, "getrlimit", lambda which: (limits["soft"], resource.RLIM_INFINITY)
    )
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    assert raise_open_file_limit() == 10_240 == limits["soft"]
    assert raise_open_file_limit() == 10_240  # already there: unchanged


def test_requests_that_make_uvicorn_warn_write_one_line_not_one_each(tmp_path: Path) -> None:
    """A client sending garbage, or asking to upgrade to what the server does not speak,
    request after request, does not write a log line for each (ClientWarnings); each is
    still answered."""
    running = start_server(tmp_path / "data")
    try:
        for request in (b"NOT HTTP\r\n\r\n",
                        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n"):  # fmt: skip
            for _ in range(50):
                with socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
                    sock.sendall(request)
                    assert sock.recv(65536).startswith((b"HTTP/1.1 400", b"HTTP/1.1 200"))
    finally:
        stop_server(running)
    log = running.data_dir.with_name(running.data_dir.name + ".log").read_text()
    assert log.count("Invalid HTTP request received.") == 1, log[-2000:]
    assert log.count("Unsupported upgrade request.") == 1, log[-2000:]


def _never_reading(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # full at once
    sock.connect(("127.0.0.1", port))
    return sock


def _read_to_end(sock: socket.socket) -> tuple[int, bool] | None:
    """Read what the server sent until the connection ends: how many bytes, and whether it
    ended in a reset (None if it is still open after 5 quiet seconds)."""
    sock.settimeout(5)
    received = 0
    try:
        while chunk := sock.recv(65536):
            received += len(chunk)
    except ConnectionResetError:
        return received, True
    except TimeoutError:
        return None
    return received, False


def _kept_by_the_kernel(server_port: int, client: socket.socket) -> list[str]:
    """The states of the server's sockets (in ``/proc/net/tcp``) to ``client``'s port."""
    client_port = client.getsockname()[1]
    states = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
        if local == server_port and remote == client_port:
            states.append(fields[3])
    return states


def test_a_client_that_reads_nothing_is_cut_off(tmp_path: Path) -> None:
    """Answers a client takes none of (REST requests pipelined, a websocket's snapshots)
    are held for WRITE_STALL_S at most: then the connection is reset, so a client cannot
    pin the server's and the kernel's memory with connections that never read. A client
    that reads, however slowly, is not."""
    running = start_server(tmp_path / "data")
    try:
        rest = _never_reading(running.port)
        rest.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * 40)
        ws = _never_reading(running.port)
        key = base64.b64encode(os.urandom(16)).decode()
        ws.sendall(f"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())  # fmt: skip
        assert ws.recv(4096).startswith(b"HTTP/1.1 101")
        subscribe = orjson.dumps({"op": "subscribe", "channels": ["ticker:*"]})
        mask = os.urandom(4)
        frame = bytes([0x81, 0x80 | len(subscribe)]) + mask
        frame += bytes(b ^ mask[i % 4] for i, b in enumerate(subscribe))
        ws.sendall(frame * 20)  # a ticker of every contract, 20 times over
        answered = _never_reading(running.port)  # one answer, too large to take at once
        answered.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
        slow = _never_reading(running.port)  # reads a little every second: kept
        slow.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * 10)
        deadline = time.monotonic() + WRITE_STALL_S + 3 * STALL_CHECK_S
        while time.monotonic() < deadline:
            assert slow.recv(2048)
            time.sleep(0.5)
        whole = len(httpx.get(running.url + "/openapi.json").content)
        # reset (what the kernel held for them dropped, not sent on for minutes), cut short
        # the server's side is gone at once: not closing, with what it held still queued
        assert _kept_by_the_kernel(running.port, rest) == []
        assert _kept_by_the_kernel(running.port, ws) == []
        # not closed (idle) while the kernel still held the answer: it would have kept it
        assert _kept_by_the_kernel(running.port, answered) == []
        ended = _read_to_end(rest)
        assert ended is not None and ended[1] and ended[0] < 40 * whole, ended
        ended = _read_to_end(ws)
        assert ended is not None and ended[1], ended
        assert slow.recv(65536)  # still served
        for sock in (rest, ws, answered, slow):
            sock.close()
        assert httpx.get(running.url + "/v1/health").status_code == 200
    finally:
        stop_server(running)
    log = running.data_dir.with_name(running.data_dir.name + ".log").read_text()
    assert "Traceback" not in log and "ERROR" not in log, log[-2000:]
