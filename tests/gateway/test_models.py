"""The websocket's hand-written order check agrees with the REST model, body for body.

``parse_place`` re-states :class:`PlaceOrder`'s rules without building a model (the
websocket order path's cost); hypothesis holds the two together: the same bodies are
accepted, with the same fields and defaults, and the same are refused.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from exchange.gateway.models import PlaceOrder, parse_place

FIELDS = list(PlaceOrder.model_fields)

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.sampled_from([0, 1, 2**53 - 1, 2**53, -1]),
    st.floats(allow_nan=False),
    st.text(max_size=70),
    st.sampled_from(
        [
            "buy",
            "sell",
            "limit",
            "market",
            "GTC",
            "IOC",
            "FOK",
            "cancel_newest",
            "cancel_oldest",
            "cancel_both",
            "none",
            "",
            "H100-2026-W50",
            "3.50",
        ]
    ),
    st.sampled_from(["x" * n for n in (1, 32, 33, 64, 65)]),  # the length limits' edges
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_bodies = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), _values, max_size=len(FIELDS) + 2
)
_valid = st.fixed_dictionaries(
    {"symbol": st.text(max_size=32), "side": st.sampled_from(["buy", "sell"]),
     "type": st.sampled_from(["limit", "market"]), "quantity": st.integers(1, 2**53 - 1)},
    optional={"price": st.one_of(st.none(), st.text(max_size=32)),
              "time_in_force": st.sampled_from(["GTC", "IOC", "FOK"]),
              "post_only": st.booleans(),
              "client_order_id": st.one_of(st.none(), st.text(min_size=1, max_size=64)),
              "self_trade_prevention": st.sampled_from(
                  ["cancel_newest", "cancel_oldest", "cancel_both", "none"])},
)  # fmt: skip


def _both(body: dict[str, Any]) -> None:
    try:
        expected = PlaceOrder.model_validate(body).model_dump()
    except ValidationError:
        with pytest.raises(ValueError):
            parse_place(body)
        return
    assert parse_place(body) == expected
    assert list(parse_place(body)) == list(expected)  # same field order


@settings(max_examples=1500, deadline=None)
@given(_bodies)
def test_any_body_is_judged_alike(body: dict[str, Any]) -> None:
    _both(body)


@settings(max_examples=500, deadline=None)
@given(_valid, st.sampled_from(FIELDS), _values)
def test_valid_bodies_with_one_field_spoiled(body: dict[str, Any], field: str, value: Any) -> None:
    _both(body)
    _both(body | {field: value})


BASE = {"symbol": "H100-2026-W50", "side": "buy", "type": "limit", "price": "3.50", "quantity": 5}
EDGES = [None, True, False, 0, 1, -1, 2**53 - 1, 2**53, 1.5, "", "x" * 32, "x" * 33, "x" * 64,
         "x" * 65, "buy", "market", "IOC", "cancel_both", [], {}]  # fmt: skip


@pytest.mark.parametrize("field", [*FIELDS, "unknown"])
def test_each_field_at_its_edges(field: str) -> None:
    without = {k: v for k, v in BASE.items() if k != field}
    _both(without)
    for value in EDGES:
        _both(BASE | {field: value})
