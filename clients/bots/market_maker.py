"""Market maker: quote both sides around fair value, leaning against inventory.

Each round it reads its position, shifts both quotes down when long (and up when short) by
``skew`` per GPU-hour held, and replaces its quotes. A dead-man's switch cancels them if the
bot stops renewing it, so a crashed bot leaves no stale quotes behind.
"""

from __future__ import annotations

import random
from decimal import Decimal

from clients import AsyncClient, CfxError
from clients.bots.common import Settings, down, every, fair_value, front_contract, refused, up

HALF_SPREAD = Decimal("0.03")  #: USD each side of fair value
SKEW = Decimal("0.002")  #: USD per GPU-hour of inventory
MAX_INVENTORY = 200  #: GPU-hours either way; beyond it only the reducing side is quoted


async def run(cfx: AsyncClient, settings: Settings) -> None:
    rng = random.Random(settings.seed)
    fair: Decimal | None = settings.fair
    while True:
        contract = await front_contract(cfx, settings)
        if contract is None:
            await every(settings.interval_s)
            continue
        symbol, tick = contract.symbol, contract.tick_size
        # Fair value drifts: a random walk of a tick or two around the market's last price.
        fair = (fair or fair_value(contract, settings)) + tick * rng.randint(-2, 2)
        held = {p.symbol: p.quantity for p in await cfx.positions()}.get(symbol, 0)
        centre = fair - SKEW * held
        try:
            await cfx.cancel_after(settings.deadman_s)
            await cfx.cancel_all(symbol)
            if held < MAX_INVENTORY:
                await cfx.place_order(symbol, "buy", settings.quantity, down(centre - HALF_SPREAD, tick), post_only=True)  # fmt: skip
            if held > -MAX_INVENTORY:
                await cfx.place_order(symbol, "sell", settings.quantity, up(centre + HALF_SPREAD, tick), post_only=True)  # fmt: skip
        except CfxError as error:
            refused(error)
            fair = None  # re-anchor on the market next round
        await every(settings.interval_s)
