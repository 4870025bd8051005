"""The REST API (SPEC section 3) as a FastAPI app over an :class:`ExchangeService`."""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Path, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, HTTPConnection
from starlette.routing import Match

from exchange.gateway import auth, fastpath
from exchange.gateway import schemas as S
from exchange.gateway.errors import ApiError, error_body
from exchange.gateway.models import (
    MAX_ID,
    PAGE_LIMIT,
    AmendOrder,
    Amount,
    Attestation,
    CancelAfter,
    ClockAdvance,
    CreateAccount,
    Digits,
    Dispute,
    PlaceOrder,
    Resolution,
    UpTo1000,
    problem,
)
from exchange.gateway.ratelimit import address_refusal, charged, client_address
from exchange.reasons import Reason
from exchange.sequencer.state import NS, Refused, spending, to_ns

if TYPE_CHECKING:
    from exchange.service import ExchangeService

#: Largest request body accepted, in bytes.
MAX_BODY = 64 * 1024

#: What FastAPI says of a JSON body it could not decode at all (not UTF-8, nested deeper
#: than the decoder goes)...
_UNREADABLE_BODY = "There was an error parsing the body"
#: ... and what the exchange says instead, as of any body that is not JSON.
UNREADABLE_JSON = "the body is not valid JSON (not UTF-8, or nested too deeply to read)"

#: The longest simulated-clock advance one request may ask for.
MAX_ADVANCE_NS = 366 * 86_400 * NS

#: The error responses every route documents, each with the error body's schema.
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "model": S.Error}
    for status, description in {
        400: "invalid request (codes such as INVALID_REQUEST, INVALID_TICK, INVALID_QUANTITY)",
        401: "UNAUTHORIZED: missing, stale, replayed or wrong signature",
        403: "ACCOUNT_DISABLED, NOT_PROVIDER, NOT_CONSUMER, FORBIDDEN",
        404: "UNKNOWN_SYMBOL, ORDER_NOT_FOUND, DELIVERY_NOT_FOUND, NOT_FOUND",
        405: "INVALID_REQUEST: a method the path does not take (Allow lists those it does)",
        409: "CONTRACT_NOT_TRADING and other state conflicts",
        413: "PAYLOAD_TOO_LARGE",
        422: "risk refusals: INSUFFICIENT_MARGIN, PRICE_OUT_OF_BAND, POST_ONLY_WOULD_TRADE, ...",
        429: "RATE_LIMITED, with Retry-After",
        503: "UNAVAILABLE, JOURNAL_UNAVAILABLE: refused before anything changed; "
        "JOURNAL_BROKEN: the journal failed mid-write, the command may run after a restart",
    }.items()
}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


def _error_response(error: ApiError) -> Response:
    return _json(error.body(), error.status, error.headers)


class _Gate:
    """Pure ASGI middleware: count the requests no key's limit counts against their client
    address (``CFX_PUBLIC_RATE_LIMIT``), refuse oversized bodies before reading them, serve
    placing and cancelling orders below the router (:mod:`exchange.gateway.fastpath`), and
    hand websocket connections the server's own ``send`` (the websocket writes frames
    directly when it can).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            length = encoding = key = authorization = None
            chunked = False
            for name, value in scope["headers"]:
                if name == b"content-length":
                    length = value
                elif name == b"content-encoding":
                    encoding = value
                elif name == b"transfer-encoding":
                    chunked = True
                elif name == b"cfx-key":
                    key = value
                elif name == b"authorization":
                    authorization = value
            state = scope["app"].state
            svc = state.svc
            limiter = svc.public_limiter
            if limiter is None or _admin_token(svc, authorization):
                await self._http(scope, receive, send, length, encoding, chunked)
                return
            address = client_address(scope)
            if (
                key is not None
                and _signed_path(scope["path"], state.signed_paths)
                and (key.decode("latin-1") in svc.state.api_keys)
            ):
                # the key's limit counts it once its signature passes; the address counts it
                # when it fails (authenticate), or when it never gets that far (here); and
                # no more of them at a time than the address's burst, while they are unproven
                unproven: dict[str, int] = state.unproven
                held = unproven.get(address, 0)
                wait = limiter.owed(address)
                if held >= limiter.burst:  # as many waiting as the burst: one must end first
                    wait = max(wait, 1 / limiter.rate)
                if wait:
                    await _error_response(address_refusal(limiter, address, wait))(
                        scope, receive, send
                    )
                    return
                unproven[address] = held + 1
                scope[UNCOUNTED] = True
                try:
                    await self._http(scope, receive, send, length, encoding, chunked)
                finally:
                    if held := unproven[address] - 1:
                        unproven[address] = held
                    else:
                        del unproven[address]
                    if scope.pop(UNCOUNTED, False):
                        limiter.charge(address)
                return
            wait = limiter.take(address)
            if wait:
                await _error_response(address_refusal(limiter, address, wait))(scope, receive, send)
                return
            await self._http(scope, receive, send, length, encoding, chunked)
            return
        elif scope["type"] == "websocket":
            from exchange.gateway.ws import RAW_RECEIVE_KEY, RAW_SEND_KEY

            limiter = scope["app"].state.svc.public_limiter
            if limiter is not None:  # a handshake is a request without a key too
                address = client_address(scope)
                wait = limiter.take(address)
                if wait:
                    await _refuse_handshake(address_refusal(limiter, address, wait), scope, send)
                    return
            scope[RAW_SEND_KEY] = send
            scope[RAW_RECEIVE_KEY] = receive
        await self.app(scope, receive, send)

    async def _http(
        self, scope: Any, receive: Any, send: Any, length: bytes | None, encoding: bytes | None,
        chunked: bool,
    ) -> None:  # fmt: skip
        if encoding is not None and encoding.strip().lower() != b"identity":
            await _error_response(
                ApiError(
                    Reason.INVALID_REQUEST,
                    "Content-Encoding is not supported: send the body as plain JSON",
                )
            )(scope, receive, send)
            return
        if length is not None:
            if not length.isdigit() or int(length) > MAX_BODY:
                await _too_large()(scope, receive, send)
                return
        elif chunked:
            # a body without a length, whatever the method: read it here, and no further
            # than the limit (a GET's body is read too, before authentication); with
            # neither header there is no body, and nothing to wait for
            whole = await _read_body(receive)
            if whole is None:
                await _too_large()(scope, receive, send)
                return
            receive = _replay(whole, receive)
        if scope["method"] in ("POST", "DELETE"):
            passed_on = await fastpath.serve(scope["app"].state.svc, scope, receive, send, MAX_BODY)
            if passed_on is None:
                return
            receive = passed_on
        await self.app(scope, receive, send)


def _signed_paths(app: FastAPI) -> frozenset[str]:
    """The first two segments (``/v1/orders``) of the paths whose routes authenticate a
    signed request, which counts against its key's limit; the gate tells them by these,
    before routing. No other route may share one: its requests would not be counted."""
    signed: set[str] = set()
    other: set[str] = set()
    for route in app.routes:
        if isinstance(route, APIRoute):
            prefix = "/".join(route.path.split("/", 3)[:3])
            (signed if _authenticates(route.dependant) else other).add(prefix)
    if signed & other:
        raise RuntimeError(f"signed and unsigned routes share {sorted(signed & other)}")
    return frozenset(signed)


def _authenticates(dependant: Any) -> bool:
    return any(d.call is account_id or _authenticates(d) for d in dependant.dependencies)


def _signed_path(path: str, signed_paths: frozenset[str]) -> bool:
    return "/".join(path.split("/", 3)[:3]) in signed_paths


#: Set in an ASGI scope while a request the gate let pass for its key is counted by nothing:
#: the key's limit takes it once its signature passes, else its address does.
UNCOUNTED = "cfx.uncounted"


def _admin_token(svc: ExchangeService, authorization: bytes | None) -> bool:
    """Whether ``Authorization`` carries the admin token (its requests are not counted)."""
    if authorization is None:
        return False
    scheme, _, token = authorization.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(token, svc.admin_token.encode())


async def _refuse_handshake(refusal: ApiError, scope: Any, send: Any) -> None:
    """Refuse a websocket handshake with ``refusal`` as the answer (a plain 403 where the
    server cannot send one of its own)."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = orjson.dumps(refusal.body())
    headers = [(b"content-type", b"application/json")] + [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in refusal.headers.items()
    ]
    await send({"type": "websocket.http.response.start", "status": refusal.status,
                "headers": headers})  # fmt: skip
    await send({"type": "websocket.http.response.body", "body": body})


async def _credentials_first(request: Request) -> Response | None:
    """The refusal of the credentials of a request whose body FastAPI refused before
    checking them, or None when they pass.

    FastAPI reads the body before it runs a route's dependencies, so a body that is not JSON
    would be refused before the signature (or admin token) is looked at, unlike every other
    invalid body: an unsigned request would not be told so, and a signed one would neither
    use up its signature nor count against its rate. This checks them as the route would.
    """
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    calls = {d.call for d in dependant.dependencies} if dependant is not None else set()
    try:
        if admin in calls:
            await admin(request)
        if account_id in calls:
            await account_id(request)
    except ApiError as exc:
        return _error_response(exc)
    except (ClientDisconnect, RuntimeError):  # the body was never read whole: no one is there
        return None
    return None


class _UnknownQuery(Exception):
    """A query parameter the route does not take (refused after the credentials)."""


def _query_names(route: Any) -> frozenset[str]:
    """The query parameters a route takes, its dependencies' included (kept on the route)."""
    names: frozenset[str] | None = getattr(route, "_cfx_query_names", None)
    if names is None:
        found: set[str] = set()
        todo = [route.dependant]
        while todo:
            dependant = todo.pop()
            found.update(field.alias for field in dependant.query_params)
            todo.extend(dependant.dependencies)
        names = route._cfx_query_names = frozenset(found)
    return names


async def _known_query(request: HTTPConnection) -> None:
    """Refuse a query parameter the endpoint does not take, rather than ignore it.

    Ignored, a misspelt filter is no filter: ``DELETE /v1/orders?symbl=H100-...`` would
    cancel the orders on every contract.
    """
    if (
        request.scope["type"] != "http"  # a websocket's own query is its business
        or not request.url.query
        or not request.url.path.startswith("/v1/")
    ):
        return
    route = request.scope.get("route")
    if getattr(route, "dependant", None) is None:
        return
    names = [name for name, _ in request.query_params.multi_items()]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:  # which copy counts would be a guess, and a proxy could guess the other way
        raise _UnknownQuery(
            ", ".join(repr(name) for name in twice) + " given more than once: give each once"
        )
    unknown = sorted(set(names) - _query_names(route))
    if unknown:
        takes = sorted(_query_names(route))
        raise _UnknownQuery(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
            + ", ".join(repr(name) for name in unknown)
            + (
                f"; this endpoint takes {', '.join(takes)}"
                if takes
                else "; this endpoint takes none"
            )
        )


#: The methods an ``Allow`` header may name.
_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed(request: Request) -> list[str]:
    """Every method some route takes on the request's path."""
    return sorted(
        method
        for method in _METHODS
        for route in request.app.router.routes
        # asked of each route, an included router's too, rather than read off its ``methods``
        if route.matches({**request.scope, "method": method})[0] is Match.FULL
    )


def _too_large() -> Response:
    return _error_response(
        ApiError(Reason.PAYLOAD_TOO_LARGE, f"bodies are limited to {MAX_BODY} bytes")
    )


async def _read_body(receive: Any) -> bytes | None:
    """A request body without a length, or None once it passes :data:`MAX_BODY`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that gives ``body`` whole, then whatever the connection says next."""
    given = False

    async def replay() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        message: dict[str, Any] = await receive()
        return message

    return replay


#: The methods whose signed requests take no body: one sent with a body is refused.
_BODILESS = frozenset(("GET", "DELETE"))
#: The headers a signed request carries (SPEC section 6), as ASGI names them.
_SIGNING_HEADERS = (b"cfx-key", b"cfx-timestamp", b"cfx-signature")


def _signing_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[bytes, str]:
    """A request's signing headers by name; refused when one comes twice: which copy counts
    would be a guess, and a proxy in front could guess the other way."""
    found: dict[bytes, str] = {}
    for name, value in raw:
        name = name.lower()
        if name in _SIGNING_HEADERS:
            if name in found:
                raise ApiError(
                    Reason.UNAUTHORIZED,
                    "send each of CFX-KEY, CFX-TIMESTAMP and CFX-SIGNATURE once",
                )
            found[name] = value.decode("latin-1")
    return found


async def account_id(request: Request) -> int:
    """Authenticate a signed request (SPEC section 6); return its account."""
    try:
        body = await request.body()
    except ClientDisconnect:  # gone before its body came whole: no one to answer, nothing done
        raise ApiError(Reason.INVALID_REQUEST, "the request body was cut short") from None
    # the path as sent, percent-encoding and all, is what the client signed
    raw = request.scope.get("raw_path") or request.url.path.encode()
    sent = raw.decode("latin-1")
    path = sent + (f"?{request.url.query}" if request.url.query else "")
    account, request.state.spent = authenticate(
        request.app.state.svc, request.method, request.url.path, path, request.scope["headers"],
        body, request.scope,
    )  # fmt: skip
    return account


def authenticate(
    svc: ExchangeService,
    method: str,
    path: str,
    path_with_query: str,
    headers: Iterable[tuple[bytes, bytes]],
    body: bytes,
    scope: Any = None,
) -> tuple[int, dict[str, Any]]:
    """Check a request's signature, replay and rate limit; return its account and, for a
    single-use request, the fields its command carries to spend the signature in the state
    (``sig``, ``sig_at``: journaled, so a restart still refuses it); else raise
    :class:`ApiError`. The REST routes and the order fast path both authenticate here, from
    the request's ASGI ``headers``.

    A request the gate let pass uncounted for its known key (its ASGI ``scope`` says so)
    counts against its key's limit once its signature passes; refused ``UNAUTHORIZED``, it
    counts against its client's address instead, as a request without a key does.
    """
    try:
        signed = _signing_headers(headers)
        key = signed.get(b"cfx-key")
        timestamp = signed.get(b"cfx-timestamp")
        signature = signed.get(b"cfx-signature")
        if not key or not timestamp or not signature:
            raise ApiError(
                Reason.UNAUTHORIZED,
                "sign the request: CFX-KEY, CFX-TIMESTAMP and CFX-SIGNATURE headers",
            )
        account = svc.state.api_keys.get(key)
        if account is None:
            raise ApiError(Reason.UNAUTHORIZED, "unknown API key")
        if len(body) > MAX_BODY:
            raise ApiError(Reason.PAYLOAD_TOO_LARGE, f"bodies are limited to {MAX_BODY} bytes")
        if body and method in _BODILESS:
            # refused before the signature is looked at (nor spent): what is signed runs the
            # path into the body, so a signed DELETE /v1/orders/13 would verify as DELETE
            # /v1/orders/1 with the body "3" (and a cancel-all's "?symbol=S" as a body)
            raise ApiError(Reason.INVALID_REQUEST, f"a {method} request takes no body")
        problem = auth.verify(
            auth.derive_secret(svc.master_key, key),
            timestamp,
            method,
            path_with_query,
            body,
            signature,
            time.time(),
        )
        if problem:
            raise ApiError(Reason.UNAUTHORIZED, problem)
        # A signature is single-use for requests whose repetition would change state again
        # (attestations, disputes, amends, cancels). Reads are harmless, and new orders are
        # not checked: two identical orders in one second are a normal thing for a bot to send,
        # and a retry that must not double is what client_order_id is for.
        once = method in ("DELETE", "PATCH") or (method == "POST" and path != "/v1/orders")
        if scope is not None:
            scope.pop(UNCOUNTED, None)  # the key's limit counts it
        wait = svc.limiter.take(key)  # first: a request refused for its rate keeps its signature
        if wait:
            raise ApiError(
                Reason.RATE_LIMITED,
                "too many requests for this API key",
                {"Retry-After": str(max(1, round(wait + 0.5)))},
            )
        if not once:
            return account, {}
        if svc.replays.seen(signature, key):  # at once, while this process remembers it
            raise ApiError(
                Reason.UNAUTHORIZED, "this signature was already used: sign every request afresh"
            )
        return account, spending(signature, time.time())
    except ApiError as refused:
        limiter = svc.public_limiter
        if (
            refused.reason is not Reason.UNAUTHORIZED
            or limiter is None
            or scope is None
            or not scope.pop(UNCOUNTED, False)
        ):
            raise
        raise charged(limiter, scope, refused) from None


async def admin(request: Request) -> None:
    """Require the admin bearer token."""
    svc: ExchangeService = request.app.state.svc
    given = request.headers.getlist("Authorization")
    header = given[0] if len(given) == 1 else ""  # two tokens: which counts would be a guess
    scheme, _, token = header.partition(" ")  # the scheme is case-insensitive (RFC 9110 11.1)
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.encode(), svc.admin_token.encode()
    ):
        raise ApiError(
            Reason.UNAUTHORIZED,
            "admin endpoints need 'Authorization: Bearer <CFX_ADMIN_TOKEN>'",
        )


Account = Annotated[int, Depends(account_id)]


async def spent(request: Request, account: Account) -> dict[str, Any]:
    """What a single-use request's command carries so the state spends its signature (the
    ``account`` makes :func:`account_id`, which finds it, run first)."""
    signature: dict[str, Any] = request.state.spent
    return signature


Spent = Annotated[dict[str, Any], Depends(spent)]
#: An id in a path: a positive 64-bit integer.
Id = Annotated[int, Digits, Path(ge=1, le=MAX_ID)]
PageLimit = Annotated[int, Digits, Query(ge=1, le=PAGE_LIMIT, description="At most this many.")]
#: ``?before=``: a page's lower ids.
BeforeOrder = Annotated[
    int | None, Digits, Query(ge=1, le=MAX_ID, description="Only orders with a lower order id.")
]
BeforeFill = Annotated[
    int | None, Digits, Query(ge=1, le=MAX_ID, description="Only fills with a lower trade id.")
]
#: A ``symbol`` query filter: a contract the exchange has listed, expired ones included.
SymbolFilter = Annotated[
    str | None,
    Query(description="Only this contract's; 404 UNKNOWN_SYMBOL if it was never listed."),
]
Admin = Depends(admin)


def create_app(svc: ExchangeService) -> FastAPI:
    """Build the FastAPI application serving ``svc``."""
    app = FastAPI(
        title="cfx",
        summary="A compute futures exchange for GPU-hours",
        version="0.1.0",
        responses=_ERRORS,
        # a signed request is signed over its path: answer /v1/orders/ 404, not a redirect
        redirect_slashes=False,
        lifespan=svc.lifespan,
        dependencies=[Depends(_known_query)],
    )
    app.state.svc = svc

    # -- errors: every failure is a 4xx with a code; a 500 is a bug --------------------------
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return _error_response(exc)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> Response:
        return _error_response(ApiError(exc.reason, exc.message))

    @app.exception_handler(_UnknownQuery)
    async def _unknown_query(request: Request, exc: _UnknownQuery) -> Response:
        refused = await _credentials_first(request)
        if refused is not None:
            return refused
        return _error_response(ApiError(Reason.INVALID_REQUEST, str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        if any(err.get("type") == "json_invalid" for err in errors):
            refused = await _credentials_first(request)
            if refused is not None:
                return refused
        problems = []
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        about_body = any((err.get("loc") or ("",))[0] == "body" for err in errors)
        if about_body and kind != "application/json":
            # the body was not read as JSON at all: say why, not what it then lacked
            problems.append(
                f"send the body as JSON with Content-Type: application/json (not {kind!r})"
                if kind
                else "send the body as JSON with Content-Type: application/json"
            )
        for err in errors[:5]:
            if err.get("type") == "json_invalid":  # loc is ("body", character offset)
                at = err.get("loc", ())[-1]
                problems.append(f"the body is not valid JSON (at character {at})")
                continue
            problems.append(problem(err))
        return _error_response(
            ApiError(Reason.INVALID_REQUEST, "; ".join(problems) or "invalid request")
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        reason = {404: Reason.NOT_FOUND, 413: Reason.PAYLOAD_TOO_LARGE}.get(
            exc.status_code, Reason.INVALID_REQUEST
        )
        status = exc.status_code if 400 <= exc.status_code < 500 else 400
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names the methods of the first route only
            headers["Allow"] = ", ".join(_allowed(request))
        detail = str(exc.detail)
        if exc.status_code == 400:  # a body FastAPI could not read (not UTF-8, say)
            refused = await _credentials_first(request)
            if refused is not None:
                return refused
            if detail == _UNREADABLE_BODY:
                detail = UNREADABLE_JSON
        return _json(error_body(reason, detail), status, headers)

    app.add_middleware(_Gate)

    # -- public --------------------------------------------------------------------------------
    @app.get("/v1/health", tags=["public"], responses=S.ok(S.Health))
    async def health() -> dict[str, Any]:
        return {"status": "ok", "clock": svc.clock_iso()}

    @app.get("/v1/contracts", tags=["public"], responses=S.ok(list[S.Contract]))
    async def contracts() -> list[dict[str, Any]]:
        return [svc.contract_view(symbol) for symbol in svc.symbols()]

    @app.get("/v1/contracts/{symbol}", tags=["public"], responses=S.ok(S.Contract))
    async def contract(symbol: str) -> dict[str, Any]:
        return svc.contract_view(svc.known_symbol(symbol))

    @app.get("/v1/book/{symbol}", tags=["public"], responses=S.ok(S.Book))
    async def book(symbol: str, depth: UpTo1000 = 50) -> dict[str, Any]:
        return svc.book_view(svc.known_symbol(symbol), depth)

    @app.get("/v1/trades/{symbol}", tags=["public"], responses=S.ok(list[S.Trade]))
    async def trades(symbol: str, limit: UpTo1000 = 100) -> list[dict[str, Any]]:
        return svc.trades_view(svc.known_symbol(symbol), limit)

    @app.get("/v1/candles/{symbol}", tags=["public"], responses=S.ok(list[S.Candle]))
    async def candles(
        symbol: str,
        interval: Annotated[str, Query(pattern="^(1m|1h|1d)$")] = "1m",
        limit: UpTo1000 = 200,
    ) -> list[dict[str, Any]]:
        return svc.candles_view(svc.known_symbol(symbol), interval, limit)

    @app.get(
        "/v1/settlement-prices/{symbol}", tags=["public"], responses=S.ok(list[S.SettlementPrice])
    )
    async def settlement_prices(symbol: str) -> list[dict[str, Any]]:
        return svc.settlements_view(svc.known_symbol(symbol))

    @app.get("/v1/index/{product}", tags=["public"], responses=S.ok(S.Index))
    async def index(product: str) -> dict[str, Any]:
        return svc.index_view(product)

    # -- private -------------------------------------------------------------------------------
    @app.post("/v1/orders", status_code=201, tags=["orders"], responses=S.ok(S.Order, 201))
    async def place(body: PlaceOrder, account: Account) -> Response:
        command = svc.place_command(account, body.model_dump())
        outcome = await svc.sequencer.submit(command)
        return _json(svc.order_out(outcome.reply), 201)  # orjson, not a second validation

    @app.get("/v1/orders", tags=["orders"], responses=S.ok(list[S.Order]))
    async def list_orders(
        account: Account,
        symbol: SymbolFilter = None,
        status: Annotated[
            str | None, Query(pattern="^(open|partially_filled|filled|cancelled)$")
        ] = None,
        limit: PageLimit = PAGE_LIMIT,
        before: BeforeOrder = None,
    ) -> list[dict[str, Any]]:
        """The account's orders in order id order: the newest ``limit`` that match, with ids
        below ``before`` if given (pass the first id of a page to read the one before it)."""
        if symbol is not None:
            svc.known_symbol(symbol)
        return svc.orders_view(account, symbol, status, limit, before)

    @app.post("/v1/orders/cancel-after", tags=["orders"], responses=S.ok(S.CancelAfterState))
    async def cancel_after(body: CancelAfter, account: Account, sig: Spent) -> dict[str, Any]:
        outcome = await svc.sequencer.submit(
            {"op": "cancel_after", "account_id": account, "timeout_ns": body.timeout_s * NS} | sig
        )
        reply: dict[str, Any] = outcome.reply
        return reply

    @app.get("/v1/orders/{order_id}", tags=["orders"], responses=S.ok(S.Order))
    async def get_order(order_id: Id, account: Account) -> dict[str, Any]:
        return svc.order_out(svc.state.order_view(svc.own_order(account, order_id)))

    @app.delete("/v1/orders/{order_id}", tags=["orders"], responses=S.ok(S.Order))
    async def cancel(order_id: Id, account: Account, sig: Spent) -> Response:
        svc.check_own_order(account, order_id)
        outcome = await svc.sequencer.submit(
            {"op": "cancel", "account_id": account, "order_id": order_id} | sig
        )
        return _json(svc.order_out(outcome.reply))

    @app.delete("/v1/orders", tags=["orders"], responses=S.ok(list[S.Order]))
    async def cancel_all(
        account: Account, sig: Spent, symbol: SymbolFilter = None
    ) -> list[dict[str, Any]]:
        if symbol is not None:
            svc.known_symbol(symbol)
        outcome = await svc.sequencer.submit(
            {"op": "cancel_all", "account_id": account, "symbol": symbol} | sig
        )
        return [svc.order_out(o) for o in outcome.reply]

    @app.patch("/v1/orders/{order_id}", tags=["orders"], responses=S.ok(S.Order))
    async def amend(order_id: Id, body: AmendOrder, account: Account, sig: Spent) -> dict[str, Any]:
        order = svc.own_order(account, order_id)
        if body.price is None and body.quantity is None:
            raise ApiError(Reason.INVALID_REQUEST, "give a new price, a new quantity, or both")
        command: dict[str, Any] = {
            "op": "amend",
            "account_id": account,
            "order_id": order_id,
            "quantity": body.quantity,
        } | sig
        if body.price is not None:
            command["price"] = svc.parse_price(order.symbol, body.price)
        outcome = await svc.sequencer.submit(command)
        return svc.order_out(outcome.reply)

    @app.get("/v1/fills", tags=["orders"], responses=S.ok(list[S.Fill]))
    async def fills(
        account: Account,
        symbol: SymbolFilter = None,
        limit: PageLimit = PAGE_LIMIT,
        before: BeforeFill = None,
    ) -> list[dict[str, Any]]:
        """The account's fills, newest first: at most ``limit``, with trade ids below ``before``
        if given (pass the last trade id of a page to read the next)."""
        if symbol is not None:
            svc.known_symbol(symbol)
        return svc.fills_view(account, symbol, limit, before)

    @app.get("/v1/account", tags=["account"], responses=S.ok(S.Account))
    async def get_account(account: Account) -> dict[str, Any]:
        return svc.account_out(account)

    @app.get("/v1/positions", tags=["account"], responses=S.ok(list[S.Position]))
    async def positions(account: Account) -> list[dict[str, Any]]:
        return svc.positions_out(account)

    @app.get("/v1/deliveries", tags=["deliveries"], responses=S.ok(list[S.Delivery]))
    async def deliveries(account: Account) -> list[dict[str, Any]]:
        return svc.deliveries_view(account)

    @app.post(
        "/v1/deliveries/{delivery_id}/attestations",
        status_code=201,
        tags=["deliveries"],
        responses=S.ok(S.Delivery, 201),
    )
    async def attest(
        delivery_id: Id, body: Attestation, account: Account, sig: Spent
    ) -> dict[str, Any]:
        outcome = await svc.sequencer.submit(
            {"op": "attest", "account_id": account, "delivery_id": delivery_id}
            | body.model_dump()
            | sig
        )
        return svc.delivery_out(outcome.reply)

    @app.post(
        "/v1/deliveries/{delivery_id}/disputes",
        status_code=201,
        tags=["deliveries"],
        responses=S.ok(S.Delivery, 201),
    )
    async def dispute(
        delivery_id: Id, body: Dispute, account: Account, sig: Spent
    ) -> dict[str, Any]:
        outcome = await svc.sequencer.submit(
            {"op": "dispute", "account_id": account, "delivery_id": delivery_id}
            | body.model_dump()
            | sig
        )
        return svc.delivery_out(outcome.reply)

    # -- admin ---------------------------------------------------------------------------------

    @app.post(
        "/v1/admin/accounts",
        status_code=201,
        tags=["admin"],
        dependencies=[Admin],
        responses=S.ok(S.Credentials, 201),
    )
    async def create_account(body: CreateAccount) -> dict[str, Any]:
        return await svc.create_account(body.name, body.role, body.deposit)

    @app.post(
        "/v1/admin/accounts/{account_id}/deposits",
        tags=["admin"],
        dependencies=[Admin],
        responses=S.ok(S.Account),
    )
    async def deposit(account_id: Id, body: Amount) -> dict[str, Any]:
        amount = svc.parse_amount(body.amount)
        outcome = await svc.sequencer.submit(
            {"op": "deposit", "account_id": account_id, "amount": amount}
        )
        return svc.account_out(outcome.reply["account_id"])

    @app.post(
        "/v1/admin/accounts/{account_id}/withdrawals",
        tags=["admin"],
        dependencies=[Admin],
        responses=S.ok(S.Account),
    )
    async def withdraw(account_id: Id, body: Amount) -> dict[str, Any]:
        amount = svc.parse_amount(body.amount)
        outcome = await svc.sequencer.submit(
            {"op": "withdraw", "account_id": account_id, "amount": amount}
        )
        return svc.account_out(outcome.reply["account_id"])

    @app.post(
        "/v1/admin/accounts/{account_id}/disable",
        tags=["admin"],
        dependencies=[Admin],
        responses=S.ok(S.KillSwitch),
    )
    async def disable(account_id: Id) -> dict[str, Any]:
        """Kill switch: cancel the account's open orders and refuse new ones."""
        outcome = await svc.sequencer.submit(
            {"op": "kill_switch", "account_id": account_id, "disabled": True}
        )
        reply: dict[str, Any] = outcome.reply
        return reply

    @app.post(
        "/v1/admin/accounts/{account_id}/enable",
        tags=["admin"],
        dependencies=[Admin],
        responses=S.ok(S.KillSwitch),
    )
    async def enable(account_id: Id) -> dict[str, Any]:
        outcome = await svc.sequencer.submit(
            {"op": "kill_switch", "account_id": account_id, "disabled": False}
        )
        reply: dict[str, Any] = outcome.reply
        return reply

    @app.post(
        "/v1/admin/deliveries/{delivery_id}/resolve",
        tags=["admin"],
        dependencies=[Admin],
        responses=S.ok(S.Delivery),
    )
    async def resolve(delivery_id: Id, body: Resolution) -> dict[str, Any]:
        """Decide a disputed delivery: how many of the disputed GPU-hours were delivered."""
        outcome = await svc.sequencer.submit(
            {"op": "resolve", "delivery_id": delivery_id, "provider_hours": body.provider_hours}
        )
        return svc.delivery_out(outcome.reply)

    @app.post(
        "/v1/admin/clock/advance",
        tags=["admin"],
        dependencies=[Admin],
        responses=S.ok(S.ClockAdvanced),
    )
    async def advance(body: ClockAdvance) -> dict[str, Any]:
        if not svc.clock.simulated:
            raise ApiError(
                Reason.CLOCK_NOT_SIMULATED,
                "the clock is real; start with --clock sim to advance it",
            )
        try:
            target = datetime.fromisoformat(body.to.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ApiError(Reason.INVALID_REQUEST, f"'to' is not an ISO 8601 time: {exc}") from exc
        if target.tzinfo is None:
            raise ApiError(
                Reason.INVALID_REQUEST, "'to' needs a time zone, e.g. 2026-12-07T00:00:00Z"
            )
        to = to_ns(target)
        if to < svc.state.now:  # refused here too: a time before 1678 is no journal integer
            raise ApiError(Reason.CLOCK_BACKWARDS, "the clock cannot move backwards")
        if to - svc.state.now > MAX_ADVANCE_NS:
            # every settlement, listing and expiry in between runs in this one command,
            # holding the exchange (and every restart replaying it) for as long as it takes
            raise ApiError(
                Reason.INVALID_REQUEST,
                f"advance at most {MAX_ADVANCE_NS // (86_400 * NS)} days at a time",
            )
        outcome = await svc.sequencer.submit({"op": "advance", "to": to})
        ran = [
            event | {field: svc.price_str(event["symbol"], event[field])
                     for field in ("price", "final_price") if field in event}
            for event in outcome.reply["ran"]
        ]  # fmt: skip
        return outcome.reply | {"ran": ran}

    @app.post(
        "/v1/admin/contracts/{symbol}/halt",
        tags=["admin"],
        dependencies=[Admin],
        responses=S.ok(S.Contract),
    )
    async def halt(symbol: str) -> dict[str, Any]:
        await svc.sequencer.submit(
            {"op": "halt", "symbol": svc.known_symbol(symbol), "halted": True}
        )
        return svc.contract_view(symbol)

    @app.post(
        "/v1/admin/contracts/{symbol}/resume",
        tags=["admin"],
        dependencies=[Admin],
        responses=S.ok(S.Contract),
    )
    async def resume(symbol: str) -> dict[str, Any]:
        await svc.sequencer.submit(
            {"op": "halt", "symbol": svc.known_symbol(symbol), "halted": False}
        )
        return svc.contract_view(symbol)

    @app.get(
        "/v1/admin/ledger/check",
        tags=["admin"],
        dependencies=[Admin],
        responses=S.ok(S.LedgerCheck),
    )
    async def ledger_check() -> dict[str, Any]:
        return await svc.ledger_check()

    @app.get(
        "/v1/admin/journal",
        tags=["admin"],
        dependencies=[Admin],
        responses=S.ok(S.JournalStatus),
    )
    async def journal_status() -> dict[str, Any]:
        """Where the journal stands, and what recovery found when the exchange last started:
        a cut tail and why, snapshots passed over, how much was replayed."""
        return svc.journal_out()

    # -- websocket -----------------------------------------------------------------------------
    @app.websocket("/v1/ws")
    async def ws(websocket: WebSocket) -> None:
        from exchange.gateway.ws import serve_connection

        await serve_connection(svc, websocket)

    # -- dashboard: the market page at / and the public views it reads -------------------------
    from exchange.gateway import dashboard

    app.include_router(dashboard.router)
    app.state.signed_paths = _signed_paths(app)
    #: Requests with a known key on a signed path, per address, not yet authenticated.
    app.state.unproven = {}

    return app
