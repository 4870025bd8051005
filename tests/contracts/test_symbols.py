"""Symbols: parsing, the one canonical spelling, delivery periods and their edges."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import (
    InvalidSymbol,
    PeriodKind,
    Symbol,
    as_symbol,
    format_symbol,
    iso_weeks_in_year,
    parse_symbol,
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# -- parsing and delivery periods ------------------------------------------------------------
def test_day_symbol() -> None:
    symbol = parse_symbol("H100-2026-12-07")
    assert symbol == Symbol("H100", PeriodKind.DAY, 2026, month=12, day=7)
    assert (symbol.delivery_start, symbol.delivery_end) == (utc(2026, 12, 7), utc(2026, 12, 8))
    assert symbol.hours == 24


def test_week_symbol_runs_monday_to_monday() -> None:
    symbol = parse_symbol("H100-2026-W50")
    assert symbol == Symbol("H100", PeriodKind.WEEK, 2026, week=50)
    assert (symbol.delivery_start, symbol.delivery_end) == (utc(2026, 12, 7), utc(2026, 12, 14))
    assert symbol.delivery_start.weekday() == 0
    assert symbol.hours == 168


def test_month_symbol() -> None:
    symbol = parse_symbol("A100-2026-12")
    assert symbol == Symbol("A100", PeriodKind.MONTH, 2026, month=12)
    assert (symbol.delivery_start, symbol.delivery_end) == (utc(2026, 12, 1), utc(2027, 1, 1))
    assert symbol.hours == 31 * 24


def test_times_are_aware_utc() -> None:
    symbol = parse_symbol("A100-2026-12")
    assert symbol.delivery_start.tzinfo is UTC
    assert symbol.delivery_end.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("H100-2026-W53", utc(2026, 12, 28), utc(2027, 1, 4)),  # 2026 has 53 ISO weeks
        ("H100-2020-W53", utc(2020, 12, 28), utc(2021, 1, 4)),
        ("H100-2026-W01", utc(2025, 12, 29), utc(2026, 1, 5)),  # starts the year before
        ("H100-2027-W01", utc(2027, 1, 4), utc(2027, 1, 11)),
        ("H100-2021-W01", utc(2021, 1, 4), utc(2021, 1, 11)),  # after 2020-W53
        ("A100-2028-02", utc(2028, 2, 1), utc(2028, 3, 1)),  # leap year
        ("A100-2027-02", utc(2027, 2, 1), utc(2027, 3, 1)),
        ("A100-2026-12", utc(2026, 12, 1), utc(2027, 1, 1)),  # December into January
        ("H100-2028-02-29", utc(2028, 2, 29), utc(2028, 3, 1)),
        ("H100-2026-12-31", utc(2026, 12, 31), utc(2027, 1, 1)),
        ("H100-2000-01-01", utc(2000, 1, 1), utc(2000, 1, 2)),
        ("H100-2999-12", utc(2999, 12, 1), utc(3000, 1, 1)),
    ],
)
def test_calendar_edges(text: str, start: datetime, end: datetime) -> None:
    symbol = parse_symbol(text)
    assert (symbol.delivery_start, symbol.delivery_end) == (start, end)
    assert str(symbol) == text


def test_month_hours_follow_the_days_in_the_month() -> None:
    assert parse_symbol("A100-2028-02").hours == 29 * 24
    assert parse_symbol("A100-2027-02").hours == 28 * 24
    assert parse_symbol("A100-2026-04").hours == 30 * 24


def test_iso_weeks_in_year() -> None:
    assert [iso_weeks_in_year(y) for y in (2020, 2021, 2025, 2026, 2027, 2032)] == [
        53,
        52,
        52,
        53,
        52,
        53,
    ]


# -- invalid symbols -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("V100-2026-12-07", "unknown product 'V100'"),
        ("H200-2026-W50", "unknown product 'H200'"),
        ("H100-2026-02-30", r"2026-02-30 is not a date \(February 2026 has 28 days\)"),
        ("H100-2027-02-29", "February 2027 has 28 days"),
        ("H100-2026-04-31", "April 2026 has 30 days"),
        ("H100-2026-12-00", "2026-12-00 is not a date"),
        ("H100-2027-W53", "ISO year 2027 has weeks W01..W52, so there is no W53"),
        ("H100-2026-W54", "no W54"),
        ("H100-2026-W00", "no W00"),
        ("A100-2026-13", "month 13 is outside 01..12"),
        ("A100-2026-00", "month 00 is outside 01..12"),
        ("A100-2026-13-01", "month 13 is outside 01..12"),
        ("A100-1999-12", "year 1999 is outside 2000..2999"),
        ("A100-3000-01", "year 3000 is outside 2000..2999"),
        ("h100-2026-w50", "symbols are upper case: 'H100-2026-W50'"),
        ("H100-2026-w50", "symbols are upper case"),
        ("H100-2026-W50 ", "whitespace"),
        (" H100-2026-W50", "whitespace"),
        ("H100-2026-W50\n", "whitespace"),
        ("xH100-2026-W50", "unexpected characters around 'H100-2026-W50'"),
        ("H100-2026-W50x", "unexpected characters"),
        ("H100-2026-W50!", "unexpected characters around 'H100-2026-W50'"),
        ("XH100-2026-W50", "unknown product 'XH100'"),
        ("xh100-2026-w50", "expected PRODUCT-YYYY-MM-DD"),
        ("H100-2026-12-07-01", "expected PRODUCT-YYYY-MM-DD"),
        ("H100-2026-W5", "expected PRODUCT-YYYY-MM-DD"),
        ("H100-2026-1", "expected PRODUCT-YYYY-MM-DD"),
        ("H100-26-12", "expected PRODUCT-YYYY-MM-DD"),
        ("H100_2026_12", "expected PRODUCT-YYYY-MM-DD"),
        ("H100-2026-12-7", "expected PRODUCT-YYYY-MM-DD"),
        ("", "expected PRODUCT-YYYY-MM-DD"),
        (
            "H100-２０２６-12",
            "expected PRODUCT-YYYY-MM-DD",
        ),  # full-width digits are not digits here
    ],
)
def test_invalid_symbols_say_what_is_wrong_and_show_the_valid_forms(text: str, says: str) -> None:
    with pytest.raises(InvalidSymbol, match=says) as info:
        parse_symbol(text)
    message = str(info.value)
    assert (
        "valid forms: H100-2026-12-07 (day), H100-2026-W50 (ISO week), A100-2026-12 (month)"
        in message
    )
    assert info.value.code == "UNKNOWN_SYMBOL"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", [None, 2026, b"H100-2026-W50"])
def test_a_symbol_is_a_string(value: object) -> None:
    with pytest.raises(InvalidSymbol, match="a symbol is a string"):
        parse_symbol(value)  # type: ignore[arg-type]


def test_construction_validates_like_parsing() -> None:
    with pytest.raises(InvalidSymbol, match="2026-02-30 is not a date"):
        Symbol("H100", PeriodKind.DAY, 2026, month=2, day=30)
    with pytest.raises(InvalidSymbol, match="a week symbol has no month"):
        Symbol("H100", PeriodKind.WEEK, 2026, month=1, week=1)
    with pytest.raises(InvalidSymbol, match="a day symbol needs an int day"):
        Symbol("H100", PeriodKind.DAY, 2026, month=1)
    with pytest.raises(InvalidSymbol, match="kind must be"):
        Symbol("H100", "year", 2026)  # type: ignore[arg-type]
    with pytest.raises(InvalidSymbol, match="needs an int year"):
        Symbol("H100", PeriodKind.MONTH, True, month=1)


def test_kind_given_as_a_string_becomes_the_enum() -> None:
    symbol = Symbol("A100", "month", 2026, month=12)  # type: ignore[arg-type]
    assert symbol.kind is PeriodKind.MONTH
    assert symbol == parse_symbol("A100-2026-12")
    assert hash(symbol) == hash(parse_symbol("A100-2026-12"))


# -- constructors and arithmetic ----------------------------------------------------------------
def test_constructors() -> None:
    assert str(Symbol.for_day("H100", date(2026, 12, 7))) == "H100-2026-12-07"
    assert str(Symbol.for_week("H100", 2026, 50)) == "H100-2026-W50"
    assert str(Symbol.for_month("A100", 2026, 12)) == "A100-2026-12"


@pytest.mark.parametrize(
    ("kind", "when", "expected"),
    [
        (PeriodKind.DAY, utc(2026, 12, 7), "H100-2026-12-07"),
        (PeriodKind.DAY, utc(2026, 12, 7, 23, 59, 59), "H100-2026-12-07"),
        (PeriodKind.WEEK, utc(2026, 12, 13, 23, 59), "H100-2026-W50"),
        (PeriodKind.WEEK, utc(2027, 1, 2), "H100-2026-W53"),
        (PeriodKind.WEEK, utc(2025, 12, 29), "H100-2026-W01"),
        (PeriodKind.MONTH, utc(2026, 12, 31, 23), "H100-2026-12"),
        # An aware non-UTC time is converted: 2026-12-07 01:00+02:00 is 2026-12-06 23:00 UTC.
        (
            PeriodKind.DAY,
            datetime(2026, 12, 7, 1, tzinfo=timezone(timedelta(hours=2))),
            "H100-2026-12-06",
        ),
    ],
)
def test_containing(kind: PeriodKind, when: datetime, expected: str) -> None:
    assert str(Symbol.containing("H100", kind, when)) == expected


def test_containing_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Symbol.containing("H100", PeriodKind.DAY, datetime(2026, 12, 7))


@pytest.mark.parametrize(
    ("text", "periods", "expected"),
    [
        ("H100-2026-12-31", 1, "H100-2027-01-01"),
        ("H100-2028-02-28", 1, "H100-2028-02-29"),
        ("H100-2026-12-07", -7, "H100-2026-11-30"),
        ("H100-2026-W52", 1, "H100-2026-W53"),
        ("H100-2026-W53", 1, "H100-2027-W01"),
        ("H100-2027-W01", -1, "H100-2026-W53"),
        ("H100-2020-W53", -52, "H100-2020-W01"),
        ("H100-2021-W01", -1, "H100-2020-W53"),
        ("A100-2026-12", 1, "A100-2027-01"),
        ("A100-2026-01", -1, "A100-2025-12"),
        ("A100-2026-11", 0, "A100-2026-11"),
    ],
)
def test_shifted(text: str, periods: int, expected: str) -> None:
    assert str(parse_symbol(text).shifted(periods)) == expected


def test_shifting_out_of_the_year_range_is_invalid() -> None:
    with pytest.raises(InvalidSymbol, match="year 1999"):
        parse_symbol("A100-2000-01").shifted(-1)


def test_sort_key_orders_by_product_then_start_then_shorter_first() -> None:
    texts = ["H100-2026-W50", "A100-2026-12", "H100-2026-12-07", "H100-2026-12", "A100-2026-12-01"]
    ordered = sorted((parse_symbol(t) for t in texts), key=lambda s: s.sort_key)
    assert [str(s) for s in ordered] == [
        "A100-2026-12-01",
        "A100-2026-12",
        "H100-2026-12",
        "H100-2026-12-07",
        "H100-2026-W50",
    ]


def test_as_symbol_passes_symbols_through_and_parses_strings() -> None:
    symbol = parse_symbol("H100-2026-W50")
    assert as_symbol(symbol) is symbol
    assert as_symbol("H100-2026-W50") == symbol


# -- properties ----------------------------------------------------------------------------------
products = st.sampled_from(["A100", "H100"])
dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2999, 12, 31))


@st.composite
def symbols(draw: st.DrawFn) -> Symbol:
    product, day, kind = draw(products), draw(dates), draw(st.sampled_from(list(PeriodKind)))
    if kind is PeriodKind.DAY:
        return Symbol.for_day(product, day)
    if kind is PeriodKind.MONTH:
        return Symbol.for_month(product, day.year, day.month)
    iso_year = draw(st.integers(min_value=2000, max_value=2999))
    week = draw(st.integers(min_value=1, max_value=iso_weeks_in_year(iso_year)))
    return Symbol.for_week(product, iso_year, week)


@given(symbols())
def test_format_and_parse_round_trip(symbol: Symbol) -> None:
    text = format_symbol(symbol)
    assert text == str(symbol)
    assert parse_symbol(text) == symbol
    assert str(parse_symbol(text)) == text


@given(symbols())
def test_delivery_period_is_whole_utc_days_and_contains_its_own_start(symbol: Symbol) -> None:
    start, end = symbol.delivery_start, symbol.delivery_end
    assert start.time() == end.time() == datetime.min.time()
    assert symbol.hours * 3600 == (end - start).total_seconds()
    assert Symbol.containing(symbol.product, symbol.kind, start) == symbol
    assert Symbol.containing(symbol.product, symbol.kind, end - timedelta(microseconds=1)) == symbol
    if symbol.kind is PeriodKind.WEEK:
        assert start.weekday() == 0 and symbol.hours == 168
    if symbol.kind is PeriodKind.DAY:
        assert symbol.hours == 24


@given(symbols(), st.integers(min_value=-30, max_value=30))
def test_shifting_steps_through_adjacent_periods(symbol: Symbol, periods: int) -> None:
    try:
        moved = symbol.shifted(periods)
    except InvalidSymbol:
        return  # beyond 2000..2999
    assert moved.kind is symbol.kind
    assert moved.shifted(-periods) == symbol
    if periods == 1:
        assert moved.delivery_start == symbol.delivery_end


@given(st.text(max_size=20))
def test_parsing_any_text_either_round_trips_or_raises_invalid_symbol(text: str) -> None:
    try:
        symbol = parse_symbol(text)
    except InvalidSymbol:
        return
    assert str(symbol) == text
