"""Messages handed straight from uvicorn's parser to the connection keep their order.

A real uvicorn server in this process (so the handler can be watched) runs the exchange's
app with :class:`DirectWebSocketProtocol`, as ``cfx serve`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
import websockets
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol

from bench.server import free_port
from exchange.gateway import ws as ws_module
from exchange.gateway.app import create_app
from exchange.gateway.ws import DirectWebSocketProtocol
from exchange.service import ExchangeService


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, protocol: Any = DirectWebSocketProtocol) -> AsyncIterator[str]:
    svc = ExchangeService(tmp_path / "data", clock="sim", start=datetime(2026, 12, 1, tzinfo=UTC))
    port = free_port()
    config = uvicorn.Config(
        create_app(svc), host="127.0.0.1", port=port, log_level="warning",
        ws=protocol, ws_per_message_deflate=False, ws_max_size=64 * 1024,
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


def _client_frame(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=True, extensions=[])


def test_frames_split_anywhere_and_mixed_with_others_are_all_answered_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole text frames at the front of a read skip the websockets parser; the rest of the
    read (a frame cut by the read's end, a fragmented message, a ping, a long frame) goes
    through it, and the messages still come out one each, in order."""
    parsed: list[bytes] = []  # what reached the websockets parser
    receive_data = ServerProtocol.receive_data

    def watched(self: ServerProtocol, data: bytes) -> None:
        parsed.append(bytes(data))
        receive_data(self, data)

    monkeypatch.setattr(ServerProtocol, "receive_data", watched)

    def ping(i: int, pad: int = 0) -> bytes:
        return orjson.dumps({"op": "ping", "id": i, "pad": "x" * pad})

    stream = b""
    expected = []
    to_parser: list[bytes] = []
    for i in range(1, 301):
        if i % 50 == 7:  # fragmented: a text frame without FIN, then a continuation
            whole = ping(i)
            to_parser += [
                _client_frame(Opcode.TEXT, whole[:5], fin=False),
                _client_frame(Opcode.CONT, whole[5:]),
            ]
            stream += b"".join(to_parser[-2:])
        elif i % 50 == 21:  # a control frame between messages
            to_parser.append(_client_frame(Opcode.PING, b"hi"))
            stream += to_parser[-1] + _client_frame(Opcode.TEXT, ping(i))
        elif i % 50 == 33:  # a 16-bit length
            stream += _client_frame(Opcode.TEXT, ping(i, pad=400))
        elif i % 50 == 44:  # not JSON: answered with an error without an id
            stream += _client_frame(Opcode.TEXT, b"not json")
            expected.append(None)
            continue
        else:
            stream += _client_frame(Opcode.TEXT, ping(i))
        expected.append(i)

    async def run(seed: int) -> list[Any]:
        rng = random.Random(seed)
        async with serving(tmp_path / str(seed)) as url, websockets.connect(url) as ws:
            await ws.send(orjson.dumps({"op": "ping", "id": 0}).decode())
            await replies(ws, 1)
            at = 0
            while at < len(stream):  # reads cut at random places, headers included
                step = rng.choice([1, 2, 3, 7, 40, 200, 1500, 9000])
                ws.transport.write(stream[at : at + step])
                at += step
                if rng.random() < 0.3:
                    await asyncio.sleep(0.001)
            return [a.get("id") for a in await replies(ws, len(expected))]

    for seed in range(4):
        parsed.clear()
        assert asyncio.run(run(seed)) == expected
        # between the handshake and the client's close (and past the first ping, if it
        # came before the connection was served), the parser got only the frames not
        # taken here, each one whole
        assert parsed[0].startswith(b"GET /v1/ws ") and parsed[-1][0] == 0x88
        assert parsed[-1 - len(to_parser) : -1] == to_parser
        assert len(parsed) - len(to_parser) in (2, 3)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (Frame(Opcode.TEXT, b'{"op": "ping"}').serialize(mask=False, extensions=[]), 1002),
        (b"\xc1" + _client_frame(Opcode.TEXT, b'{"op": "ping"}')[1:], 1002),  # reserved bit
        (_client_frame(Opcode.TEXT, b" " * (64 * 1024 + 1)), 1009),
        (_client_frame(Opcode.TEXT, b"\xff\xfe"), 1007),
    ],
    ids=["unmasked", "reserved-bit", "too-long", "not-utf8"],
)
def test_frames_the_parser_refuses_close_the_connection_as_it_would(
    tmp_path: Path, frame: bytes, code: int
) -> None:
    async def run() -> None:
        async with serving(tmp_path) as url, websockets.connect(url, max_size=None) as ws:
            await ws.send(orjson.dumps({"op": "ping", "id": 1}).decode())
            await replies(ws, 1)  # served directly from now on
            # behind a frame taken directly, in the same read
            ws.transport.write(_client_frame(Opcode.TEXT, b'{"op": "ping", "id": 2}') + frame)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:  # the answer to 2 may or may not go out before the close
                    await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == code

    asyncio.run(run())


async def _until_closed(ws: Any) -> tuple[list[dict[str, Any]], int | None]:
    """Every message up to the close (heartbeats left out), and the close code."""
    got: list[dict[str, Any]] = []
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with asyncio.timeout(20):  # heartbeats would keep a connection never closed
            while True:
                message = orjson.loads(await ws.recv())
                if message.get("channel") != "heartbeat":
                    got.append(message)
    return got, closed.value.rcvd.code if closed.value.rcvd else None


#: uvicorn's deprecated "websockets" protocol: the one whose connections are written
#: through the ASGI queue (no transport to write to), as under other ASGI servers.
_QUEUED = pytest.param(
    "websockets",
    marks=[
        pytest.mark.filterwarnings("ignore::uvicorn.config.UvicornDeprecationWarning"),
        pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # websockets.legacy
    ],
)


@pytest.mark.parametrize("protocol", [DirectWebSocketProtocol, "websockets-sansio", _QUEUED])
def test_a_flooding_connection_gets_the_answers_due_then_its_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: Any
) -> None:
    """Read directly, through ASGI with the transport written to, or through ASGI's queue
    ("websockets"): past the budget, every answer already due, then RATE_LIMITED and 1008.
    Refusals for a rate count against it too."""
    monkeypatch.setattr(ws_module, "OTHER_BURST", 50)

    async def run() -> None:
        async with serving(tmp_path, protocol) as url:
            async with websockets.connect(url) as ws:
                for i in range(200):
                    await ws.send(orjson.dumps({"op": "ping", "id": i}).decode())
                (*pongs, farewell), code = await _until_closed(ws)
                assert code == 1008 and farewell["error"]["code"] == "RATE_LIMITED", farewell
                assert 50 <= len(pongs) < 200
                assert [p["id"] for p in pongs] == list(range(len(pongs)))
            async with websockets.connect(url) as ws:  # 100 served, then refused, then closed
                for i in range(400):
                    await ws.send(
                        orjson.dumps({"op": "unsubscribe", "id": i, "channels": []}).decode()
                    )
                (*answers, farewell), code = await _until_closed(ws)
                assert code == 1008 and "connection is closed" in farewell["error"]["message"]
                ops = [a["op"] for a in answers]
                assert ops[:100] == ["ack"] * 100 and 50 <= ops.count("error") < 300
                assert [a["id"] for a in answers] == list(range(len(answers)))

    asyncio.run(run())
