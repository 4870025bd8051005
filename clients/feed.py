"""The websocket protocol of SPEC section 4, without the socket.

:class:`FeedCore` builds the messages a client sends (auth, subscribe, order entry), keeps
a :class:`~exchange.marketdata.client_book.LocalBook` per subscribed book, and decides what
to do with each message received: hand it to the user, answer a pending request, or, when a
book update shows a gap or a wrong checksum, resubscribe that book to get a fresh snapshot.
:class:`~clients.Feed` (blocking) and :class:`~clients.AsyncFeed` (asyncio) drive it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from websockets.exceptions import InvalidStatus

from clients import _core
from clients.errors import CfxError, ExchangeUnreachable, OutcomeUnknown, error_for, http_error
from exchange.gateway.auth import sign
from exchange.gateway.errors import STATUS
from exchange.marketdata.client_book import FeedError, LocalBook

_STATUS_BY_CODE = {reason.name: status for reason, status in STATUS.items()}
#: Messages that concern the connection, not the market: never handed to the user.
_QUIET = ("heartbeat",)
#: Seconds before a book resync the exchange refused (rate limited) is asked for again; the
#: next message received after that sends it (heartbeats come every few seconds).
RESYNC_RETRY_S = 1.0
#: The most seconds between two reconnection attempts (the backoff doubles up to it).
RECONNECT_MAX_DELAY_S = 5.0


def reconnect_delay(failures: int) -> float:
    """Seconds before the next reconnection attempt, after ``failures`` failed ones."""
    return min(0.2 * 2**failures, RECONNECT_MAX_DELAY_S)


#: The checksum of a book with no levels.
_EMPTY_CHECKSUM = LocalBook("").checksum()


def unsync(book: LocalBook) -> None:
    """Mark ``book`` unsynced and forget its levels: until its next snapshot it reads empty,
    so levels that may be stale never pass for current ones."""
    book.apply({"channel": "book", "type": "snapshot", "symbol": book.symbol, "sequence": 0,
                "bids": [], "asks": [], "checksum": _EMPTY_CHECKSUM})  # fmt: skip
    book.sequence = None


def ws_url(url: str) -> str:
    """The websocket address of an exchange given by its REST address."""
    if url.startswith(("ws://", "wss://")):
        return url if url.endswith("/v1/ws") else url.rstrip("/") + "/v1/ws"
    return url.rstrip("/").replace("https://", "wss://").replace("http://", "ws://") + "/v1/ws"


def reply_error(message: dict[str, Any]) -> CfxError:
    """The exception an ``{"op": "error"}`` reply stands for."""
    error = message.get("error") or {}
    return error_for(_STATUS_BY_CODE.get(str(error.get("code")), 400), message)


def not_opened(url: str, error: Exception) -> CfxError:
    """The error for a websocket connection that did not open: the exchange's own refusal
    of the handshake (``429 RATE_LIMITED``: too many connections from this address; ``503
    UNAVAILABLE``: it holds all it can) as that error, anything else as unreachable."""
    if isinstance(error, InvalidStatus):
        response = error.response
        if response.headers.get("Content-Type") == "application/json":
            return http_error(
                response.status_code,
                bytes(response.body or b""),
                response.headers.get("Retry-After"),
            )
    return _core.unreachable(url, error)


def feed_closed() -> CfxError:
    """The error for a request made on (or waiting on) a feed that was closed."""
    return CfxError("CLOSED", "the feed is closed: open a new one to send requests")


def connect_again(error: CfxError) -> bool:
    """Whether a failed reconnection is worth another attempt: the exchange is away, slow,
    or refused the connection for now (429, 503); not when it refused the feed itself (a
    revoked key, say)."""
    return (
        isinstance(error, ExchangeUnreachable)
        or error.code == "TIMEOUT"
        or error.status in (429, 503)
    )


#: Requests sent again when the connection drops before their answer: an order carries its
#: ``client_order_id``, and cancels and the dead man's switch come out the same twice. An
#: amend is not: its answer lost, it raises :class:`~clients.errors.OutcomeUnknown`.
SENT_AGAIN = frozenset({"place", "cancel", "cancel_all", "cancel_after"})


def answer_lost(op: str) -> OutcomeUnknown:
    """The error for a request not in :data:`SENT_AGAIN` whose connection dropped before its
    answer came."""
    return OutcomeUnknown(
        "DISCONNECTED", f"the connection dropped before the answer to {op}: it may have been "
        "carried out",
    )  # fmt: skip


@dataclass
class Received:
    """What to do with one message: deliver it, answer request ``reply_to``, send ``resend``."""

    deliver: dict[str, Any] | None = None
    reply_to: int | None = None
    resend: list[dict[str, Any]] = field(default_factory=list)


class FeedCore:
    """Subscriptions, local books and request ids of one logical feed (across reconnects)."""

    #: The second of the last ``auth`` per API key, shared by every feed of this process:
    #: the exchange takes one signature once, and two in the same second would be equal.
    last_auth_second: ClassVar[dict[str, int]] = {}

    def __init__(
        self, channels: Iterable[str] = (), key: str | None = None, secret: str | None = None
    ) -> None:
        self.channels: dict[str, None] = dict.fromkeys(channels)
        self.key = key
        self.secret = secret
        self.books: dict[str, LocalBook] = {}
        self.resyncs = 0  #: books resubscribed after a gap or a checksum mismatch
        self._resyncing: set[str] = set()
        self._resync_requests: dict[int, str] = {}  # request id -> the book it resyncs
        self._resync_due: dict[str, float] = {}  # book -> when to ask again (refused)
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    # -- what a client sends --------------------------------------------------------------------
    def auth(self) -> tuple[dict[str, Any] | None, float]:
        """The ``auth`` message, or a delay: one signature per second is all the exchange takes."""
        if not (self.key and self.secret):
            return None, 0.0
        now = time.time()
        if int(now) <= self.last_auth_second.get(self.key, -1):
            return None, int(now) + 1 - now + 0.001
        self.last_auth_second[self.key] = int(now)
        timestamp = str(int(now))
        return {
            "op": "auth",
            "id": self.next_id(),
            "key": self.key,
            "timestamp": timestamp,
            "signature": sign(self.secret, timestamp, "GET", "/v1/ws", b""),
        }, 0.0

    def subscribe(self, channels: Iterable[str]) -> dict[str, Any]:
        channels = list(channels)
        for channel in channels:
            self.channels[channel] = None
            name, _, symbol = channel.partition(":")
            if name == "book":
                self.books.setdefault(symbol, LocalBook(symbol))
        return {"op": "subscribe", "id": self.next_id(), "channels": channels}

    def unsubscribe(self, channels: Iterable[str]) -> dict[str, Any]:
        channels = list(channels)
        for channel in channels:
            self.channels.pop(channel, None)
            name, _, symbol = channel.partition(":")
            if name == "book":
                self.books.pop(symbol, None)
        return {"op": "unsubscribe", "id": self.next_id(), "channels": channels}

    def disconnected(self) -> None:
        """The connection dropped: every book is unsynced (and empty) until its snapshot."""
        for book in self.books.values():
            unsync(book)
        self._resyncing.clear()
        self._resync_requests.clear()
        self._resync_due.clear()

    def resubscribe(self) -> dict[str, Any] | None:
        """After a reconnect: every channel again (books start over from a snapshot)."""
        self.disconnected()
        return self.subscribe(list(self.channels)) if self.channels else None

    def place(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"op": "place", "id": self.next_id(), **body}

    def cancel(self, order_id: int) -> dict[str, Any]:
        return {"op": "cancel", "id": self.next_id(), "order_id": order_id}

    def amend(self, order_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return {"op": "amend", "id": self.next_id(), "order_id": order_id, **body}

    def cancel_all(self, symbol: str | None = None) -> dict[str, Any]:
        message = {"op": "cancel_all", "id": self.next_id()}
        return message if symbol is None else message | {"symbol": symbol}

    def cancel_after(self, timeout_s: int) -> dict[str, Any]:
        return {"op": "cancel_after", "id": self.next_id(), "timeout_s": timeout_s}

    # -- what a client receives -----------------------------------------------------------------
    def receive(self, message: dict[str, Any], now: float | None = None) -> Received:
        received = self._receive(message, time.monotonic() if now is None else now)
        if self._resync_due:  # books whose resync was refused (rate limited): ask again
            now = time.monotonic() if now is None else now
            for symbol, due in list(self._resync_due.items()):
                if due <= now:
                    del self._resync_due[symbol]
                    received.resend.append(self._resync(symbol))
        return received

    def _receive(self, message: dict[str, Any], now: float) -> Received:
        op = message.get("op")
        if op in ("ack", "error", "pong"):
            request = message.get("id")
            symbol = self._resync_requests.pop(request, None) if isinstance(request, int) else None
            if symbol is not None:  # the answer to a resync: not the user's
                if op == "error" and symbol in self._resyncing:
                    self._resync_due[symbol] = now + RESYNC_RETRY_S
                return Received()
            return Received(reply_to=request if isinstance(request, int) else None)
        channel = message.get("channel")
        if channel in _QUIET:
            return Received()
        if channel == "book":
            return self._book(message)
        return Received(deliver=message)

    def _resync(self, symbol: str) -> dict[str, Any]:
        """Subscribe to a book again: the exchange answers with a fresh snapshot."""
        request_id = self.next_id()
        self._resync_requests[request_id] = symbol
        return {"op": "subscribe", "id": request_id, "channels": [f"book:{symbol}"]}

    def _book(self, message: dict[str, Any]) -> Received:
        symbol = str(message.get("symbol"))
        book = self.books.get(symbol)
        if book is None:
            return Received(deliver=message)
        if message.get("type") == "snapshot":
            self._resyncing.discard(symbol)
        elif symbol in self._resyncing:
            return Received()  # updates before the fresh snapshot: ignore them
        try:
            book.apply(message)
        except FeedError:
            unsync(book)  # the levels no longer follow the feed: none until the snapshot
            self.resyncs += 1
            self._resyncing.add(symbol)
            return Received(resend=[self._resync(symbol)])
        return Received(deliver=message)
