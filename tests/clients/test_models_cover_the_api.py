"""Every field the exchange documents for an object is a typed field of the SDK's model."""

from __future__ import annotations

import pytest

import clients.models as sdk
import exchange.gateway.schemas as api

OBJECTS = ["Contract", "Book", "Trade", "Order", "Fill", "Position", "Account", "Delivery",
           "Candle", "SettlementPrice", "Index", "Credentials"]  # fmt: skip


@pytest.mark.parametrize("name", OBJECTS)
def test_the_sdk_model_declares_every_field_of_the_api_object(name: str) -> None:
    documented = set(getattr(api, name).model_fields)
    declared = set(getattr(sdk, name).model_fields)
    assert documented <= declared, f"{name}: untyped in the SDK: {sorted(documented - declared)}"


def test_money_fields_are_decimals() -> None:
    delivery = sdk.Delivery.model_validate(
        {"delivery_id": 1, "symbol": "H100-2026-12-07", "provider_account": 1,
         "consumer_account": 2, "gpu_hours": 24, "price": "3.50", "amount": "84.00",
         "status": "pending", "attestations": [{"gpu_hours": 1, "period_start": "a",
         "period_end": "b", "evidence": None, "time": "2026-12-07T01:00:00.000Z"}]}
    )  # fmt: skip
    position = sdk.Position.model_validate(
        {"symbol": "H100-2026-12-07", "quantity": 2, "average_price": "3.5000",
         "unrealized_pnl": "0.00", "realized_pnl": "1.25"}
    )  # fmt: skip
    assert str(delivery.amount) == "84.00" and str(position.realized_pnl) == "1.25"
    assert delivery.attestations[0].time.tzinfo is not None
