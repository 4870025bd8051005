"""What the REST API answers, as the OpenAPI document states it (SPEC section 3).

These models document the responses; the handlers build plain dicts and encode them with
orjson, so documenting costs nothing per request. ``tests/gateway/test_schemas.py`` checks
real answers against these models, field for field, so the document cannot drift from the
exchange. Prices and money are decimal strings, quantities integers, times ISO 8601 (UTC,
milliseconds, ``Z``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from exchange.sequencer.orders import CancelReason

Decimal = str  #: a decimal string such as "3.50" (prices, money, rates)
Time = str  #: ISO 8601 UTC, e.g. "2026-12-01T00:00:00.000Z"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorDetail(_Out):
    code: str = Field(examples=["INSUFFICIENT_MARGIN"])
    message: str


class Error(_Out):
    """Every 4xx (and 503): a stable code and a message for people."""

    error: ErrorDetail


class Health(_Out):
    status: Literal["ok"]
    clock: Time


class Contract(_Out):
    symbol: str = Field(examples=["H100-2026-12-07"])
    product: Literal["H100", "A100"]
    delivery_start: Time
    delivery_end: Time
    last_trade_time: Time
    tick_size: Decimal
    lot_size: int
    initial_margin_rate: Decimal
    price_band: Decimal = Field(
        description="largest move of an order's price from the reference price, as a fraction "
        "of it (0.5: 50% either way)"
    )
    maker_fee_rate: Decimal
    taker_fee_rate: Decimal
    mechanism: Literal["continuous", "batch"]
    batch_interval_s: int | None
    status: Literal["listed", "trading", "halted", "expired", "delivering", "settled"]
    reference_price: Decimal | None
    last_price: Decimal | None
    final_settlement_price: Decimal | None


class Book(_Out):
    symbol: str
    sequence: int = Field(description="the feed's sequence of the last update included")
    bids: list[list[str]] = Field(description="[price, quantity], best (highest) first")
    asks: list[list[str]] = Field(description="[price, quantity], best (lowest) first")


class Trade(_Out):
    trade_id: int
    price: Decimal
    quantity: str
    taker_side: Literal["buy", "sell"]
    time: Time


class Candle(_Out):
    time: Time = Field(description="start of the UTC-aligned bucket")
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: str


class SettlementPrice(_Out):
    time: Time
    price: Decimal
    final: bool


class IndexPoint(_Out):
    time: Time
    price: Decimal
    contract: str


class Index(_Out):
    product: str
    price: Decimal | None
    history: list[IndexPoint]


class OrderFill(_Out):
    trade_id: int
    price: Decimal
    quantity: int
    liquidity: Literal["maker", "taker"]
    time: Time


class Order(_Out):
    order_id: int
    client_order_id: str | None
    symbol: str
    side: Literal["buy", "sell"]
    type: Literal["limit", "market"]
    price: Decimal | None
    quantity: int
    filled_quantity: int
    remaining_quantity: int
    status: Literal["open", "partially_filled", "filled", "cancelled", "rejected"]
    time_in_force: Literal["GTC", "IOC", "FOK"]
    post_only: bool
    created_at: Time
    fills: list[OrderFill]
    cancel_reason: CancelReason | None = Field(
        description="why a cancelled order was cancelled (null while not cancelled): asked by "
        "its account (user), self-trade prevention, the unfilled rest of an IOC, FOK or "
        "market order, the kill switch, the dead man's switch, a margin call, or the end of "
        "trading"
    )


class CancelAfterState(_Out):
    account_id: int
    cancel_at: Time | None = Field(description="when the open orders go, unless renewed")


class Fill(_Out):
    trade_id: int
    order_id: int
    symbol: str
    side: Literal["buy", "sell"]
    price: Decimal
    quantity: int
    liquidity: Literal["maker", "taker"]
    time: Time


class Position(_Out):
    symbol: str
    quantity: int = Field(description="signed: long > 0, short < 0")
    average_price: Decimal | None
    unrealized_pnl: Decimal
    realized_pnl: Decimal


class Account(_Out):
    account_id: int
    name: str
    role: Literal["trader", "provider"]
    cash: Decimal
    available: Decimal
    margin_locked: Decimal
    delivery_escrow: Decimal
    positions: list[Position]


class Attested(_Out):
    gpu_hours: int
    period_start: str
    period_end: str
    evidence: str | None
    time: Time = Field(description="exchange time of the attestation")


class Disputed(_Out):
    gpu_hours: int
    reason: str
    time: Time = Field(description="exchange time of the dispute")


class Delivery(_Out):
    delivery_id: int
    symbol: str
    provider_account: int
    consumer_account: int
    gpu_hours: int
    price: Decimal
    amount: Decimal = Field(description="gpu_hours x price, held in the consumer's escrow")
    status: Literal["pending", "disputed", "settled"]
    attested_gpu_hours: int
    disputed_gpu_hours: int
    attestations: list[Attested]
    disputes: list[Disputed]


class Credentials(_Out):
    account_id: int
    api_key: str
    api_secret: str = Field(description="shown once; the exchange can derive it, never stores it")


class KillSwitch(_Out):
    account_id: int
    disabled: bool


class ClockAdvanced(_Out):
    clock: Time
    ran: list[dict[str, Any]] = Field(
        description="what ran, in order: cancel_after, auction (those that matched), "
        "expiry, delivery_assignment, daily_settlement, delivery_start, delivery_settlement, "
        "margin_call; each with its event, time and subject (docs/api.md)"
    )


class PassedOver(_Out):
    seq: int
    reason: str


class Recovery(_Out):
    snapshot_seq: int = Field(description="the snapshot loaded (0: none, replayed from seq 1)")
    replayed: int = Field(description="journal records replayed after it")
    seconds: float = Field(description="how long loading and replaying took")
    last_seq: int = Field(description="the last command recovered")
    truncated_bytes: int = Field(description="bytes cut from the journal's tail (0: none)")
    reason: str | None = Field(description="why the tail was cut (null: the journal was clean)")
    cut_file: str | None = Field(
        description="the file in the journal directory the cut bytes were saved to"
    )
    snapshots_passed_over: list[PassedOver] = Field(
        description="snapshots recovery did not use because they were damaged, misplaced or "
        "did not load, newest first (not those after the ledger, a routine skip)"
    )
    lossy_snapshot: bool = Field(
        description="recovery loaded a snapshot that may lack some fills: nothing else could"
    )


class JournalStatus(_Out):
    seq: int = Field(description="the last command applied")
    first_seq: int = Field(description="the oldest record the journal keeps")
    last_seq: int = Field(description="the last durable record")
    segments: int
    snapshots: list[int] = Field(description="the seq of each snapshot file, oldest first")
    recovery: Recovery = Field(description="what the exchange's last start found and did")


class LedgerCheck(BaseModel):
    model_config = ConfigDict(extra="allow")

    balanced: bool


def ok(model: Any, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: its success body, documented without validating it."""
    return {status: {"model": model, "description": "OK" if status == 200 else "Created"}}
