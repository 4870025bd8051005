"""``cfx demo``: a live market in one command.

Starts an exchange on the embedded default (SQLite in a data dir) with a simulated clock,
then runs the example bots on both products and moves the clock ``speed`` times faster
than real time, so within a minute or two there are quotes, trades, a daily settlement, an
expiry and deliveries being attested. The dashboard is at the printed URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from clients import AsyncClient, CfxError
from clients.bots import BOTS, Settings

console = Console(stderr=True, highlight=False)

LEVELS = {"H100": Decimal("3.50"), "A100": Decimal("1.50")}

#: (bot, product, settings) of the demo's participants. Fair values follow MARKET.md:
#: H100 forward around $3.50 (spot 2-5, reserved 4-8), A100 around $1.50 (spot 0.5-2).
CAST: list[tuple[str, str, Settings]] = [
    ("market-maker", "H100", Settings(fair=Decimal("3.50"), quantity=20, seed=1)),
    ("market-maker", "H100", Settings(fair=Decimal("3.55"), quantity=10, seed=2)),
    ("market-maker", "A100", Settings(fair=Decimal("1.50"), quantity=20, seed=3)),
    ("provider", "H100", Settings(fair=Decimal("3.45"), quantity=8, interval_s=2.0)),
    ("provider", "A100", Settings(fair=Decimal("1.45"), quantity=8, interval_s=2.0)),
    ("steady-consumer", "H100", Settings(fair=Decimal("3.60"), quantity=48, interval_s=2.0)),
    ("steady-consumer", "A100", Settings(fair=Decimal("1.55"), quantity=48, interval_s=2.0)),
    ("block-consumer", "H100", Settings(fair=Decimal("3.55"), quantity=64, interval_s=3.0)),
    ("momentum", "H100", Settings(quantity=10)),
    ("momentum", "A100", Settings(quantity=10)),
]


class ExchangeStopped(RuntimeError):
    """The demo's exchange stopped answering (it exited, or was killed)."""


class PortInUse(RuntimeError):
    """The demo's port is taken (by another exchange, perhaps)."""


class FairValues:
    """The demo's "true" price of a GPU-hour per product, which the bots all watch.

    It wanders a cent or a few at a time, pulled back towards its long-run level, and now and
    then news moves it by 4-10% (a model release raising demand, an outage cutting supply).
    Integer cents throughout: this is money.
    """

    def __init__(self, levels: dict[str, Decimal], seed: int = 7) -> None:
        self.mean = {product: int(level * 100) for product, level in levels.items()}
        self.cents = dict(self.mean)
        self.rng = random.Random(seed)

    def __call__(self, product: str) -> Decimal:
        return Decimal(self.cents[product]) / 100

    def biased(self, bias: Decimal) -> Callable[[str], Decimal]:
        """This fair value as one participant sees it: ``bias`` above (or below) the rest."""
        return lambda product: self(product) + bias

    def step(self) -> list[str]:
        """Move every product once; return the news, if any."""
        news = []
        for product, cents in self.cents.items():
            pull = (self.mean[product] - cents) // 25  # back to the mean over ~25 steps
            cents += pull + self.rng.randint(-2, 2)
            if self.rng.randrange(200) == 0:
                jump = cents * self.rng.randint(4, 10) // 100
                up = self.rng.random() < 0.5
                cents += jump if up else -jump
                what = "demand surge after a model release" if up else "new capacity comes online"
                news.append(
                    f"{product}: {what}, fair value {'+' if up else '-'}{Decimal(jump) / 100}"
                )
            self.cents[product] = max(cents, 10)
        return news


async def wander(fair: FairValues, step_s: float = 0.5) -> None:
    while True:
        await asyncio.sleep(step_s)
        for line in fair.step():
            console.print(f"[yellow]news[/]        {line}")


def start_exchange(
    port: int, data_dir: Path, token: str, start: datetime
) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "clients.cli", "serve", "--port", str(port),
            "--data-dir", str(data_dir), "--clock", "sim",
            "--start", start.strftime("%Y-%m-%dT%H:%M:%SZ")]  # fmt: skip
    with open(data_dir.with_name(data_dir.name + ".log"), "ab") as log:
        env = dict(os.environ, CFX_ADMIN_TOKEN=token)
        return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the exchange exited with code {process.returncode}")
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("the exchange did not start in time")


async def keep_running(name: str, cfx: AsyncClient, settings: Settings) -> None:
    """Run one bot; if it stumbles (a contract expired under it, say), start it again."""
    while True:
        try:
            await BOTS[name](cfx, settings)
            return
        except (CfxError, KeyError, ValueError) as error:
            logging.getLogger("cfx.demo").info("%s restarts after %r", name, error)
            await asyncio.sleep(1.0)


async def drive_clock(admin: AsyncClient, speed: float, step_s: float = 0.5) -> None:
    """Move the simulated clock ``speed`` times faster than real time; report what runs.

    The target follows the wall clock, so a slow step (a busy machine) is made up at the
    next one rather than slowing the market down.
    """
    health = await admin.health()
    sim_start = datetime.fromisoformat(str(health["clock"]).replace("Z", "+00:00"))
    wall_start = time.monotonic()
    while True:
        await asyncio.sleep(step_s)
        target = sim_start + timedelta(seconds=speed * (time.monotonic() - wall_start))
        result = await admin.advance_clock(target.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        report(result["ran"])


def report(ran: list[dict[str, Any]]) -> None:
    """One line per event worth seeing; a day's settlements in one line."""
    settled = [e for e in ran if e["event"] == "daily_settlement"]
    if settled:
        when = str(settled[0]["time"])[:16].replace("T", " ")
        fronts: dict[str, str] = {}
        for event in settled:  # the first of each product is its nearest contract
            fronts.setdefault(str(event["symbol"])[:4], f"{event['symbol']} {event['price']}")
        console.print(f"[dim]{when}[/] settlement  {len(settled)} contracts; "
                      + ", ".join(fronts.values()))  # fmt: skip
    for event in ran:
        when = str(event.get("time", ""))[:16].replace("T", " ")
        if event["event"] == "expiry":
            console.print(f"[dim]{when}[/] [bold]expiry[/]      {event['symbol']} final price {event['final_price']}")  # fmt: skip
        elif event["event"] == "delivery_start":
            console.print(f"[dim]{when}[/] delivering  {event['symbol']}")
        elif event["event"] == "delivery_settlement":
            console.print(f"[dim]{when}[/] delivery {event['delivery_id']} settled")


async def run_market(url: str, token: str, speed: float, duration_s: float | None) -> None:
    fair = FairValues(LEVELS)
    async with AsyncClient(url, admin_token=token) as admin:
        clients = []
        tasks = [asyncio.create_task(wander(fair))]
        for i, (name, product, settings) in enumerate(CAST):
            role = "provider" if name == "provider" else "trader"
            creds = await admin.create_account(f"{name}-{product}-{i}", role, deposit="1000000.00")
            cfx = AsyncClient(url, creds.api_key, creds.api_secret)
            clients.append(cfx)
            # The dead-man's switch runs on the exchange's (fast) clock: give quotes ten
            # real seconds of it.
            # Each bot sees fair value through its own bias (settings.fair - the level).
            bias = (settings.fair - LEVELS[product]) if settings.fair else Decimal(0)
            tuned = replace(
                settings, product=product, deadman_s=int(speed * 10) + 1,
                books=3 if name == "market-maker" else 1,
                fair_source=fair.biased(bias),
            )  # fmt: skip
            tasks.append(asyncio.create_task(keep_running(name, cfx, tuned)))
        tasks.append(asyncio.create_task(drive_clock(admin, speed)))
        try:
            done, _ = await asyncio.wait(
                tasks, timeout=duration_s, return_when=asyncio.FIRST_EXCEPTION
            )
            for task in done:  # the clock driver fails when the exchange is gone
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for cfx in clients:
                await cfx.close()


def demo(
    port: int = 8000,
    data_dir: Path | None = None,
    speed: float = 1800.0,
    duration_s: float | None = None,
    start: datetime | None = None,
) -> None:
    """Run the demo until Ctrl-C (or for ``duration_s`` seconds)."""
    if data_dir is None:
        data_dir = Path("./cfx-demo") / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    data_dir.mkdir(parents=True, exist_ok=True)
    start = start or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    token = secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortInUse(
                f"port {port} is in use; pick another: cfx demo --port {port + 1}"
            ) from exc
    process = start_exchange(port, data_dir, token, start)
    try:
        wait_healthy(url, process)
        console.print(f"[bold green]cfx demo[/] running: open [bold]{url}/[/] for the dashboard")
        console.print(
            f"API {url}/docs · admin token {token} · data in {data_dir} · "
            f"clock {speed:g}x from {start:%Y-%m-%d %H:%M} UTC · Ctrl-C stops"
        )
        with contextlib.suppress(KeyboardInterrupt):
            try:
                asyncio.run(run_market(url, token, speed, duration_s))
            except CfxError as error:
                code = process.poll()
                raise ExchangeStopped(
                    f"the exchange stopped ({'exit code ' + str(code) if code is not None else 'no answer'}"
                    f": {error.message}); its log is {data_dir.with_name(data_dir.name + '.log')}"
                ) from error
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        console.print("cfx demo stopped")
