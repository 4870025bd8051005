"""Request bodies of the REST API (and websocket order entry): strict, unknown fields refused.

Prices and money are decimal strings (``"2.35"``); a JSON number there is refused, so no
float ever carries money. Quantities are whole GPU-hours as JSON integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar, get_args

from fastapi import Query
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from exchange.gateway.errors import ApiError
from exchange.reasons import Reason

#: The largest id an order, a fill, an account or a delivery can have (a signed 64-bit
#: integer): what REST paths and websocket messages take, from 1.
MAX_ID = 2**63 - 1

#: The most orders or fills one GET returns; older ones are read page by page with ``before``.
PAGE_LIMIT = 1000


def _digits(value: Any) -> Any:
    """Take an integer in a path or query only as plain decimal digits: ``+1``, ``01``,
    ``1_0``, `` 1`` and ``1.0`` would each name a number, but not the way anyone writes
    one, so a client sending them has a bug worth hearing about."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and
                                       (value == "0" or value[0] != "0")):  # fmt: skip
        raise ValueError("must be written in decimal digits, without sign or leading zeros")
    return value


#: A path or query integer, as :func:`_digits` takes it (``Annotated[int, Digits, Query()]``).
Digits = BeforeValidator(_digits)
#: ``?depth=`` and the market data's ``?limit=``: 1 to 1,000.
UpTo1000 = Annotated[int, Digits, Query(ge=1, le=1000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_M = TypeVar("_M", bound=BaseModel)


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


class CancelOrder(_Strict):
    """The websocket's ``cancel``: ``DELETE /v1/orders/{order_id}`` has no body, so nothing
    but ``order_id`` (checked first, on its own)."""


class CancelAll(_Strict):
    """The websocket's ``cancel_all`` (REST takes ``symbol`` in the query)."""

    symbol: StrictStr | None = Field(None, max_length=32)


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


_MISSING: Any = object()
_PLACE_FIELDS = tuple(PlaceOrder.model_fields)
_PLACE_FIELDSET = frozenset(_PLACE_FIELDS)
_PLACE_CHOICES = {
    name: get_args(PlaceOrder.model_fields[name].annotation)
    for name in ("side", "type", "time_in_force", "self_trade_prevention")
}
_PLACE_CHOICE_PROBLEMS = {
    name: f"{name}: Input should be "
    + ", ".join(f"'{c}'" for c in choices[:-1])
    + f" or '{choices[-1]}'"
    for name, choices in _PLACE_CHOICES.items()
}
_PLACE_DEFAULTS = {
    name: info.default for name, info in PlaceOrder.model_fields.items() if not info.is_required()
}


def _text(value: Any, name: str, low: int, high: int, problems: list[str]) -> None:
    if type(value) is not str:
        problems.append(f"{name}: Input should be a valid string")
    elif len(value) < low:
        problems.append(f"{name}: String should have at least {low} character")
    elif len(value) > high:
        problems.append(f"{name}: String should have at most {high} characters")


def problem(error: Mapping[str, Any]) -> str:
    """One pydantic validation error as the API words it: ``field: what is wrong`` (the
    ``body`` that FastAPI puts before a body's fields left out)."""
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{where or 'body'}: {error.get('msg', 'invalid')}"


def parse_model(model: type[_M], body: dict[str, Any]) -> _M:
    """``model`` from a websocket request's fields; else ``400 INVALID_REQUEST`` naming at
    most five problems, worded as the REST API words them."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        message = "; ".join(problem(error) for error in exc.errors()[:5])
        raise ApiError(Reason.INVALID_REQUEST, message) from None


def parse_place(body: dict[str, Any]) -> dict[str, Any]:
    """Check an order body exactly as :class:`PlaceOrder` would, without building a model.

    Return the body :meth:`PlaceOrder.model_dump` would give (every field, in the model's
    order, defaults filled in); raise ``ValueError("field: problem; ...")`` naming at most
    five problems. This is the websocket's order path, where a model per order costs more
    than the rest of the gateway's work on it.
    """
    problems: list[str] = []
    out: dict[str, Any] = {}
    for name in _PLACE_FIELDS:
        value = body.get(name, _MISSING)
        if value is _MISSING:
            if name not in _PLACE_DEFAULTS:
                problems.append(f"{name}: Field required")
                continue
            value = _PLACE_DEFAULTS[name]
        elif name in _PLACE_CHOICES:
            if type(value) is not str or value not in _PLACE_CHOICES[name]:
                problems.append(_PLACE_CHOICE_PROBLEMS[name])
        elif name == "symbol":
            _text(value, name, 0, 32, problems)
        elif name == "price":
            if value is not None:
                _text(value, name, 0, 32, problems)
        elif name == "client_order_id":
            if value is not None:
                _text(value, name, 1, 64, problems)
        elif name == "quantity":
            if type(value) is not int:
                problems.append(f"{name}: Input should be a valid integer")
            elif value <= 0:
                problems.append(f"{name}: Input should be greater than 0")
            elif value >= 2**53:
                problems.append(f"{name}: Input should be less than {2**53}")
        elif name == "post_only" and type(value) is not bool:
            problems.append(f"{name}: Input should be a valid boolean")
        out[name] = value
    for key in body:
        if key not in _PLACE_FIELDSET:
            problems.append(f"{key}: Extra inputs are not permitted")
    if problems:
        raise ValueError("; ".join(problems[:5]))
    return out
