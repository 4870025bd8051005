"""The websocket API (SPEC section 4): market data, private streams and order entry.

Outgoing messages never wait. Each connection gathers the frames of one turn of the event
loop (the answers and private updates of one sequencer batch, say) and writes them with one
``write``; a market-data message is encoded once, framed once, and the same bytes go to
every subscriber. A connection whose unsent output grows past :data:`MAX_BUFFERED` bytes is
too slow to keep up: it gets a ``SLOW_CONSUMER`` error and is closed, so a slow consumer
never slows the exchange.

Orders are parsed and checked in the reader itself and handed to the sequencer with a
callback: no task and no future per order. The answer is framed when the command has been
journaled and applied.

Under uvicorn's ``websockets-sansio`` protocol the frames go straight to the connection's
transport (the server side of a websocket sends unmasked frames, and with per-message
compression off a frame is the same bytes for every receiver); under any other ASGI server
they go through ordinary ASGI sends from a writer task. ``cfx serve`` runs
:class:`DirectWebSocketProtocol`, which also hands incoming text messages to the connection
as they are parsed, without the ASGI receive queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

import orjson
from fastapi import WebSocket, WebSocketDisconnect
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import apply_mask
from websockets.protocol import Protocol, State
from websockets.streams import StreamReader

from exchange.gateway import auth
from exchange.gateway.errors import ApiError, error_body
from exchange.gateway.models import (
    MAX_ID,
    AmendOrder,
    CancelAfter,
    CancelAll,
    CancelOrder,
    parse_model,
    parse_place,
)
from exchange.gateway.protocols import CountedWebSocket, JsonHandshake
from exchange.gateway.ratelimit import TokenBucket, charged
from exchange.reasons import Reason
from exchange.sequencer.state import NS, Outcome, Refused, iso, spending

if TYPE_CHECKING:
    from exchange.service import ExchangeService

log = logging.getLogger("cfx")

MAX_BUFFERED = 2 * 1024 * 1024  #: unsent bytes a connection may have before it counts as slow
QUEUE_SIZE = 5_000  #: messages waiting for a connection served through plain ASGI sends
MAX_MESSAGE = 64 * 1024  #: largest client message, bytes
MAX_SUBSCRIPTIONS = 200  #: channels per connection
HEARTBEAT_S = 5.0  #: idle time before a heartbeat
MAX_IN_FLIGHT = 1_000  #: order requests a connection may have waiting for the sequencer
CONTROL_RATE = 20.0  #: auth, subscribe and unsubscribe messages a connection may send a second
CONTROL_BURST = 100  #: ... in a burst
#: Messages that are refused (not JSON, an unknown op, orders before ``auth``, control
#: messages past :data:`CONTROL_RATE`) or that no other limit counts (``ping``) a connection
#: may send a second; one that sends more is closed (1008) with a ``RATE_LIMITED`` error.
OTHER_RATE = 100.0
OTHER_BURST = 1_000  #: ... in a burst
CLOSE_GRACE_S = 5.0  #: how long a connection the server closes may take to read its farewell
LINGER_S = 5.0  #: how long a refused client's remaining bytes are read and dropped

#: Where the pure ASGI middleware puts the server's own ``send`` of a websocket scope.
RAW_SEND_KEY = "cfx.websocket.send"
RAW_RECEIVE_KEY = "cfx.websocket.receive"

_PUBLIC = ("book", "trades", "ticker")
_PRIVATE = ("orders", "fills", "positions")


def frame(payload: bytes) -> bytes:
    """Return ``payload`` as one unmasked websocket text frame (server to client)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65_536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def _payloads(data: bytes) -> list[bytes]:
    """The payloads of the frames written by :func:`frame` and joined into ``data``."""
    out = []
    at = 0
    while at < len(data):
        n = data[at + 1]
        if n < 126:
            start = at + 2
        elif n == 126:
            start, n = at + 4, int.from_bytes(data[at + 2 : at + 4], "big")
        else:
            start, n = at + 10, int.from_bytes(data[at + 2 : at + 10], "big")
        out.append(data[start : start + n])
        at = start + n
    return out


def _encode(message: dict[str, Any]) -> bytes:
    return frame(orjson.dumps(message))


class _Raw:
    """The transport of a uvicorn ``websockets-sansio`` connection, written to directly."""

    __slots__ = ("protocol", "transport")

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.transport = protocol.transport

    @classmethod
    def find(cls, websocket: WebSocket) -> _Raw | None:
        send = websocket.scope.get(RAW_SEND_KEY)
        protocol = getattr(send, "__self__", None)
        if not isinstance(protocol, WebSocketsSansIOProtocol) or protocol.transport is None:
            return None
        return cls(protocol)

    def open(self) -> bool:
        return not (self.protocol.close_sent or self.transport.is_closing())


class DirectWebSocketProtocol(CountedWebSocket, WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol, handing text messages straight to the reader.

    uvicorn gives each message to the ASGI app through a queue: a put, a wake-up of the
    app's task, and reading paused until the app has taken it, then resumed (two changes to
    the event loop's poller per read). Once :func:`serve_connection` has set :attr:`direct`,
    a text message that finds the queue empty is handled in ``data_received`` itself, in
    the order it came. Everything else (binary frames, a close, a message behind queued
    ones) takes uvicorn's way, so the order of messages never changes.

    The frames of an order are small, whole, unfragmented text frames, most reads hold
    several, and the websockets parser (generators, a ``Frame`` and an event each) cost
    about a tenth of the event loop's time under load. So while the connection is open and
    served directly, reads are cut into frames here: a final masked text frame within the
    size limit, with no message waiting ahead of it, is unmasked (with websockets' own C
    ``apply_mask``) and handed on at once; any other whole frame goes to the websockets
    parser by itself, which judges it as it always would; the start of a frame that has not
    fully arrived waits here for the next read. The parser therefore only ever gets whole
    frames and is always between frames when the next one comes. A header the parser
    would refuse (unmasked, too long) goes to it with everything after it, to fail as usual.

    Run it with ``uvicorn.run(app, ws=DirectWebSocketProtocol)``; under any other protocol
    the connection reads through ASGI as usual.
    """

    #: Called with each text message while set (by the connection being served).
    direct: Callable[[str], None] | None = None
    #: The start of a frame that has not fully arrived.
    _partial = b""
    #: Set once a refused connection has sent its close frame and only drains the client.
    _linger = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn.__class__ = JsonHandshake  # a refused handshake gets a JSON error body

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._linger:
            return  # the rest of a refused frame, or the client's close: dropped unread
        if self._partial:
            data = self._partial + data
            self._partial = b""
        if self.direct is None or not self._between_frames():
            super().data_received(data)
            return
        limit = self.conn.max_message_size or MAX_FRAME
        at, end = 0, len(data)
        while at < end:
            start, stop = _frame_at(data, at, end, limit)
            if stop == _INCOMPLETE:
                self._partial = data[at:]
                return
            if stop == _REFUSED:
                super().data_received(data[at:])
                return
            if data[at] == 0x81 and self._direct_now():  # FIN, text, no reserved bits
                self.deliver(apply_mask(data[start:stop], data[start - 4 : start]))
            else:
                super().data_received(data[at:stop])
            at = stop
            if self.conn.state is not State.OPEN or self.close_sent:
                return  # closing: what follows would be dropped unread

    def _direct_now(self) -> bool:
        """Whether a text message arriving now may go straight to :attr:`direct`."""
        return (
            self.direct is not None
            and self.conn.current_size is None  # no fragmented message has begun
            and not self.frames
            and not self.close_sent
            and self.queue.empty()
        )

    def _between_frames(self) -> bool:
        """Whether the parser is open, waits for a new frame and holds nothing half-read."""
        conn = self.conn
        if conn.state is not State.OPEN or conn.reader.buffer or conn.extensions:
            return False
        chain = []
        parser: Any = conn.parser  # a generator, and the ones it delegates to
        while parser is not None:
            chain.append(parser.gi_code)
            parser = parser.gi_yieldfrom
        return chain[-2:] == _PARSER_BETWEEN_FRAMES

    def handle_parser_exception(self) -> None:
        """Send the close frame (1009 for a frame too big, 1002, 1007...), then linger.

        uvicorn closes the socket at once, often with the rest of the refused frame still
        unread; the kernel then answers with a reset, and a client still sending sees the
        reset instead of the close frame and its code. Here the write side is shut after
        the close frame and whatever the client still sends is read and dropped, until it
        closes its side or :data:`LINGER_S` has passed.
        """
        transport = self.transport
        if not transport.can_write_eof() or transport.is_closing():
            super().handle_parser_exception()
            return
        assert self.conn.close_sent is not None
        close = self.conn.close_sent
        self.queue.put_nowait(
            {"type": "websocket.disconnect", "code": close.code, "reason": close.reason}
        )
        transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self._partial = b""
        self._linger = True
        # uvicorn's timer for a closing handshake: the app's end does not close the socket
        # while it is set, a server shutdown and the connection's loss cancel it
        self.close_timer = self.loop.call_later(LINGER_S, transport.abort)
        transport.write_eof()  # the client's EOF then closes the transport

    def send_receive_event_to_app(self) -> None:
        if (
            self.direct is None
            or self.curr_msg_data_type != "text"
            or self.close_sent
            or not self.queue.empty()
        ):
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        self.deliver(data)

    def deliver(self, data: bytes) -> None:
        """Hand one whole text message to :attr:`direct`."""
        direct = self.direct
        assert direct is not None
        try:
            text = data.decode()
        except UnicodeDecodeError:  # as uvicorn does: close with 1007, invalid data
            self.conn.send_close(1007)
            self.handle_parser_exception()
            return
        try:
            direct(text)
        except Exception:  # a bug in the handler: close this connection as ASGI would (1011)
            log.exception("websocket message handler failed")
            self.direct = None
            self.conn.send_close(1011)
            self.handle_parser_exception()


#: The largest frame read when the protocol sets no limit.
MAX_FRAME = 1 << 20
_INCOMPLETE, _REFUSED = -1, -2


def _frame_at(data: bytes, at: int, end: int, limit: int) -> tuple[int, int]:
    """Where the payload of the masked client frame at ``data[at:end]`` starts and stops.

    The stop is ``_INCOMPLETE`` while the frame has not fully arrived, and ``_REFUSED`` for
    a header the websockets parser refuses (unmasked, or longer than ``limit``).
    """
    if end - at < 2:
        return 0, _INCOMPLETE
    size = data[at + 1]
    if size < 0x80:
        return 0, _REFUSED
    size &= 0x7F
    start = at + 6
    if size == 126:
        start = at + 8
        if start > end:
            return 0, _INCOMPLETE
        size = (data[at + 2] << 8) | data[at + 3]
    elif size == 127:
        start = at + 14
        if start > end:
            return 0, _INCOMPLETE
        size = int.from_bytes(data[at + 2 : at + 10], "big")
    if size > limit:
        return 0, _REFUSED
    stop = start + size
    return start, (stop if stop <= end else _INCOMPLETE)


#: The innermost generators of the websockets parser while it waits for a new frame.
_PARSER_BETWEEN_FRAMES = [Protocol.parse.__code__, StreamReader.at_eof.__code__]


class _Refusal(ApiError):
    """A refusal that draws on the connection's budget of refused messages
    (:meth:`Connection.refuse`), unlike the answers to orders it refuses."""


class Connection:
    """One websocket client: its subscriptions, identity and outgoing frames."""

    def __init__(self, svc: ExchangeService, websocket: WebSocket) -> None:
        self.svc = svc
        self.websocket = websocket
        self.loop = asyncio.get_running_loop()
        self.channels: set[str] = set()
        #: ``channels`` as a frozenset: connections with the same key share feed bytes.
        self.channels_key: frozenset[str] = frozenset()
        self.account: int | None = None
        self.closed = False
        self.in_flight = 0
        self.last_send = time.monotonic()
        self._out: list[bytes] = []
        self._flush_soon = False
        self._raw = _Raw.find(websocket)
        self._rate_key = ""
        self._positions: list[dict[str, Any]] | None = None  # as last sent on ``positions``
        self._control = TokenBucket(CONTROL_RATE, CONTROL_BURST)  # this connection's own
        self._other = TokenBucket(OTHER_RATE, OTHER_BURST)  # this connection's own
        #: Messages that came while an ``auth`` was being journaled, handled once it is.
        self._after_auth: list[str] | None = None
        # without direct access to the transport: a queue of payloads and a writer task
        self.queue: asyncio.Queue[bytes | None] | None = (
            None if self._raw is not None else asyncio.Queue(QUEUE_SIZE)
        )
        self.writer_task: asyncio.Task[None] | None = None
        self.closing: asyncio.Task[None] | None = None
        self.tasks: list[asyncio.Task[None]] = []

    # -- outgoing -----------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        """Queue one message; it goes out with the others of this turn of the loop."""
        self.write(_encode(message))

    def write(self, data: bytes) -> None:
        """Queue framed bytes for the end of this turn of the loop."""
        if self.closed:
            return
        self._out.append(data)
        if not self._flush_soon:
            self._flush_soon = True
            self.loop.call_soon(self.flush)

    def write_now(self, data: bytes) -> None:
        """Write framed bytes at once, after anything already queued."""
        if self.closed:
            return
        if self._out:
            self._out.append(data)
            self.flush()
        else:
            self._emit(data)

    def flush(self) -> None:
        self._flush_soon = False
        if not self._out:
            return
        out = self._out
        self._out = []
        if not self.closed:
            self._emit(out[0] if len(out) == 1 else b"".join(out))

    def _emit(self, data: bytes) -> None:
        self.last_send = time.monotonic()
        raw = self._raw
        if raw is not None:
            if not raw.open():
                self.closed = True
                return
            raw.transport.write(data)
            if raw.transport.get_write_buffer_size() > MAX_BUFFERED:
                self._too_slow()
            return
        assert self.queue is not None
        for payload in _payloads(data):
            try:
                self.queue.put_nowait(payload)
            except asyncio.QueueFull:
                self._too_slow()
                return

    def _too_slow(self) -> None:
        """Say why, close, and stop sending: the feed ran ahead of this client."""
        self._shut(Reason.SLOW_CONSUMER, "too slow: the feed ran ahead")

    def _too_chatty(self) -> bool:
        """Count one refused or unlimited message; past :data:`OTHER_RATE` a second, close
        the connection and return True (the message is then left unanswered)."""
        if not self._other.take(""):
            return False
        self.flush()  # what was answered before goes out ahead of the farewell
        if not self.closed:
            self._shut(
                Reason.RATE_LIMITED,
                f"more than {OTHER_RATE:g} refused or ping messages a second: the connection "
                "is closed",
                keep_queued=True,
            )
        return True

    def _shut(self, reason: Reason, message: str, keep_queued: bool = False) -> None:
        """Say why, close with 1008; send and read no more. What is still queued for the
        client is dropped, unless ``keep_queued`` (then it goes out before the farewell)."""
        self.closed = True
        self._out.clear()
        farewell = _encode({"op": "error", **error_body(reason, message)})
        if self._raw is not None:
            if not self._raw.open():  # closing already (a protocol error, say): no farewell
                return
            self._raw.transport.write(farewell)
            # not cancelled with the connection's other tasks: it ends by itself
            self.closing = self.loop.create_task(self._close_after_farewell())
        else:
            queue = self.queue
            assert queue is not None
            while queue.qsize() > (queue.maxsize - 2 if keep_queued else 0):
                queue.get_nowait()  # room for the farewell and the close
            queue.put_nowait(_payloads(farewell)[0])
            queue.put_nowait(None)

    async def _close_after_farewell(self) -> None:
        assert self._raw is not None
        transport = self._raw.transport
        started = time.monotonic()
        with contextlib.suppress(Exception):  # waits while the client's backlog drains
            await asyncio.wait_for(self.websocket.close(code=1008), CLOSE_GRACE_S)
        await asyncio.sleep(max(0.0, started + CLOSE_GRACE_S - time.monotonic()))
        if not transport.is_closing() or transport.get_write_buffer_size():
            transport.abort()

    def wants(self, channel: str, symbol: str | None) -> bool:
        if symbol is None:
            return channel in self.channels
        return f"{channel}:{symbol}" in self.channels or f"{channel}:*" in self.channels

    async def writer(self) -> None:
        """Send queued frames through ASGI (only without direct access to the transport)."""
        assert self.queue is not None
        while True:
            data = await self.queue.get()
            if data is None:
                await self.websocket.close(code=1008)
                return
            await self.websocket.send_text(data.decode())

    async def heartbeat(self) -> None:
        while not self.closed:
            idle = time.monotonic() - self.last_send
            if idle >= HEARTBEAT_S:
                self.send({"channel": "heartbeat", "time": self.svc.clock_iso()})
                idle = 0.0
            await asyncio.sleep(HEARTBEAT_S - idle)

    # -- private streams (called by the service for each applied command) ---------------
    def on_orders(self, order_ids: list[int]) -> None:
        """A command touched this connection's account: the state of its orders it touched."""
        svc = self.svc
        for order_id in order_ids:
            order = svc.state.orders.get(order_id)
            if order is not None and order.account == self.account:
                self.send({"channel": "orders", **svc.order_out(svc.state.order_view(order))})

    def on_positions(self) -> None:
        """The account's positions after a command that touched it, if they changed."""
        assert self.account is not None
        positions = self.svc.positions_out(self.account)
        if positions != self._positions:
            self._positions = positions
            self.send({"channel": "positions", "positions": positions})

    def on_fill(self, trade: dict[str, Any], role: str) -> None:
        if "fills" not in self.channels:
            return
        side = trade["taker_side"]
        if role == "maker":
            side = "sell" if side == "buy" else "buy"
        self.send(
            {"channel": "fills", "symbol": trade["symbol"], "trade_id": trade["trade_id"],
             "order_id": trade[f"{role}_order"], "side": side,
             "price": self.svc.price_str(trade["symbol"], trade["price"]),
             "quantity": trade["quantity"], "liquidity": role, "time": iso(trade["time"])}
        )  # fmt: skip

    # -- incoming -----------------------------------------------------------------------
    def receive_direct(self, raw: str) -> None:
        """A message from :class:`DirectWebSocketProtocol`: none is read once closed."""
        if not self.closed:
            self.handle(raw)

    def handle(self, raw: str) -> None:
        if self._after_auth is not None:  # in order, as the client sent them, after the auth
            if len(self._after_auth) >= MAX_IN_FLIGHT:
                self.refuse(None, Reason.RATE_LIMITED, "too many messages before auth completed")
                return
            self._after_auth.append(raw)
            return
        if len(raw) > MAX_MESSAGE:
            self.refuse(
                None, Reason.PAYLOAD_TOO_LARGE, f"messages are limited to {MAX_MESSAGE} bytes"
            )
            return
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:  # e.g. "depth limit exceeded: line 1 column 1026"
            self.refuse(None, Reason.INVALID_REQUEST, f"the message is not valid JSON ({exc})")
            return
        if not isinstance(message, dict):
            self.refuse(None, Reason.INVALID_REQUEST, "messages must be JSON objects")
            return
        request_id = message.get("id")
        if request_id is not None and (
            not isinstance(request_id, (str, int)) or isinstance(request_id, bool)
        ):  # refused, not run: an answer without the id could not be matched to the request
            self.refuse(None, Reason.INVALID_REQUEST, "id must be a string or an integer")
            return
        op = message.get("op")
        try:
            if op in ("subscribe", "unsubscribe", "auth") and self._control.take(""):
                raise _Refusal(
                    Reason.RATE_LIMITED,
                    f"at most {CONTROL_RATE:g} auth, subscribe and unsubscribe messages a second",
                )
            if op == "place":
                self.place(message, request_id)
            elif op == "cancel":
                self.cancel(message, request_id)
            elif op == "amend":
                self.amend(message, request_id)
            elif op == "cancel_all":
                self.cancel_all(message, request_id)
            elif op == "cancel_after":
                self.cancel_after(message, request_id)
            elif op == "subscribe":
                self.subscribe(message, request_id)
            elif op == "unsubscribe":
                for channel in self._channels(message):
                    self.channels.discard(channel)
                self.channels_key = frozenset(self.channels)
                self.ack(request_id, {"channels": sorted(self.channels)})
            elif op == "auth":
                self.authenticate(message, request_id)
            elif op == "ping":
                if not self._too_chatty():
                    self.send({"op": "pong", "id": request_id, "time": self.svc.clock_iso()})
            elif op is None:
                raise _Refusal(Reason.INVALID_REQUEST, f'a message needs an "op": one of {_OPS}')
            else:
                raise _Refusal(Reason.INVALID_REQUEST, f"unknown op {op!r}: one of {_OPS}")
        except _Refusal as exc:
            self.refuse(request_id, exc.reason, exc.message)
        except ApiError as exc:
            self.error(request_id, exc.reason, exc.message)
        except Refused as exc:
            self.error(request_id, exc.reason, exc.message)

    def ack(self, request_id: Any, body: dict[str, Any]) -> None:
        self.send({"op": "ack", "id": request_id, **body})

    def refuse(self, request_id: Any, reason: Reason, message: str) -> None:
        """Answer an error that counts against the budget of refused messages (past it, the
        connection is closed and this one is left unanswered)."""
        if not self._too_chatty():
            self.error(request_id, reason, message)

    def error(self, request_id: Any, reason: Reason, message: str) -> None:
        self.send({"op": "error", "id": request_id, **error_body(reason, message)})

    def _channels(self, message: dict[str, Any]) -> list[str]:
        channels = message.get("channels")
        if not isinstance(channels, list) or not all(
            isinstance(c, str) and len(c) < 64 for c in channels
        ):
            raise ApiError(
                Reason.INVALID_REQUEST,
                "channels must be a list of strings like 'book:H100-2026-W50'",
            )
        return list(dict.fromkeys(channels))  # each once, in the order named

    def subscribe(self, message: dict[str, Any], request_id: Any) -> None:
        channels = self._channels(message)
        for channel in channels:
            name, _, symbol = channel.partition(":")
            if name in _PRIVATE and not symbol:
                if self.account is None:
                    raise ApiError(
                        Reason.UNAUTHORIZED, f"authenticate before subscribing to {name}"
                    )
            elif name in _PUBLIC and symbol:
                if symbol != "*" and symbol not in self.svc.state.contracts:
                    raise ApiError(Reason.UNKNOWN_SYMBOL, f"no contract {symbol!r} is listed")
                if name == "book" and symbol == "*":
                    raise ApiError(
                        Reason.INVALID_REQUEST, "subscribe to books one symbol at a time"
                    )
            else:
                raise ApiError(Reason.INVALID_REQUEST, f"unknown channel {channel!r}")
        if len(self.channels | set(channels)) > MAX_SUBSCRIPTIONS:
            raise ApiError(
                Reason.TOO_MANY_SUBSCRIPTIONS,
                f"at most {MAX_SUBSCRIPTIONS} channels per connection",
            )
        # what is still pending goes out first, so the snapshot below includes it and
        # this connection's updates start right after it
        self.svc.flush_market_data()
        self.ack(request_id, {"channels": sorted(self.channels | set(channels))})
        for channel in channels:  # a channel subscribed again starts again: a fresh snapshot
            self.channels.add(channel)
            name, _, symbol = channel.partition(":")
            if name == "book":
                self.send(dict(self.svc.md.snapshot_message(symbol)))
            elif name == "ticker":
                if symbol == "*":  # the contracts whose trading is not over
                    contracts = self.svc.state.contracts
                    symbols = [s for s in self.svc.symbols() if contracts[s].book_open]
                else:
                    symbols = [symbol]
                for sym in symbols:
                    self.send(dict(self.svc.md.ticker_message(sym, self.svc.state.now)))
            elif name == "positions":
                self._positions = None  # sent now whatever was sent before
                self.on_positions()
        self.channels_key = frozenset(self.channels)

    def authenticate(self, message: dict[str, Any], request_id: Any) -> None:
        key, timestamp, signature = (
            str(message.get(f, "")) for f in ("key", "timestamp", "signature")
        )
        account = self.svc.state.api_keys.get(key)
        if account is None:
            raise self._charged(ApiError(Reason.UNAUTHORIZED, "unknown API key"))
        problem = auth.verify(
            auth.derive_secret(self.svc.master_key, key),
            timestamp,
            "GET",
            "/v1/ws",
            b"",
            signature,
            time.time(),
        )
        if problem:
            raise self._charged(ApiError(Reason.UNAUTHORIZED, problem))
        if self.svc.replays.seen(signature, key):
            raise self._charged(ApiError(Reason.UNAUTHORIZED, "this signature was already used"))
        # journaled, so that the signature stays spent after a restart; the messages that
        # come meanwhile wait for it (a client may send its orders right after its auth)
        self._after_auth = []
        command = {"op": "auth", "account_id": account} | spending(signature, time.time())
        try:
            self.svc.sequencer.submit_nowait(
                command, lambda outcome: self._authenticated(outcome, account, key, request_id)
            )
        except Refused:
            self._resume()
            raise

    def _charged(self, refused: ApiError) -> ApiError:
        """An ``auth`` that fails counts against the connection's client address, as a REST
        request that fails its signature does; past the address's rate it is refused
        ``RATE_LIMITED`` instead."""
        limiter = self.svc.public_limiter
        return refused if limiter is None else charged(limiter, self.websocket.scope, refused)

    def _authenticated(self, outcome: Outcome, account: int, key: str, request_id: Any) -> None:
        try:
            if isinstance(outcome.reply, Refused):
                self.error(request_id, outcome.reply.reason, outcome.reply.message)
            elif not self.closed:
                self.svc.unregister_private(self)
                self.account = account
                self._rate_key = key  # the API key's bucket, which its REST requests draw on too
                self.svc.register_private(self)
                self.ack(request_id, {"account_id": account})
                if "positions" in self.channels:  # another account's until now: afresh
                    self._positions = None
                    self.on_positions()
        finally:  # whatever happened, what waited is handled: nothing stays held back
            self._resume()

    def _resume(self) -> None:
        """Handle the messages that waited for an auth, in order (one may be an auth again)."""
        waiting, self._after_auth = self._after_auth or [], None
        for i, raw in enumerate(waiting):
            if self.closed:  # whoever closed it: the account the client meant may not be set
                return
            if self._after_auth is not None:  # another auth: the rest wait for it in turn
                self._after_auth.extend(waiting[i:])
                return
            self.handle(raw)

    def _submit(
        self, command: dict[str, Any], request_id: Any, render: Callable[[Any], Any] | None = None
    ) -> None:
        """Sequence ``command``; its ack carries ``render(reply)`` (by default the order)."""
        if self.in_flight >= MAX_IN_FLIGHT:
            raise ApiError(Reason.RATE_LIMITED, f"at most {MAX_IN_FLIGHT} requests in flight")
        self.svc.sequencer.submit_nowait(command, self._answerer(request_id, render or self._order))
        self.in_flight += 1

    def _order(self, reply: dict[str, Any]) -> dict[str, Any]:
        return {"order": self.svc.order_out(reply)}

    def _answerer(self, request_id: Any, render: Callable[[Any], Any]) -> Any:
        def answer(outcome: Outcome) -> None:
            self.in_flight -= 1
            reply = outcome.reply
            if isinstance(reply, Refused):
                self.error(request_id, reply.reason, reply.message)
            else:
                self.send({"op": "ack", "id": request_id, **render(reply)})

        return answer

    def _trading_account(self, what: str) -> int:
        """The connection's account, once one request is taken from its API key's rate limit:
        every order request counts, refused or not, as on REST (whose requests draw on the
        same bucket)."""
        if self.account is None:
            raise _Refusal(Reason.UNAUTHORIZED, f"authenticate before {what}")
        if self.svc.limiter.take(self._rate_key):  # slows a bot down, never disconnects it
            raise ApiError(Reason.RATE_LIMITED, "too many requests for this API key")
        return self.account

    def place(self, message: dict[str, Any], request_id: Any) -> None:
        account = self._trading_account("placing orders")
        try:
            order = parse_place(_fields(message))
        except ValueError as exc:
            raise ApiError(Reason.INVALID_REQUEST, str(exc)) from exc
        self._submit(self.svc.place_command(account, order), request_id)

    def cancel(self, message: dict[str, Any], request_id: Any) -> None:
        account = self._trading_account("cancelling orders")
        order_id = _order_id(message)
        if not _CANCEL_KEYS.issuperset(message):
            parse_model(CancelOrder, _fields(message, "order_id"))  # names the extra fields
        self.svc.check_own_order(account, order_id)
        self._submit({"op": "cancel", "account_id": account, "order_id": order_id}, request_id)

    def amend(self, message: dict[str, Any], request_id: Any) -> None:
        """``PATCH /v1/orders/{order_id}`` over the websocket: the same checks, in order."""
        account = self._trading_account("amending orders")
        order_id = _order_id(message)
        body = parse_model(AmendOrder, _fields(message, "order_id"))
        order = self.svc.own_order(account, order_id)
        if body.price is None and body.quantity is None:
            raise ApiError(Reason.INVALID_REQUEST, "give a new price, a new quantity, or both")
        command: dict[str, Any] = {"op": "amend", "account_id": account, "order_id": order_id,
                                   "quantity": body.quantity}  # fmt: skip
        if body.price is not None:
            command["price"] = self.svc.parse_price(order.symbol, body.price)
        self._submit(command, request_id)

    def cancel_all(self, message: dict[str, Any], request_id: Any) -> None:
        """``DELETE /v1/orders[?symbol=]`` over the websocket: ack ``{"orders": [...]}``."""
        account = self._trading_account("cancelling orders")
        body = parse_model(CancelAll, _fields(message))
        if body.symbol is not None:
            self.svc.known_symbol(body.symbol)
        out = self.svc.order_out
        self._submit({"op": "cancel_all", "account_id": account, "symbol": body.symbol},
                     request_id, lambda orders: {"orders": [out(o) for o in orders]})  # fmt: skip

    def cancel_after(self, message: dict[str, Any], request_id: Any) -> None:
        """``POST /v1/orders/cancel-after`` over the websocket: ack ``{"account_id",
        "cancel_at"}``."""
        account = self._trading_account("arming the dead man's switch")
        body = parse_model(CancelAfter, _fields(message))
        command = {"op": "cancel_after", "account_id": account, "timeout_ns": body.timeout_s * NS}
        self._submit(command, request_id, dict)


#: Everything a ``cancel`` may hold.
_CANCEL_KEYS: Final = frozenset(("op", "id", "order_id"))
#: What the ``op`` of a message may be, as a refusal lists them.
_OPS: Final = ", ".join(("auth", "subscribe", "unsubscribe", "place", "cancel", "amend",
                         "cancel_all", "cancel_after", "ping"))  # fmt: skip


def _order_id(message: dict[str, Any]) -> int:
    """The message's ``order_id``: an integer from 1 to 2^63 - 1, as in a REST path (400
    ``INVALID_REQUEST`` otherwise, before the order is looked for)."""
    order_id = message.get("order_id")
    if not isinstance(order_id, int) or isinstance(order_id, bool) or not 1 <= order_id <= MAX_ID:
        raise ApiError(Reason.INVALID_REQUEST, f"order_id must be an integer from 1 to {MAX_ID}")
    return order_id


def _fields(message: dict[str, Any], *also: str) -> dict[str, Any]:
    """A request's fields other than ``op``, ``id`` and ``also``: the body of its REST form."""
    return {k: v for k, v in message.items() if k != "op" and k != "id" and k not in also}


def broadcast(connections: Iterable[Connection], messages: list[dict[str, Any]]) -> None:
    """Send public market-data messages to every connection subscribed to them.

    Each message is encoded and framed once; connections with the same subscriptions get
    the very same bytes, written at once.
    """
    encoded = [(f"{m['channel']}:{m['symbol']}", f"{m['channel']}:*", _encode(m)) for m in messages]
    shared: dict[frozenset[str], bytes] = {}
    for connection in connections:
        key = connection.channels_key
        if not key or connection.closed:
            continue
        data = shared.get(key)
        if data is None:
            data = b"".join([f for exact, wild, f in encoded if exact in key or wild in key])
            shared[key] = data
        if data:
            connection.write_now(data)


async def serve_connection(svc: ExchangeService, websocket: WebSocket) -> None:
    """Run one websocket connection until it closes."""
    await websocket.accept()
    connection = Connection(svc, websocket)
    svc.subscribers.add(connection)
    if connection.queue is not None:
        connection.writer_task = asyncio.create_task(connection.writer())
    connection.tasks.append(asyncio.create_task(connection.heartbeat()))
    # the server's own receive when the middleware passed it on: the same ASGI events
    # without a second state machine around them
    receive = websocket.scope.get(RAW_RECEIVE_KEY) or websocket.receive
    direct = connection._raw.protocol if connection._raw is not None else None
    if isinstance(direct, DirectWebSocketProtocol):
        direct.direct = connection.receive_direct
    try:
        while not connection.closed:
            message = await receive()
            if message["type"] == "websocket.disconnect" or connection.closed:
                break
            text = message.get("text")
            if text is not None:
                connection.handle(text)
            else:
                connection.refuse(
                    None, Reason.INVALID_REQUEST, "binary frames are not accepted: send JSON text"
                )
    except WebSocketDisconnect:
        pass
    finally:
        if isinstance(direct, DirectWebSocketProtocol):
            direct.direct = None
        svc.subscribers.discard(connection)
        svc.unregister_private(connection)
        connection.flush()
        writer = connection.writer_task
        if writer is not None and connection.closed and not writer.done():
            with contextlib.suppress(Exception):  # let the farewell out
                await asyncio.wait_for(asyncio.shield(writer), 2.0)
        connection.closed = True
        for task in [*connection.tasks, *([writer] if writer else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
