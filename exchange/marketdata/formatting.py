"""Integers to wire strings: prices from ticks, sides, and nanosecond times.

Inside, a price is an integer number of ticks. On the wire it is a decimal string with
exactly as many decimals as the contract's tick size (tick ``0.01``: ``235 -> "2.35"``,
``1200 -> "12.00"``); the conversion is integer arithmetic, never a float.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from exchange.engine.types import BUY, SELL

#: Wire names of the engine's sides, indexed by side.
SIDE_NAMES: Final = ("buy", "sell")
assert SIDE_NAMES[BUY] == "buy" and SIDE_NAMES[SELL] == "sell"

#: Nanoseconds per second.
NS: Final = 1_000_000_000
#: Nanoseconds per millisecond.
NS_PER_MS: Final = 1_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: Formatted prices cached per tick format; a ladder has at most this many distinct prices.
_CACHE_LIMIT: Final = 1 << 17


class TickFormat:
    """Write integer tick counts as decimal price strings for one tick size."""

    __slots__ = ("_cache", "_unit", "decimals", "tick_size")

    def __init__(self, tick_size: Decimal) -> None:
        """Check ``tick_size`` (a positive, finite :class:`~decimal.Decimal`) and keep it."""
        if not isinstance(tick_size, Decimal):
            raise TypeError(f"tick_size must be a Decimal, not {type(tick_size).__name__}")
        if not tick_size.is_finite() or tick_size <= 0:
            raise ValueError(f"tick_size must be a positive finite decimal, not {tick_size}")
        exponent = tick_size.as_tuple().exponent
        assert isinstance(exponent, int)
        self.tick_size = tick_size
        #: Digits after the decimal point in every price string.
        self.decimals = max(0, -exponent)
        # One tick in units of 10**-decimals, exactly (0.05 -> 5, 0.50 -> 50, 1E+1 -> 10).
        self._unit = int(tick_size.scaleb(self.decimals))
        self._cache: dict[int, str] = {}

    def price(self, ticks: int) -> str:
        """Return ``ticks`` times the tick size as a decimal string (``-5 -> "-0.05"``)."""
        text = self._cache.get(ticks)
        if text is None:
            text = self._write(ticks * self._unit)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[ticks] = text
        return text

    def _write(self, units: int) -> str:
        if not self.decimals:
            return str(units)
        sign = "-" if units < 0 else ""
        whole, frac = divmod(abs(units), 10**self.decimals)
        return f"{sign}{whole}.{frac:0{self.decimals}d}"


#: The last millisecond written and its text: a publication's trades, tickers and candles
#: mostly share one batch's time.
_last_iso: tuple[int | None, str] = (None, "")


def iso_ms(ns: int) -> str:
    """Write nanoseconds since the epoch as ISO 8601 UTC with milliseconds and ``Z``.

    Sub-millisecond digits are dropped (rounded toward the past), so a time and the start
    of its bucket never format the other way round.
    """
    global _last_iso
    ms = ns // NS_PER_MS
    last = _last_iso
    if last[0] == ms:
        return last[1]
    second, millis = divmod(ms, 1000)
    text = f"{_second_text(second)}{millis:03d}Z"
    _last_iso = (ms, text)
    return text


@functools.lru_cache(maxsize=1 << 16)
def _second_text(second: int) -> str:
    """``"YYYY-MM-DDTHH:MM:SS."`` of a second since the epoch, written once: ``strftime`` is
    most of the cost of a time, and an order's acknowledgement carries its creation time,
    often seconds old."""
    return f"{_EPOCH + timedelta(seconds=second):%Y-%m-%dT%H:%M:%S}."
