"""Refusals made below the API, by the HTTP server and the websocket handshake, written as
the API's own errors: ``{"error": {"code", "message"}}`` with a 4xx.

uvicorn answers a request that is not HTTP/1.1 (a malformed request line or header, a
``Content-Length`` given twice, broken chunking) with a plain-text 400 before the app sees
it, and the websockets library refuses a handshake that is not one in plain text too (a
missing ``Sec-WebSocket-Key``, a POST, a header over its limit). :class:`JsonHttpToolsProtocol`
and :class:`JsonHandshake` keep their statuses and give the body a code.

uvicorn also waits for a request for as long as a client cares to send it: a connection
that sends nothing, or trickles its headers or body, holds a socket (and one of the
process's file descriptors) for good, and enough of them lock everyone out.
:class:`JsonHttpToolsProtocol` gives each request :data:`REQUEST_TIMEOUT_S` to arrive whole.
"""

from __future__ import annotations

import asyncio
import http
from typing import Final

import orjson
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from websockets.http11 import Response
from websockets.server import ServerProtocol
from websockets.typing import StatusLike

from exchange.gateway.errors import error_body
from exchange.reasons import Reason

#: The message of a request uvicorn could not parse (its parser does not say more).
NOT_HTTP: Final = (
    "the request is not valid HTTP/1.1 (a malformed request line or header, a bad "
    "Content-Length or chunk): it was not read, and the connection is closed"
)


#: Seconds a request has to arrive whole (request line, headers and body), counted from
#: the connection (for its first request) or from the request's first byte (for the next
#: ones; between requests, uvicorn's keep-alive timeout applies).
REQUEST_TIMEOUT_S: Final = 10.0
#: The message of a request that did not arrive in time.
TOO_SLOW: Final = (
    f"the request did not arrive whole within {REQUEST_TIMEOUT_S:g} s: the connection is closed"
)


class JsonHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; a request it cannot parse gets a JSON 400, and one that
    takes longer than :data:`REQUEST_TIMEOUT_S` to arrive a JSON 408 (a connection that sends
    nothing in that time is closed without a word, as uvicorn closes an idle keep-alive one)."""

    #: Closes the connection unless the request being read has arrived whole by then.
    _request_timer: asyncio.TimerHandle | None = None
    #: The request being read, once its headers are in (its answer may have begun).
    _reading: RequestResponseCycle | None = None
    #: Whether a request has begun on this connection (a first one that has not is not
    #: answered: a client could take a 408 it did not ask for as the answer to its next).
    _begun = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._request_arrived()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = True
        self._reading = None
        self._expect_request()

    def on_message_complete(self) -> None:
        self._request_arrived()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._request_arrived()  # the websocket's protocol owns the connection from here
        super().handle_websocket_upgrade()

    def _expect_request(self) -> None:
        if self._request_timer is None:
            self._request_timer = self.loop.call_later(REQUEST_TIMEOUT_S, self._too_slow)

    def _request_arrived(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def _too_slow(self) -> None:
        self._request_timer = None
        if self.transport.is_closing():
            return
        if self._begun and self._may_answer():
            self._send_error(408, Reason.REQUEST_TIMEOUT, TOO_SLOW)
        self.transport.close()

    def _may_answer(self) -> bool:
        """Whether an answer may be written now: none is under way (pipelined requests
        included), and the request being read has had none."""
        cycle = self.cycle
        if self.pipeline or (cycle and cycle.response_started and not cycle.response_complete):
            return False
        return self._reading is None or not self._reading.response_started

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._reading = self.cycle

    def send_400_response(self, msg: str) -> None:
        self._send_error(400, Reason.INVALID_REQUEST, NOT_HTTP)
        self.transport.close()

    def _send_error(self, status: int, reason: Reason, message: str) -> None:
        body = orjson.dumps(error_body(reason, message))
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n",
            b"\r\n",
            body,
        ])  # fmt: skip
        self.transport.write(b"".join(content))


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
