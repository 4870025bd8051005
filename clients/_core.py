"""What the synchronous and asynchronous clients share: requests described as data.

Every endpoint is a function that returns a :class:`Call` (method, path, body, how to
parse the answer, whether a retry is safe). :class:`~clients.Client` and
:class:`~clients.AsyncClient` only execute calls, so both cover exactly the same API.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode

import httpx
import orjson

from clients.errors import (
    CfxError,
    ExchangeUnreachable,
    OutcomeUnknown,
    http_error,
    signature_reused,
)
from clients.models import (
    Account,
    Book,
    Candle,
    Contract,
    Credentials,
    Delivery,
    Fill,
    Index,
    Order,
    Position,
    SettlementPrice,
    Trade,
)
from exchange.gateway.auth import sign

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8000"
Price = str | Decimal | int


def price_str(value: Price) -> str:
    """Write a price or amount for the wire: a decimal string, never a float."""
    if isinstance(value, bool) or not isinstance(value, (str, Decimal, int)):
        raise TypeError(
            f"prices are exact: pass a str or Decimal such as '2.35', not a {type(value).__name__}"
        )
    if isinstance(value, Decimal):
        return format(value, "f")  # never an exponent: Decimal("4E+1") is "40"
    return str(value)


def _segment(value: str) -> str:
    """A symbol or product as one URL path segment (``/``, ``#``, ``?`` and the like escaped)."""
    return quote(str(value), safe="")


def new_client_order_id() -> str:
    """A fresh ``client_order_id``: what makes retrying an order placement safe."""
    return "sdk-" + secrets.token_hex(8)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request to the exchange and how to read its answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] | None = None
    body: Any = None
    signed: bool = False
    admin: bool = False
    #: Whether sending it twice does no harm (GETs, orders with a client_order_id, cancels).
    idempotent: bool = True

    @property
    def path_with_query(self) -> str:
        params = {k: v for k, v in (self.params or {}).items() if v is not None}
        return self.path + ("?" + urlencode(params) if params else "")

    @property
    def content(self) -> bytes:
        return b"" if self.body is None else orjson.dumps(self.body)


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _raw(data: Any) -> Any:
    return data


# -- the endpoints, SPEC section 3 --------------------------------------------------------------


def health() -> Call[dict[str, Any]]:
    """``GET /v1/health``: ``{"status": "ok", "clock": ...}``."""
    return Call("GET", "/v1/health", _raw)


def contracts() -> Call[list[Contract]]:
    """``GET /v1/contracts``: every listed contract."""
    return Call("GET", "/v1/contracts", Contract.parse)


def contract(symbol: str) -> Call[Contract]:
    """``GET /v1/contracts/{symbol}``."""
    return Call("GET", f"/v1/contracts/{_segment(symbol)}", Contract.parse)


def book(symbol: str, depth: int = 50) -> Call[Book]:
    """``GET /v1/book/{symbol}``: bids best first, asks best first, and the feed sequence."""
    return Call("GET", f"/v1/book/{_segment(symbol)}", Book.parse, {"depth": depth})


def trades(symbol: str, limit: int = 100) -> Call[list[Trade]]:
    """``GET /v1/trades/{symbol}``: newest first."""
    return Call("GET", f"/v1/trades/{_segment(symbol)}", Trade.parse, {"limit": limit})


def candles(symbol: str, interval: str = "1m", limit: int = 200) -> Call[list[Candle]]:
    """``GET /v1/candles/{symbol}``: OHLCV bars of ``1m``, ``1h`` or ``1d``, oldest first."""
    return Call(
        "GET",
        f"/v1/candles/{_segment(symbol)}",
        Candle.parse,
        {"interval": interval, "limit": limit},
    )


def settlement_prices(symbol: str) -> Call[list[SettlementPrice]]:
    """``GET /v1/settlement-prices/{symbol}``: daily settlement prices, the final one marked."""
    return Call("GET", f"/v1/settlement-prices/{_segment(symbol)}", SettlementPrice.parse)


def index(product: str) -> Call[Index]:
    """``GET /v1/index/{product}``: the cfx GPU-hour index and its history."""
    return Call("GET", f"/v1/index/{_segment(product)}", Index.parse)


def place_order(
    symbol: str,
    side: str,
    quantity: int,
    price: Price | None = None,
    *,
    type: str | None = None,
    time_in_force: str = "GTC",
    post_only: bool | None = None,
    client_order_id: str | None = None,
    self_trade_prevention: str | None = None,
) -> Call[Order]:
    """``POST /v1/orders``: a limit order when ``price`` is given, else a market order.

    A ``client_order_id`` is generated when none is given, so the SDK may resend the order
    after a lost connection: the exchange answers a repeat with the original order.
    """
    body = _drop_none(
        {
            "symbol": symbol,
            "side": side,
            "type": type or ("limit" if price is not None else "market"),
            "price": None if price is None else price_str(price),
            "quantity": quantity,
            "time_in_force": time_in_force,
            "post_only": post_only,
            "client_order_id": client_order_id or new_client_order_id(),
            "self_trade_prevention": self_trade_prevention,
        }
    )
    return Call("POST", "/v1/orders", Order.parse, body=body, signed=True)


def orders(
    symbol: str | None = None,
    status: str | None = None,
    *,
    limit: int | None = None,
    before: int | None = None,
) -> Call[list[Order]]:
    """``GET /v1/orders``: the account's orders, filtered by symbol and status (``open``...).

    The newest ``limit`` (at most and by default 1,000) in order id order; ``before=`` the
    first order id of a page reads the page before it.
    """
    query = {"symbol": symbol, "status": status, "limit": limit, "before": before}
    return Call("GET", "/v1/orders", Order.parse, query, signed=True)


def order(order_id: int) -> Call[Order]:
    """``GET /v1/orders/{order_id}``."""
    return Call("GET", f"/v1/orders/{order_id}", Order.parse, signed=True)


def cancel_order(order_id: int) -> Call[Order]:
    """``DELETE /v1/orders/{order_id}``: the cancelled order."""
    return Call("DELETE", f"/v1/orders/{order_id}", Order.parse, signed=True)


def cancel_all(symbol: str | None = None) -> Call[list[Order]]:
    """``DELETE /v1/orders``: cancel every open order (of one symbol, if given)."""
    return Call("DELETE", "/v1/orders", Order.parse, {"symbol": symbol}, signed=True)


def amend_order(
    order_id: int, *, price: Price | None = None, quantity: int | None = None
) -> Call[Order]:
    """``PATCH /v1/orders/{order_id}``: a smaller quantity keeps time priority; else it is lost."""
    body = _drop_none({"price": None if price is None else price_str(price), "quantity": quantity})
    return Call(
        "PATCH", f"/v1/orders/{order_id}", Order.parse, body=body, signed=True, idempotent=False
    )


def cancel_after(timeout_s: int) -> Call[dict[str, Any]]:
    """``POST /v1/orders/cancel-after``: the dead-man's switch; ``0`` disarms it."""
    return Call("POST", "/v1/orders/cancel-after", _raw, body={"timeout_s": timeout_s}, signed=True)


def fills(
    symbol: str | None = None, *, limit: int | None = None, before: int | None = None
) -> Call[list[Fill]]:
    """``GET /v1/fills``: the account's fills, newest first.

    At most ``limit`` (at most and by default 1,000); ``before=`` the last trade id of a page
    reads the next one.
    """
    query = {"symbol": symbol, "limit": limit, "before": before}
    return Call("GET", "/v1/fills", Fill.parse, query, signed=True)


def account() -> Call[Account]:
    """``GET /v1/account``: cash, available, margin, escrow and positions."""
    return Call("GET", "/v1/account", Account.parse, signed=True)


def positions() -> Call[list[Position]]:
    """``GET /v1/positions``."""
    return Call("GET", "/v1/positions", Position.parse, signed=True)


def deliveries() -> Call[list[Delivery]]:
    """``GET /v1/deliveries``: delivery records where the account is provider or consumer."""
    return Call("GET", "/v1/deliveries", Delivery.parse, signed=True)


def attest(
    delivery_id: int,
    gpu_hours: int,
    period_start: str,
    period_end: str,
    evidence: str | None = None,
) -> Call[Delivery]:
    """``POST /v1/deliveries/{id}/attestations``: the provider attests delivered GPU-hours."""
    body = _drop_none(
        {"gpu_hours": gpu_hours, "period_start": period_start, "period_end": period_end,
         "evidence": evidence}
    )  # fmt: skip
    return Call(
        "POST", f"/v1/deliveries/{delivery_id}/attestations", Delivery.parse, body=body,
        signed=True, idempotent=False,
    )  # fmt: skip


def dispute(delivery_id: int, gpu_hours: int, reason: str) -> Call[Delivery]:
    """``POST /v1/deliveries/{id}/disputes``: the consumer disputes attested GPU-hours."""
    return Call(
        "POST", f"/v1/deliveries/{delivery_id}/disputes", Delivery.parse,
        body={"gpu_hours": gpu_hours, "reason": reason}, signed=True, idempotent=False,
    )  # fmt: skip


# -- admin (bearer token) ------------------------------------------------------------------------


def create_account(
    name: str, role: str = "trader", deposit: Price | None = None
) -> Call[Credentials]:
    """``POST /v1/admin/accounts``: a new account and its API key and secret."""
    body = _drop_none(
        {"name": name, "role": role, "deposit": None if deposit is None else price_str(deposit)}
    )
    return Call(
        "POST", "/v1/admin/accounts", Credentials.parse, body=body, admin=True, idempotent=False
    )


def deposit(account_id: int, amount: Price) -> Call[Account]:
    """``POST /v1/admin/accounts/{id}/deposits``."""
    return Call(
        "POST", f"/v1/admin/accounts/{account_id}/deposits", Account.parse,
        body={"amount": price_str(amount)}, admin=True, idempotent=False,
    )  # fmt: skip


def withdraw(account_id: int, amount: Price) -> Call[Account]:
    """``POST /v1/admin/accounts/{id}/withdrawals``."""
    return Call(
        "POST", f"/v1/admin/accounts/{account_id}/withdrawals", Account.parse,
        body={"amount": price_str(amount)}, admin=True, idempotent=False,
    )  # fmt: skip


def advance_clock(to: str) -> Call[dict[str, Any]]:
    """``POST /v1/admin/clock/advance`` (simulated clock): run everything scheduled up to ``to``."""
    return Call("POST", "/v1/admin/clock/advance", _raw, body={"to": to}, admin=True)


def halt(symbol: str) -> Call[Contract]:
    """``POST /v1/admin/contracts/{symbol}/halt``."""
    return Call("POST", f"/v1/admin/contracts/{_segment(symbol)}/halt", Contract.parse, admin=True)


def resume(symbol: str) -> Call[Contract]:
    """``POST /v1/admin/contracts/{symbol}/resume``."""
    return Call(
        "POST", f"/v1/admin/contracts/{_segment(symbol)}/resume", Contract.parse, admin=True
    )


def ledger_check() -> Call[dict[str, Any]]:
    """``GET /v1/admin/ledger/check``: ``{"balanced": bool, ...}``."""
    return Call("GET", "/v1/admin/ledger/check", _raw, admin=True)


def journal_status() -> Call[dict[str, Any]]:
    """``GET /v1/admin/journal``: where the journal stands and what the last start recovered."""
    return Call("GET", "/v1/admin/journal", _raw, admin=True)


# -- executing calls -----------------------------------------------------------------------------


@dataclass
class Signer:
    """Signs requests (SPEC section 6) and never reuses a signature the exchange would refuse.

    The exchange refuses a signature it has seen (except on new orders, whose
    ``client_order_id`` makes repeats harmless). Two identical requests in one second would
    sign identically, so :meth:`headers` reports how long to wait for the next second.
    """

    key: str
    secret: str
    _used: dict[str, int] = field(default_factory=dict)

    def headers(self, call: Call[Any]) -> tuple[dict[str, str], float]:
        """Return the signed headers, or ``({}, delay)`` when the caller must wait ``delay`` s."""
        now = time.time()
        timestamp = str(int(now))
        signature = sign(self.secret, timestamp, call.method, call.path_with_query, call.content)
        checked = not (call.method == "GET" or (call.method, call.path) == ("POST", "/v1/orders"))
        if checked:
            if self._used.get(signature) == int(now):
                return {}, int(now) + 1 - now + 0.001
            self._used = {s: t for s, t in self._used.items() if t == int(now)}
            self._used[signature] = int(now)
        return {"CFX-KEY": self.key, "CFX-TIMESTAMP": timestamp, "CFX-SIGNATURE": signature}, 0.0


#: The longest wait between two attempts to reach an exchange that refuses connections.
RECONNECT_WAIT_S = 1.0
#: How long clients keep trying an exchange that refuses connections (a restart) by default.
RECONNECT_S = 15.0


@dataclass
class Policy:
    """When to retry: what failed, whether the call is safe to repeat, and how long to wait.

    A connection the exchange's host refused (nothing listens: the exchange is restarting,
    replaying its journal) is tried again after ``retries`` too, until ``reconnect_s``
    seconds have passed since the call's first failure.
    """

    retries: int = 3
    backoff_s: float = 0.25
    reconnect_s: float = 0.0

    def delay(
        self, attempt: int, call: Call[Any], error: Exception, waited_s: float | None = None
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up and raise.

        ``waited_s``: the time since the call's first attempt failed (without it, a refused
        connection gets ``retries`` attempts only).
        """
        wait = self.backoff_s * 2 ** min(attempt, 32)
        if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)):
            # never reached the exchange: always safe
            if attempt < self.retries:
                return wait
            if waited_s is not None and waited_s < self.reconnect_s and refused(error):
                return min(wait, RECONNECT_WAIT_S)
            return None
        if attempt >= self.retries:
            return None
        if isinstance(error, httpx.TransportError):
            return wait if call.idempotent else None
        if isinstance(error, CfxError) and signature_reused(error):
            return max(wait, 1.001 - time.time() % 1)  # the next second signs differently
        if isinstance(error, CfxError):
            if error.status == 429:
                return max(wait, error.retry_after or 0.0)
            if error.status == 408 or (error.status == 503 and error.code != "JOURNAL_BROKEN"):
                return wait  # refused before anything changed (408: it never arrived whole)
            if error.status is not None and error.status >= 500 and call.idempotent:
                return wait
        return None


@dataclass
class Attempts:
    """One call's failed attempts so far, and what the next failure leads to."""

    policy: Policy
    url: str
    call: Call[Any]
    count: int = 0
    failed_at: float = 0.0  #: monotonic time of the first failure
    lost: httpx.TransportError | None = None  #: an attempt that went out, its answer lost

    def failed(self, error: httpx.TransportError | CfxError) -> float:
        """Seconds to wait before trying again; or raise what the call ends with."""
        self.failed_at = self.failed_at or time.monotonic()
        if isinstance(error, httpx.TransportError) and not isinstance(
            error, (httpx.ConnectError, httpx.ConnectTimeout)
        ):
            self.lost = error  # went out: refusals after it do not make it undone
        delay = self.policy.delay(self.count, self.call, error, time.monotonic() - self.failed_at)
        if delay is None:
            if isinstance(error, httpx.TransportError):
                raise unreachable(self.url, self.lost or error, self.call) from error
            raise error
        self.count += 1
        return delay


def refused(error: BaseException) -> bool:
    """Whether a connection failed because nothing listens at the address (not a name that
    does not resolve, a timeout or a certificate)."""
    seen: BaseException | None = error
    for _ in range(32):  # the chain of causes, not trusted to end
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def unreachable(url: str, error: Exception, call: Call[Any] | None = None) -> ExchangeUnreachable:
    """The exception for a request that got no answer: :class:`OutcomeUnknown` when it may
    have reached the exchange, else :class:`ExchangeUnreachable`."""
    if call is None or isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)):
        return ExchangeUnreachable(
            "UNREACHABLE",
            f"cannot reach the exchange at {url} ({type(error).__name__}: {error}); is `cfx "
            "serve` running there? Give the right address with --url or CFX_URL.",
        )
    client_order_id = None
    advice = "it may have been carried out: read the state before repeating it"
    if (call.method, call.path) == ("POST", "/v1/orders") and isinstance(call.body, dict):
        client_order_id = call.body.get("client_order_id")
        advice = (
            f"the order may have been placed: place it again with client_order_id="
            f"{client_order_id!r} (it cannot trade twice) or look for it with orders()"
        )
    return OutcomeUnknown(
        "NO_ANSWER",
        f"{call.method} {call.path} went to {url} and no answer came back "
        f"({type(error).__name__}: {error}); {advice}",
        client_order_id,
    )


def missing_credentials(call: Call[Any]) -> CfxError:
    if call.admin:
        return CfxError(
            "NO_ADMIN_TOKEN",
            f"{call.method} {call.path} needs the admin token: pass admin_token= "
            "(the CLI reads --admin-token or CFX_ADMIN_TOKEN)",
        )
    return CfxError(
        "NO_CREDENTIALS",
        f"{call.method} {call.path} is private: pass key= and secret= "
        "(the CLI reads --key/--secret or CFX_API_KEY/CFX_API_SECRET)",
    )


def build_request(
    call: Call[Any], signer: Signer | None, admin_token: str | None
) -> tuple[dict[str, str], float]:
    """The headers for one attempt of ``call`` (or a delay to wait first)."""
    headers = {"Content-Type": "application/json"} if call.body is not None else {}
    if call.admin:
        if not admin_token:
            raise missing_credentials(call)
        headers["Authorization"] = f"Bearer {admin_token}"
    elif call.signed:
        if signer is None:
            raise missing_credentials(call)
        signed, wait = signer.headers(call)
        if wait:
            return {}, wait
        headers |= signed
    return headers, 0.0


def read_response(call: Call[T], response: httpx.Response) -> T:
    """Parse a response, or raise the :class:`CfxError` it carries."""
    if response.status_code >= 400:
        raise http_error(
            response.status_code, response.content, response.headers.get("Retry-After")
        )
    try:
        data = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        data = response.text
    return call.parse(data)
