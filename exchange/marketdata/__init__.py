"""Market data: L2 books with sequence numbers and checksums, trades, candles, tickers.

Pure and deterministic: integer engine events in, SPEC section 3 and 4 message dicts
out; time is an argument. See ``docs/marketdata.md``.
"""

from exchange.marketdata.book import CHECKSUM_DEPTH, L2Book, checksum, coalesce
from exchange.marketdata.candles import INTERVALS, Candles
from exchange.marketdata.client_book import ChecksumMismatch, FeedError, FeedGap, LocalBook
from exchange.marketdata.formatting import SIDE_NAMES, TickFormat, iso_ms
from exchange.marketdata.market import MarketData, SymbolMarket
from exchange.marketdata.ticker import WINDOW_NS, Ticker
from exchange.marketdata.trades import TradeTape
from exchange.marketdata.types import (
    BookSnapshot,
    BookUpdate,
    Candle,
    Change,
    Level,
    Message,
    RestBook,
    TickerMessage,
    TradeMessage,
    TradeRow,
)

__all__ = [
    "CHECKSUM_DEPTH",
    "INTERVALS",
    "SIDE_NAMES",
    "WINDOW_NS",
    "BookSnapshot",
    "BookUpdate",
    "Candle",
    "Candles",
    "Change",
    "ChecksumMismatch",
    "FeedError",
    "FeedGap",
    "L2Book",
    "Level",
    "LocalBook",
    "MarketData",
    "Message",
    "RestBook",
    "SymbolMarket",
    "TickFormat",
    "Ticker",
    "TickerMessage",
    "TradeMessage",
    "TradeRow",
    "TradeTape",
    "checksum",
    "coalesce",
    "iso_ms",
]
