"""The asyncio client: :class:`AsyncClient` for REST, :class:`AsyncFeed` for the websocket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Generic, ParamSpec, TypeVar, overload

import httpx
import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from clients import _core
from clients._core import DEFAULT_URL, Call, Policy, Signer
from clients.errors import CfxError, ExchangeUnreachable, signature_reused
from clients.feed import (
    SENT_AGAIN,
    FeedCore,
    answer_lost,
    connect_again,
    feed_closed,
    not_opened,
    reconnect_delay,
    reply_error,
    ws_url,
)
from clients.models import Order
from exchange.marketdata.client_book import LocalBook

P = ParamSpec("P")
T = TypeVar("T")


class _Endpoint(Generic[P, T]):
    """A coroutine method of :class:`AsyncClient` that builds a :class:`Call` and runs it."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, client: None, owner: type) -> _Endpoint[P, T]: ...
    @overload
    def __get__(self, client: AsyncClient, owner: type) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, client: AsyncClient | None, owner: type) -> Any:
        if client is None:
            return self

        def method(*args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
            return client.execute(self.build(*args, **kwargs))

        method.__doc__ = self.__doc__
        method.__name__ = self.build.__name__
        return method


class AsyncClient:
    """The asyncio twin of :class:`~clients.Client`: the same methods, awaited.

    >>> async with AsyncClient(url, key=key, secret=secret) as cfx:
    ...     order = await cfx.place_order("H100-2026-12-07", "buy", 10, "2.35")
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        key: str | None = None,
        secret: str | None = None,
        *,
        admin_token: str | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        reconnect_s: float = _core.RECONNECT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.key, self.secret = key, secret
        self.signer = Signer(key, secret) if key and secret else None
        self.admin_token = admin_token
        self.policy = Policy(retries=retries, reconnect_s=reconnect_s)
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def execute(self, call: Call[T]) -> T:
        """Send one call, retrying as its :class:`~clients._core.Policy` allows."""
        attempts = _core.Attempts(self.policy, self.url, call)
        while True:
            headers, wait = _core.build_request(call, self.signer, self.admin_token)
            if wait:
                await asyncio.sleep(wait)
                continue
            try:
                response = await self._http.request(
                    call.method, call.path_with_query, content=call.content, headers=headers
                )
                return _core.read_response(call, response)
            except (httpx.TransportError, CfxError) as error:
                await asyncio.sleep(attempts.failed(error))

    def feed(self, channels: Iterable[str] = (), *, reconnect: bool = True) -> AsyncFeed:
        """A websocket feed subscribed to ``channels``: ``async with cfx.feed([...]) as feed``."""
        return AsyncFeed(self.url, channels, self.key, self.secret, reconnect=reconnect)

    health = _Endpoint(_core.health)
    contracts = _Endpoint(_core.contracts)
    contract = _Endpoint(_core.contract)
    book = _Endpoint(_core.book)
    trades = _Endpoint(_core.trades)
    candles = _Endpoint(_core.candles)
    settlement_prices = _Endpoint(_core.settlement_prices)
    index = _Endpoint(_core.index)
    place_order = _Endpoint(_core.place_order)
    orders = _Endpoint(_core.orders)
    order = _Endpoint(_core.order)
    cancel_order = _Endpoint(_core.cancel_order)
    cancel_all = _Endpoint(_core.cancel_all)
    amend_order = _Endpoint(_core.amend_order)
    cancel_after = _Endpoint(_core.cancel_after)
    fills = _Endpoint(_core.fills)
    account = _Endpoint(_core.account)
    positions = _Endpoint(_core.positions)
    deliveries = _Endpoint(_core.deliveries)
    attest = _Endpoint(_core.attest)
    dispute = _Endpoint(_core.dispute)
    create_account = _Endpoint(_core.create_account)
    deposit = _Endpoint(_core.deposit)
    withdraw = _Endpoint(_core.withdraw)
    advance_clock = _Endpoint(_core.advance_clock)
    halt = _Endpoint(_core.halt)
    resume = _Endpoint(_core.resume)
    ledger_check = _Endpoint(_core.ledger_check)
    journal_status = _Endpoint(_core.journal_status)


class AsyncFeed:
    """An asyncio websocket feed: ``async for message in feed``.

    A background task reads the socket: replies resolve the request that waits for them,
    book messages update :meth:`book` (a gap or checksum mismatch resubscribes by itself),
    and everything else is queued for iteration. When the connection drops, the task
    reconnects, re-authenticates, resubscribes, and sends again any order still waiting for
    its acknowledgement (its ``client_order_id`` stops the exchange taking it twice), and
    any cancel (:data:`~clients.feed.SENT_AGAIN`); an amend waiting for its answer raises
    :class:`OutcomeUnknown` instead. Until then every book is empty and unsynced.
    """

    def __init__(
        self,
        url: str,
        channels: Iterable[str] = (),
        key: str | None = None,
        secret: str | None = None,
        *,
        reconnect: bool = True,
        retries: int = 10,
        max_queue: int = 100_000,
    ) -> None:
        self.url = ws_url(url)
        self.core = FeedCore(channels, key, secret)
        self.reconnect = reconnect
        self.retries = retries
        self.reconnects = 0
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(max_queue)
        self._pending: dict[int, tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = {}
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        self._failure: BaseException | None = None

    async def __aenter__(self) -> AsyncFeed:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect, authenticate and subscribe; raise if the first connection fails."""
        await self._connect()
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop reconnecting, then close the connection (if cancelled, drop it at once)."""
        self._closed = True
        self._fail_pending(feed_closed())  # no answer will come now
        task = self._task
        try:
            if task is not None:
                task.cancel()
                await asyncio.wait({task})  # no reconnection after this: the connection is final
            if self._ws is not None:
                await self._ws.close()
        except BaseException:
            # Cancelled (a bot cancelled again as its loop shuts down, say): no waiting for a
            # closing handshake, but the connection must not outlive the loop, unclosed.
            if self._ws is not None:
                self._ws.transport.abort()
            raise
        finally:
            self._put(None)  # the end marker
        failure = None if task is None or task.cancelled() else task.exception()
        if failure is not None:  # not a CfxError (those end the iteration): a bug, say
            raise failure

    def _put(self, message: dict[str, Any] | None) -> None:
        """Queue a message, dropping the oldest if the queue is full (a reader too slow)."""
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(message)

    def book(self, symbol: str) -> LocalBook:
        """The local copy of a subscribed book: empty while not ``synced`` (see the SDK docs)."""
        return self.core.books[symbol]

    async def subscribe(self, channels: Iterable[str]) -> None:
        await self._request(self.core.subscribe(channels))

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        await self._request(self.core.unsubscribe(channels))

    async def place(
        self, symbol: str, side: str, quantity: int, price: Any = None, **extra: Any
    ) -> Order:
        """Place an order over the websocket; return it as acknowledged."""
        body = _core.place_order(symbol, side, quantity, price, **extra).body
        reply = await self._request(self.core.place(body))
        return Order.model_validate(reply["order"])

    async def cancel(self, order_id: int) -> Order:
        reply = await self._request(self.core.cancel(order_id))
        return Order.model_validate(reply["order"])

    async def amend(
        self, order_id: int, *, price: Any = None, quantity: int | None = None
    ) -> Order:
        """Amend an order over the websocket (as ``PATCH /v1/orders/{id}``); if the
        connection drops before the answer, :class:`OutcomeUnknown`: read the order."""
        body = _core.amend_order(order_id, price=price, quantity=quantity).body
        reply = await self._request(self.core.amend(order_id, body))
        return Order.model_validate(reply["order"])

    async def cancel_all(self, symbol: str | None = None) -> list[Order]:
        """Cancel every open order (of ``symbol``, if given); return those cancelled."""
        reply = await self._request(self.core.cancel_all(symbol))
        return [Order.model_validate(order) for order in reply["orders"]]

    async def cancel_after(self, timeout_s: int) -> dict[str, Any]:
        """Arm the dead man's switch (``0`` disarms it): ``{"account_id", "cancel_at"}``."""
        reply = await self._request(self.core.cancel_after(timeout_s))
        return {"account_id": reply["account_id"], "cancel_at": reply["cancel_at"]}

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            message = await self._queue.get()
            if message is None:
                if self._failure is not None:
                    raise self._failure
                return
            yield message

    async def next(self, timeout: float | None = 10.0) -> dict[str, Any] | None:
        """The next message, or ``None`` after ``timeout`` seconds.

        The timeout holds while the connection is down: reconnecting happens in a task of
        its own, never inside this call.
        """
        try:
            message = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if message is None and self._failure is not None:
            raise self._failure
        return message

    # -- plumbing -------------------------------------------------------------------------------
    async def _connect(self) -> None:
        try:
            self._ws = await websockets.connect(self.url, max_size=2**22, open_timeout=10)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as error:
            raise not_opened(self.url, error) from error
        reader = asyncio.create_task(self._read(self._ws))
        try:
            for attempt in range(3):
                message, wait = self.core.auth()
                while wait:
                    await asyncio.sleep(wait)
                    message, wait = self.core.auth()
                if message is None:
                    break
                try:
                    await self._exchange(message)
                    break
                except CfxError as error:
                    if not signature_reused(error) or attempt == 2:
                        raise
            resubscribe = self.core.resubscribe()
            if resubscribe is not None:
                await self._exchange(resubscribe)
        except BaseException:
            # Refused, or cancelled mid-way: no `async with` block will close this
            # connection, and a close handshake cannot be awaited under cancellation.
            reader.cancel()
            self._ws.transport.abort()
            raise
        self._reader = reader
        self._connected.set()
        for message, future in list(self._pending.values()):
            if message["op"] not in SENT_AGAIN:  # an amend whose answer was lost
                self._pending.pop(message["id"], None)
                if not future.done():
                    future.set_exception(answer_lost(message["op"]))
                continue
            await self._ws.send(orjson.dumps(message).decode())

    async def _run(self) -> None:
        """Keep the connection: wait for it to drop, then open it again."""
        try:
            while not self._closed and self._reader is not None:
                await asyncio.wait({self._reader})
                self._connected.clear()
                if self._closed:
                    return
                self.core.disconnected()  # no stale levels while the connection is down
                if not self.reconnect:
                    raise ExchangeUnreachable("DISCONNECTED", "the websocket connection closed")
                for attempt in range(self.retries):
                    await asyncio.sleep(reconnect_delay(attempt))
                    try:
                        await self._connect()
                    except (ConnectionClosed, OSError):
                        continue
                    except CfxError as error:  # dropped again, no answer, or not now
                        if connect_again(error):
                            continue
                        raise  # refused: a revoked key, say
                    self.reconnects += 1
                    break
                else:
                    raise ExchangeUnreachable("DISCONNECTED", f"could not reconnect to {self.url}")
        except CfxError as error:  # unreachable for good, or refused (a revoked key, say)
            self._failure = error
            self._fail_pending(error)
            self._put(None)

    def _fail_pending(self, error: CfxError) -> None:
        """Raise ``error`` in every request waiting for its answer; wake those waiting for a
        connection (they see ``_failure`` or ``_closed``)."""
        for _message, future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        self._connected.set()

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                message = orjson.loads(raw)
                received = self.core.receive(message)
                for resend in received.resend:
                    await ws.send(orjson.dumps(resend).decode())
                if received.reply_to is not None:
                    entry = self._pending.pop(received.reply_to, None)
                    if entry is not None and not entry[1].done():
                        if message.get("op") == "error":
                            entry[1].set_exception(reply_error(message))
                        else:
                            entry[1].set_result(message)
                if received.deliver is not None:
                    self._put(received.deliver)

    async def _exchange(self, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """Send a request on the current connection and wait for its reply."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message["id"]] = (message, future)
        assert self._ws is not None
        with contextlib.suppress(ConnectionClosed):  # the reconnect sends it again
            await self._ws.send(orjson.dumps(message).decode())
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError as error:
            self._pending.pop(message["id"], None)
            raise CfxError("TIMEOUT", f"no reply to {message['op']} in {timeout} s") from error

    async def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a request once connected; on a reconnect it is sent again (see class doc)."""
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise feed_closed()
        try:
            await asyncio.wait_for(self._connected.wait(), 60)
        except TimeoutError as error:
            raise ExchangeUnreachable("DISCONNECTED", f"not connected to {self.url}") from error
        if self._failure is not None:  # the reconnect gave up while we waited
            raise self._failure
        if self._closed:
            raise feed_closed()
        return await self._exchange(message, 60.0)
