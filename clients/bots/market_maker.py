"""Market maker: quote both sides around fair value, leaning against inventory.

Each round, for each of the ``books`` nearest day contracts, it shifts both quotes down when
long (and up when short) by ``SKEW`` per GPU-hour held, and replaces its quotes. A dead-man's switch cancels them if the
bot stops renewing it, so a crashed bot leaves no stale quotes behind.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

from clients import AsyncClient, CfxError
from clients.bots.common import Settings, down, fair_value, front_contracts, refused, up

HALF_SPREAD = Decimal("0.03")  #: USD each side of fair value
SKEW = Decimal("0.002")  #: USD per GPU-hour of inventory
MAX_INVENTORY = 200  #: GPU-hours either way; beyond it only the reducing side is quoted


async def run(cfx: AsyncClient, settings: Settings) -> None:
    rng = random.Random(settings.seed)
    drift: dict[str, Decimal] = {}  # per contract: this maker's own view around fair value
    while True:
        held = {p.symbol: p.quantity for p in await cfx.positions()}
        try:
            await cfx.cancel_after(settings.deadman_s)
            for contract in await front_contracts(cfx, settings, settings.books):
                symbol, tick = contract.symbol, contract.tick_size
                # A random walk of a tick or two keeps each maker's view its own.
                drift[symbol] = drift.get(symbol, Decimal(0)) + tick * rng.randint(-2, 2)
                centre = fair_value(contract, settings) + drift[symbol] - SKEW * held.get(symbol, 0)
                await cfx.cancel_all(symbol)
                if held.get(symbol, 0) < MAX_INVENTORY:
                    await cfx.place_order(symbol, "buy", settings.quantity, down(centre - HALF_SPREAD, tick), post_only=True)  # fmt: skip
                if held.get(symbol, 0) > -MAX_INVENTORY:
                    await cfx.place_order(symbol, "sell", settings.quantity, up(centre + HALF_SPREAD, tick), post_only=True)  # fmt: skip
        except CfxError as error:
            refused(error)
            drift.clear()  # re-anchor on fair value next round
        await asyncio.sleep(settings.interval_s)
