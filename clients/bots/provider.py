"""Provider: sell GPU capacity forward, then attest delivery hour by hour.

A provider owns ``quantity`` GPUs. For each listed day contract it offers what it has not
yet sold (24 GPU-hours per GPU a day) at a markup over its cost. After expiry the exchange
assigns it deliveries; as each delivery day runs, the bot attests the GPU-hours delivered
so far, so the consumer can check them and the provider gets paid at settlement.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from clients import AsyncClient, CfxError
from clients.bots.common import Settings, exchange_time, fair_value, is_day, refused, up

MARKUP = Decimal("0.02")  #: ask at fair value plus 2%
DAYS_AHEAD = 3  #: sell this many days forward


async def run(cfx: AsyncClient, settings: Settings) -> None:
    while True:
        await sell_forward(cfx, settings)
        await attest_deliveries(cfx)
        await asyncio.sleep(settings.interval_s)


async def sell_forward(cfx: AsyncClient, settings: Settings) -> None:
    held = {p.symbol: p.quantity for p in await cfx.positions()}
    resting: dict[str, int] = {}  # GPU-hours already offered, per contract
    for order in await cfx.orders(status="open"):
        if order.side == "sell":
            resting[order.symbol] = resting.get(order.symbol, 0) + order.remaining_quantity
    days = sorted(
        (c for c in await cfx.contracts()
         if c.product == settings.product and is_day(c) and c.status == "trading"),
        key=lambda c: c.delivery_start,
    )[:DAYS_AHEAD]  # fmt: skip
    for contract in days:
        capacity = settings.quantity * 24
        unsold = capacity + held.get(contract.symbol, 0) - resting.get(contract.symbol, 0)
        if unsold <= 0:
            continue
        price = up(fair_value(contract, settings) * (1 + MARKUP), contract.tick_size)
        try:
            await cfx.place_order(contract.symbol, "sell", min(unsold, 4 * settings.quantity), price, post_only=True)  # fmt: skip
        except CfxError as error:
            refused(error)


async def attest_deliveries(cfx: AsyncClient) -> None:
    """Attest, for each pending delivery, the hours of its day that have run so far."""
    now = await exchange_time(cfx)
    contracts = {c.symbol: c for c in await cfx.contracts()}
    for delivery in await cfx.deliveries():
        contract = contracts.get(delivery.symbol)
        if delivery.status != "pending" or contract is None or now <= contract.delivery_start:
            continue
        elapsed = min(now, contract.delivery_end) - contract.delivery_start
        period = contract.delivery_end - contract.delivery_start
        due = delivery.gpu_hours * int(elapsed.total_seconds()) // int(period.total_seconds())
        hours = due - delivery.attested_gpu_hours
        if hours <= 0:
            continue
        start = contract.delivery_start + timedelta(
            seconds=int(period.total_seconds()) * delivery.attested_gpu_hours // delivery.gpu_hours
        )
        try:
            await cfx.attest(
                delivery.delivery_id, hours, start.isoformat(),
                min(now, contract.delivery_end).isoformat(), evidence="cluster telemetry",
            )  # fmt: skip
        except CfxError as error:
            refused(error)
