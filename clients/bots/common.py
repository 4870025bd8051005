"""What every example bot needs: the exchange's clock, the contract to trade, exact prices."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from clients import AsyncClient, CfxError, Contract

log = logging.getLogger("cfx.bots")


@dataclass
class Settings:
    """Options every bot understands (``cfx bot NAME --help`` lists them)."""

    product: str = "H100"
    #: A fixed contract; by default the bot follows the nearest day contract still trading.
    symbol: str | None = None
    #: The bot's idea of fair value in USD; by default the contract's reference price.
    fair: Decimal | None = None
    quantity: int = 10
    interval_s: float = 1.0
    seed: int = 1
    #: Dead-man's switch for resting quotes, in seconds of the exchange's clock.
    deadman_s: int = 10
    #: How many of the nearest day contracts a bot that quotes the curve covers.
    books: int = 1
    #: Where fair value comes from when it moves (a price feed, a model, a simulation):
    #: product -> USD. Overrides ``fair``.
    fair_source: Callable[[str], Decimal] | None = None


async def exchange_time(cfx: AsyncClient) -> datetime:
    """The exchange's clock (simulated or real), which is what contracts follow."""
    health = await cfx.health()
    return datetime.fromisoformat(str(health["clock"]).replace("Z", "+00:00"))


def is_day(contract: Contract) -> bool:
    return len(contract.symbol) == len("H100-2026-12-07")


async def front_contracts(cfx: AsyncClient, settings: Settings, count: int) -> list[Contract]:
    """``settings.symbol``, or the ``count`` nearest day contracts still trading."""
    contracts = await cfx.contracts()
    if settings.symbol:
        return [c for c in contracts if c.symbol == settings.symbol]
    days = [
        c for c in contracts
        if c.product == settings.product and is_day(c) and c.status == "trading"
    ]  # fmt: skip
    return sorted(days, key=lambda c: c.delivery_start)[:count]


async def front_contract(cfx: AsyncClient, settings: Settings) -> Contract | None:
    """The contract to trade now: ``settings.symbol``, or the nearest trading day contract."""
    fronts = await front_contracts(cfx, settings, 1)
    return fronts[0] if fronts else None


def fair_value(contract: Contract, settings: Settings) -> Decimal:
    """What the bot believes a GPU-hour is worth: its source, its setting, else the market's."""
    if settings.fair_source is not None:
        return settings.fair_source(contract.product)
    return settings.fair or contract.last_price or contract.reference_price or Decimal("1.00")


def down(price: Decimal, tick: Decimal) -> Decimal:
    """``price`` rounded down to the tick (a bid never pays more than meant)."""
    return (price / tick).to_integral_value(ROUND_DOWN) * tick


def up(price: Decimal, tick: Decimal) -> Decimal:
    """``price`` rounded up to the tick (an ask never sells for less than meant)."""
    return (price / tick).to_integral_value(ROUND_UP) * tick


def refused(error: CfxError) -> None:
    """A refusal is part of trading (margin, bands, a contract that just closed): log it."""
    log.info("refused: %s %s", error.code, error.message)
