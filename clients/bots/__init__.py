"""Example trading bots: short, readable templates for your own.

Run one with ``cfx bot NAME --url URL --key KEY --secret SECRET``. Each is a coroutine
``run(cfx, settings)`` over an :class:`~clients.AsyncClient`; copy one and change the
strategy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from clients import AsyncClient
from clients.bots import block_consumer, market_maker, momentum, provider, steady_consumer
from clients.bots.common import Settings

Bot = Callable[[AsyncClient, Settings], Awaitable[None]]

BOTS: dict[str, Bot] = {
    "market-maker": market_maker.run,
    "provider": provider.run,
    "block-consumer": block_consumer.run,
    "steady-consumer": steady_consumer.run,
    "momentum": momentum.run,
}

__all__ = ["BOTS", "Bot", "Settings"]
