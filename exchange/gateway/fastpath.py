"""The two hottest REST requests, placing and cancelling an order, served below the router.

FastAPI's routing, dependency solving and model validation cost about as much CPU per order
as everything the exchange does with it. This ASGI-level path serves ``POST /v1/orders``
and ``DELETE /v1/orders/{order_id}`` with the same parts the routes use: the same
:func:`~exchange.gateway.app.authenticate`, the same service calls, and for the order body
:func:`~exchange.gateway.models.parse_place`, which ``tests/gateway/test_models.py`` holds
to judging every body as :class:`~exchange.gateway.models.PlaceOrder` does and to giving
the same command.

It takes a request only once it can tell the body and path are valid. Anything else (a query
string, another content type, JSON that does not parse or that the order check refuses, an
id out of range) goes on to the FastAPI route untouched, body replayed, before anything has
been counted or changed: every refusal of that kind is the route's own, word for word. From
authentication on the answers are the route's too, since they come from the same calls
raising the same :class:`~exchange.gateway.errors.ApiError`. The routes stay where the
OpenAPI document describes these endpoints.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from exchange.gateway.errors import ApiError
from exchange.gateway.models import MAX_ID, parse_place
from exchange.sequencer.state import Refused

if TYPE_CHECKING:
    from exchange.service import ExchangeService

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_ORDER_PATH = re.compile(r"/v1/orders/([1-9][0-9]{0,18})")
_JSON = (b"content-type", b"application/json")


def _wants(scope: dict[str, Any]) -> tuple[str, int | None] | None:
    """``("place", None)`` or ``("cancel", id)`` for a request this path may take."""
    if scope.get("query_string"):
        return None
    method, path = scope["method"], scope["path"]
    raw = scope.get("raw_path")
    if raw is not None and raw != path.encode():  # percent-encoded: the routes'
        return None
    if method == "POST" and path == "/v1/orders":
        for name, value in scope["headers"]:
            if name == b"content-type":
                kind = value.split(b";", 1)[0].strip().lower()
                return ("place", None) if kind == b"application/json" else None
        return None
    if method == "DELETE":
        match = _ORDER_PATH.fullmatch(path)
        if match and int(match.group(1)) <= MAX_ID:
            return "cancel", int(match.group(1))
    return None


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, list[dict[str, Any]]]:
    """The whole body (None past ``limit`` bytes or on a disconnect) and its messages."""
    messages = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages
        size += len(message.get("body", b""))
        if size > limit:
            return None, messages
        if not message.get("more_body", False):
            return b"".join(m.get("body", b"") for m in messages), messages


def _replaying(messages: list[dict[str, Any]], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` again, then whatever ``receive`` gives."""
    pending = list(messages)

    async def replay() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _answer(
    send: Send, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    payload = orjson.dumps(body)
    raw = [_JSON, (b"content-length", str(len(payload)).encode())]
    raw.extend((name.lower().encode(), value.encode()) for name, value in (headers or {}).items())
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def serve(
    svc: ExchangeService, scope: dict[str, Any], receive: Receive, send: Send, max_body: int
) -> Receive | None:
    """Serve the request here and return None, or return the ``receive`` to pass it on with."""
    wanted = _wants(scope)
    if wanted is None:
        return receive
    body, messages = await _read_body(receive, max_body)
    if body is None:
        return _replaying(messages, receive)
    op, order_id = wanted
    fields: dict[str, Any] | None = None
    if op == "place":
        try:
            parsed = orjson.loads(body)
            fields = parse_place(parsed) if type(parsed) is dict else None
        except ValueError:  # not JSON, or the order check refused it: the route says why
            fields = None
        if fields is None:
            return _replaying(messages, receive)
    from exchange.gateway.app import authenticate

    try:
        account, sig = authenticate(
            svc, scope["method"], scope["path"], scope["path"], scope["headers"], body, scope
        )
        if fields is not None:
            outcome = await svc.sequencer.submit(svc.place_command(account, fields))
            status = 201
        else:
            assert order_id is not None
            svc.check_own_order(account, order_id)
            outcome = await svc.sequencer.submit(
                {"op": "cancel", "account_id": account, "order_id": order_id} | sig
            )
            status = 200
    except Refused as refused:
        error = ApiError(refused.reason, refused.message)
        await _answer(send, error.status, error.body(), error.headers)
        return None
    except ApiError as error:
        await _answer(send, error.status, error.body(), error.headers)
        return None
    await _answer(send, status, svc.order_out(outcome.reply))
    return None
