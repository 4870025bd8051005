"""Refusals made below the API, by the HTTP server and the websocket handshake, written as
the API's own errors: ``{"error": {"code", "message"}}`` with a 4xx.

uvicorn answers a request that is not HTTP/1.1 (a malformed request line or header, a
``Content-Length`` given twice, broken chunking) with a plain-text 400 before the app sees
it, and the websockets library refuses a handshake that is not one in plain text too (a
missing ``Sec-WebSocket-Key``, a POST, a header over its limit). :class:`JsonHttpToolsProtocol`
and :class:`JsonHandshake` keep their statuses and give the body a code.
"""

from __future__ import annotations

import http
from typing import Final

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
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


class JsonHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; a request it cannot parse gets a JSON 400."""

    def send_400_response(self, msg: str) -> None:
        body = orjson.dumps(error_body(Reason.INVALID_REQUEST, NOT_HTTP))
        content = [STATUS_LINE[400]]
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
        self.transport.close()


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
