"""Market data for the gateway, built from the engine's events (SPEC section 4).

Per symbol: an L2 book kept from ``LEVEL`` events with a sequence number that rises by
exactly one per update and a CRC32 checksum of the top of book; the trade tape; OHLCV
candles; a ticker. Pure and deterministic: time comes from the outcomes.
"""

from __future__ import annotations

import zlib
from collections import deque
from typing import TYPE_CHECKING, Any

from sortedcontainers import SortedDict

from contracts import format_cents
from exchange.engine import LEVEL
from exchange.sequencer.state import NS, iso

if TYPE_CHECKING:
    from exchange.sequencer.state import ExchangeState, Outcome

INTERVALS = {"1m": 60 * NS, "1h": 3600 * NS, "1d": 86_400 * NS}
DAY = 86_400 * NS
CHECKSUM_DEPTH = 10


def checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """CRC32 of ``"B" + "p:q,..." + "A" + "p:q,..."`` over the top 10 levels each side."""
    text = (
        "B"
        + ",".join(f"{p}:{q}" for p, q in bids[:CHECKSUM_DEPTH])
        + "A"
        + ",".join(f"{p}:{q}" for p, q in asks[:CHECKSUM_DEPTH])
    )
    return zlib.crc32(text.encode())


class SymbolFeed:
    """Everything the feed knows about one symbol."""

    def __init__(self, symbol: str, tick_cents: int) -> None:
        self.symbol = symbol
        self.tick_cents = tick_cents
        self.sequence = 0
        self.levels: tuple[SortedDict, SortedDict] = (SortedDict(), SortedDict())  # ticks -> qty
        self.trades: deque[dict[str, Any]] = deque(maxlen=1000)
        self.candles: dict[str, SortedDict] = {name: SortedDict() for name in INTERVALS}
        self.day: deque[tuple[int, int, int]] = deque()  # (ns, ticks, qty) inside the last 24 h

    def price(self, ticks: int) -> str:
        return format_cents(ticks * self.tick_cents)

    def side(self, side: int, depth: int | None = None) -> list[list[str]]:
        levels = self.levels[side]
        keys = reversed(levels.keys()) if side == 0 else iter(levels.keys())
        out: list[list[str]] = []
        for ticks in keys:
            if depth is not None and len(out) >= depth:
                break
            out.append([self.price(ticks), str(levels[ticks])])
        return out

    def checksum(self) -> int:
        return checksum(self.side(0, CHECKSUM_DEPTH), self.side(1, CHECKSUM_DEPTH))

    def apply_levels(self, changes: dict[tuple[int, int], int]) -> dict[str, Any] | None:
        """Apply coalesced level changes; return the update message, or None if nothing moved."""
        out = []
        for (side, ticks), qty in changes.items():
            levels = self.levels[side]
            if levels.get(ticks, 0) == qty:
                continue
            if qty:
                levels[ticks] = qty
            else:
                levels.pop(ticks, None)
            out.append(["buy" if side == 0 else "sell", self.price(ticks), str(qty)])
        if not out:
            return None
        self.sequence += 1
        return {"channel": "book", "type": "update", "symbol": self.symbol, "sequence": self.sequence,
                "changes": out, "checksum": self.checksum()}  # fmt: skip

    def add_trade(self, trade: dict[str, Any]) -> dict[str, Any]:
        t, ticks, qty = trade["time"], trade["price"], trade["quantity"]
        message = {"channel": "trades", "symbol": self.symbol, "trade_id": trade["trade_id"],
                   "price": self.price(ticks), "quantity": str(qty), "taker_side": trade["taker_side"],
                   "time": iso(t)}  # fmt: skip
        self.trades.appendleft(message)
        for name, width in INTERVALS.items():
            bucket = t - t % width
            candle = self.candles[name].get(bucket)
            if candle is None:
                self.candles[name][bucket] = [ticks, ticks, ticks, ticks, qty]
                if len(self.candles[name]) > 2000:
                    self.candles[name].popitem(0)
            else:
                candle[1] = max(candle[1], ticks)
                candle[2] = min(candle[2], ticks)
                candle[3] = ticks
                candle[4] += qty
        self.day.append((t, ticks, qty))
        return message

    def ticker(self, now: int) -> dict[str, Any]:
        while self.day and self.day[0][0] <= now - DAY:
            self.day.popleft()
        bids, asks = self.side(0, 1), self.side(1, 1)
        last = self.trades[0]["price"] if self.trades else None
        change = None
        if self.day:
            change = format_cents((self.day[-1][1] - self.day[0][1]) * self.tick_cents)
        return {"channel": "ticker", "symbol": self.symbol, "best_bid": bids[0][0] if bids else None,
                "best_ask": asks[0][0] if asks else None, "last": last,
                "volume_24h": str(sum(q for _, _, q in self.day)), "change_24h": change, "time": iso(now)}  # fmt: skip


class MarketData:
    """Market data of every symbol, fed by the sequencer's outcomes."""

    def __init__(self) -> None:
        self.feeds: dict[str, SymbolFeed] = {}
        self.now = 0

    def feed(self, state: ExchangeState, symbol: str) -> SymbolFeed:
        feed = self.feeds.get(symbol)
        if feed is None:
            contract = state.contracts[symbol]
            feed = self.feeds[symbol] = SymbolFeed(symbol, contract.tick_cents)
            bids, asks = state.engine.depth(contract.book, 1_000_000)
            for side, levels in ((0, bids), (1, asks)):
                for ticks, qty in levels:
                    feed.levels[side][ticks] = qty
        return feed

    def rebuild(self, state: ExchangeState) -> None:
        """Start from the state's books (after recovery); trades before it are not replayed."""
        self.feeds.clear()
        self.now = state.now
        for symbol in state.contracts:
            self.feed(state, symbol)

    def on_outcome(self, state: ExchangeState, outcome: Outcome) -> list[dict[str, Any]]:
        """Turn one command's outcome into feed messages: book updates, trades, tickers."""
        self.now = state.now
        messages: list[dict[str, Any]] = []
        changed: dict[str, dict[tuple[int, int], int]] = {}
        for symbol, events in outcome.events:
            levels = changed.setdefault(symbol, {})
            for ev in events[events["kind"] == LEVEL]:
                levels[(int(ev["side"]), int(ev["price"]))] = int(ev["quantity"])
        for symbol in state.contracts:
            if symbol not in self.feeds:
                self.feed(state, symbol)
        for symbol, levels in changed.items():
            update = self.feeds[symbol].apply_levels(levels) if symbol in self.feeds else None
            if update is not None:
                messages.append(update)
        traded = []
        for trade in outcome.trades:
            messages.append(self.feeds[trade["symbol"]].add_trade(trade))
            traded.append(trade["symbol"])
        for symbol in dict.fromkeys([*changed, *traded]):
            messages.append(self.feeds[symbol].ticker(self.now))
        return messages

    # -- views ------------------------------------------------------------------------
    def rest_book(self, symbol: str, depth: int) -> dict[str, Any]:
        feed = self.feeds[symbol]
        return {
            "symbol": symbol,
            "sequence": feed.sequence,
            "bids": feed.side(0, depth),
            "asks": feed.side(1, depth),
        }

    def snapshot_message(self, symbol: str) -> dict[str, Any]:
        feed = self.feeds[symbol]
        return {"channel": "book", "type": "snapshot", "symbol": symbol, "sequence": feed.sequence,
                "bids": feed.side(0), "asks": feed.side(1), "checksum": feed.checksum()}  # fmt: skip

    def ticker_message(self, symbol: str) -> dict[str, Any]:
        return self.feeds[symbol].ticker(self.now)

    def trades(self, symbol: str, limit: int) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in t.items() if k not in ("channel", "symbol")}
            for t in list(self.feeds[symbol].trades)[:limit]
        ]

    def candles(self, symbol: str, interval: str, limit: int) -> list[dict[str, Any]]:
        feed = self.feeds[symbol]
        rows = list(feed.candles[interval].items())[-limit:]
        return [
            {"time": iso(t), "open": feed.price(o), "high": feed.price(h), "low": feed.price(lo),
             "close": feed.price(c), "volume": str(v)}
            for t, (o, h, lo, c, v) in rows
        ]  # fmt: skip
