"""Position bookkeeping: average prices and realized P&L in whole ticks, and the worked cases."""

from __future__ import annotations

import random
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from exchange.clearing.positions import Position


class _Textbook:
    """The same bookkeeping step by step: average entry price, then close and open."""

    def __init__(self) -> None:
        self.quantity = 0
        self.cost = Fraction(0)
        self.realized = Fraction(0)

    def trade(self, signed_quantity: int, price: int) -> None:
        q = self.quantity
        if q == 0 or (q > 0) == (signed_quantity > 0):
            self.cost += Fraction(price * signed_quantity)
        else:
            closing = min(abs(signed_quantity), abs(q))
            average = self.cost / q
            sign = 1 if q > 0 else -1
            self.realized += (price - average) * closing * sign
            self.cost -= average * closing * sign
            opening = abs(signed_quantity) - closing
            if opening:
                self.cost = Fraction(price * opening * (1 if signed_quantity > 0 else -1))
        self.quantity = q + signed_quantity
        if self.quantity == 0:
            self.cost = Fraction(0)


trades = st.lists(
    st.tuples(st.integers(-500, 500).filter(bool), st.integers(1, 100_000)), max_size=40
)


@given(trades)
def test_the_books_close_exactly_and_round_by_at_most_half_a_tick_per_partial_close(
    sequence: list[tuple[int, int]],
) -> None:
    """Against the textbook's exact fractions: ``realized - cost`` is the trades' cash to
    the cent at every step; the cost differs by at most half a tick per partial close since
    the position was last flat; a flat position has realized exactly what it earned."""
    position, textbook = Position(), _Textbook()
    cash = 0
    partial_closes = 0
    for signed_quantity, price in sequence:
        before = position.quantity
        position.trade(signed_quantity, price)
        textbook.trade(signed_quantity, price)
        cash -= price * signed_quantity
        if before and (before > 0) != (signed_quantity > 0) and abs(signed_quantity) < abs(before):
            partial_closes += 1
        assert position.quantity == textbook.quantity
        assert type(position.cost) is int and type(position.realized) is int
        assert position.realized - position.cost == cash
        assert abs(position.cost - textbook.cost) <= Fraction(partial_closes, 2)
        if position.quantity == 0:
            assert position.cost == 0 and position.realized == textbook.realized
            partial_closes = 0
        elif (position.quantity > 0) != (before > 0) or before == 0:
            partial_closes = 0  # opened or flipped: the cost is exact again
    assert position.flow == sum(p * q for q, p in sequence)


def test_a_long_lived_position_stays_cheap() -> None:
    """A market maker's position that is never flat, 30,000 trades: the numbers stay
    small (exact fractions grew to thousands of digits and slowed every trade)."""
    rng = random.Random(1)
    position = Position()
    for _ in range(30_000):
        quantity = rng.randint(1, 20) * rng.choice((1, -1))
        if position.quantity + quantity == 0:
            quantity *= 2
        position.trade(quantity, rng.randint(30_000, 40_000))
    assert abs(position.cost) <= abs(position.quantity) * 40_000
    assert abs(position.realized) < 10**10
    average = position.average_price()
    assert average is not None and 30_000 <= average <= 40_000


def test_closing_part_of_a_long_realizes_against_the_average_price() -> None:
    position = Position()
    position.trade(3, 100)
    position.trade(1, 104)  # average 101
    position.trade(-2, 103)  # sells 2 at 2 above the average
    assert (position.quantity, position.realized, position.average_price()) == (2, 4, 101)
    position.trade(-5, 90)  # closes 2 at 11 below, opens a 3-lot short at 90
    assert (position.quantity, position.realized, position.average_price()) == (-3, -18, 90)
    position.trade(1, 91)
    position.trade(-1, 95)  # average of the short: (90 * 2 + 95) / 3
    assert position.average_price() == Fraction(275, 3)
    position.trade(3, 92)  # flat: the short earned 275 - 3 * 92 = -1 tick
    assert (position.quantity, position.cost, position.realized) == (0, 0, -18 - 1 - 1)
