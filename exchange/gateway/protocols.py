"""Refusals made below the API, by the HTTP server and the websocket handshake, written as
the API's own errors: ``{"error": {"code", "message"}}`` with a 4xx.

uvicorn answers a request that is not HTTP/1.1 (a malformed request line or header, a
``Content-Length`` given twice, broken chunking) with a plain-text 400 before the app sees
it, and the websockets library refuses a handshake that is not one in plain text too (a
missing ``Sec-WebSocket-Key``, a POST, a header over its limit). :class:`JsonHttpToolsProtocol`
and :class:`JsonHandshake` keep their statuses and give the body a code.

uvicorn also waits for a request for as long as a client cares to send it: a connection
that sends nothing, or trickles its headers or body, holds a socket (and one of the
process's file descriptors) for good, and enough of them lock everyone out; and it takes
a head of any size (httptools sets no limit). :class:`JsonHttpToolsProtocol` refuses a head
past :data:`MAX_TARGET`, :data:`MAX_HEADER_LINE`, :data:`MAX_HEADERS` or :data:`MAX_HEAD`.
:class:`JsonHttpToolsProtocol` gives each request :data:`REQUEST_TIMEOUT_S` to arrive whole,
and with :class:`ConnectionLimits` caps the connections (REST and websocket alike) one
client address may hold, and all of them together, below what the process can open: the
journal, its snapshots and the ledger always find a file descriptor. :class:`ClientWarnings`
keeps the warnings uvicorn logs for such requests to a line a minute, and
:class:`StalledWrites` resets the connections whose client reads nothing of their answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import http
import logging
import resource
import socket
import struct
import sys
import termios
import time
from collections.abc import Callable
from typing import Any, ClassVar, Final

import orjson
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from websockets.http11 import Response
from websockets.server import ServerProtocol
from websockets.typing import StatusLike

from exchange.gateway.errors import ApiError, error_body
from exchange.gateway.ratelimit import address_of
from exchange.reasons import Reason

#: The message of a request uvicorn could not parse (its parser does not say more).
NOT_HTTP: Final = (
    "the request is not valid HTTP/1.1 (a malformed request line or header, a bad "
    "Content-Length or chunk): it was not read, and the connection is closed"
)


#: Seconds a request has to arrive whole (request line, headers and body), counted from
#: the connection (for its first request) or from the request's first byte (for the next
#: ones; between requests, uvicorn's keep-alive timeout applies). A request that comes while
#: an earlier one is still being answered (pipelined) has them from when that answer is done:
#: until then the server does not read it.
REQUEST_TIMEOUT_S: Final = 10.0
#: The message of a request that did not arrive in time.
TOO_SLOW: Final = (
    f"the request did not arrive whole within {REQUEST_TIMEOUT_S:g} s: the connection is closed"
)


#: The longest request target (path and query) a request may send: 414 beyond it.
MAX_TARGET: Final = 8192
#: The longest header line (name and value) a request may send...
MAX_HEADER_LINE: Final = 8192
#: ... how many headers...
MAX_HEADERS: Final = 128
#: ... and how long its whole head (request line and headers) may be: 431 beyond any.
MAX_HEAD: Final = 65536


#: The messages of a request whose head runs past those limits.
TOO_LONG_TARGET: Final = f"the request target is longer than {MAX_TARGET} bytes"
TOO_LARGE_HEAD: Final = (
    f"the request's headers are too large: at most {MAX_HEADERS} headers of up to "
    f"{MAX_HEADER_LINE} bytes each, {MAX_HEAD} bytes in all"
)


#: Open connections one client address may hold, REST and websocket together (``cfx serve
#: --connections-per-address``; 0 for no limit: behind a proxy every client is its address).
CONNECTIONS_PER_ADDRESS: Final = 1000
#: File descriptors no client connection may take: the journal's segments and snapshots,
#: the ledger's database, the pipes to helper processes.
RESERVED_FDS: Final = 256
#: Seconds a refused connection's request is read and dropped after the refusal.
REFUSAL_LINGER_S: Final = 1.0
#: What a connection refused for now is told: try again in a second.
RETRY_AFTER: Final = {"retry-after": "1"}


def raise_open_file_limit() -> int:
    """Raise this process's limit of open files to the most it may have; return it.

    An unlimited hard limit (macOS) still caps what one process may open: 10,240 there.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    tries = [hard] if hard != resource.RLIM_INFINITY else [1 << 20, 10_240]
    for wanted in tries:
        if wanted <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):  # not allowed here: try less, or keep what there is
            continue
        return wanted
    return soft


#: Seconds between two log lines of the same warning a client's request causes (below).
CLIENT_WARNING_EVERY_S: Final = 60.0


class ClientWarnings(logging.Filter):
    """Lets through one of each warning a client can cause with every request (uvicorn's
    "Invalid HTTP request received." for a request it cannot parse, "Unsupported upgrade
    request." for an ``Upgrade`` it does not serve) per :data:`CLIENT_WARNING_EVERY_S`; the
    next one let through says how many were left out meanwhile. Without it, anyone who
    can reach the port writes a line to the exchange's log per request, as fast as they
    like. Every other record passes as it is."""

    MESSAGES: ClassVar[frozenset[str]] = frozenset(
        {"Invalid HTTP request received.", "Unsupported upgrade request."}
    )

    def __init__(self, every_s: float = CLIENT_WARNING_EVERY_S) -> None:
        super().__init__()
        self.every_s = every_s
        #: message -> (when it was last let through, how many were left out since)
        self._last: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg
        if not isinstance(message, str) or message not in self.MESSAGES or record.args:
            return True
        now = time.monotonic()
        last = self._last.get(message)
        if last is not None and now - last[0] < self.every_s:
            self._last[message] = (last[0], last[1] + 1)
            return False
        self._last[message] = (now, 0)
        if last is not None and last[1]:
            record.msg = (
                f"{message} ({last[1]} more since the last of these, "
                f"{now - last[0]:.0f} s ago, not logged)"
            )
        return True

    @classmethod
    def install(cls, logger: str = "uvicorn.error") -> ClientWarnings:
        """Filter ``logger``'s records (uvicorn's) through one of these; return it."""
        found = next((f for f in logging.getLogger(logger).filters if isinstance(f, cls)), None)
        if found is not None:
            return found
        instance = cls()
        logging.getLogger(logger).addFilter(instance)
        return instance


#: Seconds a connection may hold answers its client takes none of (bytes waiting to be
#: sent, in the server or the kernel, with none taken since): it is then cut (reset).
WRITE_STALL_S: Final = 10.0
#: Seconds a connection the server has closed may take to send what it still holds.
CLOSING_GRACE_S: Final = 5.0
#: How often :class:`StalledWrites` looks.
STALL_CHECK_S: Final = 1.0


#: Where Linux's ``struct tcp_info`` keeps ``tcpi_bytes_acked`` (since 4.1), and its size.
_BYTES_ACKED = struct.Struct("=Q")
_BYTES_ACKED_AT = 120


def _unsent(transport: Any) -> int:
    """Bytes the transport still has to send: what the server holds and, on Linux, what the
    kernel holds (``SIOCOUTQ``)."""
    unsent: int = transport.get_write_buffer_size()
    try:
        sock = transport.get_extra_info("socket")
        kernel = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, bytes(4))  # SIOCOUTQ
    except (AttributeError, OSError, ValueError):  # not Linux, not TCP, or closed meanwhile
        return unsent
    return unsent + int.from_bytes(kernel, sys.byteorder)


def _acked(transport: Any) -> int | None:
    """The bytes the client has acknowledged so far (Linux's ``tcpi_bytes_acked``), or
    ``None`` where the kernel does not say."""
    try:
        raw = transport.get_extra_info("socket").getsockopt(
            socket.IPPROTO_TCP, socket.TCP_INFO, 256
        )
    except (AttributeError, OSError, ValueError):
        return None
    if len(raw) < _BYTES_ACKED_AT + _BYTES_ACKED.size:
        return None
    return int(_BYTES_ACKED.unpack_from(raw, _BYTES_ACKED_AT)[0])


#: ``SO_LINGER`` on, for 0 seconds: closing then resets the connection and drops what the
#: kernel still holds for it, rather than keeping it (and trying to send it) for minutes.
_RESET = struct.pack("ii", 1, 0)


class StalledWrites:
    """Cuts the connections whose client has stopped reading.

    An answer (or a feed) to a client that reads nothing fills the kernel's send buffer
    (megabytes, per connection) and then the server's, and no timeout applies: uvicorn
    waits for it to be sent before the next pipelined request, and closing a connection
    waits for what it holds to be sent, for good. So any client could hold gigabytes of
    memory with a few hundred connections that never read. Every :data:`STALL_CHECK_S` this
    looks at each open connection: one that has held unsent bytes for :data:`WRITE_STALL_S`
    (:data:`CLOSING_GRACE_S` once the server has closed it) with none of them taken in the
    meantime is reset, and what it held is freed at once. Taken means acknowledged by the
    client's kernel (Linux's ``tcpi_bytes_acked``); where the kernel does not say, a change
    in what the server holds counts instead.
    """

    def __init__(self, connections: set[Any], loop: asyncio.AbstractEventLoop) -> None:
        self.connections = connections  #: uvicorn's server state's: every protocol open
        self.loop = loop
        #: connection -> (since when it has held bytes and taken none, the count that
        #: moves as it takes them: the bytes it took, or what it still holds)
        self._held: dict[Any, tuple[float, int]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.cut = 0  #: connections reset so far

    def start(self) -> StalledWrites:
        self._timer = self.loop.call_later(STALL_CHECK_S, self.check)
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def check(self) -> None:
        try:
            self._check()
        except Exception:  # a surprise in one connection must not end the checks for all
            logging.getLogger("cfx").exception("checking for stalled connections failed")
        finally:
            self._timer = self.loop.call_later(STALL_CHECK_S, self.check)

    def _check(self) -> None:
        now = self.loop.time()
        held: dict[Any, tuple[float, int]] = {}
        for protocol in list(self.connections):
            transport = getattr(protocol, "transport", None)
            if transport is None:
                continue
            unsent = _unsent(transport)
            if not unsent:
                continue
            taken = _acked(transport)
            mark = unsent if taken is None else taken
            since, before = self._held.get(protocol, (now, mark))
            if mark != before:  # some was taken: it reads, however slowly
                since = now
            if now - since >= (CLOSING_GRACE_S if transport.is_closing() else WRITE_STALL_S):
                self._cut(transport)
            else:
                held[protocol] = (since, mark)
        self._held = held

    def _cut(self, transport: Any) -> None:
        self.cut += 1
        with contextlib.suppress(AttributeError, OSError):
            transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, _RESET
            )
        transport.abort()


class ConnectionLimits:
    """A server's open connections, per client address and in all, against their limits.

    ``open`` counts every connection that holds a file descriptor: those served, and those
    whose refusal (429) is being written while the rest of their request is read and
    dropped; ``by_address`` the ones served.
    """

    def __init__(self, per_address: int = CONNECTIONS_PER_ADDRESS, total: int = 0) -> None:
        self.per_address = per_address
        #: All connections together; 0: what the open-file limit leaves after RESERVED_FDS.
        self.total = total or max(64, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - RESERVED_FDS)
        self.open = 0
        self.by_address: dict[str, int] = {}

    def full(self) -> ApiError | None:
        """Why no connection more may hold a descriptor (close a new one at once), if so."""
        if self.open < self.total:
            return None
        return ApiError(Reason.UNAVAILABLE, f"the exchange holds all the connections it can "
                        f"({self.total}): try again later", RETRY_AFTER)  # fmt: skip

    def take(self, address: str) -> ApiError | None:
        """Count one more connection from ``address`` (until :meth:`release`): ``None`` if it
        is served, else its refusal, for the address's share is taken (it is counted in
        :attr:`open` only)."""
        self.open += 1
        held = self.by_address.get(address, 0)
        if self.per_address and held >= self.per_address:
            return ApiError(Reason.RATE_LIMITED, f"at most {self.per_address} open connections "
                            f"from one address ({address}): close one first", RETRY_AFTER)  # fmt: skip
        self.by_address[address] = held + 1
        return None

    def release(self, address: str | None) -> None:
        """A counted connection is gone; ``address``: the one it was served under."""
        self.open -= 1
        if address is not None:
            held = self.by_address[address] - 1
            if held:
                self.by_address[address] = held
            else:
                del self.by_address[address]


class JsonHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; a request it cannot parse gets a JSON 400, and one that
    takes longer than :data:`REQUEST_TIMEOUT_S` to arrive a JSON 408 (a connection that sends
    nothing in that time is closed without a word, as uvicorn closes an idle keep-alive one)."""

    #: This server's connection limits (:meth:`limited` sets them); None: no limits.
    limits: ClassVar[ConnectionLimits | None] = None
    #: Whether this connection is counted in ``limits.open`` (until it is released)...
    _taken = False
    #: ... and the client address it is served under.
    _counted: str | None = None
    #: Why this connection is refused: its request's answer.
    _refusal: ApiError | None = None
    #: Set once the refusal is written: what the client still sends is dropped.
    _refused = False
    #: Closes the connection unless the request being read has arrived whole by then (set
    #: only once a read leaves a request unfinished: most arrive whole in one read); for a
    #: refused connection, ends it if its client does not.
    _request_timer: asyncio.TimerHandle | None = None
    #: Whether a request has begun and not yet arrived whole (a connection silent since it
    #: opened is closed without an answer: a client could take a 408 it did not ask for as
    #: the answer to its next request).
    _in_request = False
    #: When the request being read began (the event loop's clock).
    _began_at = 0.0
    #: The request being read, once its headers are in (its answer may have begun)...
    _reading: RequestResponseCycle | None = None
    #: ... and the one whose answer was begun last (before those pipelined behind it).
    _answered: RequestResponseCycle | None = None
    #: The head of the request being read so far: its target and header lines, counted
    #: as the parser hands them on (-1: no head is being read), its target and headers...
    _head = -1
    _target = 0
    _header_count = 0
    #: ... and the bytes the parser holds back: it keeps a header line to itself until the
    #: line ends, so a head of one endless line is cut by this count. It is what was read
    #: less what the parser handed on (target, header lines, body, and the request lines and
    #: blank lines around them), read by read.
    _held = 0
    #: What the parser handed on from the read being parsed.
    _handed = 0
    #: Why the head being read is refused, with its status, once it is (answered when the
    #: read is parsed)...
    _oversized: tuple[ApiError, int] | None = None
    #: ... and that refusal with its status, while an earlier request is still answered.
    _deferred: tuple[ApiError, int | None] | None = None

    @classmethod
    def limited(cls, limits: ConnectionLimits) -> type[JsonHttpToolsProtocol]:
        """This protocol, counting its connections against ``limits``."""
        return type(cls.__name__, (cls,), {"limits": limits})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limits = self.limits
        if limits is not None:
            full = limits.full()
            if full is not None:  # no descriptor to spare, not even to read the request
                self._send_error(full)
                self.transport.close()
                return
            address = address_of(self.client[0]) if self.client else ""
            self._taken = True
            self._refusal = limits.take(address)
            if self._refusal is not None:  # its request's head has a moment to come
                self._request_timer = self.loop.call_later(REFUSAL_LINGER_S, self.transport.abort)
                return
            self._counted = address
        self._request_timer = self.loop.call_later(REQUEST_TIMEOUT_S, self._too_slow)

    def _refuse(self, refusal: ApiError, status: int | None = None) -> None:
        """Answer the request whose head has come, then drop what follows: closing with
        part of it unread would reset the connection, and the client lose the answer."""
        self._refused = True
        self._request_arrived()
        self._send_error(refusal, status)
        self._request_timer = self.loop.call_later(REFUSAL_LINGER_S, self.transport.abort)
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the client's EOF then closes the transport

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._handed = 0
        super().data_received(data)
        if self._refused:  # answered while the read was parsed
            return
        if self._head < 0:  # no head is being read: the parser holds nothing back
            self._held = 0
        elif self._oversized is None:
            self._held = max(0, self._held + len(data) - self._handed)
            if self._head + self._held > MAX_HEAD:
                self._oversized = (ApiError(Reason.PAYLOAD_TOO_LARGE, TOO_LARGE_HEAD), 431)
        if self._oversized is not None:
            self._refuse_head(*self._oversized)
        elif self._in_request and self._request_timer is None:
            self._expect_rest()

    def _refuse_head(self, refusal: ApiError, status: int | None) -> None:
        """Answer a request whose head runs past a limit (:data:`MAX_HEAD` and the rest):
        its status is 414 or 431, not the table's 413 for bodies (a connection refused for
        its address answers with that refusal). Nothing more is read, and the connection is
        closed after the answer, which waits for the answers to requests before it."""
        self._head, self._held = -1, 0
        self._refused = True
        if self._refusal is not None:
            refusal, status = self._refusal, None
        if self._answering():
            self._deferred = (refusal, status)  # on_response_complete answers it
            return
        self._refuse(refusal, status)

    def on_url(self, url: bytes) -> None:
        self._handed += len(url)
        if self._oversized is not None:
            return
        self._head += len(url)
        self._target += len(url)
        if self._target > MAX_TARGET:
            self._oversized = (ApiError(Reason.PAYLOAD_TOO_LARGE, TOO_LONG_TARGET), 414)
        elif self._refusal is None:  # a refused connection's request is not kept
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        line = len(name) + len(value) + 4  # ": " and CRLF
        self._handed += line
        if self._oversized is not None:
            return
        self._head += line
        self._header_count += 1
        if line > MAX_HEADER_LINE or self._header_count > MAX_HEADERS or self._head > MAX_HEAD:
            self._oversized = (ApiError(Reason.PAYLOAD_TOO_LARGE, TOO_LARGE_HEAD), 431)
        elif self._refusal is None:
            super().on_header(name, value)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self._answered = cycle
        super()._start_asgi_task(cycle, app)

    def connection_lost(self, exc: Exception | None) -> None:
        self._request_arrived()
        self._release()
        answered = self._answered
        if answered is not None and answered is not self.cycle and not answered.response_complete:
            # uvicorn tells only the last request read (``cycle``) that its client is gone;
            # with requests pipelined behind it, the one being answered would write to the
            # closed transport (an exception in the log, not a word to anyone)
            answered.disconnected = True
            answered.message_event.set()
        super().connection_lost(exc)

    def _release(self) -> None:
        if self._taken:
            assert self.limits is not None
            self._taken = False
            self.limits.release(self._counted)
            self._counted = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head, self._target, self._header_count = 0, 0, 0
        if self._refusal is not None:
            return  # the refusal answers the first request; what follows goes unread
        self._in_request = True
        self._began_at = self.loop.time()
        self._reading = None

    def on_body(self, body: bytes) -> None:
        self._handed += len(body)
        if self._refusal is None and self._oversized is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refusal is None and self._oversized is None:
            self._in_request = False
            self._request_arrived()
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._deferred is not None:
            if not self._answering():
                refusal, status = self._deferred
                self._deferred = None
                self._refuse(refusal, status)
            return
        if self._in_request and self._request_timer is None and not self._answering():
            # the next request is partly in: not an idle connection for uvicorn's keep-alive
            # timeout to close, but one whose request is timed, from now (REQUEST_TIMEOUT_S)
            self._unset_keepalive_if_required()
            self._began_at = self.loop.time()
            self._expect_rest()

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing() and _unsent(self.transport):
            # the client has not taken all of the last answer: closed now, the kernel would
            # go on holding (and trying to send) the rest for minutes, out of sight; kept
            # open, the connection is closed once it is taken, or reset by StalledWrites
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
            return
        super().timeout_keep_alive_handler()

    def handle_websocket_upgrade(self) -> None:
        if self._refusal is not None or self._oversized is not None:
            return  # answered with the refusal
        self._request_arrived()  # the websocket's protocol owns the connection from here
        super().handle_websocket_upgrade()
        protocol = self.transport.get_protocol()  # from here the one told of a lost connection
        if isinstance(protocol, CountedWebSocket):
            protocol.on_lost = self._release  # the connection stays counted while it is open
        else:
            self._release()

    def _expect_rest(self) -> None:
        """Time the unfinished request, unless an earlier one is still being answered (the
        server reads no more of it until then: :meth:`on_response_complete` starts it)."""
        if not self._answering():
            self._request_timer = self.loop.call_at(
                self._began_at + REQUEST_TIMEOUT_S, self._too_slow
            )

    def _answering(self) -> bool:
        """Whether a request before the one being read is still being answered."""
        cycle = self.cycle
        return bool(self.pipeline) or (
            cycle is not None and cycle is not self._reading and not cycle.response_complete
        )

    def _request_arrived(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def _too_slow(self) -> None:
        self._request_timer = None
        if self.transport.is_closing():
            return
        # (never while an earlier request is answered: the timer waits for that answer)
        answered = self._reading is not None and self._reading.response_started
        if self._in_request and not answered:
            self._send_error(ApiError(Reason.REQUEST_TIMEOUT, TOO_SLOW))
        self.transport.close()

    def on_headers_complete(self) -> None:
        # the request line around the target, and the blank line that ends the head
        self._handed += len(self.parser.get_method()) + len(" HTTP/1.1\r\n\r\n") + 1
        if self._refusal is not None:
            self._head, self._held = -1, 0
            if not self._refused:
                self._refuse(self._refusal)
            return
        if self._oversized is not None:
            return  # answered once the parser is done with this read
        self._head, self._held = -1, 0
        super().on_headers_complete()
        self._reading = self.cycle

    def send_400_response(self, msg: str) -> None:
        if self._refused or self._oversized is not None:
            return  # answered already, or about to be; the rest, however malformed, goes unread
        refusal = ApiError(Reason.INVALID_REQUEST, NOT_HTTP)
        if self._answering():  # answered after the requests before it, as a head too large
            self._refused = True
            self._deferred = (refusal, None)
            return
        self._send_error(refusal)
        self.transport.close()

    def _unsupported_upgrade_warning(self) -> None:
        if self._refusal is None and self._oversized is None:  # else its headers were not kept
            super()._unsupported_upgrade_warning()

    def _send_error(self, error: ApiError, status: int | None = None) -> None:
        """Write ``error`` as the answer, with its status unless ``status`` says another."""
        body = orjson.dumps(error.body())
        content = [STATUS_LINE[status or error.status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        for header, text in error.headers.items():
            content.extend([header.encode("latin-1"), b": ", text.encode("latin-1"), b"\r\n"])
        content.extend([
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n",
            b"\r\n",
            body,
        ])  # fmt: skip
        self.transport.write(b"".join(content))


class CountedWebSocket:
    """A websocket protocol that calls :attr:`on_lost` once its connection is gone (so an
    upgraded connection stays counted by :class:`ConnectionLimits` while it is open)."""

    on_lost: Callable[[], None] | None = None

    def lost(self) -> None:
        on_lost, self.on_lost = self.on_lost, None
        if on_lost is not None:
            on_lost()


class JsonHandshake(ServerProtocol):
    """websockets' server side of the handshake; every refusal it makes is a JSON error.

    Statuses are kept (405 still names ``Allow: GET``, 426 ``Upgrade``); uvicorn's 403 for
    a path with no websocket says where the websocket is. A 5xx (a failure of the server's
    own; websockets' 505 for an HTTP version is not reached under uvicorn, which hands on
    the request line as HTTP/1.1) is left as it is.
    """

    def reject(self, status: StatusLike, text: str) -> Response:
        status = http.HTTPStatus(status)
        if status >= 500:
            return super().reject(status, text)
        reason = {
            http.HTTPStatus.FORBIDDEN: Reason.FORBIDDEN,
            http.HTTPStatus.REQUEST_URI_TOO_LONG: Reason.PAYLOAD_TOO_LARGE,
            http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: Reason.PAYLOAD_TOO_LARGE,
        }.get(status, Reason.INVALID_REQUEST)
        message = text.strip().split("\n", 1)[0] or (
            "no websocket at this path: the exchange's is /v1/ws"
            if status == http.HTTPStatus.FORBIDDEN
            else status.phrase
        )
        response = super().reject(status, "")
        response.body = orjson.dumps(error_body(reason, message))
        headers = response.headers
        del headers["Content-Type"], headers["Content-Length"]  # a set header adds a value
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(response.body))
        return response
