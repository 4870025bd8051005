"""The cfx Python SDK, the ``cfx`` command line and example bots.

>>> from clients import Client
>>> cfx = Client("http://127.0.0.1:8000", key="cfx_...", secret="...")
>>> cfx.place_order("H100-2026-12-07", "buy", 10, "2.35")

:class:`Client` and :class:`AsyncClient` cover every REST endpoint; :class:`Feed` and
:class:`AsyncFeed` the websocket (market data, private channels, order entry), with local
order books verified by sequence and checksum.
"""

from clients.aio import AsyncClient, AsyncFeed
from clients.errors import (
    AuthenticationError,
    CfxError,
    ExchangeUnreachable,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    ServerError,
)
from clients.models import (
    Account,
    Book,
    Candle,
    Contract,
    Credentials,
    Delivery,
    Fill,
    Index,
    Order,
    Position,
    SettlementPrice,
    Trade,
)
from clients.sync import Client, Feed
from exchange.marketdata.client_book import ChecksumMismatch, FeedError, FeedGap, LocalBook

__all__ = [
    "Account", "AsyncClient", "AsyncFeed", "AuthenticationError", "Book", "Candle", "CfxError",
    "ChecksumMismatch", "Client", "Contract", "Credentials", "Delivery", "ExchangeUnreachable",
    "Feed", "FeedError", "FeedGap", "Fill", "Index", "LocalBook", "NotFound", "Order", "OutcomeUnknown",
    "Position", "RateLimited", "Rejected", "ServerError", "SettlementPrice", "Trade",
]  # fmt: skip
