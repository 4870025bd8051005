"""Exceptions the SDK raises, each carrying the exchange's error code.

Every refusal from the exchange is a :class:`CfxError` whose ``code`` is the
``SNAKE_CASE_CODE`` of SPEC section 3 (``INSUFFICIENT_MARGIN``, ``UNKNOWN_SYMBOL``, ...),
so a bot can branch on ``err.code`` without parsing messages.
"""

from __future__ import annotations

from typing import Any

import orjson


class CfxError(Exception):
    """A request the exchange refused, or could not be reached for."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(
            f"{code}: {message}" if status is None else f"{code} ({status}): {message}"
        )
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.body = body


class ExchangeUnreachable(CfxError):
    """No answer from the URL: the server is down, the URL is wrong, or the network is."""


class OutcomeUnknown(ExchangeUnreachable):
    """The request went out and no answer came back: it may have been carried out.

    Raised once retries are spent on a request whose answer was lost (a timeout, a dropped
    connection). For a placement, ``client_order_id`` is the order's: place it again with
    that id and the exchange answers with the original order if it had arrived, so it
    never trades twice. Anything else: read the state and decide.
    """

    def __init__(self, code: str, message: str, client_order_id: str | None = None) -> None:
        super().__init__(code, message)
        self.client_order_id = client_order_id


class AuthenticationError(CfxError):
    """401: unknown key, wrong secret, a clock more than 30 s off, or a reused signature."""


class NotFound(CfxError):
    """404: no such order, delivery, symbol or product (or it belongs to another account)."""


class RateLimited(CfxError):
    """429: too many requests; ``retry_after`` says how many seconds to wait."""


class Rejected(CfxError):
    """Any other 4xx: the request was understood and refused; nothing changed."""


class ServerError(CfxError):
    """5xx: the exchange failed. It should never happen; retried where that is safe."""


def signature_reused(error: CfxError) -> bool:
    """Whether a request was refused only because an identical one (from another client
    with the same key) was signed in the same second: nothing changed, and the next second
    signs differently."""
    return error.code == "UNAUTHORIZED" and "already used" in error.message


def http_error(status: int, content: bytes, retry_after: str | None) -> CfxError:
    """The exception for an HTTP error response: its body (JSON, or else its text) and its
    ``Retry-After`` header."""
    try:
        body = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        body = content.decode(errors="replace")
    return error_for(status, body, float(retry_after) if retry_after else None)


def error_for(status: int, body: Any, retry_after: float | None = None) -> CfxError:
    """Build the exception for an HTTP error response (or a websocket ``error`` reply)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code, message = str(error.get("code", "ERROR")), str(error.get("message", ""))
    else:
        code, message = f"HTTP_{status}", str(body)[:500]
    cls: type[CfxError]
    if status == 401:
        cls = AuthenticationError
    elif status == 404:
        cls = NotFound
    elif status == 429:
        cls = RateLimited
    elif status >= 500:
        cls = ServerError
    else:
        cls = Rejected
    return cls(code, message, status, retry_after, body)
