"""A ledger writer that falls behind the journal is said in the log, not silently."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

import exchange.service as service_module
from exchange.service import ExchangeService
from tests.reliability.conftest import in_process


def test_a_ledger_falling_behind_is_logged_at_most_once_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(service_module, "LEDGER_BEHIND_POSTINGS", 2)

    async def only_when_asked(self: ExchangeService) -> None:  # no batch posted between two
        await asyncio.Event().wait()

    monkeypatch.setattr(ExchangeService, "_write_ledger", only_when_asked)

    async def run() -> None:
        async with in_process(tmp_path / "cfx", background_snapshots=False) as svc:
            await svc._post_pending()  # whatever starting the exchange posted
            caplog.clear()
            for name in ("a", "b"):  # each account's deposit is one posting
                await svc.create_account(name, "trader", "10.00")
            with caplog.at_level(logging.WARNING, logger="cfx"):
                await svc._post_pending()
                await svc.create_account("c", "trader", "10.00")
                await svc.create_account("d", "trader", "10.00")
                await svc._post_pending()  # behind again, but said a moment ago
            behind = [r.getMessage() for r in caplog.records if "behind" in r.getMessage()]
            assert len(behind) == 1
            assert behind[0].startswith("the ledger is 2 postings behind the journal")
            assert svc.ledger.balances("acct:4")["available"] == 10_00  # and it was posted

    asyncio.run(run())
