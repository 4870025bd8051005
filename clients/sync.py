"""The blocking client: :class:`Client` for REST, :class:`Feed` for the websocket."""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, ParamSpec, TypeVar, overload

import httpx
import orjson
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from clients import _core
from clients._core import DEFAULT_URL, Call, Policy, Signer
from clients.errors import CfxError, ExchangeUnreachable, signature_reused
from clients.feed import (
    SENT_AGAIN,
    FeedCore,
    Received,
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

#: Seconds one reconnection attempt (connect, authenticate, resubscribe) may take beyond the
#: timeout of the :meth:`Feed.next` call that makes it: the most such a call overruns.
RECONNECT_ATTEMPT_S = 2.0

P = ParamSpec("P")
T = TypeVar("T")


class _Endpoint(Generic[P, T]):
    """A method of :class:`Client` that builds a :class:`Call` and runs it."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, client: None, owner: type) -> _Endpoint[P, T]: ...
    @overload
    def __get__(self, client: Client, owner: type) -> Callable[P, T]: ...
    def __get__(self, client: Client | None, owner: type) -> Any:
        if client is None:
            return self

        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return client.execute(self.build(*args, **kwargs))

        method.__doc__ = self.__doc__
        method.__name__ = self.build.__name__
        return method


class Client:
    """A blocking client of one exchange: every REST endpoint of SPEC section 3.

    >>> cfx = Client("http://127.0.0.1:8000", key="cfx_...", secret="...")
    >>> order = cfx.place_order("H100-2026-12-07", "buy", 10, "2.35")

    Private endpoints are signed with ``key`` and ``secret``; admin endpoints need
    ``admin_token``. Refusals raise :class:`~clients.CfxError` subclasses carrying the
    exchange's error code. Lost connections, 429 and 503 are retried (``retries`` times,
    with backoff) where repeating is safe: orders carry a ``client_order_id`` for that. A
    refused connection is tried again until ``reconnect_s`` seconds after the first failure,
    so a call made while the exchange restarts waits for it.
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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.key, self.secret = key, secret
        self.signer = Signer(key, secret) if key and secret else None
        self.admin_token = admin_token
        self.policy = Policy(retries=retries, reconnect_s=reconnect_s)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def execute(self, call: Call[T]) -> T:
        """Send one call, retrying as its :class:`~clients._core.Policy` allows."""
        attempts = _core.Attempts(self.policy, self.url, call)
        while True:
            headers, wait = _core.build_request(call, self.signer, self.admin_token)
            if wait:
                time.sleep(wait)
                continue
            try:
                response = self._http.request(
                    call.method, call.path_with_query, content=call.content, headers=headers
                )
                return _core.read_response(call, response)
            except (httpx.TransportError, CfxError) as error:
                time.sleep(attempts.failed(error))

    def feed(self, channels: Iterable[str] = (), *, reconnect: bool = True) -> Feed:
        """A websocket feed subscribed to ``channels`` (and authenticated, given credentials)."""
        return Feed(self.url, channels, self.key, self.secret, reconnect=reconnect)

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


class Feed:
    """A blocking websocket feed: iterate it for market data and private messages.

    Book channels are kept in :meth:`book` (sequence and checksum verified; a gap
    resubscribes by itself). A dropped connection is reopened, re-authenticated and
    resubscribed; while it is down, ``next(timeout=...)`` still returns on time (see
    :meth:`next`) and every book is empty and unsynced until its fresh snapshot.
    ``place``, ``cancel``, ``amend``, ``cancel_all`` and ``cancel_after`` go over the same
    connection.
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
    ) -> None:
        self.url = ws_url(url)
        self.core = FeedCore(channels, key, secret)
        self.reconnect = reconnect
        self.retries = retries
        self.reconnects = 0
        self._ws: ClientConnection | None = None
        self._buffer: deque[dict[str, Any]] = deque()
        self._closed = False
        # While the connection is down (``_ws`` is None after a drop): when the next
        # reconnection attempt is due, and how many attempts failed since the drop.
        self._reconnect_at: float | None = None
        self._failures = 0

    def __enter__(self) -> Feed:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Connect, authenticate (given credentials) and subscribe."""
        try:
            self._connect(None)
        except ConnectionClosed as closed:
            raise ExchangeUnreachable(
                "DISCONNECTED", f"{self.url} closed the connection while it opened"
            ) from closed
        self._reconnect_at, self._failures = None, 0

    def close(self) -> None:
        self._closed = True
        if self._ws is not None:
            self._ws.close()

    def book(self, symbol: str) -> LocalBook:
        """The local copy of a subscribed book: empty while not ``synced`` (see the SDK docs)."""
        return self.core.books[symbol]

    def subscribe(self, channels: Iterable[str]) -> None:
        self._request(self.core.subscribe(channels))

    def unsubscribe(self, channels: Iterable[str]) -> None:
        self._request(self.core.unsubscribe(channels))

    def place(
        self, symbol: str, side: str, quantity: int, price: Any = None, **extra: Any
    ) -> Order:
        """Place an order over the websocket; return it as acknowledged."""
        body = _core.place_order(symbol, side, quantity, price, **extra).body
        reply = self._request(self.core.place(body))
        return Order.model_validate(reply["order"])

    def cancel(self, order_id: int) -> Order:
        reply = self._request(self.core.cancel(order_id))
        return Order.model_validate(reply["order"])

    def amend(self, order_id: int, *, price: Any = None, quantity: int | None = None) -> Order:
        """Amend an order over the websocket (as ``PATCH /v1/orders/{id}``); if the
        connection drops before the answer, :class:`OutcomeUnknown`: read the order."""
        body = _core.amend_order(order_id, price=price, quantity=quantity).body
        reply = self._request(self.core.amend(order_id, body))
        return Order.model_validate(reply["order"])

    def cancel_all(self, symbol: str | None = None) -> list[Order]:
        """Cancel every open order (of ``symbol``, if given); return those cancelled."""
        reply = self._request(self.core.cancel_all(symbol))
        return [Order.model_validate(order) for order in reply["orders"]]

    def cancel_after(self, timeout_s: int) -> dict[str, Any]:
        """Arm the dead man's switch (``0`` disarms it): ``{"account_id", "cancel_at"}``."""
        reply = self._request(self.core.cancel_after(timeout_s))
        return {"account_id": reply["account_id"], "cancel_at": reply["cancel_at"]}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while not self._closed:
            message = self.next(timeout=None)
            if message is not None:
                yield message

    def next(self, timeout: float | None = 10.0) -> dict[str, Any] | None:
        """The next market-data or private message, or ``None`` after ``timeout`` seconds.

        The timeout holds while the connection is down, too: reconnecting goes on across
        calls (each attempt when its backoff is due), so a call returns after at most
        ``timeout`` plus one reconnection attempt's own limit, :data:`RECONNECT_ATTEMPT_S`
        (2 s; an exchange that refuses connections fails an attempt at once). Without a
        timeout it blocks until a message arrives, reconnecting as often as it takes.
        ``ExchangeUnreachable`` is raised when ``retries`` attempts in a row failed (the
        next call starts over) or, with ``reconnect=False``, when the connection drops.
        """
        if self._buffer:
            return self._buffer.popleft()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._ws is None and not self._reconnect(deadline):
                return None
            if self._buffer:  # what came with the reconnection: fresh snapshots, say
                return self._buffer.popleft()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            try:
                message = self._recv(left)
            except ConnectionClosed as closed:
                self._dropped(closed)
                continue
            received = self._receive(message) if message is not None else None
            if received is not None and received.deliver is not None:
                return received.deliver

    # -- plumbing -------------------------------------------------------------------------------
    def _connect(self, deadline: float | None) -> None:
        """Connect, authenticate and subscribe, by ``deadline`` (``None``: the usual limits,
        10 s to connect and 30 s per reply). On failure the connection is closed."""
        try:
            open_timeout = min(10.0, _left(deadline, 10.0))
            self._ws = connect(self.url, max_size=2**22, open_timeout=open_timeout, legacy=True)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as error:
            raise not_opened(self.url, error) from error
        try:
            for attempt in range(3):
                message, wait = self.core.auth()
                while wait:
                    if wait > _left(deadline, wait):
                        raise CfxError("TIMEOUT", "no time left to authenticate")
                    time.sleep(wait)
                    message, wait = self.core.auth()
                if message is None:
                    break
                try:
                    self._send(message)
                    self._reply(message, _deadline(deadline, 30.0))
                    break
                except CfxError as error:
                    if not signature_reused(error) or attempt == 2:
                        raise
            resubscribe = self.core.resubscribe()
            if resubscribe is not None:
                self._send(resubscribe)
                self._reply(resubscribe, _deadline(deadline, 30.0))
        except BaseException:
            # Refused or interrupted: no `with` block will close it. Within a deadline, do
            # not wait past it for the closing handshake of an exchange that does not answer.
            if deadline is not None:
                self._ws.close_timeout = max(0.0, deadline - time.monotonic())
            self._ws.close()
            raise

    def _reconnect(self, deadline: float | None) -> bool:
        """Reconnect after a drop, by ``deadline``: whether the feed is connected again.

        Attempts follow the backoff schedule (``reconnect_delay``) across calls: before the
        next one is due this sleeps, but not past ``deadline``; an attempt that is due is
        made, and may last until ``deadline`` or for :data:`RECONNECT_ATTEMPT_S`, whichever
        is later. ``retries`` failed attempts in a row raise ``ExchangeUnreachable``.
        """
        while self._ws is None:
            if self._reconnect_at is None:
                raise ExchangeUnreachable("DISCONNECTED", "the feed is not open: call open()")
            now = time.monotonic()
            if self._reconnect_at > now:  # not due yet: wait for it, within the deadline
                if deadline is not None and deadline <= now:
                    return False
                until = (
                    self._reconnect_at if deadline is None else min(self._reconnect_at, deadline)
                )
                time.sleep(until - now)
                continue
            attempt = None if deadline is None else max(deadline, now + RECONNECT_ATTEMPT_S)
            try:
                self._connect(attempt)
            except (ConnectionClosed, OSError, CfxError) as error:
                self._ws = None
                self._failures += 1
                self._reconnect_at = time.monotonic() + reconnect_delay(self._failures)
                if isinstance(error, CfxError) and not connect_again(error):
                    raise  # refused: a revoked key, say
                if self._failures >= self.retries:
                    self._failures = 0  # a later call starts over
                    raise ExchangeUnreachable(
                        "DISCONNECTED", f"could not reconnect to {self.url}"
                    ) from error
                continue
            self.reconnects += 1
            self._reconnect_at, self._failures = None, 0
        return True

    def _dropped(self, closed: ConnectionClosed) -> None:
        """The connection closed: books are unsynced, and reconnecting is scheduled."""
        if self._closed:
            raise feed_closed() from closed
        self.core.disconnected()
        if not self.reconnect:
            raise ExchangeUnreachable(
                "DISCONNECTED", "the websocket connection was closed"
            ) from closed
        self._ws = None
        self._failures = 0
        self._reconnect_at = time.monotonic() + reconnect_delay(0)

    def _send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        self._ws.send(orjson.dumps(message).decode())

    def _recv(self, timeout: float | None) -> dict[str, Any] | None:
        """One message, or ``None`` after ``timeout``; a closed connection raises."""
        assert self._ws is not None
        try:
            raw = self._ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        result: dict[str, Any] = orjson.loads(raw)
        return result

    def _receive(self, message: dict[str, Any]) -> Received:
        """Let the core take a message, and send what it asks (a book's resubscription)."""
        received = self.core.receive(message)
        for resend in received.resend:
            # Dropped: the next read says so, and reconnecting resubscribes every book.
            with contextlib.suppress(ConnectionClosed):
                self._send(resend)
        return received

    def _reply(self, message: dict[str, Any], deadline: float) -> dict[str, Any]:
        """Read until the reply to ``message``; keep what else arrives for iteration."""
        while (left := deadline - time.monotonic()) > 0:
            reply = self._recv(left)
            if reply is None:
                continue
            received = self._receive(reply)
            if received.deliver is not None:
                self._buffer.append(received.deliver)
            if received.reply_to == message["id"]:
                if reply.get("op") == "error":
                    raise reply_error(reply)
                return reply
        raise CfxError("TIMEOUT", f"no reply to {message['op']} in time")

    def _request(self, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """Send a request and wait for its reply, reconnecting (within ``timeout``) if the
        connection is or goes down."""
        if self._closed:
            raise feed_closed()
        deadline = time.monotonic() + timeout
        # An order sent again after a reconnect carries its client_order_id, so the exchange
        # will not take it twice (SENT_AGAIN); a (un)subscription is done by the
        # reconnection itself; an amend whose answer was lost may or may not have run.
        op = message["op"]
        sent_on: ClientConnection | None = None
        while True:
            if self._ws is None:
                if not self._reconnect(deadline):
                    if sent_on is None:
                        raise ExchangeUnreachable(
                            "DISCONNECTED", f"could not reconnect to {self.url} in {timeout} s"
                        )
                    raise CfxError("TIMEOUT", f"no reply to {op} in {timeout} s")
                if op in ("subscribe", "unsubscribe"):  # resubscribing sent this change too
                    return {"op": "ack", "id": message["id"]}
                if op not in SENT_AGAIN and sent_on is not None:
                    raise answer_lost(op)
            try:
                if sent_on is not self._ws:
                    sent_on = self._ws
                    self._send(message)
                return self._reply(message, deadline)
            except ConnectionClosed as closed:
                self._dropped(closed)


def _left(deadline: float | None, default: float) -> float:
    """Seconds until ``deadline`` (``default`` without one)."""
    return default if deadline is None else deadline - time.monotonic()


def _deadline(deadline: float | None, default: float) -> float:
    """``deadline``, or ``default`` seconds from now without one."""
    return time.monotonic() + default if deadline is None else deadline
