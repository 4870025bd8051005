"""Posting, balances, history and lookups on both stores."""

from __future__ import annotations

from exchange.ledger import Asset, Entry, HistoryEntry, Ledger, Posting, Receipt, Transaction
from tests.ledger.postings import deposit, margin_lock, trade


def test_a_new_ledger_has_the_system_accounts_at_zero(ledger: Ledger) -> None:
    assert ledger.trial_balance() == {
        ("exchange", "fees"): 0,
        ("exchange", "clearing"): 0,
        ("exchange", "penalties"): 0,
        ("world", "external"): 0,
    }
    assert ledger.revision == "0002"


def test_open_account_opens_every_sub_account_at_zero(ledger: Ledger) -> None:
    accounts = ledger.open_account("acct:1", "provider")
    assert sorted(accounts) == ["available", "escrow", "gpuh_delivered", "gpuh_owed", "margin"]
    assert {a.role for a in accounts.values()} == {"provider"}
    assert {a.asset for a in accounts.values()} == {"USD", "GPUH"}
    assert ledger.balances("acct:1") == dict.fromkeys(accounts, 0)
    assert ledger.open_account("acct:1", "provider") == accounts  # idempotent


def test_post_moves_money_and_returns_a_receipt(ledger: Ledger) -> None:
    ledger.open_account("a")
    receipt = ledger.post(deposit("k1", "a", 250_00, time=1_000))
    assert receipt == Receipt(1, "k1", replayed=False)
    assert ledger.balance("a") == 250_00
    assert ledger.balance("world", "external") == -250_00


def test_post_takes_the_journal_s_mapping_form(ledger: Ledger) -> None:
    ledger.open_account("acct:7")
    posting = {
        "key": "12:1",
        "kind": "deposit",
        "time": 5,
        "memo": "",
        "lines": [("world", "external", -100), ("acct:7", "available", 100)],
    }
    assert ledger.post(posting).id == 1
    assert ledger.balance("acct:7") == 100


def test_post_many_applies_in_order_in_one_batch(ledger: Ledger) -> None:
    for owner in ("b", "s"):
        ledger.open_account(owner)
    receipts = ledger.post_many(
        [
            deposit("d1", "b", 1_000_00),
            deposit("d2", "s", 1_000_00),
            trade(
                "t1", "b", "s", fee_buyer=35, fee_seller=-5, margin_buyer=84_00, margin_seller=84_00
            ),
            margin_lock("m1", "b", 916_00 - 35),  # spends what the batch brought
        ]
    )
    assert [r.id for r in receipts] == [1, 2, 3, 4]
    assert ledger.balances("b") == {
        "available": 0,
        "margin": 84_00 + 916_00 - 35,
        "escrow": 0,
        "gpuh_owed": 0,
        "gpuh_delivered": 0,
    }
    assert ledger.balance("s") == 1_000_00 - 84_00 + 5
    assert ledger.balance("exchange", "fees") == 30


def test_transaction_returns_what_was_posted(ledger: Ledger) -> None:
    ledger.open_account("a")
    ledger.post(deposit("k", "a", 42, time=7))
    assert ledger.transaction("k") == Transaction(
        1, "k", "deposit", 7, "", (Entry("world", "external", -42), Entry("a", "available", 42))
    )
    assert ledger.transaction("missing") is None


def test_history_lists_an_owner_s_lines_oldest_first_in_pages(ledger: Ledger) -> None:
    ledger.open_account("a")
    ledger.post_many([deposit("d1", "a", 100, time=1), margin_lock("m1", "a", 30, time=2)])
    ledger.post(
        Posting(
            "memo",
            "margin_release",
            3,
            (Entry("a", "margin", -30), Entry("a", "available", 30)),
            "why",
        )
    )
    entries = ledger.history("a")
    assert [(e.transaction_id, e.kind, e.account, e.amount) for e in entries] == [
        (1, "deposit", "available", 100),
        (2, "margin_lock", "available", -30),
        (2, "margin_lock", "margin", 30),
        (3, "margin_release", "margin", -30),
        (3, "margin_release", "available", 30),
    ]
    assert entries[-1] == HistoryEntry(
        3, "memo", "margin_release", 3, "why", "available", Asset.USD, 30
    )
    assert [e.amount for e in ledger.history("a", "margin")] == [30, -30]
    assert [e.transaction_id for e in ledger.history("a", after=2)] == [3, 3]
    assert len(ledger.history("a", limit=2)) == 2
