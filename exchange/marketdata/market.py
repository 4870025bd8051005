"""The market-data facade: every symbol's book, tape, candles and ticker, fed by events.

The gateway registers each contract with :meth:`MarketData.add_symbol`, hands every batch
of engine events to :meth:`MarketData.on_events`, sends the messages it returns, and
answers REST reads from the views. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from exchange.engine.types import LEVEL, SELL, TRADE
from exchange.marketdata.book import L2Book
from exchange.marketdata.candles import Candles
from exchange.marketdata.ticker import Ticker
from exchange.marketdata.trades import TradeTape
from exchange.marketdata.types import (
    BookSnapshot,
    Candle,
    Message,
    RestBook,
    TickerMessage,
    TradeMessage,
    TradeRow,
)


@dataclass(frozen=True)
class SymbolMarket:
    """The market data of one symbol."""

    book: L2Book
    tape: TradeTape
    candles: Candles
    ticker: Ticker


class MarketData:
    """Market data of every symbol, built from the engine's ``LEVEL`` and ``TRADE`` events."""

    def __init__(self, tape_len: int = 1000, candle_buckets: int = 1000) -> None:
        """Keep ``tape_len`` trades and ``candle_buckets`` buckets per interval per symbol."""
        self.tape_len = tape_len
        self.candle_buckets = candle_buckets
        self._symbols: dict[str, SymbolMarket] = {}

    def add_symbol(
        self,
        symbol: str,
        tick_size: Decimal,
        bids: Iterable[tuple[int, int]] = (),
        asks: Iterable[tuple[int, int]] = (),
    ) -> SymbolMarket:
        """Register ``symbol``, optionally starting from ``(price_ticks, qty)`` levels.

        Raise ``ValueError`` if the symbol is already registered.
        """
        if symbol in self._symbols:
            raise ValueError(f"symbol {symbol!r} is already registered")
        book = L2Book(symbol, tick_size)
        book.restore(bids, asks)
        market = SymbolMarket(
            book=book,
            tape=TradeTape(symbol, tick_size, self.tape_len),
            candles=Candles(symbol, tick_size, self.candle_buckets),
            ticker=Ticker(symbol, tick_size),
        )
        self._symbols[symbol] = market
        return market

    def __getitem__(self, symbol: str) -> SymbolMarket:
        """Return one symbol's market data; raise ``KeyError`` for an unknown symbol."""
        market = self._symbols.get(symbol)
        if market is None:
            raise KeyError(f"unknown symbol {symbol!r}")
        return market

    def __len__(self) -> int:
        """Return how many symbols are registered."""
        return len(self._symbols)

    def __contains__(self, symbol: object) -> bool:
        """Return whether ``symbol`` is registered."""
        return symbol in self._symbols

    def symbols(self) -> list[str]:
        """Return the registered symbols in registration order."""
        return list(self._symbols)

    # -- the one input ----------------------------------------------------------------
    def on_events(
        self,
        events: np.ndarray,
        symbol_of_book: Callable[[int], str],
        trade_ids: Sequence[int],
        now_ns: int,
    ) -> list[Message]:
        """Turn one batch of ``EVENT_DTYPE`` rows into the messages to send, in this order.

        1. One book ``update`` per symbol whose levels changed (every ``LEVEL`` event of the
           batch coalesced), symbols in order of their first ``LEVEL`` event; its ``ts`` is
           the latest event time (integer ns) among those changes.
        2. One ``trades`` message per ``TRADE`` event, in event order; ``trade_ids`` holds
           the sequencer's id of each, in the same order. Its ``time`` and ``ts`` (integer
           ns) are the event's ``ts``.
        3. One ``ticker`` (time ``now_ns``) per symbol that traded or whose best bid or ask
           moved, in order of first appearance in the batch.

        Other event kinds are ignored. ``symbol_of_book`` maps an engine book id to its
        symbol (a dict's ``__getitem__`` will do). Everything is checked before anything
        changes: raise ``KeyError`` for an unknown book or symbol, and ``ValueError`` if
        ``trade_ids`` does not have one id per trade, a ``LEVEL`` event is malformed, or a
        trade is older than the symbol's last one.
        """
        kinds = events["kind"]
        levels = events[kinds == LEVEL]
        trades = events[kinds == TRADE]
        if len(trade_ids) != len(trades):
            raise ValueError(f"{len(trades)} trades in the batch but {len(trade_ids)} trade ids")
        symbol_of: dict[int, str] = {}  # book id -> symbol, in order of first appearance
        for book_id in dict.fromkeys(events["book"][(kinds == LEVEL) | (kinds == TRADE)].tolist()):
            symbol_of[book_id] = symbol = symbol_of_book(book_id)
            if symbol not in self._symbols:
                raise KeyError(f"book {book_id}: unknown symbol {symbol!r}")
        bad = (levels["side"] > SELL) | (levels["price"] < 1) | (levels["quantity"] < 0)
        if bad.any():
            raise ValueError(f"malformed LEVEL event: {levels[bad][0]}")
        latest: dict[str, int] = {}
        for book_id, ts in zip(trades["book"].tolist(), trades["ts"].tolist(), strict=True):
            symbol = symbol_of[book_id]
            last = latest.get(symbol, self._symbols[symbol].ticker.last_time)
            if last is not None and ts < last:
                raise ValueError(f"{symbol}: trade time {ts} is before the last one {last}")
            latest[symbol] = ts

        changes: dict[str, list[tuple[int, int, int]]] = {}
        stamps: dict[str, int] = {}  # symbol -> latest event time of its level changes
        for book_id, side, price, qty, ts in zip(
            levels["book"].tolist(),
            levels["side"].tolist(),
            levels["price"].tolist(),
            levels["quantity"].tolist(),
            levels["ts"].tolist(),
            strict=True,
        ):
            symbol = symbol_of[book_id]
            changes.setdefault(symbol, []).append((side, price, qty))
            stamps[symbol] = max(ts, stamps.get(symbol, ts))

        messages: list[Message] = []
        touched: dict[str, None] = {}
        for symbol, batch in changes.items():
            book = self._symbols[symbol].book
            top = (book.best_bid, book.best_ask)
            update = book.apply(batch)
            if update is not None:
                update["ts"] = stamps[symbol]
                messages.append(update)
            if (book.best_bid, book.best_ask) != top:
                touched[symbol] = None
        for trade_id, book_id, side, price, qty, ts in zip(
            trade_ids,
            trades["book"].tolist(),
            trades["side"].tolist(),
            trades["price"].tolist(),
            trades["quantity"].tolist(),
            trades["ts"].tolist(),
            strict=True,
        ):
            symbol = symbol_of[book_id]
            trade = self.record_trade(symbol, trade_id, price, qty, side, ts)
            trade["ts"] = ts
            messages.append(trade)
            touched[symbol] = None
        order = {symbol: None for symbol in symbol_of.values()}
        messages.extend(self.ticker_message(s, now_ns) for s in order if s in touched)
        return messages

    def record_trade(
        self, symbol: str, trade_id: int, price: int, quantity: int, taker_side: int, ts_ns: int
    ) -> TradeMessage:
        """Add one trade to the tape, candles and ticker of ``symbol``; return its message."""
        market = self[symbol]
        market.candles.record(price, quantity, ts_ns)
        market.ticker.record(price, quantity, ts_ns)
        return market.tape.record(trade_id, price, quantity, taker_side, ts_ns)

    # -- views ------------------------------------------------------------------------
    def snapshot_message(self, symbol: str, depth: int | None = None) -> BookSnapshot:
        """Return the book ``snapshot`` message a new subscriber gets first."""
        return self[symbol].book.snapshot_message(depth)

    def rest_book(self, symbol: str, depth: int | None = None) -> RestBook:
        """Return the body of ``GET /v1/book/{symbol}?depth=N``."""
        return self[symbol].book.rest_book(depth)

    def trades(self, symbol: str, limit: int | None = None) -> list[TradeRow]:
        """Return the body of ``GET /v1/trades/{symbol}?limit=N``, newest first."""
        return self[symbol].tape.recent(limit)

    def candles(self, symbol: str, interval: str, limit: int | None = None) -> list[Candle]:
        """Return the body of ``GET /v1/candles/{symbol}?interval=...``, oldest first."""
        return self[symbol].candles.get(interval, limit)

    def ticker_message(self, symbol: str, now_ns: int) -> TickerMessage:
        """Return the ``ticker`` message of ``symbol`` at ``now_ns``."""
        market = self[symbol]
        return market.ticker.message(market.book, now_ns)

    def tickers(self, now_ns: int) -> list[TickerMessage]:
        """Return every symbol's ticker at ``now_ns`` (for ``ticker:*`` or a periodic refresh)."""
        return [self.ticker_message(symbol, now_ns) for symbol in self._symbols]
