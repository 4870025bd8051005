"""The trade tape of one symbol: the most recent trades, for REST and the ``trades`` channel."""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from itertools import islice

from exchange.marketdata.formatting import SIDE_NAMES, TickFormat, iso_ms
from exchange.marketdata.types import TradeMessage, TradeRow


class TradeTape:
    """Keep the last ``maxlen`` trades of ``symbol``, newest first."""

    def __init__(self, symbol: str, tick_size: Decimal, maxlen: int = 1000) -> None:
        """Create an empty tape; prices are written with ``tick_size``'s decimals."""
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, not {maxlen}")
        self.symbol = symbol
        self.format = TickFormat(tick_size)
        self._rows: deque[TradeRow] = deque(maxlen=maxlen)

    def record(
        self, trade_id: int, price: int, quantity: int, taker_side: int, ts_ns: int
    ) -> TradeMessage:
        """Add one trade (price in ticks, time in ns) and return its ``trades`` message.

        ``trade_id`` is the sequencer's; the tape does not number trades itself.
        """
        row: TradeRow = {
            "trade_id": trade_id,
            "price": self.format.price(price),
            "quantity": str(quantity),
            "taker_side": SIDE_NAMES[taker_side],
            "time": iso_ms(ts_ns),
        }
        self._rows.appendleft(row)
        return {"channel": "trades", "symbol": self.symbol, **row}

    def recent(self, limit: int | None = None) -> list[TradeRow]:
        """Return up to ``limit`` trades, newest first (the body of ``GET /v1/trades``)."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must not be negative, not {limit}")
        return [row.copy() for row in islice(self._rows, limit)]

    def __len__(self) -> int:
        """Return how many trades the tape holds."""
        return len(self._rows)
