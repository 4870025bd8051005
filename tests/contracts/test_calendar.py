"""The listing calendar: whole listings at fixed times, listing times, and its invariants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import (
    ContractStatus,
    InvalidSymbol,
    ListingCalendar,
    Mechanism,
    PeriodKind,
    Symbol,
    parse_symbol,
)

T = ContractStatus.TRADING
X = ContractStatus.EXPIRED
D = ContractStatus.DELIVERING
TINY = timedelta(microseconds=1)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def listed(calendar: ListingCalendar, now: datetime) -> list[str]:
    return [str(spec.symbol) for spec in calendar.listed_at(now)]


def with_status(calendar: ListingCalendar, now: datetime) -> list[tuple[str, ContractStatus]]:
    return [(str(spec.symbol), status) for spec, status in calendar.contracts_at(now)]


H100_ON_SUNDAY_2026_12_06 = [
    "H100-2026-12-07",
    "H100-2026-W50",
    "H100-2026-12-08",
    "H100-2026-12-09",
    "H100-2026-12-10",
    "H100-2026-12-11",
    "H100-2026-12-12",
    "H100-2026-12-13",
    "H100-2026-W51",
    "H100-2026-W52",
    "H100-2026-W53",
    "H100-2027-01",
    "H100-2027-02",
    "H100-2027-03",
]


# -- whole listings at fixed times --------------------------------------------------------------
def test_default_listing_on_a_sunday_afternoon() -> None:
    now = utc(2026, 12, 6, 12)
    a100 = [s.replace("H100", "A100") for s in H100_ON_SUNDAY_2026_12_06]
    assert listed(ListingCalendar(), now) == a100 + H100_ON_SUNDAY_2026_12_06


def test_at_midnight_the_day_starting_now_is_no_longer_listed() -> None:
    calendar = ListingCalendar(["H100"], weeks=0, months=0)
    assert listed(calendar, utc(2026, 12, 7) - TINY) == [
        f"H100-2026-12-{d:02d}" for d in range(7, 14)
    ]
    assert listed(calendar, utc(2026, 12, 7)) == [f"H100-2026-12-{d:02d}" for d in range(8, 15)]


def test_listing_across_new_year_and_iso_week_53() -> None:
    assert listed(ListingCalendar(["H100"]), utc(2026, 12, 31, 12)) == [
        "H100-2027-01-01",
        "H100-2027-01",
        "H100-2027-01-02",
        "H100-2027-01-03",
        "H100-2027-01-04",
        "H100-2027-W01",  # starts on Monday 2027-01-04, after the current 2026-W53
        "H100-2027-01-05",
        "H100-2027-01-06",
        "H100-2027-01-07",
        "H100-2027-W02",
        "H100-2027-W03",
        "H100-2027-W04",
        "H100-2027-02",
        "H100-2027-03",
    ]


def test_listing_at_the_end_of_a_leap_february() -> None:
    assert listed(ListingCalendar(["A100"], weeks=0), utc(2028, 2, 29, 23, 59)) == [
        "A100-2028-03-01",
        "A100-2028-03",
        "A100-2028-03-02",
        "A100-2028-03-03",
        "A100-2028-03-04",
        "A100-2028-03-05",
        "A100-2028-03-06",
        "A100-2028-03-07",
        "A100-2028-04",
        "A100-2028-05",
    ]


def test_contracts_at_keeps_expired_and_delivering_until_settled() -> None:
    # 23:30 on Sunday: the last trade time of Monday's day and week contracts has passed.
    assert with_status(ListingCalendar(["H100"]), utc(2026, 12, 6, 23, 30)) == [
        ("H100-2026-W49", D),
        ("H100-2026-12", D),
        ("H100-2026-12-05", D),  # delivered; settles at the end of its 24 h grace
        ("H100-2026-12-06", D),
        ("H100-2026-12-07", X),
        ("H100-2026-W50", X),
        ("H100-2026-12-08", T),
        ("H100-2026-12-09", T),
        ("H100-2026-12-10", T),
        ("H100-2026-12-11", T),
        ("H100-2026-12-12", T),
        ("H100-2026-12-13", T),
        ("H100-2026-W51", T),
        ("H100-2026-W52", T),
        ("H100-2026-W53", T),
        ("H100-2027-01", T),
        ("H100-2027-02", T),
        ("H100-2027-03", T),
    ]


def test_expired_window_members_are_still_listed() -> None:
    calendar = ListingCalendar(["H100"], weeks=0, months=0)
    now = utc(2026, 12, 6, 23)  # the last trade time of H100-2026-12-07
    assert listed(calendar, now)[0] == "H100-2026-12-07"
    assert with_status(calendar, now)[2] == ("H100-2026-12-07", X)
    assert with_status(calendar, now - TINY)[2] == ("H100-2026-12-07", T)


def test_a_contract_settles_out_of_the_calendar() -> None:
    calendar = ListingCalendar(["A100"], days=0, weeks=0, months=1)
    # A100-2026-12 delivers all of December and settles 24 h after, on 2027-01-02.
    assert with_status(calendar, utc(2027, 1, 2) - TINY) == [
        ("A100-2026-12", D),
        ("A100-2027-01", D),
        ("A100-2027-02", T),
    ]
    assert with_status(calendar, utc(2027, 1, 2)) == [("A100-2027-01", D), ("A100-2027-02", T)]


def test_spec_overrides_apply_to_every_contract() -> None:
    calendar = ListingCalendar(spec_overrides={"mechanism": "batch", "batch_interval_s": 5})
    specs = calendar.listed_at(utc(2026, 12, 6, 12))
    assert {(s.mechanism, s.batch_interval_s) for s in specs} == {(Mechanism.BATCH, 5)}


def test_a_longer_grace_keeps_contracts_longer() -> None:
    calendar = ListingCalendar(
        ["H100"], weeks=0, months=0, spec_overrides={"settlement_grace": timedelta(days=3)}
    )
    symbols = [s for s, _ in with_status(calendar, utc(2026, 12, 6, 12))]
    assert symbols[:4] == [
        "H100-2026-12-03",
        "H100-2026-12-04",
        "H100-2026-12-05",
        "H100-2026-12-06",
    ]


# -- listing times -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("symbol", "listing_time"),
    [
        ("H100-2026-12-14", utc(2026, 12, 7)),
        ("H100-2027-01-01", utc(2026, 12, 25)),
        ("H100-2026-W50", utc(2026, 11, 9)),
        ("H100-2026-W53", utc(2026, 11, 30)),
        ("H100-2027-W01", utc(2026, 12, 7)),
        ("A100-2026-12", utc(2026, 9, 1)),
        ("A100-2027-02", utc(2026, 11, 1)),
        ("A100-2027-01", utc(2026, 10, 1)),
    ],
)
def test_listing_time(symbol: str, listing_time: datetime) -> None:
    calendar = ListingCalendar()
    assert calendar.listing_time(symbol) == listing_time
    assert calendar.spec(symbol).listing_time == listing_time
    assert calendar.spec(symbol).status_at(listing_time - TINY) is None
    assert calendar.spec(symbol).status_at(listing_time) is ContractStatus.TRADING


def test_listing_time_follows_the_counts() -> None:
    calendar = ListingCalendar(days=2, weeks=1, months=12)
    assert calendar.listing_time("H100-2026-12-14") == utc(2026, 12, 12)
    assert calendar.listing_time("H100-2026-W50") == utc(2026, 11, 30)
    assert calendar.listing_time("A100-2026-12") == utc(2025, 12, 1)


def test_what_a_calendar_does_not_list() -> None:
    calendar = ListingCalendar(["H100"], weeks=0)
    with pytest.raises(InvalidSymbol, match="does not list A100"):
        calendar.listing_time("A100-2026-12")
    with pytest.raises(InvalidSymbol, match="lists no week contracts"):
        calendar.spec("H100-2026-W50")
    assert all(s.symbol.kind is not PeriodKind.WEEK for s in calendar.listed_at(utc(2026, 12, 6)))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"products": ["V100"]}, ValueError),
        ({"days": -1}, ValueError),
        ({"weeks": 1.5}, ValueError),
        ({"spec_overrides": {"listing_time": utc(2026, 1, 1)}}, ValueError),
        ({"spec_overrides": {"reference_price": 100}}, ValueError),
    ],
)
def test_invalid_calendars(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        ListingCalendar(**kwargs)  # type: ignore[arg-type]


def test_products_are_deduplicated_and_ordered() -> None:
    assert ListingCalendar(["H100", "A100", "H100"]).products == ("A100", "H100")
    assert repr(ListingCalendar()) == "ListingCalendar(['A100', 'H100'], days=7, weeks=4, months=3)"


# -- invariants at any time ----------------------------------------------------------------------
nows = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2998, 1, 1), timezones=st.just(UTC)
)
CALENDAR = ListingCalendar()


@given(nows)
def test_the_window_is_exactly_the_next_periods(now: datetime) -> None:
    specs = CALENDAR.listed_at(now)
    assert len(specs) == 2 * (7 + 4 + 3)
    assert [s.symbol.sort_key for s in specs] == sorted(s.symbol.sort_key for s in specs)
    for spec in specs:
        assert spec.listing_time is not None
        assert spec.listing_time <= now < spec.delivery_start
        assert spec.listing_time == CALENDAR.listing_time(spec.symbol)
        assert spec.status_at(now) in {T, X}
    for product in ("A100", "H100"):
        for kind in PeriodKind:
            window = [
                s.symbol for s in specs if s.symbol.product == product and s.symbol.kind is kind
            ]
            assert window[0] == Symbol.containing(product, kind, now).shifted(1)
            assert [w.shifted(1) for w in window[:-1]] == window[1:]
            assert CALENDAR.listing_time(window[-1].shifted(1)) > now  # the next is not listed yet


@given(nows)
def test_contracts_at_is_the_window_plus_everything_unsettled(now: datetime) -> None:
    found = CALENDAR.contracts_at(now)
    window = {s.symbol for s in CALENDAR.listed_at(now)}
    assert window <= {spec.symbol for spec, _ in found}
    for spec, status in found:
        assert status == spec.status_at(now)
        assert status is not ContractStatus.SETTLED
        assert status in ({T, X} if spec.symbol in window else {D})
    for product in ("A100", "H100"):
        for kind in PeriodKind:
            first = min(
                (
                    spec.symbol
                    for spec, _ in found
                    if spec.symbol.product == product and spec.symbol.kind is kind
                ),
                key=lambda s: s.delivery_start,
            )
            assert CALENDAR.spec(first.shifted(-1)).status_at(now) is ContractStatus.SETTLED


@given(nows, st.integers(min_value=0, max_value=27))
def test_a_contract_is_listed_from_its_listing_time(now: datetime, index: int) -> None:
    symbol = CALENDAR.listed_at(now)[index].symbol
    listing_time = CALENDAR.listing_time(symbol)
    assert symbol in {s.symbol for s in CALENDAR.listed_at(listing_time)}
    assert symbol not in {s.symbol for s in CALENDAR.listed_at(listing_time - TINY)}


def test_parse_symbol_and_calendar_agree_on_the_listed_text() -> None:
    for spec in CALENDAR.listed_at(utc(2026, 12, 6, 12)):
        assert parse_symbol(str(spec.symbol)) == spec.symbol
