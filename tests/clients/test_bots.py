"""Each example bot against a real exchange: it does what its docstring promises."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

from bench.server import Server
from clients import AsyncClient, Client
from clients.bots import BOTS, Settings, provider
from tests.clients.conftest import Trader

T = TypeVar("T")


def _bot(name: str, client: Client, settings: Settings, seconds: float) -> None:
    async def main() -> None:
        async with AsyncClient(client.url, client.key, client.secret) as cfx:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(BOTS[name](cfx, settings), seconds)

    asyncio.run(main())


def _bot_until(
    name: str, client: Client, settings: Settings, until: Callable[[], T | None], seconds: float
) -> T | None:
    """Run a bot until ``until()`` (polled every 0.1 s) returns something, at most
    ``seconds``; return it. A slow start (a cold server, a busy machine) only waits longer."""

    async def main() -> T | None:
        async with AsyncClient(client.url, client.key, client.secret) as cfx:
            bot = asyncio.create_task(BOTS[name](cfx, settings))
            try:
                deadline = asyncio.get_running_loop().time() + seconds
                while asyncio.get_running_loop().time() < deadline and not bot.done():
                    found = await asyncio.to_thread(until)
                    if found is not None:
                        return found
                    await asyncio.sleep(0.1)
                return None
            finally:
                bot.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await bot

    return asyncio.run(main())


def test_market_maker_quotes_both_sides_and_leans_against_inventory(
    trader: Trader, symbol: str
) -> None:
    mm = trader("mm")
    settings = Settings(fair=Decimal("3.50"), quantity=5, interval_s=0.2, deadman_s=60)

    def mid_of_both_quotes() -> Decimal | None:
        quotes = {o.side: o for o in mm.orders(symbol, "open")}
        if set(quotes) != {"buy", "sell"}:
            return None
        assert quotes["buy"].price < quotes["sell"].price
        return (quotes["buy"].price + quotes["sell"].price) / 2

    flat_mid = _bot_until("market-maker", mm, settings, mid_of_both_quotes, 30)
    assert flat_mid is not None
    trader("mm-hitter").place_order(symbol, "sell", 5, None)  # the maker is now long 5
    assert {p.symbol: p.quantity for p in mm.positions()}[symbol] == 5

    def leaning_mid() -> Decimal | None:
        mid = mid_of_both_quotes()
        return mid if mid is not None and mid < flat_mid + Decimal("0.05") else None

    assert _bot_until("market-maker", mm, settings, leaning_mid, 30) is not None


def test_block_consumer_buys_the_whole_block_or_nothing(trader: Trader, symbol: str) -> None:
    seller, lab = trader("block-seller"), trader("block-lab")
    seller.place_order(symbol, "sell", 30, "3.60")
    seller.place_order(symbol, "sell", 40, "3.70")
    _bot("block-consumer", lab, Settings(fair=Decimal("3.50"), quantity=64, interval_s=0.05), 20)
    position = {p.symbol: p.quantity for p in lab.positions()}
    assert position[symbol] == 64
    assert all(o.time_in_force == "FOK" for o in lab.orders(symbol))


def test_steady_consumer_tops_up_to_its_load(trader: Trader, symbol: str) -> None:
    seller, service = trader("steady-seller"), trader("steady-service")
    seller.place_order(symbol, "sell", 50, "3.52")
    _bot("steady-consumer", service, Settings(fair=Decimal("3.50"), quantity=12, interval_s=0.1), 3)
    assert {p.symbol: p.quantity for p in service.positions()}[symbol] == 12


def test_momentum_follows_a_rising_market(trader: Trader, admin: Client) -> None:
    a, b, chaser = trader("mo-a"), trader("mo-b"), trader("mo-chaser")
    days = sorted(
        c.symbol for c in admin.contracts() if c.product == "H100" and len(c.symbol) == 15
    )
    symbol = days[1]  # a book of its own
    b.place_order(symbol, "sell", 20, "4.20")

    async def main() -> None:
        async with AsyncClient(chaser.url, chaser.key, chaser.secret) as cfx:
            bot = asyncio.create_task(BOTS["momentum"](cfx, Settings(symbol=symbol, quantity=10)))
            await asyncio.sleep(1.0)  # subscribed
            for i in range(25):  # a steady climb, one trade at a time
                price = Decimal("3.50") + Decimal("0.02") * i
                await asyncio.to_thread(a.place_order, symbol, "sell", 1, price)
                await asyncio.to_thread(b.place_order, symbol, "buy", 1, price)
            for _ in range(50):
                if {p.symbol: p.quantity for p in await cfx.positions()}.get(symbol, 0) > 0:
                    break
                await asyncio.sleep(0.1)
            bot.cancel()

    asyncio.run(main())
    assert {p.symbol: p.quantity for p in chaser.positions()}[symbol] > 0


def test_provider_sells_forward_then_attests_as_delivery_runs(
    server: Server, trader: Trader, admin: Client
) -> None:
    gpu_farm, lab = trader("provider", role="provider"), trader("provider-lab")
    days = sorted(
        c.symbol for c in admin.contracts() if c.product == "H100" and len(c.symbol) == 15
    )
    symbol = days[2]  # delivers on 2026-12-04; no other test trades it
    settings = Settings(fair=Decimal("3.40"), quantity=2)

    async def sell() -> None:
        async with AsyncClient(gpu_farm.url, gpu_farm.key, gpu_farm.secret) as cfx:
            await provider.sell_forward(cfx, settings)

    asyncio.run(sell())
    offers = gpu_farm.orders(symbol, "open")
    assert offers and all(o.side == "sell" and o.price == Decimal("3.47") for o in offers)
    lab.place_order(symbol, "buy", 8, "3.47")
    server.advance("2026-12-04T06:00:00Z")  # expiry at 23:00 the day before, delivery from 00:00

    async def attest() -> None:
        async with AsyncClient(gpu_farm.url, gpu_farm.key, gpu_farm.secret) as cfx:
            await provider.attest_deliveries(cfx)

    asyncio.run(attest())
    [delivery] = [d for d in gpu_farm.deliveries() if d.symbol == symbol]
    assert (delivery.gpu_hours, delivery.attested_gpu_hours) == (8, 2)  # 6 of 24 hours
