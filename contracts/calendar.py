"""The listing calendar: which contracts exist at a given time.

For each product and period kind the calendar keeps a rolling window of the next ``n``
periods whose delivery starts strictly after ``now`` (default: 7 days, 4 ISO weeks,
3 months, for A100 and H100). At any ``now`` on day D (UTC), the day window is D+1 .. D+7;
the week window is the 4 ISO weeks after the current one; the month window is the 3 months
after the current one. So a contract enters the window, and is listed, exactly ``n`` periods
before its delivery starts: a day contract at 00:00 UTC seven days before, a week contract
28 days before, ``A100-2026-12`` on 2026-09-01 00:00 UTC.

A listed contract stays in :meth:`ListingCalendar.contracts_at` until it is settled
(delivery end plus the settlement grace), with its status: trading, then expired after the
last trade time, delivering, settled. Note that the window holds a contract until its
delivery *starts*, so in the hour between the last trade time and delivery start a window
member is already ``expired``.

Nothing here reads the clock: ``now`` is always an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from contracts.errors import InvalidSymbol
from contracts.products import PRODUCTS, get_product
from contracts.specs import ContractSpec, ContractStatus, spec_for
from contracts.symbols import PeriodKind, Symbol, as_symbol

#: Spec fields a calendar fixes per contract, so overrides may not set them.
_PER_CONTRACT = frozenset({"symbol", "last_trade_time", "listing_time", "reference_price"})


def _previous(symbol: Symbol) -> Symbol | None:
    """Return the period before ``symbol``, or ``None`` before the first nameable year."""
    try:
        return symbol.shifted(-1)
    except InvalidSymbol:
        return None


class ListingCalendar:
    """A rolling listing schedule: the next ``days`` days, ``weeks`` ISO weeks and ``months``
    months of each product in ``products``.

    ``spec_overrides`` apply to every contract's spec (e.g. ``{"mechanism": "batch",
    "batch_interval_s": 5}``); a count of 0 lists no contract of that kind.
    """

    def __init__(
        self,
        products: Iterable[str] = tuple(PRODUCTS),
        *,
        days: int = 7,
        weeks: int = 4,
        months: int = 3,
        spec_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.products: tuple[str, ...] = tuple(sorted({get_product(p).code for p in products}))
        self.counts: dict[PeriodKind, int] = {
            PeriodKind.DAY: days,
            PeriodKind.WEEK: weeks,
            PeriodKind.MONTH: months,
        }
        for kind, count in self.counts.items():
            if type(count) is not int or count < 0:
                raise ValueError(
                    f"the number of {kind} contracts must be an int >= 0, not {count!r}"
                )
        self.spec_overrides: dict[str, Any] = dict(spec_overrides or {})
        fixed = sorted(_PER_CONTRACT & set(self.spec_overrides))
        if fixed:
            raise ValueError(f"spec_overrides may not set per-contract fields {fixed}")

    def __repr__(self) -> str:
        counts = ", ".join(f"{kind}s={n}" for kind, n in self.counts.items())
        return f"ListingCalendar({list(self.products)}, {counts})"

    def listing_time(self, symbol: str | Symbol) -> datetime:
        """Return when ``symbol`` enters the rolling window, i.e. is listed and opens for trading.

        That is the delivery start of the period ``n`` periods earlier, where ``n`` is the
        calendar's count for the symbol's kind. Raise :class:`InvalidSymbol` for a product or
        kind this calendar does not list.
        """
        sym = as_symbol(symbol)
        if sym.product not in self.products:
            raise InvalidSymbol(f"{sym}: this calendar does not list {sym.product}")
        count = self.counts[sym.kind]
        if count == 0:
            raise InvalidSymbol(f"{sym}: this calendar lists no {sym.kind} contracts")
        if sym.kind is PeriodKind.DAY:
            return sym.delivery_start - timedelta(days=count)
        if sym.kind is PeriodKind.WEEK:
            return sym.delivery_start - timedelta(weeks=count)
        assert sym.month is not None
        year, month = divmod(sym.year * 12 + sym.month - 1 - count, 12)
        return sym.delivery_start.replace(year=year, month=month + 1)

    def spec(self, symbol: str | Symbol) -> ContractSpec:
        """Return the spec of ``symbol`` as this calendar lists it (with its listing time)."""
        sym = as_symbol(symbol)
        return spec_for(sym, listing_time=self.listing_time(sym), **self.spec_overrides)

    def _window(self, product: str, kind: PeriodKind, now: datetime) -> list[Symbol]:
        current = Symbol.containing(product, kind, now)
        return [current.shifted(i) for i in range(1, self.counts[kind] + 1)]

    def listed_at(self, now: datetime) -> list[ContractSpec]:
        """Return the rolling window at ``now``: the contracts listed for trading.

        Ordered by product, then delivery start, then shorter period first.
        """
        symbols = [
            symbol
            for product in self.products
            for kind in PeriodKind
            for symbol in self._window(product, kind, now)
        ]
        return [self.spec(s) for s in sorted(symbols, key=lambda s: s.sort_key)]

    def contracts_at(self, now: datetime) -> list[tuple[ContractSpec, ContractStatus]]:
        """Return every contract listed by ``now`` and not yet settled, with its status.

        That is the rolling window plus the contracts that left it and are expired or
        delivering (or in their settlement grace), in the order of :meth:`listed_at`.
        """
        found: list[tuple[ContractSpec, ContractStatus]] = []
        for product in self.products:
            for kind in PeriodKind:
                if self.counts[kind] == 0:
                    continue
                # Walk back from the window's last period until one has settled.
                symbol: Symbol | None = Symbol.containing(product, kind, now).shifted(
                    self.counts[kind]
                )
                while symbol is not None:
                    spec = self.spec(symbol)
                    status = spec.status_at(now)
                    assert status is not None, "every period up to the window's end is listed"
                    if status is ContractStatus.SETTLED:
                        break
                    found.append((spec, status))
                    symbol = _previous(symbol)
        found.sort(key=lambda pair: pair[0].symbol.sort_key)
        return found
