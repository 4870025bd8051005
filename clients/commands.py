"""Trading from the command line: ``cfx orders``, ``cfx book``, ``cfx account`` and friends.

Every command talks to a running exchange through the SDK. The address and credentials come
from ``--url``/``--key``/``--secret`` or ``CFX_URL``/``CFX_API_KEY``/``CFX_API_SECRET``;
``--json`` prints machine-readable output for scripts. Errors say what is wrong and how to
fix it, and exit non-zero (1: refused by the exchange, 2: not reached or misused).
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from clients._core import DEFAULT_URL, RECONNECT_S
from clients.errors import AuthenticationError, CfxError, ExchangeUnreachable
from clients.sync import Client

URL = typer.Option(DEFAULT_URL, "--url", envvar="CFX_URL", help="The exchange's address.")
KEY = typer.Option(None, "--key", envvar="CFX_API_KEY", help="API key (cfx admin create-account).")
SECRET = typer.Option(None, "--secret", envvar="CFX_API_SECRET", help="API secret.")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")

orders_app = typer.Typer(help="Place, amend, cancel and list your orders.", no_args_is_help=True)
#: On a terminal, as wide as it is; into a pipe or a file, wide enough that no table is cut
#: (rich would assume 80 columns and shorten cells to fit).
console = Console(width=None if sys.stdout.isatty() else 1_000)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(_plain(value), option=orjson.OPT_INDENT_2).decode() + "\n")


def table(title: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    out = Table(title=title)
    for column in columns:
        out.add_column(
            column,
            justify="right" if column in ("price", "quantity") else "left",
            no_wrap=column in ("symbol", "time", "price"),
        )
    for row in rows:
        out.add_row(*("" if row.get(c) is None else str(row[c]) for c in columns))
    console.print(out)


def fail(message: str, code: int) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@contextmanager
def exchange(url: str, key: str | None = None, secret: str | None = None) -> Iterator[Client]:
    """A client for one command; exchange errors become helpful messages and exit codes."""
    client = Client(url, key, secret, retries=1, reconnect_s=0)
    try:
        yield client
    except ExchangeUnreachable as error:
        raise fail(error.message, 2) from error
    except AuthenticationError as error:
        hint = (
            "check --key and --secret (or CFX_API_KEY and CFX_API_SECRET); "
            "`cfx admin create-account NAME --url URL` makes a new pair"
        )
        if "server time" in error.message:
            hint = "this machine's clock is off: sync it (the exchange allows 30 s)"
        raise fail(f"the exchange refused the credentials ({error.message}): {hint}", 2) from error
    except CfxError as error:
        message = f"{error.code}: {error.message}"
        if error.code == "UNKNOWN_SYMBOL":
            message += _symbol_hint(client, error.message)
        elif error.code in ("NO_CREDENTIALS", "NO_ADMIN_TOKEN"):
            raise fail(message, 2) from error
        raise fail(message, 1) from error
    finally:
        client.close()


def _symbol_hint(client: Client, message: str) -> str:
    try:
        listed = [c.symbol for c in client.contracts()]
    except CfxError:
        return ""
    asked = message.split("'")[1] if message.count("'") >= 2 else ""
    close = difflib.get_close_matches(asked, listed, n=3, cutoff=0.5)
    if close:
        return f". Did you mean {', '.join(close)}? (`cfx contracts` lists them all)"
    return f". Listed now: {', '.join(listed[:6])}, ... (`cfx contracts` lists them all)"


def live_contracts(url: str, json: bool) -> None:
    with exchange(url) as cfx:
        rows = cfx.contracts()
    if json:
        print_json(rows)
        return
    table(
        f"contracts at {url}",
        [r.model_dump() for r in rows],
        ("symbol", "status", "mechanism", "last_price", "reference_price", "last_trade_time"),
    )


ORDER_COLUMNS = ("order_id", "symbol", "side", "type", "price", "quantity", "filled_quantity",
                 "status", "time_in_force")  # fmt: skip


def _orders_table(title: str, orders: list[Any]) -> None:
    rows = []
    for o in orders:
        row = o.model_dump()
        if row.get("cancel_reason"):  # "cancelled (margin_call)"
            row["status"] = f"{row['status']} ({row['cancel_reason']})"
        rows.append(row)
    table(title, rows, ORDER_COLUMNS)


@orders_app.command("place")
def orders_place(
    symbol: str = typer.Argument(..., help="Contract, e.g. H100-2026-12-07."),
    side: str = typer.Argument(..., help="buy or sell."),
    quantity: int = typer.Argument(..., help="GPU-hours."),
    price: str | None = typer.Argument(None, help="Limit price in USD; omit for a market order."),
    time_in_force: str = typer.Option("GTC", "--tif", help="GTC, IOC or FOK."),
    post_only: bool = typer.Option(False, "--post-only", help="Rest only; never take."),
    client_order_id: str | None = typer.Option(None, help="Your id (retries return the order)."),
    url: str = URL,
    key: str | None = KEY,
    secret: str | None = SECRET,
    json: bool = JSON,
) -> None:
    """Place an order: a limit order with PRICE, a market order without."""
    if side not in ("buy", "sell"):
        raise typer.BadParameter("SIDE must be 'buy' or 'sell'")
    if price is not None:
        try:
            Decimal(price)
        except ArithmeticError as exc:
            raise typer.BadParameter(f"PRICE must be a decimal like 2.35, not {price!r}") from exc
    with exchange(url, key, secret) as cfx:
        order = cfx.place_order(
            symbol, side, quantity, price, time_in_force=time_in_force.upper(),
            post_only=post_only or None, client_order_id=client_order_id,
        )  # fmt: skip
    if json:
        print_json(order)
        return
    _orders_table("order", [order])
    for fill in order.fills:
        console.print(f"  filled {fill.quantity} @ {fill.price} ({fill.liquidity})")


@orders_app.command("cancel")
def orders_cancel(
    order_id: int | None = typer.Argument(None, help="The order to cancel."),
    all_orders: bool = typer.Option(False, "--all", help="Cancel every open order."),
    symbol: str | None = typer.Option(None, help="With --all: only this contract."),
    url: str = URL,
    key: str | None = KEY,
    secret: str | None = SECRET,
    json: bool = JSON,
) -> None:
    """Cancel one order, or with --all every open order (of --symbol)."""
    if (order_id is None) == (not all_orders):
        raise typer.BadParameter("give an ORDER_ID or --all")
    with exchange(url, key, secret) as cfx:
        cancelled = cfx.cancel_all(symbol) if order_id is None else [cfx.cancel_order(order_id)]
    if json:
        print_json(cancelled)
    elif order_id is not None and cancelled[0].status == "filled":  # closed before the cancel
        _orders_table(f"order {order_id} was already filled: nothing to cancel", cancelled)
    else:
        _orders_table(f"{len(cancelled)} cancelled", cancelled)


@orders_app.command("amend")
def orders_amend(
    order_id: int = typer.Argument(...),
    price: str | None = typer.Option(None, help="New limit price."),
    quantity: int | None = typer.Option(None, help="New quantity (lower keeps priority)."),
    url: str = URL,
    key: str | None = KEY,
    secret: str | None = SECRET,
    json: bool = JSON,
) -> None:
    """Change an open order's price or quantity."""
    with exchange(url, key, secret) as cfx:
        order = cfx.amend_order(order_id, price=price, quantity=quantity)
    print_json(order) if json else _orders_table("amended", [order])


@orders_app.command("list")
def orders_list(
    symbol: str | None = typer.Option(None, help="Only this contract."),
    status: str | None = typer.Option("open", help="open, filled, cancelled, or 'all'."),
    limit: int | None = typer.Option(None, help="The newest N (at most 1,000, the default)."),
    before: int | None = typer.Option(None, help="Only orders with a lower id."),
    url: str = URL,
    key: str | None = KEY,
    secret: str | None = SECRET,
    json: bool = JSON,
) -> None:
    """List your orders (open ones by default)."""
    with exchange(url, key, secret) as cfx:
        orders = cfx.orders(symbol, None if status == "all" else status, limit=limit, before=before)
    print_json(orders) if json else _orders_table(f"{len(orders)} orders", orders)


def account(
    url: str = URL, key: str | None = KEY, secret: str | None = SECRET, json: bool = JSON
) -> None:
    """Your cash, margin, escrow and positions."""
    with exchange(url, key, secret) as cfx:
        acct = cfx.account()
    if json:
        print_json(acct)
        return
    money = ("cash", "available", "margin_locked", "delivery_escrow")
    table(f"account {acct.account_id}", [{"item": m, "USD": getattr(acct, m)} for m in money],
          ("item", "USD"))  # fmt: skip
    table("positions", [p.model_dump() for p in acct.positions],
          ("symbol", "quantity", "average_price", "unrealized_pnl"))  # fmt: skip


def fills(
    symbol: str | None = typer.Option(None, help="Only this contract."),
    limit: int | None = typer.Option(None, help="The newest N (at most 1,000, the default)."),
    before: int | None = typer.Option(None, help="Only fills with a lower trade id."),
    url: str = URL,
    key: str | None = KEY,
    secret: str | None = SECRET,
    json: bool = JSON,
) -> None:
    """Your fills, newest first."""
    with exchange(url, key, secret) as cfx:
        rows = cfx.fills(symbol, limit=limit, before=before)
    if json:
        print_json(rows)
    else:
        table("fills", [f.model_dump() for f in rows],
              ("time", "symbol", "side", "price", "quantity", "liquidity", "order_id"))  # fmt: skip


def deliveries(
    url: str = URL, key: str | None = KEY, secret: str | None = SECRET, json: bool = JSON
) -> None:
    """Delivery records where you are the provider or the consumer."""
    with exchange(url, key, secret) as cfx:
        rows = cfx.deliveries()
    if json:
        print_json(rows)
    else:
        table("deliveries", [d.model_dump() for d in rows],
              ("delivery_id", "symbol", "provider_account", "consumer_account", "gpu_hours",
               "price", "status", "attested_gpu_hours"))  # fmt: skip


def trades(
    symbol: str = typer.Argument(...),
    limit: int = typer.Option(20),
    url: str = URL,
    json: bool = JSON,
) -> None:
    """The latest trades of a contract."""
    with exchange(url) as cfx:
        rows = cfx.trades(symbol, limit)
    if json:
        print_json(rows)
    else:
        table(f"trades {symbol}", [t.model_dump() for t in rows],
              ("time", "price", "quantity", "taker_side", "trade_id"))  # fmt: skip


def ladder(symbol: str, bids: list[list[str]], asks: list[list[str]], sequence: Any) -> Table:
    """A price ladder: asks above (best at the bottom), bids below (best at the top)."""
    out = Table(title=f"{symbol}  seq {sequence}", min_width=40)
    out.add_column("bid size", justify="right", style="green")
    out.add_column("price", justify="center")
    out.add_column("ask size", justify="right", style="red")
    for price, qty in reversed(asks):
        out.add_row("", str(price), str(qty))
    if bids and asks:
        spread = Decimal(str(asks[0][0])) - Decimal(str(bids[0][0]))
        out.add_row("", f"[dim]spread {spread}[/]", "")
    for price, qty in bids:
        out.add_row(str(qty), str(price), "")
    return out


def book(
    symbol: str = typer.Argument(..., help="Contract, e.g. H100-2026-12-07."),
    depth: int = typer.Option(10, help="Levels per side."),
    once: bool = typer.Option(False, "--once", help="Print the book once and exit."),
    url: str = URL,
    json: bool = JSON,
) -> None:
    """A live order-book ladder from the websocket feed (Ctrl-C to stop)."""
    with exchange(url) as cfx:
        snapshot = cfx.book(symbol, depth)
        if json or once:
            if json:
                print_json(snapshot)
            else:
                console.print(ladder(symbol, [[str(p), str(q)] for p, q in snapshot.bids],
                                     [[str(p), str(q)] for p, q in snapshot.asks], snapshot.sequence))  # fmt: skip
            return
        _live_ladder(cfx, symbol, depth)


def _live_ladder(cfx: Client, symbol: str, depth: int) -> None:
    from rich.live import Live

    from clients.sync import Feed

    with Feed(cfx.url, [f"book:{symbol}"]) as feed, Live(console=console) as live:
        local = feed.book(symbol)
        try:
            while True:
                feed.next(timeout=1.0)
                if local.synced:
                    live.update(
                        ladder(symbol, local.bids(depth), local.asks(depth), local.sequence)
                    )
        except KeyboardInterrupt:
            return


def bot(
    name: str = typer.Argument(
        ..., help="market-maker, provider, block-consumer, steady-consumer or momentum."
    ),
    url: str = URL,
    key: str | None = KEY,
    secret: str | None = SECRET,
    product: str = typer.Option("H100", help="H100 or A100."),
    symbol: str | None = typer.Option(None, help="Trade this contract (default: the front day)."),
    fair: str | None = typer.Option(None, help="Fair value in USD (default: the market's)."),
    quantity: int = typer.Option(10, help="Size: quote, block, load or capacity, per bot."),
    interval: float = typer.Option(1.0, help="Seconds between rounds."),
    seed: int = typer.Option(1, help="Seed of the bot's randomness."),
) -> None:
    """Run an example bot against an exchange until Ctrl-C."""
    import asyncio
    import logging

    from clients.aio import AsyncClient
    from clients.bots import BOTS
    from clients.bots.common import Settings

    if name not in BOTS:
        raise typer.BadParameter(f"no bot {name!r}; the bots are {', '.join(BOTS)}")
    if not (key and secret):
        raise fail("a bot trades: give --key and --secret (or CFX_API_KEY/CFX_API_SECRET)", 2)
    settings = Settings(product=product, symbol=symbol, fair=Decimal(fair) if fair else None,
                        quantity=quantity, interval_s=interval, seed=seed)  # fmt: skip
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    async def main() -> None:
        async with AsyncClient(url, key, secret, reconnect_s=0) as cfx:
            await cfx.account()  # fail fast on a wrong URL or key
            cfx.policy.reconnect_s = RECONNECT_S  # then ride out a restart, as any bot
            await BOTS[name](cfx, settings)

    with exchange(url, key, secret), suppress(KeyboardInterrupt):
        asyncio.run(main())


def demo(
    port: int = typer.Option(8000, help="TCP port of the demo exchange."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Default: ./cfx-demo/<time>."),
    speed: float = typer.Option(1800.0, help="Simulated seconds per real second."),
    duration: float | None = typer.Option(None, help="Stop after this many seconds."),
) -> None:
    """A live market in one command: the exchange, bots trading, a fast clock, the dashboard."""
    from clients.demo import ExchangeStopped, PortInUse
    from clients.demo import demo as run_demo

    try:
        run_demo(port, data_dir, speed, duration)
    except (PortInUse, ExchangeStopped) as error:
        raise fail(str(error), 2) from error


def register(app: typer.Typer) -> None:
    """Add the trading commands to the ``cfx`` app."""
    app.add_typer(orders_app, name="orders")
    commands: list[Callable[..., None]] = [demo, bot, account, fills, deliveries, trades, book]
    for command in commands:
        app.command(command.__name__)(command)
