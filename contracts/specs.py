"""Contract specifications: the terms of one listed contract, and its status over time.

A contract's status follows from the time alone, except ``halted`` (an admin decision) and
``listed`` (announced, not yet open for orders: a state an exchange may use for a pre-open
phase; the time-driven life below never produces it, because the listing calendar opens a
contract for trading the moment it lists it). With ``now`` in UTC, intervals half-open:

=================================================  ==============
``now < listing_time``                             not listed (``None``)
``listing_time <= now < last_trade_time``          ``trading`` (``halted`` if halted)
``last_trade_time <= now < delivery_start``        ``expired``
``delivery_start <= now < delivery_end + grace``   ``delivering``
``delivery_end + grace <= now``                    ``settled``
=================================================  ==============

The grace period after delivery (default 24 hours) is when attestations and disputes come
in; delivery records settle at its end.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from contracts.errors import InvalidPrice, InvalidSpec
from contracts.prices import (
    DEFAULT_TICK_SIZE,
    MAX_PRICE,
    check_tick_size,
    decimal_places,
    to_price,
    to_ticks,
)
from contracts.products import BPS, Product, get_product
from contracts.symbols import Symbol, as_symbol

#: Last trade time, before delivery start, unless a spec says otherwise.
DEFAULT_LAST_TRADE_OFFSET: timedelta = timedelta(hours=1)
#: Time after delivery end before delivery records settle.
DEFAULT_SETTLEMENT_GRACE: timedelta = timedelta(hours=24)
#: Auction interval for ``mechanism="batch"`` when none is given, in seconds.
DEFAULT_BATCH_INTERVAL_S: int = 60
#: Largest accepted price band: ten times the reference price either way.
MAX_PRICE_BAND: Decimal = Decimal(10)


class ContractStatus(StrEnum):
    """Where a contract is in its life (see the module docstring for the timeline)."""

    LISTED = "listed"
    TRADING = "trading"
    HALTED = "halted"
    EXPIRED = "expired"
    DELIVERING = "delivering"
    SETTLED = "settled"


class Mechanism(StrEnum):
    """How a contract matches orders."""

    CONTINUOUS = "continuous"
    BATCH = "batch"


def _require_aware(name: str, when: object) -> datetime:
    if not isinstance(when, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), not naive {when.isoformat()}")
    return when


def format_time(when: datetime) -> str:
    """Write an aware datetime the wire way: ISO 8601 UTC, milliseconds, ``Z``."""
    utc = _require_aware("time", when).astimezone(UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _plain(value: Decimal) -> str:
    """Write an exact Decimal without exponent or trailing zeros: ``Decimal("0.20") -> "0.2"``."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _whole_bps(name: str, rate: object, high: Decimal) -> Decimal:
    if not isinstance(rate, Decimal):
        raise InvalidSpec(f"{name} must be a Decimal such as Decimal('0.2'), not {rate!r}")
    if not rate.is_finite() or not 0 < rate <= high:
        raise InvalidSpec(f"{name} must be above 0 and at most {high}, not {rate}")
    if decimal_places(rate) > 4:
        raise InvalidSpec(f"{name} must be whole basis points (0.0001), not {rate}")
    return rate


@dataclass(frozen=True)
class ContractSpec:
    """The terms of one contract: SPEC section 1, exact, immutable.

    ``initial_margin_rate`` is a fraction of the contract value (price times quantity) and
    ``price_band`` a fraction of the reference price: a limit order's price may differ from
    the reference price by at most ``floor(reference * price_band)`` ticks
    (:meth:`band_limits`). Both are exact Decimals in whole basis points.
    ``reference_price`` is the initial reference, in ticks; the exchange moves the live one
    to each daily settlement price. ``tick_size`` must be whole cents, so every trade's value
    is a whole number of cents. ``listing_time`` is ``None`` for a contract listed for all
    time; the listing calendar sets it. Halting is the exchange's state, not the spec's:
    pass ``halted`` to :meth:`status_at`.
    """

    symbol: Symbol
    last_trade_time: datetime
    initial_margin_rate: Decimal
    price_band: Decimal
    reference_price: int
    tick_size: Decimal = DEFAULT_TICK_SIZE
    lot_size: int = 1
    mechanism: Mechanism = Mechanism.CONTINUOUS
    batch_interval_s: int | None = None
    settlement_grace: timedelta = DEFAULT_SETTLEMENT_GRACE
    listing_time: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, Symbol):
            raise InvalidSpec(
                f"symbol must be a Symbol (use spec_for to parse), not {self.symbol!r}"
            )
        _require_aware("last_trade_time", self.last_trade_time)
        if self.last_trade_time > self.delivery_start:
            raise InvalidSpec(f"{self.symbol}: last_trade_time is after delivery_start")
        if self.listing_time is not None:
            _require_aware("listing_time", self.listing_time)
            if self.listing_time >= self.last_trade_time:
                raise InvalidSpec(f"{self.symbol}: listing_time is not before last_trade_time")
        try:
            check_tick_size(self.tick_size)
        except (TypeError, ValueError) as exc:
            raise InvalidSpec(f"{self.symbol}: {exc}") from None
        if decimal_places(self.tick_size) > 2:
            raise InvalidSpec(f"{self.symbol}: tick_size {self.tick_size} is not whole cents")
        if type(self.lot_size) is not int or self.lot_size < 1:
            raise InvalidSpec(
                f"{self.symbol}: lot_size must be a positive int, not {self.lot_size!r}"
            )
        _whole_bps("initial_margin_rate", self.initial_margin_rate, Decimal(1))
        _whole_bps("price_band", self.price_band, MAX_PRICE_BAND)
        if type(self.reference_price) is not int or self.reference_price <= 0:
            raise InvalidSpec(f"{self.symbol}: reference_price must be positive ticks")
        if self.reference_price * self.tick_cents > MAX_PRICE * 100:
            raise InvalidSpec(f"{self.symbol}: reference_price is above {MAX_PRICE} USD")
        try:
            object.__setattr__(self, "mechanism", Mechanism(self.mechanism))
        except ValueError:
            raise InvalidSpec(
                f"mechanism must be 'continuous' or 'batch', not {self.mechanism!r}"
            ) from None
        if self.mechanism is Mechanism.BATCH:
            interval = self.batch_interval_s
            if type(interval) is not int or interval < 1:
                raise InvalidSpec(f"a batch contract needs batch_interval_s >= 1, not {interval!r}")
        elif self.batch_interval_s is not None:
            raise InvalidSpec("batch_interval_s is only for mechanism 'batch'")
        if not isinstance(self.settlement_grace, timedelta) or self.settlement_grace < timedelta(0):
            raise InvalidSpec(
                f"settlement_grace must be a timedelta >= 0, not {self.settlement_grace!r}"
            )

    # -- derived terms --------------------------------------------------------------------
    @property
    def product(self) -> str:
        """Return the product code, e.g. ``"H100"``."""
        return self.symbol.product

    @property
    def delivery_start(self) -> datetime:
        """Return when delivery starts (UTC)."""
        return self.symbol.delivery_start

    @property
    def delivery_end(self) -> datetime:
        """Return when delivery ends, exclusive (UTC)."""
        return self.symbol.delivery_end

    @property
    def settlement_time(self) -> datetime:
        """Return when delivery records settle: delivery end plus the grace period."""
        return self.delivery_end + self.settlement_grace

    @property
    def tick_cents(self) -> int:
        """Return the tick size in whole cents."""
        return int(self.tick_size * 100)

    @property
    def initial_margin_bps(self) -> int:
        """Return the initial margin rate in basis points."""
        return int(self.initial_margin_rate * BPS)

    @property
    def price_band_bps(self) -> int:
        """Return the price band in basis points."""
        return int(self.price_band * BPS)

    # -- prices ---------------------------------------------------------------------------
    def to_ticks(self, price: str | Decimal | int) -> int:
        """Convert a price to ticks of this contract; see :func:`contracts.to_ticks`."""
        return to_ticks(price, self.tick_size)

    def to_price(self, ticks: int) -> str:
        """Write ticks of this contract as a canonical price string."""
        return to_price(ticks, self.tick_size)

    def band_limits(self, reference: int | None = None) -> tuple[int, int]:
        """Return the lowest and highest limit price (ticks) allowed around ``reference``.

        ``reference`` defaults to the spec's reference price. The band is
        ``floor(reference * price_band)`` ticks either side; the low end is at least 1 tick.
        """
        ref = self.reference_price if reference is None else reference
        width = ref * self.price_band_bps // BPS
        return max(1, ref - width), ref + width

    # -- life cycle -----------------------------------------------------------------------
    def status_at(self, now: datetime, *, halted: bool = False) -> ContractStatus | None:
        """Return the status at ``now``, or ``None`` before the listing time.

        ``halted`` is the exchange's admin flag: it turns ``trading`` into ``halted`` and
        changes no other status.
        """
        _require_aware("now", now)
        if self.listing_time is not None and now < self.listing_time:
            return None
        if now < self.last_trade_time:
            return ContractStatus.HALTED if halted else ContractStatus.TRADING
        if now < self.delivery_start:
            return ContractStatus.EXPIRED
        if now < self.settlement_time:
            return ContractStatus.DELIVERING
        return ContractStatus.SETTLED

    def to_dict(self, status: ContractStatus | None = None) -> dict[str, Any]:
        """Return the wire form: decimal strings for prices and rates, ISO 8601 ``Z`` times.

        ``status`` is the exchange's current status for the contract; it is included when
        given (``spec.to_dict(spec.status_at(now))``).
        """
        out: dict[str, Any] = {
            "symbol": str(self.symbol),
            "product": self.product,
            "period": str(self.symbol.kind),
            "delivery_start": format_time(self.delivery_start),
            "delivery_end": format_time(self.delivery_end),
            "delivery_hours": self.symbol.hours,
            "last_trade_time": format_time(self.last_trade_time),
            "listing_time": None if self.listing_time is None else format_time(self.listing_time),
            "settlement_time": format_time(self.settlement_time),
            "tick_size": self.to_price(1),
            "lot_size": self.lot_size,
            "initial_margin_rate": _plain(self.initial_margin_rate),
            "price_band": _plain(self.price_band),
            "reference_price": self.to_price(self.reference_price),
            "mechanism": str(self.mechanism),
            "batch_interval_s": self.batch_interval_s,
        }
        if status is not None:
            out["status"] = str(ContractStatus(status))
        return out


def spec_for(symbol: str | Symbol, **overrides: Any) -> ContractSpec:
    """Return the default spec for ``symbol``; keyword arguments override any field.

    Defaults: last trade one hour before delivery start, tick 0.01, lot 1, the product's
    initial margin rate, price band and reference price, continuous trading, 24 hours of
    settlement grace, listed for all time. ``mechanism="batch"`` without
    ``batch_interval_s`` auctions every :data:`DEFAULT_BATCH_INTERVAL_S` seconds. When only
    ``tick_size`` is overridden, the product's reference price is converted to the new tick
    exactly (or refused).
    """
    sym = as_symbol(symbol)
    product: Product = get_product(sym.product)
    fields = {f.name for f in dataclasses.fields(ContractSpec)} - {"symbol"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"spec_for() got unknown fields {unknown}; the fields are {sorted(fields)}")
    terms: dict[str, Any] = {
        "last_trade_time": sym.delivery_start - DEFAULT_LAST_TRADE_OFFSET,
        "initial_margin_rate": product.initial_margin_rate,
        "price_band": product.price_band,
        "reference_price": product.reference_price_ticks,
    }
    terms.update(overrides)
    tick_size = terms.get("tick_size", DEFAULT_TICK_SIZE)
    if "reference_price" not in overrides and tick_size != DEFAULT_TICK_SIZE:
        usd = to_price(product.reference_price_ticks, DEFAULT_TICK_SIZE)
        try:
            terms["reference_price"] = to_ticks(usd, tick_size)
        except InvalidPrice as exc:
            raise InvalidSpec(
                f"{sym}: the default reference price {usd} is not on tick size {tick_size}; "
                "pass reference_price too"
            ) from exc
        except (TypeError, ValueError) as exc:  # the tick size itself
            raise InvalidSpec(f"{sym}: {exc}") from None
    if terms.get("mechanism") == Mechanism.BATCH and terms.get("batch_interval_s") is None:
        terms["batch_interval_s"] = DEFAULT_BATCH_INTERVAL_S
    return ContractSpec(symbol=sym, **terms)
