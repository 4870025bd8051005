"""Contract symbols: a product plus a delivery period, written one exact way.

- day: ``H100-2026-12-07``, delivery 00:00 to 24:00 UTC that day
- ISO week: ``H100-2026-W50``, Monday 00:00 UTC to the next Monday 00:00 UTC; the year is
  the ISO week-numbering year, which differs from the calendar year around New Year
  (``H100-2026-W01`` starts on 2025-12-29; ``H100-2026-W53`` ends on 2027-01-04)
- month: ``A100-2026-12``, the first of the month 00:00 UTC to the first of the next

Every symbol has exactly one spelling: ``format_symbol(parse_symbol(s)) == s``.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from contracts.errors import InvalidSymbol
from contracts.products import PRODUCTS

#: Years a symbol may name (for weeks: the ISO year).
MIN_YEAR: int = 2000
MAX_YEAR: int = 2999

#: Shown with every :class:`InvalidSymbol` message.
VALID_FORMS = "valid forms: H100-2026-12-07 (day), H100-2026-W50 (ISO week), A100-2026-12 (month)"

_SYMBOL = re.compile(
    r"(?P<product>[A-Z0-9]+)-(?P<year>[0-9]{4})-"
    r"(?:W(?P<week>[0-9]{2})|(?P<month>[0-9]{2})(?:-(?P<day>[0-9]{2}))?)"
)
_JUNK = re.compile(r"[^A-Z0-9-]")
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)


class PeriodKind(StrEnum):
    """The length of a delivery period."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def iso_weeks_in_year(iso_year: int) -> int:
    """Return 52 or 53: the number of ISO weeks in ``iso_year`` (28 December is in the last)."""
    return date(iso_year, 12, 28).isocalendar().week


def _invalid(text: str, reason: str) -> InvalidSymbol:
    return InvalidSymbol(f"invalid symbol {text!r}: {reason}; {VALID_FORMS}")


@dataclass(frozen=True)
class Symbol:
    """A product and a delivery period: a day, an ISO week or a calendar month.

    ``year`` is the calendar year for days and months and the ISO week-numbering year for
    weeks. A day sets ``month`` and ``day``, a week sets ``week``, a month sets ``month``;
    the fields a kind does not use are ``None``. Construction validates everything
    :func:`parse_symbol` does and raises :class:`InvalidSymbol` the same way.
    """

    product: str
    kind: PeriodKind
    year: int
    month: int | None = None
    day: int | None = None
    week: int | None = None

    def __post_init__(self) -> None:
        try:
            kind = PeriodKind(self.kind)
        except ValueError:
            raise _invalid(repr(self), "kind must be 'day', 'week' or 'month'") from None
        object.__setattr__(self, "kind", kind)
        needs = {
            PeriodKind.DAY: ("month", "day"),
            PeriodKind.WEEK: ("week",),
            PeriodKind.MONTH: ("month",),
        }[kind]
        for name in ("year", "month", "day", "week"):
            value = getattr(self, name)
            wanted = name == "year" or name in needs
            if wanted and (type(value) is not int):
                raise _invalid(repr(self), f"a {kind} symbol needs an int {name}, not {value!r}")
            if not wanted and value is not None:
                raise _invalid(repr(self), f"a {kind} symbol has no {name}")
        text = format_symbol(self)
        if not isinstance(self.product, str) or self.product not in PRODUCTS:
            known = ", ".join(PRODUCTS)
            raise _invalid(text, f"unknown product {self.product!r} (products: {known})")
        if not MIN_YEAR <= self.year <= MAX_YEAR:
            raise _invalid(text, f"year {self.year} is outside {MIN_YEAR}..{MAX_YEAR}")
        if self.month is not None and not 1 <= self.month <= 12:
            raise _invalid(text, f"month {self.month:02d} is outside 01..12")
        if self.day is not None and self.month is not None:
            days = calendar.monthrange(self.year, self.month)[1]
            if not 1 <= self.day <= days:
                name = calendar.month_name[self.month]
                raise _invalid(
                    text,
                    f"{self.year}-{self.month:02d}-{self.day:02d} is not a date "
                    f"({name} {self.year} has {days} days)",
                )
        if self.week is not None:
            weeks = iso_weeks_in_year(self.year)
            if not 1 <= self.week <= weeks:
                raise _invalid(
                    text,
                    f"ISO year {self.year} has weeks W01..W{weeks}, so there is no W{self.week:02d}",
                )

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def for_day(cls, product: str, day: date) -> Symbol:
        """Return the day contract delivering on ``day``."""
        return cls(product, PeriodKind.DAY, day.year, month=day.month, day=day.day)

    @classmethod
    def for_week(cls, product: str, iso_year: int, week: int) -> Symbol:
        """Return the contract for ISO week ``week`` of ISO year ``iso_year``."""
        return cls(product, PeriodKind.WEEK, iso_year, week=week)

    @classmethod
    def for_month(cls, product: str, year: int, month: int) -> Symbol:
        """Return the calendar month contract."""
        return cls(product, PeriodKind.MONTH, year, month=month)

    @classmethod
    def containing(cls, product: str, kind: PeriodKind | str, when: datetime) -> Symbol:
        """Return the period of ``kind`` whose delivery contains the aware instant ``when``."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"when must be timezone-aware, not {when!r}")
        today = when.astimezone(UTC).date()
        kind = PeriodKind(kind)
        if kind is PeriodKind.DAY:
            return cls.for_day(product, today)
        if kind is PeriodKind.WEEK:
            iso = today.isocalendar()
            return cls.for_week(product, iso.year, iso.week)
        return cls.for_month(product, today.year, today.month)

    # -- the delivery period --------------------------------------------------------------
    @property
    def first_day(self) -> date:
        """Return the first UTC date of delivery."""
        if self.kind is PeriodKind.WEEK:
            assert self.week is not None
            return date.fromisocalendar(self.year, self.week, 1)
        assert self.month is not None
        return date(self.year, self.month, self.day or 1)

    @property
    def delivery_start(self) -> datetime:
        """Return when delivery starts: 00:00 UTC of the first day."""
        return datetime.combine(self.first_day, datetime.min.time(), tzinfo=UTC)

    @property
    def delivery_end(self) -> datetime:
        """Return when delivery ends (exclusive): 00:00 UTC after the last day."""
        if self.kind is PeriodKind.DAY:
            return self.delivery_start + _DAY
        if self.kind is PeriodKind.WEEK:
            return self.delivery_start + _WEEK
        assert self.month is not None
        year, month = divmod(self.year * 12 + self.month, 12)
        return datetime(year, month + 1, 1, tzinfo=UTC)

    @property
    def hours(self) -> int:
        """Return the number of delivery hours: 24, 168, or 24 times the days in the month."""
        return (self.delivery_end - self.delivery_start) // timedelta(hours=1)

    @property
    def sort_key(self) -> tuple[str, datetime, datetime]:
        """Return the listing order: product, then delivery start, then shorter period first."""
        return (self.product, self.delivery_start, self.delivery_end)

    def shifted(self, periods: int) -> Symbol:
        """Return the contract ``periods`` periods later (earlier when negative), same kind."""
        if self.kind is PeriodKind.DAY:
            return Symbol.for_day(self.product, self.first_day + periods * _DAY)
        if self.kind is PeriodKind.WEEK:
            iso = (self.first_day + periods * _WEEK).isocalendar()
            return Symbol.for_week(self.product, iso.year, iso.week)
        assert self.month is not None
        year, month = divmod(self.year * 12 + self.month - 1 + periods, 12)
        return Symbol.for_month(self.product, year, month + 1)

    def __str__(self) -> str:
        return format_symbol(self)


def format_symbol(symbol: Symbol) -> str:
    """Write a symbol the one canonical way, e.g. ``H100-2026-W50``."""
    head = f"{symbol.product}-{symbol.year:04d}"
    if symbol.kind is PeriodKind.WEEK:
        return f"{head}-W{symbol.week:02d}"
    if symbol.kind is PeriodKind.DAY:
        return f"{head}-{symbol.month:02d}-{symbol.day:02d}"
    return f"{head}-{symbol.month:02d}"


def parse_symbol(text: str) -> Symbol:
    """Parse a symbol's one canonical spelling; raise :class:`InvalidSymbol` saying what is wrong."""
    if not isinstance(text, str):
        raise InvalidSymbol(f"a symbol is a string, not {type(text).__name__}; {VALID_FORMS}")
    if text != text.strip():
        raise _invalid(text, "remove the leading or trailing whitespace")
    match = _SYMBOL.fullmatch(text)
    if match is None:
        upper = text.upper()
        if upper != text and _SYMBOL.fullmatch(upper) and _is_valid(upper):
            raise _invalid(text, f"symbols are upper case: {upper!r}")
        inner = _SYMBOL.search(text)
        if inner is not None and _JUNK.search(text[: inner.start()] + text[inner.end() :]):
            raise _invalid(text, f"unexpected characters around {inner.group()!r}")
        raise _invalid(
            text,
            "expected PRODUCT-YYYY-MM-DD, PRODUCT-YYYY-Www or PRODUCT-YYYY-MM "
            "(two-digit month, day and week)",
        )
    fields = match.groupdict()
    product, year = fields["product"], int(fields["year"])
    if fields["week"] is not None:
        return Symbol(product, PeriodKind.WEEK, year, week=int(fields["week"]))
    month = int(fields["month"])
    if fields["day"] is not None:
        return Symbol(product, PeriodKind.DAY, year, month=month, day=int(fields["day"]))
    return Symbol(product, PeriodKind.MONTH, year, month=month)


def _is_valid(text: str) -> bool:
    try:
        parse_symbol(text)
    except InvalidSymbol:
        return False
    return True


def as_symbol(value: str | Symbol) -> Symbol:
    """Return ``value`` if it is a :class:`Symbol`, else parse it."""
    return value if isinstance(value, Symbol) else parse_symbol(value)
