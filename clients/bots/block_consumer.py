"""Block consumer: buy a whole block of GPU-hours for a training run, all or nothing.

A training run needs every hour of its block: half a block is worth nothing. So the bot
sends fill-or-kill orders for the whole quantity, raising its bid a step at a time up to
the most it will pay, and stops once the block is bought.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from clients import AsyncClient, CfxError
from clients.bots.common import Settings, fair_value, front_contract, refused, up

STEP = Decimal("0.01")  #: raise the bid by this fraction of fair value after each miss
MAX_PREMIUM = Decimal("0.10")  #: pay at most fair value plus 10%


async def run(cfx: AsyncClient, settings: Settings) -> None:
    while True:
        contract = await front_contract(cfx, settings)
        if contract is None:
            await asyncio.sleep(settings.interval_s)
            continue
        fair = fair_value(contract, settings)
        bid, ceiling = fair * (1 - 2 * STEP), fair * (1 + MAX_PREMIUM)
        while bid <= ceiling:
            try:
                order = await cfx.place_order(
                    contract.symbol, "buy", settings.quantity, up(bid, contract.tick_size),
                    time_in_force="FOK",
                )  # fmt: skip
            except CfxError as error:
                refused(error)
                break
            if order.status == "filled":
                paid = sum(f.price * f.quantity for f in order.fills) / order.quantity
                print(f"bought {order.quantity} GPU-hours of {contract.symbol} at {paid:.4f}")
                return
            bid += fair * STEP
            await asyncio.sleep(settings.interval_s)
        await asyncio.sleep(settings.interval_s * 5)
