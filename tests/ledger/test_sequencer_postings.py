"""The postings the sequencer's state emits post cleanly, and the ledger agrees with it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from exchange.ledger import Ledger
from exchange.sequencer.state import ExchangeState, to_ns


def ns(text: str) -> int:
    return to_ns(datetime.fromisoformat(text).replace(tzinfo=UTC))


def run_contract() -> tuple[ExchangeState, list[dict[str, Any]]]:
    """A day contract traded, expired and delivered (20 of 24 hours); return its postings."""
    state = ExchangeState(backend="reference")
    postings: list[dict[str, Any]] = []
    commands: list[dict[str, Any]] = [
        {"op": "list", "ts": ns("2026-12-01T00:00:00"), "symbol": "H100-2026-12-07", "product": "H100",
         "delivery_start": ns("2026-12-07T00:00:00"), "delivery_end": ns("2026-12-08T00:00:00"),
         "last_trade_time": ns("2026-12-06T23:00:00"), "tick_cents": 1, "margin_bps": 2000,
         "band_bps": 5000, "maker_fee_bps": 0, "taker_fee_bps": 10, "reference": 350, "n_ticks": 10_000},
        {"op": "create_account", "name": "provider", "role": "provider", "deposit": 100_000},
        {"op": "create_account", "name": "lab", "role": "trader", "deposit": 100_000},
        {"op": "place", "account_id": 1, "symbol": "H100-2026-12-07", "side": "sell", "type": "limit",
         "price": 350, "quantity": 24},
        {"op": "place", "account_id": 2, "symbol": "H100-2026-12-07", "side": "buy", "type": "limit",
         "price": 360, "quantity": 24},
        {"op": "advance", "to": ns("2026-12-07T00:30:00")},
        {"op": "attest", "account_id": 1, "delivery_id": 1, "gpu_hours": 20, "period_start": "a",
         "period_end": "b"},
        {"op": "advance", "to": ns("2026-12-09T00:00:00")},
    ]  # fmt: skip
    for seq, command in enumerate(commands, 1):
        command.setdefault("ts", state.now)
        postings.extend(state.apply(seq, command).postings)
    return state, postings


def test_the_sequencer_s_postings_post_and_replay(make_ledger: Callable[..., Ledger]) -> None:
    state, postings = run_contract()
    ledger = make_ledger(auto_open=True)
    assert not any(r.replayed for r in ledger.post_many(postings))
    assert all(r.replayed for r in ledger.post_many(postings))  # the journal replayed
    for account_id, account in state.accounts.items():
        balances = ledger.balances(f"acct:{account_id}")
        assert (balances["available"], balances["margin"], balances["escrow"]) == (
            account.available,
            account.margin,
            account.escrow,
        )
    check = ledger.check()
    assert check["balanced"], check
    assert check["held"] == state.deposits - state.withdrawals == 200_000
