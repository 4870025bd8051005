"""Contract specs: defaults from the product, validation, the timeline and the wire form."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from contracts import (
    ContractSpec,
    ContractStatus,
    InvalidPrice,
    InvalidSpec,
    InvalidSymbol,
    Mechanism,
    format_time,
    parse_symbol,
    spec_for,
)

SECOND = timedelta(seconds=1)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def test_defaults_for_a_day_contract() -> None:
    spec = spec_for("H100-2026-12-07")
    assert spec == ContractSpec(
        symbol=parse_symbol("H100-2026-12-07"),
        last_trade_time=utc(2026, 12, 6, 23),
        initial_margin_rate=Decimal("0.2"),
        price_band=Decimal("0.5"),
        reference_price=350,
        tick_size=Decimal("0.01"),
        lot_size=1,
        mechanism=Mechanism.CONTINUOUS,
        batch_interval_s=None,
        settlement_grace=timedelta(hours=24),
        listing_time=None,
    )
    assert spec.product == "H100"
    assert (spec.delivery_start, spec.delivery_end) == (utc(2026, 12, 7), utc(2026, 12, 8))
    assert spec.settlement_time == utc(2026, 12, 9)
    assert (spec.tick_cents, spec.initial_margin_bps, spec.price_band_bps) == (1, 2000, 5000)


@pytest.mark.parametrize(
    ("symbol", "last_trade"),
    [
        ("H100-2026-W50", utc(2026, 12, 6, 23)),
        ("H100-2026-W01", utc(2025, 12, 28, 23)),
        ("A100-2027-01", utc(2026, 12, 31, 23)),
        ("A100-2028-03", utc(2028, 2, 29, 23)),
    ],
)
def test_last_trade_is_one_hour_before_delivery(symbol: str, last_trade: datetime) -> None:
    spec = spec_for(symbol)
    assert spec.last_trade_time == last_trade == spec.delivery_start - timedelta(hours=1)


def test_spec_for_takes_a_symbol_or_its_text() -> None:
    assert spec_for(parse_symbol("A100-2026-12")) == spec_for("A100-2026-12")
    assert spec_for("A100-2026-12").reference_price == 150
    with pytest.raises(InvalidSymbol):
        spec_for("A100-2026-13")


def test_overrides() -> None:
    spec = spec_for(
        "H100-2026-W50",
        last_trade_time=utc(2026, 12, 4, 16),
        initial_margin_rate=Decimal("0.25"),
        price_band=Decimal("0.1"),
        reference_price=400,
        settlement_grace=timedelta(hours=48),
    )
    assert spec.last_trade_time == utc(2026, 12, 4, 16)
    assert (spec.initial_margin_bps, spec.price_band_bps, spec.reference_price) == (2500, 1000, 400)
    assert spec.settlement_time == utc(2026, 12, 16)


def test_unknown_override_is_a_type_error_naming_the_fields() -> None:
    with pytest.raises(TypeError, match=r"unknown fields \['margin'\]"):
        spec_for("H100-2026-W50", margin=Decimal("0.2"))


def test_a_new_tick_size_converts_the_default_reference_exactly() -> None:
    spec = spec_for("H100-2026-12-07", tick_size=Decimal("0.05"))
    assert spec.reference_price == 70  # 3.50 / 0.05
    assert spec.to_price(spec.reference_price) == "3.50"
    with pytest.raises(InvalidSpec, match=r"not on tick size 0\.20; pass reference_price too"):
        spec_for("H100-2026-12-07", tick_size=Decimal("0.20"))
    assert (
        spec_for("H100-2026-12-07", tick_size=Decimal("0.20"), reference_price=18).reference_price
        == 18
    )


def test_batch_mechanism() -> None:
    spec = spec_for("H100-2026-W50", mechanism="batch")
    assert spec.mechanism is Mechanism.BATCH
    assert spec.batch_interval_s == 60
    assert spec_for("H100-2026-W50", mechanism="batch", batch_interval_s=5).batch_interval_s == 5
    with pytest.raises(InvalidSpec, match="only for mechanism 'batch'"):
        spec_for("H100-2026-W50", batch_interval_s=5)
    with pytest.raises(InvalidSpec, match="needs batch_interval_s >= 1"):
        spec_for("H100-2026-W50", mechanism="batch", batch_interval_s=0)
    with pytest.raises(InvalidSpec, match="'continuous' or 'batch'"):
        spec_for("H100-2026-W50", mechanism="call")


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"last_trade_time": utc(2026, 12, 7, 0, 0, 1)}, "after delivery_start"),
        ({"last_trade_time": datetime(2026, 12, 6, 23)}, "timezone-aware"),
        ({"listing_time": utc(2026, 12, 6, 23)}, "listing_time is not before last_trade_time"),
        ({"tick_size": Decimal("0.005"), "reference_price": 700}, "not whole cents"),
        ({"tick_size": 0.01}, "must be a Decimal"),
        ({"tick_size": Decimal(0)}, "positive"),
        ({"lot_size": 0}, "lot_size"),
        ({"lot_size": True}, "lot_size"),
        ({"initial_margin_rate": 0.2}, "must be a Decimal"),
        ({"initial_margin_rate": Decimal(0)}, "above 0"),
        ({"initial_margin_rate": Decimal("1.01")}, "at most 1"),
        ({"initial_margin_rate": Decimal("0.20005")}, "whole basis points"),
        ({"price_band": Decimal("NaN")}, "above 0"),
        ({"price_band": Decimal("10.0001")}, "at most 10"),
        ({"reference_price": 0}, "positive ticks"),
        ({"reference_price": 3.5}, "positive ticks"),
        ({"reference_price": 100_000_001}, "above 1000000 USD"),
        ({"settlement_grace": timedelta(hours=-1)}, "settlement_grace"),
    ],
)
def test_invalid_terms(overrides: dict[str, object], says: str) -> None:
    with pytest.raises((InvalidSpec, TypeError, ValueError), match=says):
        spec_for("H100-2026-12-07", **overrides)


def test_a_spec_needs_a_parsed_symbol() -> None:
    fields = dataclasses.asdict(spec_for("H100-2026-12-07")) | {"symbol": "H100-2026-12-07"}
    with pytest.raises(InvalidSpec, match="must be a Symbol"):
        ContractSpec(**fields)


def test_spec_is_frozen() -> None:
    spec = spec_for("H100-2026-12-07")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.tick_size = Decimal("0.05")  # type: ignore[misc]


# -- prices through the spec ---------------------------------------------------------------------
def test_prices_use_the_spec_tick() -> None:
    spec = spec_for("H100-2026-12-07", tick_size=Decimal("0.05"))
    assert spec.to_ticks("2.35") == 47
    assert spec.to_price(47) == "2.35"
    with pytest.raises(InvalidPrice) as info:
        spec.to_ticks("2.36")
    assert info.value.code == "INVALID_TICK"


def test_band_limits() -> None:
    spec = spec_for("H100-2026-12-07")  # reference 350 ticks, band 50%
    assert spec.band_limits() == (175, 525)
    assert spec.band_limits(101) == (51, 151)  # floor(101 * 0.5) = 50 ticks either side
    assert spec_for("H100-2026-12-07", price_band=Decimal(2)).band_limits(100) == (1, 300)


# -- the timeline --------------------------------------------------------------------------------
def test_status_at_each_boundary() -> None:
    spec = spec_for("H100-2026-12-07", listing_time=utc(2026, 11, 30))
    expected = [
        (utc(2026, 11, 30) - SECOND, None),
        (utc(2026, 11, 30), ContractStatus.TRADING),
        (utc(2026, 12, 6, 23) - SECOND, ContractStatus.TRADING),
        (utc(2026, 12, 6, 23), ContractStatus.EXPIRED),  # last trade time
        (utc(2026, 12, 7) - SECOND, ContractStatus.EXPIRED),
        (utc(2026, 12, 7), ContractStatus.DELIVERING),  # delivery start
        (utc(2026, 12, 8), ContractStatus.DELIVERING),  # delivery end: the grace period begins
        (utc(2026, 12, 9) - SECOND, ContractStatus.DELIVERING),
        (utc(2026, 12, 9), ContractStatus.SETTLED),  # delivery end + 24 h
        (utc(2030, 1, 1), ContractStatus.SETTLED),
    ]
    assert [(now, spec.status_at(now)) for now, _ in expected] == expected


def test_without_listing_time_a_contract_is_always_listed() -> None:
    assert spec_for("H100-2026-12-07").status_at(utc(2000, 1, 1)) is ContractStatus.TRADING


def test_zero_grace_settles_at_delivery_end() -> None:
    spec = spec_for("A100-2026-12", settlement_grace=timedelta(0))
    assert spec.status_at(utc(2027, 1, 1) - SECOND) is ContractStatus.DELIVERING
    assert spec.status_at(utc(2027, 1, 1)) is ContractStatus.SETTLED


def test_halted_only_replaces_trading() -> None:
    spec = spec_for("H100-2026-12-07")
    assert spec.status_at(utc(2026, 12, 1), halted=True) is ContractStatus.HALTED
    assert spec.status_at(utc(2026, 12, 6, 23), halted=True) is ContractStatus.EXPIRED
    assert spec.status_at(utc(2026, 12, 7), halted=True) is ContractStatus.DELIVERING


def test_status_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        spec_for("H100-2026-12-07").status_at(datetime(2026, 12, 1))


def test_status_values_are_the_spec_strings() -> None:
    assert [s.value for s in ContractStatus] == [
        "listed",
        "trading",
        "halted",
        "expired",
        "delivering",
        "settled",
    ]
    assert ContractStatus.TRADING == "trading"


# -- wire form -----------------------------------------------------------------------------------
def test_to_dict_is_the_wire_form() -> None:
    spec = spec_for("H100-2026-W50", listing_time=utc(2026, 11, 9))
    assert spec.to_dict(spec.status_at(utc(2026, 12, 1))) == {
        "symbol": "H100-2026-W50",
        "product": "H100",
        "period": "week",
        "delivery_start": "2026-12-07T00:00:00.000Z",
        "delivery_end": "2026-12-14T00:00:00.000Z",
        "delivery_hours": 168,
        "last_trade_time": "2026-12-06T23:00:00.000Z",
        "listing_time": "2026-11-09T00:00:00.000Z",
        "settlement_time": "2026-12-15T00:00:00.000Z",
        "tick_size": "0.01",
        "lot_size": 1,
        "initial_margin_rate": "0.2",
        "price_band": "0.5",
        "reference_price": "3.50",
        "mechanism": "continuous",
        "batch_interval_s": None,
        "status": "trading",
    }


def test_to_dict_writes_rates_and_ticks_exactly() -> None:
    spec = spec_for(
        "A100-2026-12",
        tick_size=Decimal("0.50"),
        reference_price=3,
        initial_margin_rate=Decimal("0.1250"),
        price_band=Decimal("2"),
        mechanism="batch",
        batch_interval_s=10,
    )
    wire = spec.to_dict()
    assert "status" not in wire
    assert (wire["tick_size"], wire["reference_price"]) == ("0.5", "1.5")
    assert (wire["initial_margin_rate"], wire["price_band"]) == ("0.125", "2")
    assert (wire["mechanism"], wire["batch_interval_s"]) == ("batch", 10)
    assert all(not isinstance(v, float) for v in wire.values())


def test_format_time() -> None:
    assert format_time(utc(2026, 12, 7)) == "2026-12-07T00:00:00.000Z"
    assert format_time(utc(2026, 12, 7, 1, 2, 3, 456789)) == "2026-12-07T01:02:03.456Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2026, 12, 7))
