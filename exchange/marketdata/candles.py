"""OHLCV candles of one symbol in UTC-aligned 1-minute, 1-hour and 1-day buckets.

A bucket of width ``w`` starts at a multiple of ``w`` nanoseconds since the epoch; since
Unix time has no leap seconds, these are exactly the UTC minute, hour and day boundaries.
Open and close are the prices of the earliest and latest trade by time (ties: the one
recorded first opens, the one recorded last closes), so a late trade lands where it
belongs. Buckets without trades are absent, not filled in.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from sortedcontainers import SortedDict

from exchange.marketdata.formatting import NS, TickFormat, iso_ms
from exchange.marketdata.types import Candle

#: Bucket width in nanoseconds of each interval the REST API accepts.
INTERVALS: Final = {"1m": 60 * NS, "1h": 3_600 * NS, "1d": 86_400 * NS}


class _Bar:
    """One bucket's running OHLCV, in ticks and lots."""

    __slots__ = ("close", "close_ns", "high", "low", "open", "open_ns", "volume")

    def __init__(self, ts_ns: int, price: int, quantity: int) -> None:
        self.open_ns = self.close_ns = ts_ns
        self.open = self.high = self.low = self.close = price
        self.volume = quantity

    def add(self, ts_ns: int, price: int, quantity: int) -> None:
        if ts_ns < self.open_ns:
            self.open_ns, self.open = ts_ns, price
        if ts_ns >= self.close_ns:
            self.close_ns, self.close = ts_ns, price
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.volume += quantity


class Candles:
    """Aggregate one symbol's trades into candles for every interval in :data:`INTERVALS`."""

    def __init__(self, symbol: str, tick_size: Decimal, max_buckets: int = 1000) -> None:
        """Create empty candles, keeping at most ``max_buckets`` newest buckets per interval."""
        if max_buckets < 1:
            raise ValueError(f"max_buckets must be at least 1, not {max_buckets}")
        self.symbol = symbol
        self.format = TickFormat(tick_size)
        self.max_buckets = max_buckets
        self._bars: dict[str, SortedDict] = {name: SortedDict() for name in INTERVALS}

    def record(self, price: int, quantity: int, ts_ns: int) -> None:
        """Add one trade (price in ticks, time in ns) to its bucket in every interval."""
        for name, width in INTERVALS.items():
            bars = self._bars[name]
            start = ts_ns - ts_ns % width
            bar = bars.get(start)
            if bar is not None:
                bar.add(ts_ns, price, quantity)
                continue
            bars[start] = _Bar(ts_ns, price, quantity)
            if len(bars) > self.max_buckets:
                bars.popitem(0)  # the oldest bucket

    def get(self, interval: str, limit: int | None = None) -> list[Candle]:
        """Return the newest ``limit`` candles of ``interval``, oldest first.

        Raise ``ValueError`` for an interval other than ``1m``, ``1h``, ``1d``.
        """
        bars = self._bars.get(interval)
        if bars is None:
            raise ValueError(
                f"unknown candle interval {interval!r}: use one of {', '.join(INTERVALS)}"
            )
        if limit is not None and limit < 0:
            raise ValueError(f"limit must not be negative, not {limit}")
        count = len(bars) if limit is None else min(limit, len(bars))
        price = self.format.price
        return [
            {
                "time": iso_ms(start),
                "open": price(bar.open),
                "high": price(bar.high),
                "low": price(bar.low),
                "close": price(bar.close),
                "volume": str(bar.volume),
            }
            for start, bar in bars.items()[len(bars) - count :]
        ]
