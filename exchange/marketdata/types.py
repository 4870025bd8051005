"""The shapes of the market-data messages and REST bodies (SPEC sections 3 and 4).

Every message is a plain ``dict`` (a :class:`~typing.TypedDict` for the type checker), so
the gateway can hand it to ``orjson.dumps`` as it is. Prices, quantities and volumes are
decimal strings, sequence numbers, checksums and trade ids are ints, absent values are
``None`` (JSON ``null``). Key order is the order the SPEC lists the fields in.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypeAlias, TypedDict

#: ``[price, quantity]``: one price level as the feed writes it, e.g. ``["2.35", "5"]``.
Level: TypeAlias = list[str]
#: ``["buy"|"sell", price, new_quantity]``: one level change; ``"0"`` removes the level.
Change: TypeAlias = list[str]


class BookSnapshot(TypedDict):
    """The first book message of a subscription: the whole book and its sequence."""

    channel: Literal["book"]
    type: Literal["snapshot"]
    symbol: str
    sequence: int
    bids: list[Level]
    asks: list[Level]
    checksum: int


class BookUpdate(TypedDict):
    """One batch of level changes; ``sequence`` is the previous one plus 1."""

    channel: Literal["book"]
    type: Literal["update"]
    symbol: str
    sequence: int
    changes: list[Change]
    checksum: int
    #: Event time of the changes, integer ns since the epoch (set by ``MarketData.on_events``).
    ts: NotRequired[int]


class RestBook(TypedDict):
    """``GET /v1/book/{symbol}``: bids best first (descending), asks best first (ascending)."""

    symbol: str
    sequence: int
    bids: list[Level]
    asks: list[Level]


class TradeRow(TypedDict):
    """One trade as ``GET /v1/trades/{symbol}`` lists it."""

    trade_id: int
    price: str
    quantity: str
    taker_side: str
    time: str


class TradeMessage(TypedDict):
    """One trade on the ``trades`` channel."""

    channel: Literal["trades"]
    symbol: str
    trade_id: int
    price: str
    quantity: str
    taker_side: str
    time: str
    #: The trade's event time, integer ns since the epoch (set by ``MarketData.on_events``).
    ts: NotRequired[int]


class Candle(TypedDict):
    """One OHLCV bar; ``time`` is the start of its UTC-aligned bucket."""

    time: str
    open: str
    high: str
    low: str
    close: str
    volume: str


class TickerMessage(TypedDict):
    """Top of book, last trade price, and volume and change over the last 24 hours."""

    channel: Literal["ticker"]
    symbol: str
    best_bid: str | None
    best_ask: str | None
    last: str | None
    volume_24h: str
    change_24h: str | None
    time: str


#: Anything :meth:`exchange.marketdata.MarketData.on_events` sends out.
Message: TypeAlias = BookUpdate | TradeMessage | TickerMessage
