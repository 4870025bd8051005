"""Every field the exchange documents for an object is a typed field of the SDK's model."""

from __future__ import annotations

import typing
from decimal import Decimal

import pytest
from pydantic import BaseModel

import clients.models as sdk
import exchange.gateway.schemas as api

OBJECTS = ["Contract", "Book", "Trade", "Order", "Fill", "Position", "Account", "Delivery",
           "Candle", "SettlementPrice", "Index", "Credentials"]  # fmt: skip


@pytest.mark.parametrize("name", OBJECTS)
def test_the_sdk_model_declares_every_field_of_the_api_object(name: str) -> None:
    _check_declares(getattr(api, name), getattr(sdk, name), name)


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (``X``, ``list[X]``, ``X | None``, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _check_declares(documented: type[BaseModel], declared: type[BaseModel], path: str) -> None:
    """Every field of ``documented`` is a field of ``declared``, nested objects included."""
    missing = set(documented.model_fields) - set(declared.model_fields)
    assert not missing, f"{path}: untyped in the SDK: {sorted(missing)}"
    for field_name, field in documented.model_fields.items():
        for inner in _models_in(field.annotation):
            sdk_inner = _models_in(declared.model_fields[field_name].annotation)
            assert sdk_inner, f"{path}.{field_name}: the SDK has no model for {inner.__name__}"
            _check_declares(inner, sdk_inner[0], f"{path}.{field_name}")


def test_the_check_reaches_nested_objects() -> None:
    class Inner(BaseModel):
        a: int
        b: int

    class Outer(BaseModel):
        items: list[Inner]

    class SdkInner(BaseModel):
        a: int

    class SdkOuter(BaseModel):
        items: list[SdkInner]

    with pytest.raises(AssertionError, match=r"Outer.items: untyped in the SDK: \['b'\]"):
        _check_declares(Outer, SdkOuter, "Outer")


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


def test_an_orders_fill_times_are_datetimes() -> None:
    order = sdk.Order.model_validate(
        {"order_id": 1, "client_order_id": None, "symbol": "H100-2026-12-07", "side": "buy",
         "type": "limit", "price": "3.40", "quantity": 8, "filled_quantity": 8,
         "remaining_quantity": 0, "status": "filled", "time_in_force": "GTC",
         "created_at": "2026-12-07T01:00:00.000Z",
         "fills": [{"trade_id": 3, "price": "3.40", "quantity": 8, "liquidity": "maker",
                    "time": "2026-12-07T01:00:01.000Z"}]}
    )  # fmt: skip
    assert order.fills[0].time.tzinfo is not None and order.fills[0].price == Decimal("3.40")
