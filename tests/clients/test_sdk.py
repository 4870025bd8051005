"""The synchronous SDK against a real server: every endpoint, errors, safe retries."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest

from bench.server import Server
from clients import (
    AsyncClient,
    AuthenticationError,
    CfxError,
    Client,
    ExchangeUnreachable,
    NotFound,
    OutcomeUnknown,
    Rejected,
)
from clients._core import Policy, amend_order, place_order
from tests.clients.conftest import Trader


def test_public_endpoints(admin: Client, symbol: str) -> None:
    assert admin.health()["status"] == "ok"
    contracts = admin.contracts()
    assert symbol in {c.symbol for c in contracts}
    contract = admin.contract(symbol)
    assert contract.tick_size == Decimal("0.01") and contract.product == "H100"
    book = admin.book(symbol, depth=5)
    assert book.symbol == symbol and isinstance(book.sequence, int)
    assert admin.trades(symbol, limit=5) == [] or admin.trades(symbol)[0].trade_id > 0
    assert isinstance(admin.candles(symbol, "1h"), list)
    assert isinstance(admin.settlement_prices(symbol), list)
    assert admin.index("H100").product == "H100"


def test_trading_round_trip(trader: Trader, admin: Client, symbol: str) -> None:
    alice, bob = trader("sdk-alice"), trader("sdk-bob")
    bid = alice.place_order(symbol, "buy", 5, "3.40", post_only=True)
    assert bid.status == "open" and bid.price == Decimal("3.40") and bid.client_order_id
    assert [o.order_id for o in alice.orders(symbol=symbol, status="open")] == [bid.order_id]
    amended = alice.amend_order(bid.order_id, quantity=4)
    assert amended.remaining_quantity == 4
    assert alice.book(symbol).bids[0] == (Decimal("3.40"), 4)
    hit = bob.place_order(symbol, "sell", 3, None)
    assert hit.status == "filled" and hit.fills[0].liquidity == "taker"
    assert hit.fills[0].price == Decimal("3.40")
    assert alice.order(bid.order_id).filled_quantity == 3
    assert alice.fills(symbol)[0].quantity == 3
    assert {p.symbol: p.quantity for p in alice.positions()}[symbol] == 3
    account = alice.account()
    assert account.margin_locked > 0 and account.cash <= Decimal("100000.00")
    assert alice.cancel_order(bid.order_id).status == "cancelled"
    later = alice.place_order(symbol, "buy", 1, "3.30")
    assert [o.order_id for o in alice.orders(symbol, limit=1)] == [later.order_id]
    assert [o.order_id for o in alice.orders(symbol, before=later.order_id)] == [bid.order_id]
    assert alice.fills(limit=1, before=hit.fills[0].trade_id) == []
    assert alice.cancel_all(symbol) == [alice.order(later.order_id)]
    assert alice.cancel_after(30)["cancel_at"] == "2026-12-01T00:00:30.000Z"
    assert alice.cancel_after(0)["cancel_at"] is None
    assert alice.deliveries() == []
    assert admin.ledger_check()["balanced"] is True


def test_idempotent_retry_after_a_lost_answer(server: Server, admin: Client, symbol: str) -> None:
    """The first answer to an order is lost; the retry returns the same order, not a new one."""
    creds = admin.create_account("sdk-lossy", deposit="10000.00")

    class LoseFirstAnswer(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()
            self.posts = 0

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.inner.handle_request(request)
            if request.method == "POST" and request.url.path == "/v1/orders":
                self.posts += 1
                if self.posts == 1:
                    response.read()
                    raise httpx.ReadTimeout("answer lost", request=request)
            return response

        def close(self) -> None:
            self.inner.close()

    transport = LoseFirstAnswer()
    with Client(server.url, creds.api_key, creds.api_secret, transport=transport) as lossy:
        order = lossy.place_order(symbol, "buy", 1, "3.10")
        assert transport.posts == 2
        assert [o.order_id for o in lossy.orders(symbol=symbol)] == [order.order_id]


def test_an_order_whose_answers_are_all_lost_can_be_placed_again_safely(
    server: Server, admin: Client, symbol: str
) -> None:
    """Every answer is lost: the error says so and carries the client_order_id, and placing
    the order again with it returns the one order, not a second."""
    creds = admin.create_account("sdk-deaf", deposit="10000.00")

    class LoseEveryAnswer(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.inner.handle_request(request)
            if request.method in ("POST", "PATCH"):
                response.read()
                raise httpx.ReadTimeout("answer lost", request=request)
            return response

        def close(self) -> None:
            self.inner.close()

    with Client(server.url, creds.api_key, creds.api_secret, transport=LoseEveryAnswer(),
                retries=2) as deaf, Client(server.url, creds.api_key, creds.api_secret) as ok:  # fmt: skip
        with pytest.raises(OutcomeUnknown) as lost:
            deaf.place_order(symbol, "buy", 1, "3.11")
        assert isinstance(lost.value, ExchangeUnreachable) and lost.value.code == "NO_ANSWER"
        assert lost.value.client_order_id and "client_order_id" in lost.value.message
        again = ok.place_order(symbol, "buy", 1, "3.11", client_order_id=lost.value.client_order_id)
        assert [o.order_id for o in ok.orders(symbol=symbol)] == [again.order_id]
        with pytest.raises(OutcomeUnknown) as amend:  # not repeated: it may have been done
            deaf.amend_order(again.order_id, quantity=2)
        assert amend.value.client_order_id is None and "read the state" in amend.value.message
        assert ok.order(again.order_id).quantity == 2


def test_two_clients_of_one_key_may_send_the_same_request_in_one_second(
    server: Server, admin: Client, symbol: str
) -> None:
    """The second is refused as a reused signature, which changed nothing: it is sent again
    in the next second."""
    creds = admin.create_account("sdk-pair", deposit="10000.00")
    with (
        Client(server.url, creds.api_key, creds.api_secret) as one,
        Client(server.url, creds.api_key, creds.api_secret) as two,
    ):
        for _ in range(3):
            assert one.cancel_all(symbol) == [] and two.cancel_all(symbol) == []


def test_errors_carry_codes(server: Server, trader: Trader, symbol: str) -> None:
    poor = trader("sdk-poor", deposit="1.00")
    with pytest.raises(NotFound) as unknown:
        poor.place_order("H100-1999-01-01", "buy", 1, "3.00")
    assert unknown.value.code == "UNKNOWN_SYMBOL" and unknown.value.status == 404
    with pytest.raises(Rejected) as margin:
        poor.place_order(symbol, "buy", 1000, "3.50")
    assert margin.value.code == "INSUFFICIENT_MARGIN"
    with pytest.raises(Rejected) as tick:
        poor.place_order(symbol, "buy", 1, "3.505")
    assert tick.value.code == "INVALID_TICK"
    with pytest.raises(NotFound) as missing:
        poor.cancel_order(999_999)
    assert missing.value.code == "ORDER_NOT_FOUND"
    with (
        Client(server.url, poor.key, "0" * 64) as wrong,
        pytest.raises(AuthenticationError) as unauthorized,
    ):
        wrong.account()
    assert unauthorized.value.code == "UNAUTHORIZED"
    with Client(server.url) as anonymous_client, pytest.raises(CfxError) as anonymous:
        anonymous_client.account()
    assert anonymous.value.code == "NO_CREDENTIALS"
    with pytest.raises(TypeError, match="exact"):
        place_order(symbol, "buy", 1, 3.5)  # type: ignore[arg-type]


def test_unreachable_says_how_to_fix_it() -> None:
    with (
        Client("http://127.0.0.1:9", retries=1, reconnect_s=0) as client,
        pytest.raises(ExchangeUnreachable) as error,
    ):
        client.health()
    assert "cfx serve" in str(error.value) and "--url" in str(error.value)


def test_identical_requests_in_one_second_are_both_accepted(trader: Trader, symbol: str) -> None:
    """The exchange refuses a reused signature; the SDK waits for a fresh one instead."""
    bot = trader("sdk-twice")
    assert bot.cancel_all(symbol) == []
    assert bot.cancel_all(symbol) == []


def test_retry_policy() -> None:
    order, amend = place_order("X", "buy", 1, "1.00"), amend_order(1, quantity=1)
    policy = Policy(retries=2, backoff_s=0.1)
    request = httpx.Request("POST", "http://x")
    assert policy.delay(0, amend, httpx.ConnectError("refused", request=request)) == 0.1
    assert policy.delay(0, amend, httpx.ReadTimeout("lost", request=request)) is None
    assert policy.delay(1, order, httpx.ReadTimeout("lost", request=request)) == 0.2
    assert policy.delay(2, order, httpx.ReadTimeout("lost", request=request)) is None
    limited = CfxError("RATE_LIMITED", "slow down", 429, retry_after=3.0)
    assert policy.delay(0, amend, limited) == 3.0
    refused = CfxError("INSUFFICIENT_MARGIN", "no", 422)
    assert policy.delay(0, order, refused) is None


def test_an_answer_lost_before_a_restart_is_still_an_outcome_unknown() -> None:
    """The order went out when the exchange died; the retries then found it down: it may
    have been placed, so the error names its client_order_id."""
    sent: list[str] = []

    class DiesThenRefuses(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request.method)
            if len(sent) == 1:
                raise httpx.RemoteProtocolError("connection closed", request=request)
            refused = httpx.ConnectError("refused", request=request)
            refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
            raise refused

    with Client("http://127.0.0.1:9", "cfx_key", "0" * 64, transport=DiesThenRefuses(),
                reconnect_s=2.0) as bot, pytest.raises(OutcomeUnknown) as lost:  # fmt: skip
        bot.place_order("H100-2026-12-10", "buy", 1, "3.00", client_order_id="bot-7")
    assert lost.value.client_order_id == "bot-7" and len(sent) == 5  # 3 retries, 1 more

    class DiesThenRefusesAsync(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return DiesThenRefuses().handle_request(request)

    async def place() -> None:
        async with AsyncClient("http://127.0.0.1:9", "cfx_key", "0" * 64, reconnect_s=2.0,
                               transport=DiesThenRefusesAsync()) as bot:  # fmt: skip
            await bot.place_order("H100-2026-12-10", "buy", 1, "3.00", client_order_id="bot-8")

    sent.clear()
    with pytest.raises(OutcomeUnknown) as lost_async:
        asyncio.run(place())
    assert lost_async.value.client_order_id == "bot-8" and len(sent) == 5


def test_a_refused_connection_is_retried_through_a_restart() -> None:
    amend, request = amend_order(1, quantity=1), httpx.Request("PATCH", "http://x")
    refused = httpx.ConnectError("refused", request=request)
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    policy = Policy(retries=2, backoff_s=0.25, reconnect_s=4.0)
    assert [policy.delay(n, amend, refused, waited_s=0.0) for n in range(3)] == [0.25, 0.5, 1.0]
    assert policy.delay(2, amend, refused) is None  # without the time: retries only
    assert policy.delay(9, amend, refused, waited_s=3.9) == 1.0  # at most 1 s apart
    assert policy.delay(10, amend, refused, waited_s=4.0) is None  # 4 s after the first
    assert policy.delay(5000, amend, refused, waited_s=1.0) == 1.0  # no overflow
    assert Policy(retries=2, reconnect_s=0).delay(2, amend, refused) is None
    # not refused by the host: a name that does not resolve, a timeout, an answer lost
    unknown = httpx.ConnectError("no such host", request=request)
    unknown.__cause__ = OSError(-2, "Name or service not known")
    for error in (unknown, httpx.ConnectTimeout("slow", request=request),
                  httpx.ReadTimeout("lost", request=request)):  # fmt: skip
        assert policy.delay(2, amend, error, waited_s=0.5) is None


def test_refusals_made_before_anything_changed_are_retried_even_for_an_amend() -> None:
    """A 408 (the request never arrived whole) and a 503 other than JOURNAL_BROKEN changed
    nothing: even an amend, which is not safe to send twice, is sent again."""
    order, policy = amend_order(1, quantity=2), Policy(retries=2)
    slow = CfxError("REQUEST_TIMEOUT", "the request did not arrive whole", status=408)
    away = CfxError("UNAVAILABLE", "try again later", status=503)
    broken = CfxError("JOURNAL_BROKEN", "may be carried out", status=503)
    assert [policy.delay(n, order, slow) for n in range(3)] == [0.25, 0.5, None]
    assert policy.delay(0, order, away) == 0.25
    assert policy.delay(0, order, broken) is None


def test_a_feed_reconnects_through_refusals_for_now_not_through_refusals_for_good() -> None:
    from clients.errors import error_for
    from clients.feed import connect_again

    def refusal(status: int, code: str) -> CfxError:
        return error_for(status, {"error": {"code": code, "message": "..."}})

    assert connect_again(refusal(429, "RATE_LIMITED"))  # too many connections: one closes
    assert connect_again(refusal(503, "UNAVAILABLE"))
    assert connect_again(ExchangeUnreachable("UNREACHABLE", "nothing listens"))
    assert not connect_again(refusal(401, "UNAUTHORIZED"))  # a revoked key stays revoked


def test_prices_go_out_as_plain_decimals_and_symbols_as_one_path_segment(
    admin: Client, symbol: str
) -> None:
    from clients._core import price_str

    assert [price_str(p) for p in ("3.50", Decimal("3.5"), 3, Decimal(4).scaleb(1))] == [
        "3.50", "3.5", "3", "40",
    ]  # fmt: skip
    for inexact in (3.5, True):
        with pytest.raises(TypeError, match="exact"):
            price_str(inexact)  # type: ignore[arg-type]
    for odd in (symbol + "#x", symbol + "/../x", symbol + "?depth=1"):
        with pytest.raises(NotFound) as unknown:
            admin.contract(odd)
        assert unknown.value.code in ("UNKNOWN_SYMBOL", "NOT_FOUND")  # never another contract
