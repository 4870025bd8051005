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
    ``cost`` is the exact cost of the open position, for its average price.
    """

    quantity: int = 0
    mark_quantity: int = 0
    mark_price: int = 0
    flow: int = 0
    cost: Fraction = Fraction(0)
    realized: Fraction = Fraction(0)

    def trade(self, signed_quantity: int, price: int) -> None:
        """Record a trade: ``signed_quantity`` lots (positive: bought) at ``price`` ticks."""
        self.flow += price * signed_quantity
        q = self.quantity
        if q == 0 or (q > 0) == (signed_quantity > 0):
            self.cost += price * signed_quantity
        else:
            closing = min(abs(signed_quantity), abs(q))
            closed = closing if q > 0 else -closing  # signed like the position
            # With the exact average entry price a = cost / q = n / (d q): realize
            # (price - a) * closed, and the rest keeps cost - a * closed = n (q - closed) / (d q).
            # Written as one fraction each: the same exact values, far fewer Fraction steps.
            n, d = self.cost.numerator, self.cost.denominator
            self.realized += Fraction((price * d * q - n) * closed, d * q)
            self.cost = Fraction(n * (q - closed), d * q)
            opening = abs(signed_quantity) - closing
            if opening:
                self.cost = Fraction(price * opening * (1 if signed_quantity > 0 else -1))
        self.quantity = q + signed_quantity
        if self.quantity == 0:
            self.cost = Fraction(0)

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
        """Exact average entry price in ticks, or ``None`` when flat."""
        return self.cost / self.quantity if self.quantity else None


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
