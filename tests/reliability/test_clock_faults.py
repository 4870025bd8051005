"""A command refused after its time ran scheduled events: those events still count.

On a real clock a command is stamped with the time it is sequenced, and whatever fell due
before it (a daily settlement, an expiry) runs first. If the command itself is then refused,
the settlement it ran must still reach the ledger and the feeds.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from exchange.sequencer.state import ExchangeState, Refused, to_ns
from tests.reliability.conftest import START_TIME, in_process

DAY_NS = 86_400 * 10**9


class Fixed:
    """A clock that reads one chosen time, as the wall clock would after midnight."""

    simulated = False

    def __init__(self, now: int) -> None:
        self.at = now

    def now(self, state: ExchangeState) -> int:
        return max(self.at, state.now)


def test_a_refused_command_keeps_the_settlement_its_time_ran(tmp_path: Path) -> None:
    async def run() -> None:
        async with in_process(tmp_path / "cfx") as svc:
            symbol = [s for s in svc.symbols() if s.startswith("H100-") and len(s) == 15][2]
            reference = Decimal(svc.contract_view(symbol)["reference_price"])
            price = str(reference + Decimal("0.25"))
            buyer, seller = [
                int((await svc.create_account(n, "trader", "1000.00"))["account_id"])
                for n in ("buyer", "seller")
            ]
            for account, side in ((seller, "sell"), (buyer, "buy")):
                body = {"symbol": symbol, "side": side, "type": "limit", "price": price,
                        "quantity": 40, "time_in_force": "GTC", "post_only": False,
                        "client_order_id": None, "self_trade_prevention": "cancel_newest"}  # fmt: skip
                await svc.sequencer.submit(svc.place_command(account, body))
            margin = svc.state.account_view(buyer)["margin_locked"]
            svc.sequencer.clock = Fixed(to_ns(START_TIME) + DAY_NS + 600 * 10**9)  # type: ignore[assignment]
            with pytest.raises(Refused):
                await svc.sequencer.submit({"op": "withdraw", "account_id": buyer, "amount": 10**9})
            assert svc.state.contracts[symbol].settlements, "the daily settlement ran"
            assert svc.state.account_view(buyer)["margin_locked"] != margin
            assert (await svc.ledger_check())["balanced"]
            for account in (buyer, seller):
                view = svc.state.account_view(account)
                ledger = svc.ledger.balances(f"acct:{account}")
                assert (ledger.get("available", 0), ledger.get("margin", 0)) == (
                    view["available"],
                    view["margin_locked"],
                ), account

    asyncio.run(run())


def test_a_start_time_given_to_an_exchange_already_running_is_ignored_aloud(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A restart resumes the journal's clock; ``--start`` names a fresh exchange's only."""

    async def run() -> None:
        async with in_process(tmp_path / "cfx") as svc:
            first = svc.state.now
        assert "start time is ignored" not in caplog.text
        async with in_process(tmp_path / "cfx") as svc:
            assert svc.state.now == first == to_ns(START_TIME)
        assert f"the exchange in {tmp_path / 'cfx'} is already at 2026-" in caplog.text

    with caplog.at_level("WARNING", logger="cfx"):
        asyncio.run(run())
