"""The ``cfx`` command line."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import typer

from bench.cli import app as bench_app
from clients import commands
from experiments.cli import app as experiment_app

app = typer.Typer(
    name="cfx",
    help="cfx: a compute futures exchange for GPU-hours.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(bench_app, name="bench")
admin_app = typer.Typer(help="Administer an exchange: accounts and money.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(experiment_app, name="experiment")


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(
            f"not an ISO 8601 time: {text!r} (try 2026-12-01T00:00:00Z)"
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    data_dir: Path = typer.Option(
        Path("./cfx-data"), "--data-dir", help="Journal, ledger and keys live here."
    ),
    db: str | None = typer.Option(
        None, "--db", help="Ledger database URL (default: SQLite in the data dir)."
    ),
    clock: str = typer.Option(
        "real", help="real, or sim: time moves only when an admin advances it."
    ),
    start: str | None = typer.Option(None, help="Start time of a fresh exchange (ISO 8601)."),
    backend: str = typer.Option("numba", help="Engine backend: numba or reference."),
    snapshot_every: int = typer.Option(
        100_000, min=1, help="Snapshot the state every this many commands."
    ),
    snapshot_writer: str = typer.Option(
        "auto",
        help="follower: a process that follows the journal writes the snapshots; fork: each "
        "is written from a fork of the server, which pauses it for the fork (5-10 ms); "
        "auto: follower with 4 CPUs or more, else fork.",
    ),
    batch_interval: int | None = typer.Option(
        None,
        "--batch-interval",
        min=1,
        help="List contracts as uniform-price batch auctions every N seconds instead of "
        "continuous trading (fixed when the data dir is created).",
    ),
    connections_per_address: int = typer.Option(
        1000,
        min=0,
        help="Open connections (REST and websocket) one client address may hold; 0: no "
        "limit (behind a proxy, which is every client's address).",
    ),
    access_log: bool = typer.Option(
        False,
        "--access-log",
        help="Log each HTTP request the API answers (client, method, path, status) and each "
        "websocket handshake to stdout; off by default, as it costs each request a log line.",
    ),
) -> None:
    """Run the exchange: REST and websocket API on HOST:PORT."""
    import asyncio
    import logging

    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from exchange.gateway.app import create_app
    from exchange.gateway.protocols import (
        ClientWarnings,
        ConnectionLimits,
        JsonHttpToolsProtocol,
        StalledWrites,
        raise_open_file_limit,
    )
    from exchange.gateway.ws import DirectWebSocketProtocol
    from exchange.journal import JournalCorrupt, JournalError
    from exchange.service import (
        ClockConflict,
        DataDirBusy,
        ExchangeService,
        ListingConflict,
        rate_settings,
    )

    if clock not in ("real", "sim"):
        raise typer.BadParameter("--clock must be 'real' or 'sim'")
    if snapshot_writer not in ("auto", "follower", "fork"):
        raise typer.BadParameter("--snapshot-writer must be 'auto', 'follower' or 'fork'")
    try:  # read again by the service; refused here, before anything is opened
        rate_settings()
    except ValueError as exc:
        _fail(str(exc), 2)
    logging.basicConfig(level=logging.WARNING, format="cfx: %(levelname)s: %(message)s")
    # bound first, so a port in use is refused before the data dir is touched; listening only
    # once the exchange serves, so a client is refused (safe to retry) while it recovers
    sockets = _bind(host, port)
    raise_open_file_limit()  # then the connections' limit is what is left of it
    try:
        svc = ExchangeService(
            data_dir,
            db_url=db,
            clock=clock,
            start=_parse_time(start),
            backend=backend,
            snapshot_every=snapshot_every,
            snapshot_follower=None if snapshot_writer == "auto" else snapshot_writer == "follower",
            batch_interval_s=batch_interval,
            tune_gc=True,
            ledger_process=True,
        )
    except (DataDirBusy, ListingConflict, ClockConflict) as exc:
        _fail(str(exc), 2)
    except JournalCorrupt as exc:
        _fail(f"{exc}\n(data dir: {data_dir})", 3)
    except (OSError, JournalError, SQLAlchemyError) as exc:
        _fail(f"cannot open the exchange in {data_dir}: {exc}", 2)
    if not os.environ.get("CFX_ADMIN_TOKEN"):
        typer.echo(
            f"admin token: {svc.admin_token} (stored in {data_dir / 'admin.token'})", err=True
        )
    config = uvicorn.Config(
        create_app(svc),
        log_level="warning",
        access_log=access_log,
        loop="uvloop",
        http=JsonHttpToolsProtocol.limited(ConnectionLimits(connections_per_address)),
        ws=DirectWebSocketProtocol,
        # Feed messages go to many subscribers as the same bytes; compressing them per
        # connection would cost more CPU than the whole exchange.
        ws_per_message_deflate=False,
        ws_max_size=64 * 1024,
        timeout_graceful_shutdown=5,
    )
    ClientWarnings.install()  # after uvicorn's logging config: one line a minute, not a request
    if access_log:  # uvicorn logs requests at INFO, handshakes on its error logger
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
        logging.getLogger("uvicorn.error").setLevel(logging.INFO)

    async def run() -> str | None:
        # recovery first, here, so a data dir that cannot start is told in words, not in
        # the traceback of a failed ASGI lifespan; the lifespan then only stops the service.
        # SIGINT or SIGTERM meanwhile stops it once recovery is done, as uvicorn would.
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await svc.start()
        except (JournalError, OSError, SQLAlchemyError) as exc:
            with contextlib.suppress(Exception):  # what failed first is the one to report
                await svc.stop()
            return f"{exc}\n(data dir: {data_dir})"
        finally:
            # a signal that came during the replay (which never yields to the loop) is
            # delivered once the loop next polls: give it that moment
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        if stop.is_set():
            await svc.stop()
            return None
        port_bound = sockets[0].getsockname()[1]  # the port given, or the one --port 0 got
        where = f"[{host}]" if ":" in host else host
        typer.echo(
            f"cfx listening on http://{where}:{port_bound} (data in {data_dir}, clock {clock})",
            err=True,
        )
        server = uvicorn.Server(config)
        stalled = StalledWrites(server.server_state.connections, loop).start()
        try:
            await server.serve(sockets=sockets)
        finally:
            stalled.stop()
        return None

    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        problem = runner.run(run())
    if problem is not None:
        _fail(problem, 3)


def _bind(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to every address of ``host`` on ``port`` (not yet listening), as
    asyncio's ``create_server`` binds them; or exit saying why not."""
    sockets: list[socket.socket] = []
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(addresses):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # --port 0: one port picked for every address
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 2)
    return sockets


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"cfx serve: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def contracts(
    url: str = commands.URL,
    calendar: bool = typer.Option(
        False, "--calendar", help="Show the default listing calendar; no server needed."
    ),
    at: str | None = typer.Option(None, help="With --calendar: at this time (ISO 8601)."),
    json: bool = commands.JSON,
) -> None:
    """List the exchange's contracts with their status and prices (or the default calendar)."""
    if not calendar:
        commands.live_contracts(url, json)
        return
    from contracts import ListingCalendar

    now = _parse_time(at) or datetime.now(tz=UTC)
    rows = [spec.to_dict(status) for spec, status in ListingCalendar().contracts_at(now)]
    if json:
        commands.print_json(rows)
        return
    columns = ("symbol", "delivery_start", "last_trade_time", "tick_size", "status")
    commands.table(f"cfx listing calendar at {now.isoformat(timespec='seconds')}", rows, columns)


@admin_app.command("create-account")
def create_account(
    name: str = typer.Argument(..., help="Account name."),
    deposit: str | None = typer.Option(None, help="Initial deposit in USD, e.g. 1000.00"),
    role: str = typer.Option("trader", help="trader or provider"),
    url: str | None = typer.Option(
        None, help="A running exchange; without it, the data dir is used."
    ),
    data_dir: Path = typer.Option(Path("./cfx-data"), "--data-dir"),
    token: str | None = typer.Option(
        None, envvar="CFX_ADMIN_TOKEN", help="Admin token (with --url)."
    ),
) -> None:
    """Create an account; print {"account_id", "api_key", "api_secret"} as JSON."""
    import orjson

    if role not in ("trader", "provider"):
        raise typer.BadParameter("--role must be 'trader' or 'provider'")
    if url:
        import httpx

        if not token:
            token_file = data_dir / "admin.token"
            if not token_file.exists():
                raise typer.BadParameter(
                    f"give the admin token: --token, CFX_ADMIN_TOKEN, or the server's --data-dir "
                    f"(no {token_file})"
                )
            token = token_file.read_text().strip()
        body: dict[str, str] = {"name": name, "role": role}
        if deposit is not None:
            body["deposit"] = deposit
        try:
            response = httpx.post(
                url.rstrip("/") + "/v1/admin/accounts",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
        except httpx.HTTPError as exc:
            typer.echo(f"cannot reach {url}: {exc}. Is `cfx serve` running there?", err=True)
            raise typer.Exit(2) from exc
        if response.status_code != 201:
            typer.echo(f"refused ({response.status_code}): {response.text}", err=True)
            raise typer.Exit(1)
        typer.echo(orjson.dumps(response.json()).decode())
        return
    from exchange.service import DataDirBusy, run_offline

    try:
        result = run_offline(data_dir, lambda svc: svc.create_account(name, role, deposit))
    except DataDirBusy as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(orjson.dumps(result).decode())


commands.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
