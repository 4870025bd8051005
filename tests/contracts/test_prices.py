"""Prices, money and quantities: exact both ways, every bad input refused with its code."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import (
    MAX_AMOUNT,
    MAX_PRICE,
    MAX_QUANTITY,
    InvalidAmount,
    InvalidPrice,
    InvalidQuantity,
    decimal_places,
    format_cents,
    parse_quantity,
    to_cents,
    to_price,
    to_ticks,
)


# -- prices --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("price", "ticks"),
    [
        ("2.35", 235),
        ("0.01", 1),
        ("12", 1200),
        ("12.00", 1200),
        ("2.350000", 235),
        ("0.5", 50),
        ("1000000", 100_000_000),  # MAX_PRICE itself
        ("235e-2", 235),  # exponent forms: accepted when exact
        ("2.35E0", 235),
        ("1e2", 10_000),
        ("1E+2", 10_000),
        (Decimal("2.35"), 235),
        (Decimal("2.3500"), 235),
        pytest.param(Decimal("2.35" + "0" * 5000), 235, id="5000-trailing-zeros"),
        (3, 300),  # an int is whole USD
    ],
)
def test_to_ticks(price: str | Decimal | int, ticks: int) -> None:
    assert to_ticks(price) == ticks


def test_to_ticks_on_other_tick_sizes() -> None:
    assert to_ticks("2.35", Decimal("0.05")) == 47
    assert to_ticks("12.5", Decimal("0.5")) == 25
    assert to_ticks("30", Decimal("1E+1")) == 3
    assert to_ticks("0.001", Decimal("0.001")) == 1


@pytest.mark.parametrize(
    ("price", "tick_size"),
    [
        ("2.355", Decimal("0.01")),
        ("0.001", Decimal("0.01")),
        ("2.351", Decimal("0.05")),
        ("2.36", Decimal("0.05")),  # two decimals, still off a 0.05 grid
        ("2.355e0", Decimal("0.01")),
        ("1e-3", Decimal("0.01")),
        ("1e-999999999", Decimal("0.01")),  # decided without computing 10**999999999
        pytest.param(Decimal("2.35" + "0" * 5000 + "1"), Decimal("0.01"), id="never-rounded"),
    ],
)
def test_off_grid_prices_are_invalid_tick(price: str | Decimal, tick_size: Decimal) -> None:
    with pytest.raises(InvalidPrice, match="not a multiple of the tick size") as info:
        to_ticks(price, tick_size)
    assert info.value.code == "INVALID_TICK"


@pytest.mark.parametrize(
    ("price", "says"),
    [
        ("-2.35", "must be positive"),
        ("0", "must be positive"),
        ("0.00", "must be positive"),
        ("-0", "must be positive"),
        (Decimal("-0"), "must be positive"),
        (0, "must be positive"),
        ("NaN", "not a decimal string"),
        ("nan", "not a decimal string"),
        ("Infinity", "not a decimal string"),
        ("inf", "not a decimal string"),
        (Decimal("NaN"), "finite"),
        (Decimal("sNaN"), "finite"),
        (Decimal("-Infinity"), "finite"),
        ("abc", "not a decimal string"),
        ("", "not a decimal string"),
        ("2,35", "not a decimal string"),
        ("$2.35", "not a decimal string"),
        (" 2.35", "not a decimal string"),
        ("2.35 ", "not a decimal string"),
        ("+2.35", "not a decimal string"),
        ("1_000", "not a decimal string"),
        (".5", "not a decimal string"),
        ("5.", "not a decimal string"),
        ("02.35", "not a decimal string"),
        ("0x10", "not a decimal string"),
        ("٣", "not a decimal string"),  # a non-ASCII digit
        ("1" * 65, "longer than 64"),
        ("1000000.01", "above the largest accepted price"),
        ("1e7", "above the largest accepted price"),
        ("1e999999999", "above the largest accepted price"),
        (10**7, "above the largest accepted price"),
        # Huge ints are refused, not printed (str() of them would itself raise).
        pytest.param(10**5000, "above the largest accepted price", id="5000-digit-int"),
        (2.35, "is a float; money is never a float"),
        (2.0, "is a float"),
        (float("nan"), "is a float"),
        (True, "not bool"),
        (None, "not NoneType"),
        (b"2.35", "not bytes"),
        ([2, 35], "not list"),
    ],
)
def test_invalid_prices(price: object, says: str) -> None:
    with pytest.raises(InvalidPrice, match=says) as info:
        to_ticks(price)  # type: ignore[arg-type]
    assert info.value.code == "INVALID_PRICE"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("ticks", "tick_size", "text"),
    [
        (235, Decimal("0.01"), "2.35"),
        (1200, Decimal("0.01"), "12.00"),
        (1, Decimal("0.01"), "0.01"),
        (0, Decimal("0.01"), "0.00"),
        (-3, Decimal("0.01"), "-0.03"),
        (47, Decimal("0.05"), "2.35"),
        (25, Decimal("0.5"), "12.5"),
        (12, Decimal("1"), "12"),
        (3, Decimal("1E+1"), "30"),
        (3, Decimal("0.010"), "0.03"),  # decimals of the tick's value, not of how it was written
        (100_000_000, Decimal("0.01"), "1000000.00"),
    ],
)
def test_to_price_is_canonical(ticks: int, tick_size: Decimal, text: str) -> None:
    assert to_price(ticks, tick_size) == text


def test_to_price_takes_integer_like_values_only() -> None:
    class Tick:
        def __index__(self) -> int:
            return 7

    assert to_price(Tick()) == "0.07"  # type: ignore[arg-type]  # e.g. numpy.int64
    with pytest.raises(TypeError):
        to_price(2.35)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_price(True)


@pytest.mark.parametrize(
    ("tick_size", "error"),
    [
        ("0.01", TypeError),
        (0.01, TypeError),
        (Decimal(0), ValueError),
        (Decimal("-0.01"), ValueError),
        (Decimal("NaN"), ValueError),
        (Decimal("1e-13"), ValueError),
        (Decimal("1e7"), ValueError),
    ],
)
def test_bad_tick_sizes_are_programming_errors(tick_size: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        to_ticks("1", tick_size)  # type: ignore[arg-type]
    with pytest.raises(error):
        to_price(1, tick_size)  # type: ignore[arg-type]


def test_decimal_places_ignores_trailing_zeros_exactly() -> None:
    assert decimal_places(Decimal("2.350")) == 2
    assert decimal_places(Decimal("1E+2")) == 0
    assert decimal_places(Decimal("0.000")) == 0
    assert decimal_places(Decimal("1." + "0" * 40 + "1")) == 41


tick_sizes = st.sampled_from([Decimal("0.01"), Decimal("0.05"), Decimal("0.5"), Decimal("1")])


@given(st.integers(min_value=1, max_value=100_000_000), tick_sizes)
def test_ticks_round_trip_through_the_canonical_string(ticks: int, tick_size: Decimal) -> None:
    if ticks * tick_size > MAX_PRICE:
        return
    text = to_price(ticks, tick_size)
    assert to_ticks(text, tick_size) == ticks
    assert Decimal(text) == ticks * tick_size


@given(st.decimals(min_value=Decimal("0.01"), max_value=MAX_PRICE, places=2))
def test_every_two_decimal_price_maps_to_its_canonical_string(price: Decimal) -> None:
    for written in (str(price), f"{price:f}", f"{price:.6f}", f"{price.scaleb(2):f}e-2"):
        assert to_price(to_ticks(written)) == f"{price:.2f}"


@given(st.decimals(min_value=Decimal("0.001"), max_value=Decimal(1000), places=6))
def test_off_grid_decimals_are_refused_never_rounded(price: Decimal) -> None:
    try:
        ticks = to_ticks(price)
    except InvalidPrice as exc:
        assert exc.code in {"INVALID_TICK", "INVALID_PRICE"}
        assert price * 100 % 1 != 0 or price <= 0
    else:
        assert Decimal(ticks) / 100 == price


@given(st.text(max_size=30))
def test_any_text_gives_ticks_or_invalid_price(text: str) -> None:
    try:
        ticks = to_ticks(text)
    except InvalidPrice:
        return
    assert Decimal(text) == Decimal(ticks) / 100


# -- money -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "cents"),
    [("12.34", 1234), ("0", 0), ("0.05", 5), ("100", 10_000), (Decimal("7.10"), 710), (5, 500)],
)
def test_to_cents(amount: str | Decimal | int, cents: int) -> None:
    assert to_cents(amount) == cents


def test_negative_amounts_need_allow_negative() -> None:
    with pytest.raises(InvalidAmount, match="must not be negative") as info:
        to_cents("-0.05")
    assert info.value.code == "INVALID_AMOUNT"
    assert to_cents("-0.05", allow_negative=True) == -5
    assert to_cents("-1000000000", allow_negative=True) == -100_000_000_000


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ("0.001", "not whole cents"),
        ("12.345", "not whole cents"),
        ("1e-3", "not whole cents"),
        ("1000000000.01", "beyond the largest accepted amount"),
        (10**10, "beyond the largest accepted amount"),
        ("NaN", "not a decimal string"),
        (Decimal("Infinity"), "finite"),
        ("12,34", "not a decimal string"),
        (12.34, "is a float"),
        (False, "not bool"),
        (None, "not NoneType"),
    ],
)
def test_invalid_amounts(amount: object, says: str) -> None:
    with pytest.raises(InvalidAmount, match=says) as info:
        to_cents(amount, allow_negative=True)  # type: ignore[arg-type]
    assert info.value.code == "INVALID_AMOUNT"


@pytest.mark.parametrize(
    ("cents", "text"),
    [(1234, "12.34"), (-5, "-0.05"), (0, "0.00"), (5, "0.05"), (-1234, "-12.34"), (100, "1.00")],
)
def test_format_cents(cents: int, text: str) -> None:
    assert format_cents(cents) == text


def test_format_cents_refuses_non_integers() -> None:
    with pytest.raises(TypeError):
        format_cents(12.34)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_cents(True)


@given(st.integers(min_value=-int(MAX_AMOUNT * 100), max_value=int(MAX_AMOUNT * 100)))
def test_cents_round_trip(cents: int) -> None:
    assert to_cents(format_cents(cents), allow_negative=True) == cents


# -- quantities ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("quantity", "expected"), [(1, 1), (10, 10), ("10", 10), (MAX_QUANTITY, MAX_QUANTITY)]
)
def test_parse_quantity(quantity: int | str, expected: int) -> None:
    assert parse_quantity(quantity) == expected


@pytest.mark.parametrize(
    ("quantity", "says"),
    [
        (0, "must be positive"),
        ("0", "must be positive"),
        (-1, "must be positive"),
        ("-1", "not a whole number"),
        (MAX_QUANTITY + 1, "above the largest accepted"),
        (10**100, "above the largest accepted"),
        ("9" * 65, "not a whole number"),
        ("1.5", "not a whole number"),
        ("10.0", "not a whole number"),
        ("1e3", "not a whole number"),
        ("010", "not a whole number"),
        (" 10", "not a whole number"),
        ("", "not a whole number"),
        (1.0, "not float"),
        (1.5, "not float"),
        (Decimal(10), "not Decimal"),
        (True, "not bool"),
        (None, "not NoneType"),
    ],
)
def test_invalid_quantities(quantity: object, says: str) -> None:
    with pytest.raises(InvalidQuantity, match=says) as info:
        parse_quantity(quantity)  # type: ignore[arg-type]
    assert info.value.code == "INVALID_QUANTITY"


def test_quantity_lot_size_and_limit() -> None:
    assert parse_quantity(20, lot_size=10) == 20
    with pytest.raises(InvalidQuantity, match="not a multiple of the lot size 10"):
        parse_quantity(25, lot_size=10)
    with pytest.raises(InvalidQuantity, match="above the largest accepted 100"):
        parse_quantity(101, max_quantity=100)


@pytest.mark.parametrize(
    "text", ["1e99999999999999999999", "1e-99999999999999999999", "-1E+9999999999999999999"]
)
def test_exponents_beyond_what_a_decimal_holds_are_refused(text: str) -> None:
    with pytest.raises(InvalidAmount, match="out of range"):
        to_cents(text, allow_negative=True)
    with pytest.raises(InvalidPrice):
        to_ticks(text, Decimal("0.01"))


@pytest.mark.parametrize(
    "text", ["9.9999999999999999999999999999", "1.00000000000000000000000000001"]
)
def test_amounts_beyond_28_digits_are_refused_not_rounded(text: str) -> None:
    with pytest.raises(InvalidAmount, match="whole cents"):
        to_cents(text)
