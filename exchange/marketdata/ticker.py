"""The ticker of one symbol: top of book, last price, and the last 24 hours of trading.

The 24-hour window at ``now_ns`` holds the trades with ``now_ns - 24h < time <= now_ns``.
``volume_24h`` is their total quantity; ``change_24h`` is the last price minus the price
of the window's first trade (``None`` if the window is empty). The answer depends only on
the recorded trades and ``now_ns``: nothing reads a clock.
"""

from __future__ import annotations

from bisect import bisect_right
from decimal import Decimal
from typing import Final

from exchange.marketdata.book import L2Book
from exchange.marketdata.formatting import NS, TickFormat, iso_ms
from exchange.marketdata.types import TickerMessage

#: Width of the rolling window, in nanoseconds.
WINDOW_NS: Final = 86_400 * NS


class Ticker:
    """Rolling 24-hour statistics of one symbol's trades."""

    def __init__(self, symbol: str, tick_size: Decimal) -> None:
        """Create a ticker with no trades; prices are written with ``tick_size``'s decimals."""
        self.symbol = symbol
        self.format = TickFormat(tick_size)
        #: Price of the last trade in ticks, however old; ``None`` before the first trade.
        self.last: int | None = None
        # Trades that may still fall in a window, oldest first, as parallel lists; entries
        # before _start are dead and get compacted away. _volume[i] is the total quantity
        # of every trade up to and including i since the ticker began; _base is the total
        # of the trades compacted away.
        self._times: list[int] = []
        self._prices: list[int] = []
        self._volume: list[int] = []
        self._start = 0
        self._base = 0
        self._total = 0

    @property
    def last_time(self) -> int | None:
        """Time of the last recorded trade in ns, or ``None`` before the first."""
        return self._times[-1] if self._times else None

    def record(self, price: int, quantity: int, ts_ns: int) -> None:
        """Add one trade (price in ticks, time in ns); times must not decrease.

        Raise ``ValueError`` if ``ts_ns`` is earlier than the last recorded trade.
        """
        if self._times and ts_ns < self._times[-1]:
            raise ValueError(
                f"{self.symbol}: trade time {ts_ns} is before the last one {self._times[-1]}"
            )
        self.last = price
        self._total += quantity
        self._times.append(ts_ns)
        self._prices.append(price)
        self._volume.append(self._total)
        # No window at a time >= ts_ns can reach trades at or before ts_ns - 24h.
        self._start = bisect_right(self._times, ts_ns - WINDOW_NS, self._start)
        if self._start > 1024 and self._start * 2 > len(self._times):
            self._base = self._volume[self._start - 1]
            del self._times[: self._start], self._prices[: self._start]
            del self._volume[: self._start]
            self._start = 0

    def window(self, now_ns: int) -> tuple[int, int | None]:
        """Return ``(volume, change)`` over the 24 hours up to ``now_ns``, in lots and ticks.

        Raise ``ValueError`` if ``now_ns`` is before the last recorded trade.
        """
        if self._times and now_ns < self._times[-1]:
            raise ValueError(
                f"{self.symbol}: now {now_ns} is before the last trade {self._times[-1]}"
            )
        first = bisect_right(self._times, now_ns - WINDOW_NS, self._start)
        if first == len(self._times):
            return 0, None
        before = self._volume[first - 1] if first else self._base
        assert self.last is not None
        return self._total - before, self.last - self._prices[first]

    def message(self, book: L2Book, now_ns: int) -> TickerMessage:
        """Return the ``ticker`` message at ``now_ns``, with the top of ``book``."""
        volume, change = self.window(now_ns)
        price = self.format.price
        bid, ask = book.best_bid, book.best_ask
        return {
            "channel": "ticker",
            "symbol": self.symbol,
            "best_bid": None if bid is None else price(bid),
            "best_ask": None if ask is None else price(ask),
            "last": None if self.last is None else price(self.last),
            "volume_24h": str(volume),
            "change_24h": None if change is None else price(change),
            "time": iso_ms(now_ns),
        }
