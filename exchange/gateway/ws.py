"""The websocket API (SPEC section 4): market data, private streams and order entry.

Each connection has a bounded outgoing queue. The sequencer hands it messages without
waiting; a connection whose queue is full is too slow to keep up: it gets an error message
and is closed, so a slow consumer never slows the exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from exchange.gateway import auth
from exchange.gateway.errors import ApiError
from exchange.gateway.models import PlaceOrder
from exchange.reasons import Reason
from exchange.sequencer.state import Outcome, Refused, iso

if TYPE_CHECKING:
    from exchange.service import ExchangeService

QUEUE_SIZE = 5_000  #: messages a connection may have waiting before it counts as slow
MAX_MESSAGE = 64 * 1024  #: largest client message, bytes
MAX_SUBSCRIPTIONS = 200  #: channels per connection
HEARTBEAT_S = 5.0  #: idle time before a heartbeat
MAX_IN_FLIGHT = 1_000  #: order requests a connection may have waiting for the sequencer

_PUBLIC = ("book", "trades", "ticker")
_PRIVATE = ("orders", "fills", "positions")


class Connection:
    """One websocket client: its subscriptions, identity and outgoing queue."""

    def __init__(self, svc: ExchangeService, websocket: WebSocket) -> None:
        self.svc = svc
        self.websocket = websocket
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_SIZE)
        self.channels: set[str] = set()
        self.account: int | None = None
        self.closed = False
        self.in_flight: set[asyncio.Task[None]] = set()

    # -- outgoing -----------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(orjson.dumps(message))
        except asyncio.QueueFull:
            self.closed = True
            # make room for the farewell, then the sentinel that ends the writer
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(
                orjson.dumps(
                    {
                        "op": "error",
                        "error": {
                            "code": "SLOW_CONSUMER",
                            "message": "too slow: the feed ran ahead",
                        },
                    }
                )
            )
            self.queue.put_nowait(None)

    def wants(self, channel: str, symbol: str | None) -> bool:
        if symbol is None:
            return channel in self.channels
        return f"{channel}:{symbol}" in self.channels or f"{channel}:*" in self.channels

    def deliver(self, messages: list[dict[str, Any]], outcome: Outcome) -> None:
        """Queue the public messages this connection subscribed to, and its private updates."""
        for message in messages:
            if self.wants(message["channel"], message.get("symbol")):
                self.send(message)
        if self.account is None:
            return
        if self.account in outcome.touched_accounts:
            if "orders" in self.channels:
                for order_id in _order_ids(outcome):
                    order = self.svc.state.orders.get(order_id)
                    if order is not None and order.account == self.account:
                        self.send(
                            {
                                "channel": "orders",
                                **self.svc.order_out(self.svc.state.order_view(order)),
                            }
                        )
            if "positions" in self.channels:
                self.send(
                    {"channel": "positions", "positions": self.svc.positions_out(self.account)}
                )
        if "fills" in self.channels:
            for trade in outcome.trades:
                for role, liquidity in (("taker", "taker"), ("maker", "maker")):
                    if trade[f"{role}_account"] == self.account:
                        self.send(
                            {"channel": "fills", "symbol": trade["symbol"], "trade_id": trade["trade_id"],
                             "order_id": trade[f"{role}_order"], "price": self.svc.price_str(trade["symbol"], trade["price"]),
                             "quantity": trade["quantity"], "liquidity": liquidity, "time": iso(trade["time"])}
                        )  # fmt: skip

    async def writer(self) -> None:
        while True:
            try:
                data = await asyncio.wait_for(self.queue.get(), HEARTBEAT_S)
            except TimeoutError:
                data = orjson.dumps({"channel": "heartbeat", "time": self.svc.clock_iso()})
            if data is None:
                await self.websocket.close(code=1008)
                return
            await self.websocket.send_text(data.decode())

    # -- incoming -----------------------------------------------------------------------
    async def handle(self, raw: str) -> None:
        if len(raw) > MAX_MESSAGE:
            self.error(
                None, Reason.PAYLOAD_TOO_LARGE, f"messages are limited to {MAX_MESSAGE} bytes"
            )
            return
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.error(None, Reason.INVALID_REQUEST, "messages must be JSON objects")
            return
        if not isinstance(message, dict):
            self.error(None, Reason.INVALID_REQUEST, "messages must be JSON objects")
            return
        request_id = message.get("id")
        if request_id is not None and not isinstance(request_id, (str, int)):
            request_id = None
        op = message.get("op")
        try:
            if op == "subscribe":
                self.subscribe(message, request_id)
            elif op == "unsubscribe":
                for channel in self._channels(message):
                    self.channels.discard(channel)
                self.ack(request_id, {"channels": sorted(self.channels)})
            elif op == "auth":
                self.authenticate(message, request_id)
            elif op in ("place", "cancel"):
                # orders are sequenced concurrently: the reader keeps reading while they wait
                if len(self.in_flight) >= MAX_IN_FLIGHT:
                    raise ApiError(
                        Reason.RATE_LIMITED, f"at most {MAX_IN_FLIGHT} requests in flight"
                    )
                handler = self.place if op == "place" else self.cancel
                task = asyncio.create_task(self._answer(handler, message, request_id))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
            elif op == "ping":
                self.send({"op": "pong", "id": request_id, "time": self.svc.clock_iso()})
            else:
                self.error(request_id, Reason.INVALID_REQUEST, f"unknown op {op!r}")
        except ApiError as exc:
            self.error(request_id, exc.reason, exc.message)
        except Refused as exc:
            self.error(request_id, exc.reason, exc.message)

    async def _answer(self, handler: Any, message: dict[str, Any], request_id: Any) -> None:
        try:
            await handler(message, request_id)
        except ApiError as exc:
            self.error(request_id, exc.reason, exc.message)
        except Refused as exc:
            self.error(request_id, exc.reason, exc.message)

    def ack(self, request_id: Any, body: dict[str, Any]) -> None:
        self.send({"op": "ack", "id": request_id, **body})

    def error(self, request_id: Any, reason: Reason, message: str) -> None:
        self.send(
            {"op": "error", "id": request_id, "error": {"code": reason.name, "message": message}}
        )

    def _channels(self, message: dict[str, Any]) -> list[str]:
        channels = message.get("channels")
        if not isinstance(channels, list) or not all(
            isinstance(c, str) and len(c) < 64 for c in channels
        ):
            raise ApiError(
                Reason.INVALID_REQUEST,
                "channels must be a list of strings like 'book:H100-2026-W50'",
            )
        return channels

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
        self.ack(request_id, {"channels": sorted(self.channels | set(channels))})
        for channel in channels:
            if channel in self.channels:
                continue
            self.channels.add(channel)
            name, _, symbol = channel.partition(":")
            if name == "book":
                self.send(dict(self.svc.md.snapshot_message(symbol)))
            elif name == "ticker":
                for sym in self.svc.symbols() if symbol == "*" else [symbol]:
                    self.send(dict(self.svc.md.ticker_message(sym, self.svc.state.now)))

    def authenticate(self, message: dict[str, Any], request_id: Any) -> None:
        key, timestamp, signature = (
            str(message.get(f, "")) for f in ("key", "timestamp", "signature")
        )
        account = self.svc.state.api_keys.get(key)
        if account is None:
            raise ApiError(Reason.UNAUTHORIZED, "unknown API key")
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
            raise ApiError(Reason.UNAUTHORIZED, problem)
        if self.svc.replays.seen(signature):
            raise ApiError(Reason.UNAUTHORIZED, "this signature was already used")
        self.account = account
        self.ack(request_id, {"account_id": account})

    async def place(self, message: dict[str, Any], request_id: Any) -> None:
        if self.account is None:
            raise ApiError(Reason.UNAUTHORIZED, "authenticate before placing orders")
        body = {k: v for k, v in message.items() if k not in ("op", "id")}
        try:
            order = PlaceOrder.model_validate(body)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5]
            )
            raise ApiError(Reason.INVALID_REQUEST, problems) from exc
        wait = self.svc.limiter.take(f"ws:{self.account}")
        if wait:
            raise ApiError(Reason.RATE_LIMITED, "too many requests for this account")
        command = self.svc.place_command(self.account, order.model_dump())
        outcome = await self.svc.sequencer.submit(command)
        self.ack(request_id, {"order": self.svc.order_out(outcome.reply)})

    async def cancel(self, message: dict[str, Any], request_id: Any) -> None:
        if self.account is None:
            raise ApiError(Reason.UNAUTHORIZED, "authenticate before cancelling orders")
        order_id = message.get("order_id")
        if not isinstance(order_id, int) or isinstance(order_id, bool):
            raise ApiError(Reason.INVALID_REQUEST, "order_id must be an integer")
        self.svc.own_order(self.account, order_id)
        outcome = await self.svc.sequencer.submit(
            {"op": "cancel", "account_id": self.account, "order_id": order_id}
        )
        self.ack(request_id, {"order": self.svc.order_out(outcome.reply)})


def _order_ids(outcome: Outcome) -> list[int]:
    seen: dict[int, None] = {}
    for _, events in outcome.events:
        for ev in events:
            for field in ("order_id", "maker_order_id"):
                order_id = int(ev[field])
                if order_id:
                    seen[order_id] = None
    return list(seen)


async def serve_connection(svc: ExchangeService, websocket: WebSocket) -> None:
    """Run one websocket connection until it closes."""
    await websocket.accept()
    connection = Connection(svc, websocket)
    svc.subscribers.add(connection)
    writer = asyncio.create_task(connection.writer())
    try:
        while not connection.closed:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("text") is not None:
                await connection.handle(message["text"])
            else:
                connection.error(
                    None, Reason.INVALID_REQUEST, "binary frames are not accepted: send JSON text"
                )
    except WebSocketDisconnect:
        pass
    finally:
        svc.subscribers.discard(connection)
        if not writer.done():
            if connection.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer, 2.0)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
