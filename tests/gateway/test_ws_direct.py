"""Messages handed straight from uvicorn's parser to the connection keep their order.

A real uvicorn server in this process (so the handler can be watched) runs the exchange's
app with :class:`DirectWebSocketProtocol`, as ``cfx serve`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
import websockets

from bench.server import free_port
from exchange.gateway import ws as ws_module
from exchange.gateway.app import create_app
from exchange.gateway.ws import DirectWebSocketProtocol
from exchange.service import ExchangeService


@contextlib.asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[str]:
    svc = ExchangeService(tmp_path / "data", clock="sim", start=datetime(2026, 12, 1, tzinfo=UTC))
    port = free_port()
    config = uvicorn.Config(
        create_app(svc), host="127.0.0.1", port=port, log_level="warning",
        ws=DirectWebSocketProtocol, ws_per_message_deflate=False, ws_max_size=64 * 1024,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}/v1/ws"
    finally:
        server.should_exit = True
        await task


async def replies(ws: Any, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while len(out) < count:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if message.get("channel") != "heartbeat":
            out.append(message)
    return out


def test_a_burst_is_answered_in_order_and_handled_without_the_asgi_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct: list[str] = []
    handle = ws_module.Connection.receive_direct

    def watched(self: ws_module.Connection, raw: str) -> None:
        direct.append(raw)
        handle(self, raw)

    monkeypatch.setattr(ws_module.Connection, "receive_direct", watched)

    async def run() -> list[dict[str, Any]]:
        async with serving(tmp_path) as url, websockets.connect(url) as ws:
            await ws.send(orjson.dumps({"op": "ping", "id": 0}).decode())
            await replies(ws, 1)  # the connection is being served: its handler is set
            burst = [orjson.dumps({"op": "ping", "id": i}).decode() for i in range(1, 201)]
            for text in burst[:100]:
                await ws.send(text)
            await ws.send(b"\x00binary")  # takes uvicorn's queue; what follows waits behind it
            for text in burst[100:]:
                await ws.send(text)
            answers = await replies(ws, 201)
            handled = len(direct)
            for i in range(201, 251):  # the queue is empty again: straight to the connection
                await ws.send(orjson.dumps({"op": "ping", "id": i}).decode())
            answers += await replies(ws, 50)
            assert len(direct) == handled + 50
            return answers

    answers = asyncio.run(run())
    ids = [a.get("id") for a in answers]
    assert ids == [*range(1, 101), None, *range(101, 251)]
    assert answers[100]["error"]["code"] == "INVALID_REQUEST"
    assert all(a["op"] == "pong" for i, a in enumerate(answers) if i != 100)
    assert direct[:101] == [orjson.dumps({"op": "ping", "id": i}).decode() for i in range(101)]


def test_invalid_utf8_closes_with_1007_and_the_server_goes_on(tmp_path: Path) -> None:
    asyncio.run(_invalid_utf8(tmp_path))


async def _invalid_utf8(tmp_path: Path) -> None:
    async with serving(tmp_path) as url:
        async with websockets.connect(url) as ws:
            await ws.send(orjson.dumps({"op": "ping", "id": 1}).decode())
            await replies(ws, 1)
            # a text frame whose payload is not UTF-8, written below the client's checks
            await ws.send(b"\xff\xfe", text=True)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
        async with websockets.connect(url) as ws:
            await ws.send(orjson.dumps({"op": "ping", "id": 2}).decode())
            assert (await replies(ws, 1))[0]["id"] == 2
