"""Position bookkeeping: exact average prices and realized P&L, and the worked cases."""

from __future__ import annotations

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
def test_trades_keep_the_exact_cost_and_realized_pnl(sequence: list[tuple[int, int]]) -> None:
    position, textbook = Position(), _Textbook()
    for signed_quantity, price in sequence:
        position.trade(signed_quantity, price)
        textbook.trade(signed_quantity, price)
        assert position.quantity == textbook.quantity
        assert type(position.cost) is Fraction and position.cost == textbook.cost
        assert type(position.realized) is Fraction and position.realized == textbook.realized
    assert position.flow == sum(p * q for q, p in sequence)


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
