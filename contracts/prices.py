"""Exact conversion between wire decimals and the integers used inside.

Prices are USD per GPU-hour; inside they are integer ticks of the contract's tick size.
Money amounts are USD; inside they are integer cents. Quantities are integer GPU-hours.

The rules, the same for prices and amounts:

- Accepted inputs are ``str``, ``decimal.Decimal`` and ``int`` (whole USD). A ``float`` is
  refused outright, whatever its value: binary floats cannot hold most cent values, and a
  float anywhere near money is a bug to surface, not to round. ``bool`` is refused too.
- A string is a JSON number written as a string: an optional ``-``, digits without leading
  zeros, an optional fraction, an optional exponent (``"2.35"``, ``"0.5"``, ``"235e-2"``).
  No whitespace, ``+``, ``_``, ``NaN`` or ``Infinity``; at most :data:`MAX_TEXT_LENGTH`
  characters. Exponent forms are accepted when the value they name is exact on the grid,
  exactly like the plain form of the same value.
- Nothing is ever rounded: a value off the grid is an error, never the nearest tick or cent.
"""

from __future__ import annotations

import operator
import re
from decimal import Decimal, InvalidOperation

from contracts.errors import ContractError, InvalidAmount, InvalidPrice, InvalidQuantity

#: Default price increment: one US cent per GPU-hour.
DEFAULT_TICK_SIZE: Decimal = Decimal("0.01")
#: Largest price :func:`to_ticks` accepts, in USD per GPU-hour (far above any real market:
#: it only keeps typing mistakes and overflow attempts out).
MAX_PRICE: Decimal = Decimal("1000000")
#: Largest money amount :func:`to_cents` accepts, in USD (either sign).
MAX_AMOUNT: Decimal = Decimal("1000000000")
#: Largest order quantity :func:`parse_quantity` accepts by default, in GPU-hours (the
#: matching engine's own per-order limit).
MAX_QUANTITY: int = 1_000_000
#: Longest decimal string accepted for a price, amount or quantity.
MAX_TEXT_LENGTH: int = 64
#: Most decimal places a tick size may have.
MAX_TICK_DECIMALS: int = 12

_CENT = Decimal("0.01")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_WHOLE = re.compile(r"0|[1-9][0-9]*")


def _stripped(value: Decimal) -> tuple[tuple[int, ...], int]:
    """Return the digits and exponent of a finite ``value`` without trailing zeros."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int), "only finite values reach here"
    end = len(digits)
    while end and digits[end - 1] == 0:
        end -= 1
    return digits[:end], exponent + len(digits) - end


def decimal_places(value: Decimal) -> int:
    """Return how many decimal places a finite ``value`` needs; trailing zeros do not count.

    Exact for any Decimal, unlike ``value.normalize()``, which rounds to the context precision.
    """
    digits, exponent = _stripped(value)
    return max(0, -exponent) if digits else 0


def _shown(value: object) -> str:
    """Write an input for an error message, short even when the input is enormous."""
    if isinstance(value, int) and abs(value) >= 10**40:
        return f"<{value.bit_length()}-bit integer>"
    text = str(value)
    return text if len(text) <= MAX_TEXT_LENGTH else text[:MAX_TEXT_LENGTH] + "..."


def _read(value: object, what: str, example: str, error: type[ContractError]) -> Decimal:
    """Read a ``str``, ``Decimal`` or ``int`` as an exact finite Decimal, or raise ``error``."""
    if isinstance(value, float):
        raise error(
            f"{what} {value!r} is a float; money is never a float: send a decimal string such as {example!r}"
        )
    if isinstance(value, bool) or not isinstance(value, (str, Decimal, int)):
        raise error(
            f"{what} must be a decimal string such as {example!r}, not {type(value).__name__}"
        )
    if isinstance(value, str):
        if len(value) > MAX_TEXT_LENGTH:
            raise error(f"{what} is longer than {MAX_TEXT_LENGTH} characters")
        if _NUMBER.fullmatch(value) is None:
            raise error(f"{what} {value!r} is not a decimal string such as {example!r}")
        try:
            return Decimal(value)
        except InvalidOperation:  # an exponent beyond what Decimal holds: 1e99999999999999999999
            raise error(f"{what} {_shown(value)} is out of range") from None
    number = Decimal(value)
    if not number.is_finite():
        raise error(f"{what} must be a finite number, not {_shown(value)}")
    return number


def _on_grid(value: Decimal, step: Decimal) -> int | None:
    """Return ``value / step`` if it is a whole number, else ``None``; exact for bounded values."""
    places = decimal_places(step)
    if decimal_places(value) > places:
        return None
    units = _scaled(value, places)
    quotient, remainder = divmod(units, _scaled(step, places))
    return quotient if remainder == 0 else None


def _scaled(value: Decimal, places: int) -> int:
    """Return ``value * 10**places`` for a bounded ``value`` with at most ``places`` decimals."""
    digits, exponent = _stripped(value)
    if not digits:
        return 0
    # The callers bound the value and its decimals first, so there are few digits here.
    return int("".join(map(str, digits))) * 10 ** (exponent + places)


def _format_units(units: int, places: int) -> str:
    """Write ``units`` hundredths (or 10**-places) as a decimal string with ``places`` decimals."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**places)
    return f"{sign}{whole}.{fraction:0{places}d}" if places else f"{sign}{whole}"


def check_tick_size(tick_size: Decimal) -> Decimal:
    """Return ``tick_size`` if it is a usable tick size; raise TypeError or ValueError if not."""
    if not isinstance(tick_size, Decimal):
        raise TypeError(f"tick_size must be a Decimal, not {type(tick_size).__name__}")
    if not tick_size.is_finite() or tick_size <= 0 or tick_size > MAX_PRICE:
        raise ValueError(f"tick_size must be positive and at most {MAX_PRICE}, not {tick_size}")
    if decimal_places(tick_size) > MAX_TICK_DECIMALS:
        raise ValueError(f"tick_size {tick_size} has more than {MAX_TICK_DECIMALS} decimals")
    return tick_size


def to_ticks(price: str | Decimal | int, tick_size: Decimal = DEFAULT_TICK_SIZE) -> int:
    """Convert a limit price in USD per GPU-hour to whole ticks, exactly.

    Raise :class:`InvalidPrice` with code ``INVALID_TICK`` when the price is not a multiple of
    ``tick_size`` (``"2.355"``), and with code ``INVALID_PRICE`` for everything else: a float,
    a malformed string, NaN or infinity, zero or a negative price, or a price above
    :data:`MAX_PRICE`. An ``int`` is whole USD: ``to_ticks(3) == 300``.
    """
    check_tick_size(tick_size)
    value = _read(price, "price", "2.35", InvalidPrice)
    if value <= 0:
        raise InvalidPrice(f"price must be positive, not {_shown(price)}")
    if value > MAX_PRICE:
        raise InvalidPrice(f"price {_shown(price)} is above the largest accepted price {MAX_PRICE}")
    ticks = _on_grid(value, tick_size)
    if ticks is None:
        raise InvalidPrice(
            f"price {_shown(price)} is not a multiple of the tick size {tick_size}",
            code="INVALID_TICK",
        )
    return ticks


def to_price(ticks: int, tick_size: Decimal = DEFAULT_TICK_SIZE) -> str:
    """Write ``ticks`` as the canonical decimal price string: ``235 -> "2.35"``.

    The string has exactly as many decimals as the tick size needs (``"12.00"`` for a tick of
    0.01, ``"12.5"`` for 0.5, ``"12"`` for 1). Any integer is formatted, zero and negative
    (a price difference) included; ``to_ticks`` is what guards limit prices.
    """
    check_tick_size(tick_size)
    if isinstance(ticks, bool):
        raise TypeError("ticks must be an int, not bool")
    count = operator.index(ticks)
    places = decimal_places(tick_size)
    return _format_units(count * _scaled(tick_size, places), places)


def to_cents(amount: str | Decimal | int, *, allow_negative: bool = False) -> int:
    """Convert a USD amount to whole cents, exactly; raise :class:`InvalidAmount` if impossible.

    Zero is accepted, negative amounts only with ``allow_negative=True``; the magnitude may be
    at most :data:`MAX_AMOUNT`; more than two decimals (``"0.001"``) is refused, not rounded.
    """
    value = _read(amount, "amount", "12.34", InvalidAmount)
    if value < 0 and not allow_negative:
        raise InvalidAmount(f"amount must not be negative, not {_shown(amount)}")
    magnitude = value.copy_abs()  # exact: abs() would round to the context's 28 digits
    if magnitude > MAX_AMOUNT:
        raise InvalidAmount(
            f"amount {_shown(amount)} is beyond the largest accepted amount {MAX_AMOUNT}"
        )
    cents = _on_grid(magnitude, _CENT)
    if cents is None:
        raise InvalidAmount(f"amount {_shown(amount)} is not whole cents: use at most two decimals")
    return -cents if value < 0 else cents


def format_cents(cents: int) -> str:
    """Write integer cents as a USD decimal string: ``1234 -> "12.34"``, ``-5 -> "-0.05"``."""
    if isinstance(cents, bool):
        raise TypeError("cents must be an int, not bool")
    return _format_units(operator.index(cents), 2)


def parse_quantity(
    quantity: int | str, *, lot_size: int = 1, max_quantity: int = MAX_QUANTITY
) -> int:
    """Return a quantity of GPU-hours as an int; raise :class:`InvalidQuantity` if it is not one.

    Accept an ``int`` or a string of decimal digits (``"10"``; no sign, point, exponent or
    leading zero). Refuse bool, float, Decimal and other types, zero, negative values,
    quantities above ``max_quantity``, and quantities that are not a multiple of ``lot_size``.
    """
    if isinstance(quantity, bool) or not isinstance(quantity, (int, str)):
        raise InvalidQuantity(
            f"quantity is a whole number of GPU-hours such as 10, not {type(quantity).__name__}"
        )
    if isinstance(quantity, str):
        if len(quantity) > MAX_TEXT_LENGTH or _WHOLE.fullmatch(quantity) is None:
            raise InvalidQuantity(
                f"quantity {quantity[:MAX_TEXT_LENGTH]!r} is not a whole number of GPU-hours such as '10'"
            )
        quantity = int(quantity)
    if quantity <= 0:
        raise InvalidQuantity(f"quantity must be positive, not {_shown(quantity)}")
    if quantity > max_quantity:
        raise InvalidQuantity(
            f"quantity {_shown(quantity)} is above the largest accepted {max_quantity}"
        )
    if quantity % lot_size:
        raise InvalidQuantity(
            f"quantity {_shown(quantity)} is not a multiple of the lot size {lot_size}"
        )
    return quantity
