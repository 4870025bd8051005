"""Request bodies of the REST API (and websocket order entry): strict, unknown fields refused.

Prices and money are decimal strings (``"2.35"``); a JSON number there is refused, so no
float ever carries money. Quantities are whole GPU-hours as JSON integers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlaceOrder(_Strict):
    symbol: StrictStr = Field(max_length=32, examples=["H100-2026-W50"])
    side: Literal["buy", "sell"]
    type: Literal["limit", "market"]
    price: StrictStr | None = Field(
        None, max_length=32, description="decimal string; required for limit"
    )
    quantity: StrictInt = Field(gt=0, lt=2**53, description="GPU-hours")
    time_in_force: Literal["GTC", "IOC", "FOK"] = "GTC"
    post_only: StrictBool = False
    client_order_id: StrictStr | None = Field(None, min_length=1, max_length=64)
    self_trade_prevention: Literal["cancel_newest", "cancel_oldest", "cancel_both", "none"] = (
        "cancel_newest"
    )


class AmendOrder(_Strict):
    price: StrictStr | None = Field(None, max_length=32)
    quantity: StrictInt | None = Field(None, gt=0, lt=2**53)


class CancelAfter(_Strict):
    timeout_s: StrictInt = Field(ge=0, le=86_400)


class Attestation(_Strict):
    gpu_hours: StrictInt = Field(gt=0, lt=2**53)
    period_start: StrictStr = Field(max_length=40)
    period_end: StrictStr = Field(max_length=40)
    evidence: StrictStr | None = Field(None, max_length=4096)


class Dispute(_Strict):
    gpu_hours: StrictInt = Field(gt=0, lt=2**53)
    reason: StrictStr = Field(max_length=4096)


class CreateAccount(_Strict):
    name: StrictStr = Field(min_length=1, max_length=100)
    role: Literal["trader", "provider"] = "trader"
    deposit: StrictStr | None = Field(None, max_length=32, description="USD, decimal string")


class Amount(_Strict):
    amount: StrictStr = Field(max_length=32, description="USD, decimal string")


class ClockAdvance(_Strict):
    to: StrictStr = Field(max_length=40, description="ISO 8601 time")


class Resolution(_Strict):
    provider_hours: StrictInt = Field(
        ge=0, lt=2**53, description="disputed GPU-hours judged delivered"
    )
