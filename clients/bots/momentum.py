"""Momentum taker: buy when the short average of trade prices rises above the long one.

It listens to the trades feed, keeps two moving averages, and crosses the spread with a
small IOC order in the direction of the trend, within a position limit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from decimal import Decimal

from clients import AsyncClient, CfxError
from clients.bots.common import Settings, front_contract, refused

SHORT, LONG = 5, 20  #: trades in each moving average
THRESHOLD = Decimal("0.002")  #: relative gap between the averages that counts as a trend
LIMIT = 50  #: GPU-hours either way


async def run(cfx: AsyncClient, settings: Settings) -> None:
    contract = await front_contract(cfx, settings)
    while contract is None:  # not listed yet: look again in a while, not in a loop
        await asyncio.sleep(settings.interval_s)
        contract = await front_contract(cfx, settings)
    symbol = contract.symbol
    prices: deque[Decimal] = deque(maxlen=LONG)
    async with cfx.feed([f"trades:{symbol}"]) as feed:
        async for trade in feed:
            prices.append(Decimal(trade["price"]))
            if len(prices) < LONG:
                continue
            short = sum(list(prices)[-SHORT:], Decimal(0)) / SHORT
            long = sum(prices, Decimal(0)) / LONG
            held = {p.symbol: p.quantity for p in await cfx.positions()}.get(symbol, 0)
            side = None
            if short > long * (1 + THRESHOLD) and held < LIMIT:
                side = "buy"
            elif short < long * (1 - THRESHOLD) and held > -LIMIT:
                side = "sell"
            if side is None:
                continue
            try:
                await cfx.place_order(
                    symbol, side, max(1, settings.quantity // 5), time_in_force="IOC"
                )
            except CfxError as error:
                refused(error)
            prices.clear()  # wait for a fresh trend before trading again
