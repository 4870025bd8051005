"""Positions, marks and margin arithmetic: integers in, integers out.

Prices are integer ticks, quantities integer GPU-hours, money integer cents. A contract's
``tick_cents`` converts ticks to cents (1 for the default tick of $0.01).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass
class Position:
    """One account's position in one contract.

    ``quantity`` is signed (long positive). Variation margin is settled against marks:
    ``mark_quantity`` and ``mark_price`` are the position and the price at the last mark,
    ``flow`` the sum of ``price * signed quantity`` of the trades since then (ticks x lots).

    ``cost`` (of the open position, for its average price) and ``realized`` P&L are integer
    ticks x lots, on the average-cost method. Closing part of a position releases its share
    of the cost, rounded half even to a whole tick x lot: exact rationals would do without
    the rounding, but their denominators grow with every partial close (thousands of
    digits after 10,000 trades, each trade slower than the last). No money is made or lost
    by the rounding: ``realized - cost`` is always exactly the cash of every trade
    (``-sum(price * signed quantity)``), so a position that goes flat has realized exactly
    what it earned.
    """

    quantity: int = 0
    mark_quantity: int = 0
    mark_price: int = 0
    flow: int = 0
    cost: int = 0
    realized: int = 0

    def trade(self, signed_quantity: int, price: int) -> None:
        """Record a trade: ``signed_quantity`` lots (positive: bought) at ``price`` ticks."""
        self.flow += price * signed_quantity
        q = self.quantity
        if q == 0 or (q > 0) == (signed_quantity > 0):
            self.cost += price * signed_quantity
        else:
            closing = min(abs(signed_quantity), abs(q))
            released = _share(self.cost, closing, abs(q))
            self.realized += price * (closing if q > 0 else -closing) - released
            self.cost -= released
            opening = abs(signed_quantity) - closing
            if opening:  # the position flipped: the rest opens at this price
                self.cost = price * (opening if signed_quantity > 0 else -opening)
        self.quantity = q + signed_quantity

    def variation(self, price: int) -> int:
        """Ticks x lots owed to the holder if marked at ``price`` now (negative: owed by it)."""
        return self.quantity * price - self.mark_quantity * self.mark_price - self.flow

    def mark(self, price: int) -> int:
        """Mark to ``price``: return the variation and start a new marking period."""
        variation = self.variation(price)
        self.mark_quantity = self.quantity
        self.mark_price = price
        self.flow = 0
        return variation

    def average_price(self) -> Fraction | None:
        """Average entry price in ticks (``cost / quantity``), or ``None`` when flat."""
        return Fraction(self.cost, self.quantity) if self.quantity else None


def _share(amount: int, part: int, whole: int) -> int:
    """``amount * part / whole`` rounded half to even, symmetric in sign (``0 < part <= whole``)."""
    share, rest = divmod(abs(amount) * part, whole)
    if 2 * rest > whole or (2 * rest == whole and share % 2):
        share += 1
    return share if amount >= 0 else -share


def worst_case_quantity(position: int, open_buy: int, open_sell: int) -> int:
    """Largest absolute position the account could reach if its open orders filled."""
    return max(abs(position + open_buy), abs(position - open_sell))


def margin_cents(quantity: int, price_ticks: int, tick_cents: int, rate_bps: int) -> int:
    """Initial margin on ``quantity`` lots valued at ``price_ticks``, rounded up to a cent."""
    notional = quantity * price_ticks * tick_cents * rate_bps
    return -(-notional // 10_000)


def fee_cents(notional_cents: int, rate_bps: int) -> int:
    """Fee on a notional, rounded up: charges round toward the exchange, rebates toward 0."""
    return -(-notional_cents * rate_bps // 10_000)
