"""The exchange state machine: worked examples in exact cents, and conservation of money."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from exchange.engine import CANCELLED
from exchange.reasons import Reason
from exchange.sequencer.state import RISK_VERSION, ExchangeState, Outcome, Refused, to_ns

SYMBOL = "H100-2026-12-07"


def ns(text: str) -> int:
    return to_ns(datetime.fromisoformat(text).replace(tzinfo=UTC))


LISTING = {
    "op": "list",
    "symbol": SYMBOL,
    "product": "H100",
    "delivery_start": ns("2026-12-07T00:00:00"),
    "delivery_end": ns("2026-12-08T00:00:00"),
    "last_trade_time": ns("2026-12-06T23:00:00"),
    "tick_cents": 1,
    "margin_bps": 2000,
    "band_bps": 5000,
    "maker_fee_bps": 0,
    "taker_fee_bps": 10,
    "reference": 350,
    "n_ticks": 10_000,
}


class Exchange:
    """A state with a command counter, the way the sequencer drives it."""

    def __init__(self, backend: str = "reference") -> None:
        self.state = ExchangeState(backend=backend)
        self.seq = 0
        self.postings: list[dict[str, Any]] = []

    def __call__(self, **command: Any) -> Outcome:
        self.seq += 1
        command.setdefault("ts", self.state.now)
        outcome = self.state.apply(self.seq, command)
        self.postings.extend(outcome.postings)
        return outcome

    def order(
        self, account: int, side: str, price: int, quantity: int, **extra: Any
    ) -> dict[str, Any]:
        reply: dict[str, Any] = self(
            op="place",
            account_id=account,
            symbol=SYMBOL,
            side=side,
            type="limit",
            price=price,
            quantity=quantity,
            **extra,
        ).reply
        return reply

    def cash(self, account: int) -> tuple[int, int, int]:
        acc = self.state.accounts[account]
        return acc.available, acc.margin, acc.escrow


@pytest.fixture
def ex() -> Exchange:
    exchange = Exchange()
    exchange(
        op="list", ts=ns("2026-12-01T00:00:00"), **{k: v for k, v in LISTING.items() if k != "op"}
    )
    exchange(op="create_account", name="provider", role="provider", deposit=100_000)
    exchange(op="create_account", name="lab", role="trader", deposit=100_000)
    return exchange


def test_day_contract_from_first_trade_to_settled_delivery(ex: Exchange) -> None:
    """24 GPU-hours at $3.50, 20 delivered: every cent accounted for."""
    assert ex.order(1, "sell", 350, 24)["status"] == "open"
    assert ex.cash(1) == (98_320, 1_680, 0)  # 20% of 24 x $3.50 locked
    filled = ex.order(2, "buy", 360, 24)
    assert (filled["status"], filled["fills"][0]["price"]) == ("filled", 350)
    assert ex.cash(2) == (98_311, 1_680, 0)  # 10 bps taker fee on $84.00 is 9 cents (rounded up)

    ran = ex(op="advance", to=ns("2026-12-07T00:30:00")).ran
    contract = ex.state.contracts[SYMBOL]
    assert (contract.status, contract.final_price) == ("delivering", 350)
    [assignment] = [e for e in ran if e["event"] == "delivery_assignment"]
    assert assignment["deliveries"] == [
        {"delivery_id": 1, "provider_account": 1, "consumer_account": 2, "gpu_hours": 24}
    ]
    assert ex.cash(2) == (91_591, 0, 8_400)  # the invoice moved to escrow, margin released
    [delivery] = ex.state.deliveries.values()
    assert (delivery.provider, delivery.consumer, delivery.gpu_hours) == (1, 2, 24)

    ex(op="attest", account_id=1, delivery_id=1, gpu_hours=20, period_start="a", period_end="b")
    ran = ex(op="advance", to=ns("2026-12-09T00:00:00")).ran  # delivery end plus 24 h grace
    assert delivery.status == "settled"
    assert [
        (e["delivery_id"], e["status"]) for e in ran if e["event"] == "delivery_settlement"
    ] == [(1, "settled")]
    # provider: paid 20 h x $3.50 = $70.00, penalty 50% of the 4 h shortfall = $7.00
    assert ex.cash(1) == (106_300, 0, 0)
    # consumer: refund 4 h = $14.00, plus the $7.00 penalty
    assert ex.cash(2) == (93_691, 0, 0)
    assert contract.status == "settled"


@pytest.mark.parametrize("version", [3, 4])
def test_an_attestation_covers_hours_of_the_delivery_window_gone_by(
    ex: Exchange, version: int
) -> None:
    ex(op="rules", risk_version=version)
    ex.order(1, "sell", 350, 24)
    ex.order(2, "buy", 350, 24)
    ex(op="advance", to=ns("2026-12-07T10:30:00"))  # delivering since 00:00

    def attest(start: str, end: str) -> Reason | None:
        try:
            ex(op="attest", account_id=1, delivery_id=1, gpu_hours=1, period_start=start,
               period_end=end)  # fmt: skip
        except Refused as refused:
            return refused.reason
        return None

    wrong = [
        ("a", "b"),
        ("2026-12-07T00:00:00", "2026-12-07T01:00:00"),  # no offset
        ("2026-12-07T02:00:00Z", "2026-12-07T01:00:00Z"),  # backwards
        ("2026-12-06T23:00:00Z", "2026-12-07T01:00:00Z"),  # before the window
        ("2026-12-07T10:00:00Z", "2026-12-07T11:00:00Z"),  # ends after now
    ]

    def delivery_state() -> tuple[object, ...]:
        delivery = ex.state.deliveries[1]
        bonds = [a.bond for a in ex.state.accounts.values()]
        return ex.state.state_hash(), bonds, list(delivery.attestations), delivery.attested

    before = delivery_state()
    refusals = [attest(start, end) for start, end in wrong]
    if version < 4:  # recorded as given
        assert refusals == [None] * len(wrong)
        return
    assert refusals == [Reason.ATTESTATION_PERIOD] * len(wrong)
    assert delivery_state() == before
    assert attest("2026-12-07T00:00:00Z", "2026-12-07T10:30:00+00:00") is None
    assert attest("2026-12-07T09:00:00+09:00", "2026-12-07T10:00:00.5Z") is None  # 00:00 UTC
    assert ex.state.deliveries[1].attested == 2
    assert [(a["period_start"], a["period_end"]) for a in ex.state.deliveries[1].attestations] == [
        ("2026-12-07T00:00:00.000Z", "2026-12-07T10:30:00.000Z"),
        ("2026-12-07T00:00:00.000Z", "2026-12-07T10:00:00.500Z"),  # as the exchange writes times
    ]


@pytest.mark.parametrize("flush_every", [1, 2, 3, 1024])
def test_every_fill_is_kept_when_the_order_it_closes_moves_to_the_columns(
    ex: Exchange, flush_every: int
) -> None:
    ex.state.orders.flush_every = flush_every
    replies, trades = [], 0
    for i in range(1, 1100 if flush_every == 1024 else 60):
        maker, taker = (1, 2) if i % 2 else (2, 1)  # by turns, so no position grows
        maker_side, taker_side = ("sell", "buy") if i % 4 < 2 else ("buy", "sell")
        for _ in range(1 + i % 3):  # one to three resting orders, swept by one
            replies.append(ex.order(maker, maker_side, 350, 1 + i % 5))
        replies.append(ex.order(taker, taker_side, 350, (1 + i % 3) * (1 + i % 5)))
        trades += 1 + i % 3
    assert len(ex.state.orders.taker_fills()) == trades
    for reply in replies:
        order = ex.state.orders[reply["order_id"]]
        assert order.status == "filled" and sum(f["quantity"] for f in order.fills) == order.filled
        if reply["status"] == "filled":  # a taker: its reply showed every fill
            assert order.fills == reply["fills"]


def test_daily_settlement_moves_variation_margin(ex: Exchange) -> None:
    ex(op="advance", to=ns("2026-12-01T23:40:00"))  # inside the last 30 minutes of the day
    ex.order(1, "sell", 350, 10)
    ex.order(2, "buy", 350, 10)
    ex(op="create_account", name="mm", role="trader", deposit=100_000)
    ex.order(3, "sell", 360, 1)
    ex.order(2, "buy", 360, 1)  # the last trade: VWAP window holds both trades
    ex(op="advance", to=ns("2026-12-02T00:00:00"))
    [(_, price)] = ex.state.contracts[SYMBOL].settlements
    assert price == 351  # (10 x 350 + 1 x 360) / 11 = 350.9 -> 351 ticks
    # the short lost 10 x 1 tick, the long gained 10 x 1 and lost 9 on the 1 lot at 360
    assert ex.state.accounts[1].available + ex.state.accounts[1].margin == 100_000 - 10
    assert ex.state.accounts[3].available + ex.state.accounts[3].margin == 100_000 + 9


def _thin_long(ex: Exchange, deposit: int, version: int) -> None:
    """Account 3, long 10 at $3.50 on ``deposit`` cents; then a day whose settlement price
    is $2.50 (the only trade in the window), which costs it $10.00 of variation margin."""
    if version > 1:
        ex(op="rules", risk_version=version)
    ex(op="create_account", name="thin", role="trader", deposit=deposit)
    ex.order(1, "sell", 350, 10)
    ex.order(3, "buy", 350, 10)  # the taker fee is 4 cents


def _settle_at_250(ex: Exchange) -> list[dict[str, Any]]:
    ex(op="advance", to=ns("2026-12-01T23:40:00"))
    ex.order(1, "sell", 250, 1)
    ex.order(2, "buy", 250, 1)
    ran: list[dict[str, Any]] = ex(op="advance", to=ns("2026-12-02T00:00:00")).ran
    return [r for r in ran if r["event"] == "margin_call"]


@pytest.mark.parametrize("version", [1, 2])
def test_margin_call_cancels_the_orders_that_raise_an_uncovered_requirement(
    ex: Exchange, version: int
) -> None:
    _thin_long(ex, 2_000, version)
    adding = ex.order(3, "buy", 200, 10)  # worst case 20: $14.00 of margin on $19.96
    closing = ex.order(3, "sell", 400, 5)  # closes part of the position: kept
    ex.order(2, "buy", 180, 5)  # an account with cash to spare keeps its order
    called = _settle_at_250(ex)
    # $9.96 left, and at the new reference its worst case of 20 needs $10.00
    status = {o.order_id: o.status for o in ex.state.orders.values()}
    if version == 1:  # as journals written before margin calls replay: none
        assert called == [] and status[adding["order_id"]] == "open"
        return
    time = "2026-12-02T00:00:00.000Z"
    assert called == [{"event": "margin_call", "account_id": 3, "cancelled": 1, "time": time}]
    assert (status[adding["order_id"]], status[closing["order_id"]]) == ("cancelled", "open")
    acc = ex.state.accounts[3]
    assert (acc.open_orders, acc.available + acc.margin, acc.margin) == (1, 996, 500)
    assert ex.state.accounts[2].open_orders == 1


def test_a_margin_call_cancels_sells_that_could_leave_a_bigger_short(ex: Exchange) -> None:
    _thin_long(ex, 2_000, 2)
    ex.order(3, "buy", 200, 10)
    ex.order(3, "sell", 400, 15)
    ex.order(3, "sell", 410, 10)  # 25 in all: filled, short 15, more than the long 10
    [called] = _settle_at_250(ex)
    assert called["cancelled"] == 3
    acc = ex.state.accounts[3]
    assert (acc.open_orders, acc.margin) == (0, 500)
    assert {o.cancel_reason for o in ex.state.orders.select(3, statuses=["cancelled"])} == {
        "margin_call"
    }


def test_a_cancelled_order_says_why(ex: Exchange) -> None:
    ex(op="rules", risk_version=RISK_VERSION)

    def why(order: dict[str, Any]) -> str | None:
        view = ex.state.order_view(ex.state.orders[order["order_id"]])
        assert (view["status"] == "cancelled") == (view["cancel_reason"] is not None)
        return view["cancel_reason"]  # type: ignore[no-any-return]

    resting = ex.order(1, "sell", 360, 2)
    assert why(resting) is None
    assert why(ex.order(2, "buy", 340, 1, time_in_force="IOC")) == "ioc_remainder"
    assert why(ex.order(2, "buy", 340, 1, time_in_force="FOK")) == "fok_not_filled"
    assert why(ex.order(1, "buy", 360, 1)) == "self_trade"
    filled = ex.order(2, "buy", 360, 1)
    assert filled["status"] == "filled" and why(filled) is None
    market = ex(op="place", account_id=2, symbol=SYMBOL, side="buy", type="market", quantity=5)
    assert why(market.reply) == "no_liquidity"  # the 1 left of the resting sell, then nothing
    assert why(resting) is None  # filled
    asked = ex.order(1, "sell", 370, 1)
    ex(op="cancel", account_id=1, order_id=asked["order_id"])
    assert why(asked) == "user"
    oldest = ex.order(2, "buy", 355, 1)
    ex.order(2, "sell", 355, 1, self_trade_prevention="cancel_oldest")  # rests
    assert why(oldest) == "self_trade"  # cancelled by the account's own later order
    ex(op="kill_switch", account_id=2, disabled=True)
    ex(op="kill_switch", account_id=2, disabled=False)
    killed = ex.order(2, "buy", 300, 1)
    ex(op="kill_switch", account_id=2, disabled=True)
    assert why(killed) == "kill_switch"
    ex(op="kill_switch", account_id=2, disabled=False)
    timed = ex.order(2, "buy", 300, 1)
    ex(op="cancel_after", account_id=2, timeout_ns=10**9)
    ex(op="advance", to=ex.state.now + 2 * 10**9)
    assert why(timed) == "cancel_after"
    ended = ex.order(2, "buy", 300, 1)
    ex(op="advance", to=ns("2026-12-06T23:00:00"))  # trading ends
    assert why(ended) == "trading_ended"


@pytest.mark.parametrize("version", [1, 2])
def test_an_account_short_of_margin_can_still_close_its_position(
    ex: Exchange, version: int
) -> None:
    _thin_long(ex, 1_500, version)
    ex.order(3, "sell", 400, 4)
    called = _settle_at_250(ex)
    acc = ex.state.accounts[3]
    assert acc.available + acc.margin == 496  # its long 10 needs $5.00
    assert called == []  # short of cash, but it has no order that raises the requirement
    with pytest.raises(Refused) as refused:
        ex.order(3, "buy", 250, 1)  # would raise it
    assert refused.value.reason is Reason.INSUFFICIENT_MARGIN
    if version == 1:
        with pytest.raises(Refused):
            ex.order(3, "sell", 300, 6)
        return
    assert ex.order(3, "sell", 300, 6)["status"] == "open"  # sells 10 in all: closes it
    assert ex.order(3, "sell", 300, 10)["status"] == "open"  # a short of 10 at worst: no more
    with pytest.raises(Refused):
        ex.order(3, "sell", 300, 1)  # a short of 11 would raise it


def test_margin_calls_run_again_only_after_something_changed() -> None:
    """A day of 60 s batch auctions: the calls at the settlement cancel the short account's
    raising order; the auctions after it, which match nothing, call no one again (it stays
    short, with only an order that reduces its position left); the next command's do."""
    ex, symbol = _batch_exchange()
    ex(op="rules", risk_version=RISK_VERSION)
    for name, deposit in (("a", 100_000), ("thin", 700), ("b", 100_000)):
        ex(op="create_account", name=name, deposit=deposit)
    place = {"op": "place", "symbol": symbol, "type": "limit"}
    ex(**place, account_id=2, side="buy", price=350, quantity=5)
    ex(**place, account_id=1, side="sell", price=350, quantity=5)
    ex(op="advance", to=ns("2026-12-05T23:40:00"))  # an auction matched them: 2 is long 5
    ex(**place, account_id=2, side="buy", price=300, quantity=3)  # raises its requirement
    ex(**place, account_id=2, side="sell", price=400, quantity=2)  # does not
    ex(**place, account_id=1, side="sell", price=250, quantity=1)
    ex(**place, account_id=3, side="buy", price=250, quantity=1)  # the day settles at 2.50
    calls: list[int] = []
    original = ex.state._margin_calls

    def counted(t: int) -> None:
        calls.append(t)
        original(t)

    ex.state._margin_calls = counted  # type: ignore[method-assign]
    ran = ex(op="advance", to=ns("2026-12-06T23:40:00")).ran
    called = [(r["account_id"], r["cancelled"]) for r in ran if r["event"] == "margin_call"]
    assert called == [(2, 1)]  # the buy; 5 x $1.00 of variation margin left it $1.98
    acc = ex.state.accounts[2]
    assert acc.open_orders == 1 and acc.available + acc.margin < ex.state.requirement(acc)
    # the first moment of the command (whose auction traded), then the settlement
    assert calls == [ns("2026-12-05T23:41:00"), ns("2026-12-06T00:00:00")]
    ex(op="advance", to=ns("2026-12-06T23:42:00"))
    assert calls[2:] == [ns("2026-12-06T23:41:00")]


def test_a_state_saved_before_switches_were_indexed_still_fires_them(ex: Exchange) -> None:
    ex.order(2, "buy", 300, 1)
    ex(op="cancel_after", account_id=2, timeout_ns=10**9)
    ex(op="cancel_after", account_id=1, timeout_ns=10**9)
    ex(op="cancel_after", account_id=1, timeout_ns=0)  # disarmed
    # as a snapshot from then loads: each account with its own deadline, no index
    for account_id, deadline in ex.state.__dict__.pop("_armed_switches").items():
        ex.state.accounts[account_id].cancel_deadline = deadline  # type: ignore[attr-defined]
    assert ex.state.next_due() == ex.state.now + 10**9
    ran = ex(op="advance", to=ex.state.now + 2 * 10**9).ran
    assert [(r["account_id"], r["cancelled"]) for r in ran if r["event"] == "cancel_after"] == [
        (2, 1)
    ]
    assert ex.state._armed() == {}


def test_no_margin_call_while_cash_covers_the_requirement(ex: Exchange) -> None:
    ex(op="rules", risk_version=2)
    ex.order(1, "sell", 350, 10)
    ex.order(2, "buy", 350, 10)
    ex.order(2, "buy", 300, 10)
    ran = ex(op="advance", to=ns("2026-12-02T00:00:00")).ran
    assert all(r["event"] != "margin_call" for r in ran)
    assert ex.state.accounts[2].open_orders == 1


def test_the_risk_version_only_rises_to_what_the_exchange_runs(ex: Exchange) -> None:
    assert ex(op="rules", risk_version=2).reply == {"risk_version": 2}
    for version in (1, RISK_VERSION + 1):
        with pytest.raises(Refused) as refused:
            ex(op="rules", risk_version=version)
        assert refused.value.reason is Reason.INVALID_REQUEST
    assert ex.state.rules.risk_version == 2
    assert ex(op="rules", risk_version=RISK_VERSION).reply == {"risk_version": RISK_VERSION}


def test_settlement_without_trades_in_the_window_uses_the_last_price(ex: Exchange) -> None:
    ex.order(1, "sell", 350, 1)
    ex.order(2, "buy", 350, 1)
    ex.order(1, "sell", 340, 5)  # best ask now below the last trade: the price is clamped
    ex(op="advance", to=ns("2026-12-02T00:00:00"))
    assert ex.state.contracts[SYMBOL].settlements[-1][1] == 340


def test_order_refused_without_margin_changes_nothing(ex: Exchange) -> None:
    ex(op="create_account", name="poor", role="trader", deposit=100)
    before = ex.state.state_hash()
    with pytest.raises(Refused) as refused:
        ex.order(3, "buy", 350, 24)  # needs $16.80 of margin, has $1.00
    assert refused.value.reason is Reason.INSUFFICIENT_MARGIN
    assert ex.state.state_hash() == before


def test_price_band_and_post_only_refusals(ex: Exchange) -> None:
    with pytest.raises(Refused) as refused:
        ex.order(1, "sell", 600, 1)  # band 50% of 350
    assert refused.value.reason is Reason.PRICE_OUT_OF_BAND
    assert refused.value.message == "price must lie within 50% of the reference price"
    resting = ex.order(1, "sell", 500, 1)
    before = ex.state.state_hash()
    with pytest.raises(Refused) as amended:  # an amend is held to the same band, in the same words
        ex(op="amend", account_id=1, order_id=resting["order_id"], price=600)
    assert (amended.value.reason, amended.value.message) == (
        Reason.PRICE_OUT_OF_BAND,
        refused.value.message,
    )
    assert ex.state.state_hash() == before
    ex(op="cancel", account_id=1, order_id=resting["order_id"])
    ex.order(1, "sell", 350, 1)
    with pytest.raises(Refused) as refused:
        ex.order(2, "buy", 350, 1, post_only=True)
    assert refused.value.reason is Reason.POST_ONLY_WOULD_TRADE


def test_client_order_id_makes_retries_idempotent(ex: Exchange) -> None:
    first = ex.order(1, "sell", 350, 2, client_order_id="abc")
    again = ex.order(1, "sell", 350, 2, client_order_id="abc")
    assert again["order_id"] == first["order_id"]
    assert len(ex.state.orders) == 1


@pytest.mark.parametrize("version", [1, 2])
def test_cancel_after_cancels_everything_when_not_renewed(ex: Exchange, version: int) -> None:
    if version > 1:
        ex(op="rules", risk_version=version)
    ex.order(1, "sell", 350, 2)
    ex.order(2, "buy", 340, 1)
    ex.order(1, "sell", 351, 2)
    ex(op="cancel_after", account_id=1, timeout_ns=10 * 10**9)
    ex(op="cancel_after", account_id=2, timeout_ns=10 * 10**9)
    ex(op="advance", to=ex.state.now + 5 * 10**9)
    assert sum(o.remaining for o in ex.state.orders.values()) == 5
    outcome = ex(op="advance", to=ex.state.now + 6 * 10**9)
    assert all(o.status == "cancelled" for o in ex.state.orders.values())
    assert ex.cash(1) == (100_000, 0, 0)
    assert [(r["account_id"], r["cancelled"]) for r in outcome.ran] == [(1, 2), (2, 1)]
    cancelled = [int(e["order_id"]) for _, events in outcome.events for e in events
                 if e["kind"] == CANCELLED]  # fmt: skip
    # version 1 cancels account by account; version 2 in one pass, in order id order
    assert cancelled == ([1, 3, 2] if version == 1 else [1, 2, 3])


def test_other_accounts_orders_are_not_found(ex: Exchange) -> None:
    order = ex.order(1, "sell", 350, 2)
    with pytest.raises(Refused) as refused:
        ex(op="cancel", account_id=2, order_id=order["order_id"])
    assert refused.value.reason is Reason.ORDER_NOT_FOUND


def test_withdrawal_beyond_available_is_refused(ex: Exchange) -> None:
    ex.order(1, "sell", 350, 24)
    with pytest.raises(Refused) as refused:
        ex(op="withdraw", account_id=1, amount=99_000)
    assert refused.value.reason is Reason.INSUFFICIENT_FUNDS
    # $1,000.00 less 20% margin on 24 x $3.50, in dollars as every amount on the wire
    assert refused.value.message == "only $983.20 is free of the margin the account needs"


def test_postings_balance_and_conserve_money(ex: Exchange) -> None:
    ex.order(1, "sell", 350, 24)
    ex.order(2, "buy", 360, 24)
    ex(op="advance", to=ns("2026-12-10T00:00:00"))
    totals: dict[tuple[str, str], int] = {}
    for posting in ex.postings:
        assert sum(amount for _, _, amount in posting["lines"]) == 0
        for owner, sub, amount in posting["lines"]:
            totals[(owner, sub)] = totals.get((owner, sub), 0) + amount
    for account_id, acc in ex.state.accounts.items():
        owner = f"acct:{account_id}"
        assert totals.get((owner, "available"), 0) == acc.available
        assert totals.get((owner, "margin"), 0) == acc.margin
        assert totals.get((owner, "escrow"), 0) == acc.escrow
    assert -totals[("world", "external")] == ex.state.deposits - ex.state.withdrawals


class Conservation(RuleBasedStateMachine):
    """Random trading, settlement, expiry and delivery never create or destroy a cent."""

    @initialize()
    def setup(self) -> None:
        self.ex = Exchange()
        self.ex(
            op="list",
            ts=ns("2026-12-01T00:00:00"),
            **{k: v for k, v in LISTING.items() if k != "op"},
        )
        self.ex(op="rules", risk_version=2)
        for i in range(3):
            self.ex(
                op="create_account",
                name=f"a{i}",
                role="provider" if i == 0 else "trader",
                deposit=50_000,
            )

    def _try(self, **command: Any) -> None:
        with contextlib.suppress(Refused):
            self.ex(**command)

    @rule(account=st.integers(1, 3), side=st.sampled_from(["buy", "sell"]), price=st.integers(300, 400),
          quantity=st.integers(1, 30), tif=st.sampled_from(["GTC", "IOC", "FOK"]))  # fmt: skip
    def place(self, account: int, side: str, price: int, quantity: int, tif: str) -> None:
        self._try(op="place", account_id=account, symbol=SYMBOL, side=side, type="limit", price=price,
                  quantity=quantity, time_in_force=tif)  # fmt: skip

    @rule(account=st.integers(1, 3), order=st.integers(1, 40))
    def cancel(self, account: int, order: int) -> None:
        self._try(op="cancel", account_id=account, order_id=order)

    @rule(account=st.integers(1, 3), amount=st.integers(1, 20_000), deposit=st.booleans())
    def money(self, account: int, amount: int, deposit: bool) -> None:
        self._try(op="deposit" if deposit else "withdraw", account_id=account, amount=amount)

    @rule(hours=st.integers(1, 30))
    def advance(self, hours: int) -> None:
        self._try(op="advance", to=self.ex.state.now + hours * 3600 * 10**9)
        state = self.ex.state
        for acc in state.accounts.values():  # a margin call left no uncovered order behind
            assert not acc.open_orders or state.requirement(acc) <= acc.available + acc.margin

    @rule(
        delivery=st.integers(1, 4),
        hours=st.integers(1, 10),
        account=st.integers(1, 3),
        attest=st.booleans(),
    )
    def deliver(self, delivery: int, hours: int, account: int, attest: bool) -> None:
        if attest:
            self._try(
                op="attest",
                account_id=account,
                delivery_id=delivery,
                gpu_hours=hours,
                period_start="a",
                period_end="b",
            )
        else:
            self._try(
                op="dispute",
                account_id=account,
                delivery_id=delivery,
                gpu_hours=hours,
                reason="short",
            )

    @invariant()
    def money_is_conserved(self) -> None:
        state = self.ex.state
        held = sum(a.available + a.margin + a.escrow for a in state.accounts.values())
        exchange = 0
        for posting in self.ex.postings:
            for owner, _, amount in posting["lines"]:
                if owner == "exchange":
                    exchange += amount
        assert held + exchange == state.deposits - state.withdrawals
        assert all(
            a.available >= 0 and a.margin >= 0 and a.escrow >= 0 for a in state.accounts.values()
        )


TestConservation = Conservation.TestCase
TestConservation.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)


def test_disputed_hours_wait_for_an_admin_decision(ex: Exchange) -> None:
    ex.order(1, "sell", 350, 10)
    ex.order(2, "buy", 350, 10)
    ex(op="advance", to=ns("2026-12-07T00:30:00"))
    ex(op="attest", account_id=1, delivery_id=1, gpu_hours=10, period_start="a", period_end="b")
    ex(op="dispute", account_id=2, delivery_id=1, gpu_hours=4, reason="4 h the GPUs were down")
    ex(op="advance", to=ns("2026-12-09T00:00:00"))
    delivery = ex.state.deliveries[1]
    assert delivery.status == "disputed"
    assert ex.cash(2)[2] == 4 * 350  # the disputed hours stay in escrow
    provider_before = ex.cash(1)[0]
    ex(op="resolve", delivery_id=1, provider_hours=1)
    assert delivery.status == "settled"
    assert ex.cash(1)[0] == provider_before + 350
    assert ex.cash(2)[2] == 0
    with pytest.raises(Refused) as refused:
        ex(op="resolve", delivery_id=1, provider_hours=1)
    assert refused.value.reason is Reason.DELIVERY_NOT_OPEN


def _batch_exchange() -> tuple[Exchange, str]:
    """A state with one contract, H100-2026-12-08, auctioned every 60 s from 10:00:30 on the
    5th, and no account yet."""
    ex = Exchange()
    symbol = "H100-2026-12-08"
    ex(op="list", ts=ns("2026-12-05T10:00:30"),
       **{k: v for k, v in _listing(symbol, "2026-12-08").items() if k != "op"},
       mechanism="batch", batch_interval_s=60)  # fmt: skip
    return ex, symbol


def _listing(symbol: str, day: str, **over: Any) -> dict[str, Any]:
    """A day contract delivered on ``day`` (trading stops at 23:00 the day before)."""
    start = datetime.fromisoformat(day)
    return (
        LISTING
        | {
            "symbol": symbol,
            "delivery_start": to_ns(start.replace(tzinfo=UTC)),
            "delivery_end": to_ns(start.replace(tzinfo=UTC)) + 86_400 * 10**9,
            "last_trade_time": to_ns(start.replace(tzinfo=UTC)) - 3_600 * 10**9,
        }
        | over
    )


def test_a_provider_bond_pays_the_penalty_even_after_a_withdrawal_attempt(ex: Exchange) -> None:
    ex.order(1, "sell", 350, 24)
    ex.order(2, "buy", 350, 24)
    ex(op="advance", to=ns("2026-12-06T23:00:00"))  # expiry: 24 GPU-hours owed
    penalty = 24 * 350 * 5_000 // 10_000  # 50% of the value of every hour still owed
    assert ex.state.accounts[1].bond == penalty and ex.cash(1)[1] == penalty
    with pytest.raises(Refused) as refused:
        ex(op="withdraw", account_id=1, amount=ex.cash(1)[0] + 1)
    assert refused.value.reason == Reason.INSUFFICIENT_FUNDS
    ex(op="withdraw", account_id=1, amount=ex.cash(1)[0])  # all that is free of margin
    ex(op="attest", account_id=1, delivery_id=1, gpu_hours=20, period_start="a", period_end="b")
    assert ex.state.accounts[1].bond == ex.cash(1)[1] == 4 * 350 * 5_000 // 10_000
    ex(op="advance", to=ns("2026-12-09T00:00:00"))
    [penalty_posting] = [p for p in ex.postings if p["kind"] == "penalty"]
    assert ("acct:2", "available", 700) in penalty_posting["lines"]  # paid in full
    assert ex.state.accounts[1].bond == 0 and ex.cash(1)[1] == 0


def test_gpu_hours_move_in_the_ledger_from_obligation_to_delivery(ex: Exchange) -> None:
    ex.order(1, "sell", 350, 24)
    ex.order(2, "buy", 350, 24)
    ex(op="advance", to=ns("2026-12-07T00:30:00"))
    ex(op="attest", account_id=1, delivery_id=1, gpu_hours=20, period_start="a", period_end="b")
    ex(op="dispute", account_id=2, delivery_id=1, gpu_hours=5, reason="slow")
    ex(op="advance", to=ns("2026-12-09T00:00:00"))
    ex(op="resolve", delivery_id=1, provider_hours=3)

    hours: dict[tuple[str, str], int] = {}
    for posting in ex.postings:
        gpuh = [line for line in posting["lines"] if line[1].startswith("gpuh_")]
        assert sum(amount for _, _, amount in gpuh) == 0, posting  # GPU-hours balance alone
        for owner, account, amount in gpuh:
            hours[(owner, account)] = hours.get((owner, account), 0) + amount
    assert {key: value for key, value in hours.items() if value} == {
        ("acct:1", "gpuh_delivered"): -18,  # 15 undisputed + 3 of the 5 disputed
        ("acct:2", "gpuh_delivered"): 18,
    }  # and nothing is owed any more


def test_withdrawals_leave_what_margin_needs(ex: Exchange) -> None:
    ex.order(2, "buy", 350, 100)  # margin 7,000
    acc = ex.state.accounts[2]
    acc.available, acc.margin = acc.available + 3_000, acc.margin - 3_000  # as after a loss
    with pytest.raises(Refused):
        ex(op="withdraw", account_id=2, amount=acc.available - 2_999)
    ex(op="withdraw", account_id=2, amount=acc.available - 3_000)  # the 3,000 margin needs stay
    ex(op="deposit", account_id=2, amount=1)  # a credit tops margin up first
    assert ex.cash(2) == (1, 7_000, 0)


def test_a_taker_pays_its_fee_from_margin_when_no_cash_is_free(ex: Exchange) -> None:
    ex(op="create_account", name="lean", role="trader", deposit=1_680)  # 3
    ex.order(3, "buy", 200, 24)  # locks all its cash: available 0
    ex.order(1, "buy", 340, 24)
    ex.order(3, "sell", 340, 24, time_in_force="IOC")
    [fee] = [p for p in ex.postings if p["kind"] == "fee" and p["lines"][0][0] == "acct:3"]
    assert fee["lines"] == [("acct:3", "margin", -9), ("exchange", "fees", 9)]  # 10 bps, up


def test_amending_up_is_held_to_the_position_limit(ex: Exchange) -> None:
    ex.state.rules.position_limit = 30
    order = ex.order(2, "buy", 300, 20)
    ex.order(2, "buy", 300, 10)
    with pytest.raises(Refused) as refused:
        ex(op="amend", account_id=2, order_id=order["order_id"], quantity=21)
    assert refused.value.reason == Reason.POSITION_LIMIT
    ex(op="amend", account_id=2, order_id=order["order_id"], quantity=19)  # down is fine


def test_a_halted_batch_contract_holds_no_auction() -> None:
    ex, symbol = _batch_exchange()
    ex(op="create_account", name="a", deposit=100_000)
    ex(op="create_account", name="b", deposit=100_000)
    ex(op="place", account_id=1, symbol=symbol, side="buy", type="limit", price=360, quantity=10)
    ex(op="place", account_id=2, symbol=symbol, side="sell", type="limit", price=340, quantity=10)
    ex(op="halt", symbol=symbol, halted=True)
    assert ex(op="advance", to=ns("2026-12-05T10:02:00")).trades == []
    ex(op="halt", symbol=symbol, halted=False)
    assert [t["quantity"] for t in ex(op="advance", to=ns("2026-12-05T10:03:00")).trades] == [10]


@pytest.mark.parametrize("version", [2, 3])
def test_a_batch_auction_pairs_an_accounts_own_orders_only_before_version_3(
    version: int,
) -> None:
    ex, symbol = _batch_exchange()
    ex(op="rules", risk_version=version)
    ex(op="create_account", name="a", deposit=100_000)
    ex(op="create_account", name="b", deposit=100_000)
    place = {"op": "place", "account_id": 1, "symbol": symbol, "type": "limit", "quantity": 10}
    ex(**place, side="buy", price=360)
    ex(**place | {"account_id": 2, "quantity": 4}, side="sell", price=355)
    sell = ex(**place, side="sell", price=350).reply  # crosses its own bid: cancel_newest
    trades = ex(op="advance", to=ns("2026-12-05T10:02:00")).trades
    own = [t for t in trades if t["taker_account"] == t["maker_account"]]
    acc = ex.state.accounts[1]
    if version < 3:  # its own sell, the better price, took the whole volume
        assert sell["status"] == "open" and [t["quantity"] for t in trades] == [10]
        assert len(own) == 1 and acc.open_orders == 0
    else:
        assert (sell["status"], sell["filled_quantity"]) == ("cancelled", 0)
        assert own == [] and [t["quantity"] for t in trades] == [4]
        assert acc.open_orders == 1 and acc.open_buy == {symbol: 6} and not acc.open_sell
    assert ex.state.engine.order(sell["order_id"]) is None


def test_the_final_price_is_clamped_into_the_book_at_expiry(ex: Exchange) -> None:
    ex(op="advance", to=ns("2026-12-05T12:00:00"))
    ex.order(1, "sell", 300, 1)
    ex.order(2, "buy", 300, 1)  # the last trade: 300
    ex(op="advance", to=ns("2026-12-06T12:00:00"))
    ex.order(2, "buy", 360, 5)
    ex.order(1, "sell", 380, 5)
    ex(op="advance", to=ns("2026-12-06T23:00:00"))
    assert ex.state.contracts[SYMBOL].final_price == 360  # the last price, raised to the bid


def test_a_refused_account_creation_creates_nothing(ex: Exchange) -> None:
    before = ex.state.state_hash()
    with pytest.raises(Refused):
        ex(op="create_account", name="x", role="trader", deposit=-5, api_key="k-x")
    assert ex.state.state_hash() == before and "k-x" not in ex.state.api_keys


def test_a_contract_whose_trading_is_over_cannot_be_halted(ex: Exchange) -> None:
    ex(op="halt", symbol=SYMBOL, halted=True)
    ex(op="halt", symbol=SYMBOL, halted=False)
    ex(op="advance", to=ns("2026-12-06T23:00:00"))  # expired
    for halted in (True, False):
        with pytest.raises(Refused) as refused:
            ex(op="halt", symbol=SYMBOL, halted=halted)
        assert refused.value.reason == Reason.CONTRACT_NOT_TRADING
        assert refused.value.message == (
            f"{SYMBOL} is expired: trading is over, it can be neither halted nor resumed"
        )


def test_a_replay_leaves_out_answers_and_held_postings_and_reaches_the_same_state() -> None:
    """ExchangeState.replaying: the same commands change the state exactly as live."""
    live = Exchange()
    commands: list[dict[str, Any]] = []

    def run(**command: Any) -> None:
        command.setdefault("ts", live.state.now)
        commands.append(dict(command))
        with contextlib.suppress(Refused):
            live(**command)

    run(op="list", ts=ns("2026-12-01T00:00:00"), **{k: v for k, v in LISTING.items() if k != "op"})
    run(op="create_account", name="provider", role="provider", deposit=100_000)
    run(op="create_account", name="lab", role="trader", deposit=100_000)
    for i in range(30):
        run(op="place", account_id=1 + i % 2, symbol=SYMBOL, side="sell" if i % 2 else "buy",
            type="limit", price=340 + i % 7, quantity=1 + i % 4)  # fmt: skip
        if i % 5 == 4:
            run(op="cancel", account_id=1 + i % 2, order_id=i)
    run(op="advance", to=ns("2026-12-07T00:30:00"))
    run(op="attest", account_id=1, delivery_id=1, gpu_hours=1, period_start="a", period_end="b")
    run(op="advance", to=ns("2026-12-09T00:00:00"))

    replay = ExchangeState(backend="reference")
    replay.replaying, replay.posted_to = True, 20
    postings = []
    for seq, command in enumerate(commands, start=1):
        try:
            outcome = replay.apply(seq, dict(command))
        except Refused as refused:
            assert refused.outcome is not None
            outcome = refused.outcome
        if command["op"] in ("place", "cancel"):
            assert outcome.reply is None and outcome.events == []
        postings.extend(outcome.postings)
    assert replay.state_hash() == live.state.state_hash()
    assert postings == [p for p in live.postings if int(p["key"].split(":")[0]) > 20]
    assert "replaying" not in replay.__getstate__()
