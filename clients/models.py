"""Typed views of what the exchange returns (SPEC sections 3 and 4).

Prices and money arrive as decimal strings and become :class:`~decimal.Decimal`, exactly;
quantities are integers. Fields the exchange adds later are kept (``model_extra``), so an
older SDK keeps working against a newer server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainSerializer

Side = Literal["buy", "sell"]


def wire_time(value: datetime) -> str:
    """A time as the exchange writes it: ISO 8601 UTC with milliseconds and ``Z``."""
    utc = value.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


#: A time: a ``datetime`` in Python, written to JSON as the exchange writes it.
Time = Annotated[datetime, PlainSerializer(wire_time, when_used="json")]


class Model(BaseModel):
    """Base of every response model: immutable, tolerant of extra fields."""

    model_config = ConfigDict(frozen=True, extra="allow")

    @classmethod
    def parse(cls, data: Any) -> Any:
        """Build one model from JSON data, or a list of them from a JSON list."""
        if isinstance(data, list):
            return [cls.model_validate(item) for item in data]
        return cls.model_validate(data)


class Contract(Model):
    symbol: str
    product: str
    delivery_start: Time
    delivery_end: Time
    last_trade_time: Time
    tick_size: Decimal
    lot_size: int
    initial_margin_rate: Decimal
    price_band: Decimal
    maker_fee_rate: Decimal = Decimal(0)
    taker_fee_rate: Decimal = Decimal(0)
    status: str
    mechanism: str = "continuous"
    batch_interval_s: int | None = None
    reference_price: Decimal | None = None
    last_price: Decimal | None = None
    final_settlement_price: Decimal | None = None


class Book(Model):
    symbol: str
    sequence: int
    bids: list[tuple[Decimal, int]]
    asks: list[tuple[Decimal, int]]

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0][0] if self.asks else None


class Trade(Model):
    trade_id: int
    price: Decimal
    quantity: int
    taker_side: Side
    time: Time


class Candle(Model):
    time: Time
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


class SettlementPrice(Model):
    time: Time
    price: Decimal
    final: bool = False


class IndexPoint(Model):
    time: Time
    price: Decimal
    contract: str


class Index(Model):
    product: str
    price: Decimal | None
    history: list[IndexPoint]


class OrderFill(Model):
    trade_id: int
    price: Decimal
    quantity: int
    liquidity: Literal["maker", "taker"]
    time: Time


class Order(Model):
    order_id: int
    client_order_id: str | None
    symbol: str
    side: Side
    type: Literal["limit", "market"]
    price: Decimal | None
    quantity: int
    filled_quantity: int
    remaining_quantity: int
    status: Literal["open", "partially_filled", "filled", "cancelled", "rejected"]
    time_in_force: Literal["GTC", "IOC", "FOK"]
    post_only: bool = False
    created_at: Time
    fills: list[OrderFill] = []
    #: why a cancelled order was cancelled: "user", "self_trade", "ioc_remainder",
    #: "fok_not_filled", "no_liquidity", "kill_switch", "cancel_after", "margin_call" or
    #: "trading_ended" (None while not cancelled, or cancelled before the exchange said)
    cancel_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in ("open", "partially_filled")


class Fill(Model):
    trade_id: int
    order_id: int
    symbol: str
    side: Side
    price: Decimal
    quantity: int
    liquidity: Literal["maker", "taker"]
    time: Time


class Position(Model):
    symbol: str
    quantity: int
    average_price: Decimal | None
    unrealized_pnl: Decimal
    realized_pnl: Decimal = Decimal(0)


class Account(Model):
    account_id: int
    name: str = ""
    role: str = "trader"
    cash: Decimal
    available: Decimal
    margin_locked: Decimal
    delivery_escrow: Decimal
    positions: list[Position] = []


class Attestation(Model):
    gpu_hours: int
    period_start: str
    period_end: str
    evidence: str | None = None
    time: Time


class DisputeRecord(Model):
    gpu_hours: int
    reason: str
    time: Time


class Delivery(Model):
    delivery_id: int
    symbol: str
    provider_account: int
    consumer_account: int
    gpu_hours: int
    price: Decimal
    amount: Decimal = Decimal(0)  # gpu_hours x price, held in the consumer's escrow
    status: str
    attested_gpu_hours: int = 0
    disputed_gpu_hours: int = 0
    attestations: list[Attestation] = []
    disputes: list[DisputeRecord] = []


class Credentials(Model):
    account_id: int
    api_key: str
    api_secret: str
