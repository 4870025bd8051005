"""Steady consumer: keep a constant inference load covered, contract after contract.

Inference runs around the clock, so the bot holds ``quantity`` GPU-hours of every day it
can buy: for each listed day contract it tops its long position up to the target with
small IOC orders at the best ask, never paying above its limit.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from clients import AsyncClient, CfxError
from clients.bots.common import Settings, fair_value, is_day, refused

CLIP = 5  #: GPU-hours per order
MAX_PREMIUM = Decimal("0.05")  #: pay at most fair value plus 5%


async def run(cfx: AsyncClient, settings: Settings) -> None:
    while True:
        held = {p.symbol: p.quantity for p in await cfx.positions()}
        for contract in await cfx.contracts():
            if contract.product != settings.product or not is_day(contract):
                continue
            if contract.status != "trading" or held.get(contract.symbol, 0) >= settings.quantity:
                continue
            best_ask = (await cfx.book(contract.symbol, depth=1)).best_ask
            limit = fair_value(contract, settings) * (1 + MAX_PREMIUM)
            if best_ask is None or best_ask > limit:
                continue
            need = min(CLIP, settings.quantity - held.get(contract.symbol, 0))
            try:
                await cfx.place_order(contract.symbol, "buy", need, best_ask, time_in_force="IOC")
            except CfxError as error:
                refused(error)
        await asyncio.sleep(settings.interval_s)
