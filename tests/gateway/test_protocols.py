"""The handshake's refusals as JSON errors, case by case (the server-level test sends them
over a socket: tests/gateway/test_rest.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
import pytest
import uvicorn

from bench.server import free_port
from exchange.gateway import protocols
from exchange.gateway.protocols import JsonHandshake, JsonHttpToolsProtocol


def test_a_server_failure_stays_a_plain_500() -> None:
    failed = JsonHandshake().reject(500, "Internal Server Error")
    assert (failed.status_code, failed.body) == (500, b"Internal Server Error")
    assert failed.headers["Content-Type"].startswith("text/plain")


def test_a_refusal_has_one_content_type_and_a_length_that_fits() -> None:
    for status in (400, 403, 405, 414, 426, 431):
        response = JsonHandshake().reject(status, "")
        assert response.headers.get_all("Content-Type") == ["application/json"]
        assert response.headers.get_all("Content-Length") == [str(len(response.body))]
        error = orjson.loads(response.body)["error"]
        assert error["message"], status
        assert error["code"] == {403: "FORBIDDEN", 414: "PAYLOAD_TOO_LARGE",
                                 431: "PAYLOAD_TOO_LARGE"}.get(status, "INVALID_REQUEST")  # fmt: skip


async def _slow_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every request ``ok``: ``/slow`` after 1.5 s, and only once its body is in."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(1.5)
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})  # fmt: skip
    await send({"type": "http.response.body", "body": b"ok"})


async def _exchange_with(port: int, *parts: tuple[float, bytes]) -> tuple[float, bytes]:
    """Send each part after its pause; read until the server closes: (seconds, bytes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    for pause, data in parts:
        await asyncio.sleep(pause)
        writer.write(data)
    answer = await asyncio.wait_for(reader.read(), 15)
    writer.close()
    return time.monotonic() - started, answer


def test_pipelined_requests_are_timed_from_when_the_server_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request sent behind one still being answered is not read meanwhile: its time starts
    when that answer is done, and a 408 never comes before (or instead of) that answer."""
    monkeypatch.setattr(protocols, "REQUEST_TIMEOUT_S", 1.0)
    slow = b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"

    async def run() -> None:
        port = free_port()
        config = uvicorn.Config(_slow_app, host="127.0.0.1", port=port, log_level="warning",
                                http=JsonHttpToolsProtocol, timeout_keep_alive=1)  # fmt: skip
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            # the next request begun behind the slow one, never finished: the slow one's
            # answer, then (1 s after it) the 408
            seconds, answer = await _exchange_with(
                port, (0, slow), (0.05, b"GET /fast HTTP/1.1\r\nHo")
            )
            first, _, rest = answer.partition(b"ok")
            assert first.startswith(b"HTTP/1.1 200") and rest.startswith(b"HTTP/1.1 408"), answer
            assert b"REQUEST_TIMEOUT" in rest and 2.4 < seconds < 4, seconds
            # the next request sent whole (its body 0.25 s after its head) while the server
            # waited on the slow one and read nothing: both answered
            fast = b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab"
            _, answer = await _exchange_with(port, (0, slow), (0.05, fast), (0.2, b"cd"))
            assert answer.count(b"HTTP/1.1 200 OK") == 2 and b"408" not in answer, answer
        finally:
            server.should_exit = True
            await task

    asyncio.run(run())


def test_a_warning_a_client_causes_is_logged_once_a_window_then_counted() -> None:
    """Each of uvicorn's per-request warnings is let through once per window; the first let
    through after it says how many were left out. Other records pass untouched."""
    warnings = protocols.ClientWarnings(every_s=0.2)
    invalid, upgrade = sorted(protocols.ClientWarnings.MESSAGES)

    def record(message: str, *args: Any) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1, message, args, None)

    first = record(invalid)
    assert warnings.filter(first) and first.getMessage() == invalid
    assert not any(warnings.filter(record(invalid)) for _ in range(500))
    assert warnings.filter(record(upgrade))  # each message has its own window
    assert warnings.filter(record("Exception in ASGI application"))  # not a client's
    assert warnings.filter(record("%s", invalid))  # a formatted record is not one of them
    assert warnings.filter(record({"not": "a string"}))  # type: ignore[arg-type]
    time.sleep(0.25)
    later = record(invalid)
    assert warnings.filter(later)
    assert later.getMessage().startswith(f"{invalid} (500 more since the last of these, ")
    again = record(invalid)
    assert not warnings.filter(again)  # a new window
    time.sleep(0.25)
    quiet = record(invalid)
    assert warnings.filter(quiet) and quiet.getMessage().startswith(f"{invalid} (1 more ")
    assert protocols.ClientWarnings.install("cfx.test") is protocols.ClientWarnings.install(
        "cfx.test"
    )  # installed once


class _Transport:
    """What StalledWrites asks of a transport (no socket: the kernel's share is unknown)."""

    def __init__(self, buffered: int = 0, closing: bool = False) -> None:
        self.buffered, self.closing, self.aborted = buffered, closing, False

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_extra_info(self, name: str) -> None:
        return None

    def abort(self) -> None:
        self.aborted = True


class _Connection:
    def __init__(self, transport: _Transport) -> None:
        self.transport = transport


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Any) -> Any:
        return None


def test_stalled_writes_cut_a_connection_that_takes_nothing_and_spare_a_slow_one() -> None:
    clock = _Clock()
    stuck, slow, idle = _Transport(100_000), _Transport(100_000), _Transport(0)
    closed, closed_reading = _Transport(10, closing=True), _Transport(100, closing=True)
    fed = _Transport(100)  # sent more than it takes: left to the slow-consumer limit
    connections = {_Connection(t) for t in (stuck, slow, idle, closed, closed_reading, fed)}
    watch = protocols.StalledWrites(connections, clock)  # type: ignore[arg-type]
    for second in range(int(protocols.WRITE_STALL_S) + 1):
        clock.now = float(second)
        slow.buffered -= 1  # takes a byte a second
        closed_reading.buffered -= 1
        fed.buffered += 10
        watch.check()
        assert closed.aborted == (second >= protocols.CLOSING_GRACE_S)
        assert not stuck.aborted or second >= protocols.WRITE_STALL_S
    assert stuck.aborted and not slow.aborted and not idle.aborted
    assert not closed_reading.aborted and not fed.aborted and watch.cut == 2
