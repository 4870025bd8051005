"""Every refusal has a stable code and changes nothing, alone or inside a batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from exchange.ledger import (
    AccountConflict,
    DuplicateTransaction,
    Entry,
    InsufficientFunds,
    InvalidAccount,
    InvalidTransaction,
    Ledger,
    LedgerError,
    Posting,
    UnbalancedTransaction,
    UnknownAccount,
)
from tests.ledger.postings import deposit, escrow, margin_lock, penalty, posting, withdrawal


def snapshot(ledger: Ledger) -> tuple[Any, ...]:
    """Everything a refusal must leave as it was."""
    check = ledger.check()
    return ledger.trial_balance(), check["counts"], ledger.history("a"), check["balanced"]


@pytest.fixture
def funded(ledger: Ledger) -> Ledger:
    """A ledger where trader ``a`` has $100.00 available and $20.00 margin, ``p`` is a provider."""
    ledger.open_account("a")
    ledger.open_account("p", "provider")
    ledger.post_many([deposit("d", "a", 120_00), margin_lock("m", "a", 20_00)])
    return ledger


#: A float where an integer belongs (typed Any, as it would arrive from untyped code).
FLOAT: Any = 1.5

REFUSALS: dict[str, tuple[type[LedgerError], str, Callable[[], Any]]] = {
    "overdraft": (InsufficientFunds, "INSUFFICIENT_FUNDS", lambda: withdrawal("w", "a", 100_01)),
    "margin beyond cash": (
        InsufficientFunds,
        "INSUFFICIENT_FUNDS",
        lambda: margin_lock("l", "a", 100_01),
    ),
    "escrow beyond cash": (
        InsufficientFunds,
        "INSUFFICIENT_FUNDS",
        lambda: escrow("e", "a", 100_01),
    ),
    "release beyond margin": (
        InsufficientFunds,
        "INSUFFICIENT_FUNDS",
        lambda: posting("r", "margin_release", ("a", "margin", -20_01), ("a", "available", 20_01)),
    ),
    "penalty beyond cash": (
        InsufficientFunds,
        "INSUFFICIENT_FUNDS",
        lambda: penalty("pen", "p", "a", 1),
    ),
    "unbalanced USD": (
        UnbalancedTransaction,
        "UNBALANCED_TRANSACTION",
        lambda: posting("u", "fee", ("a", "available", -10), ("exchange", "fees", 9)),
    ),
    "unbalanced GPU-hours": (
        UnbalancedTransaction,
        "UNBALANCED_TRANSACTION",
        lambda: posting(
            "g", "delivery_obligation", ("p", "gpuh_owed", -24), ("a", "gpuh_owed", 23)
        ),
    ),
    "USD against GPU-hours": (
        UnbalancedTransaction,
        "UNBALANCED_TRANSACTION",
        lambda: posting(
            "x", "delivery_payment", ("a", "available", -10), ("a", "gpuh_delivered", 10)
        ),
    ),
    "unknown owner": (UnknownAccount, "UNKNOWN_ACCOUNT", lambda: deposit("n", "nobody", 10)),
    "unknown sub-account": (
        UnknownAccount,
        "UNKNOWN_ACCOUNT",
        lambda: posting("s", "fee", ("a", "savings", -10), ("exchange", "fees", 10)),
    ),
    "unknown exchange account": (
        UnknownAccount,
        "UNKNOWN_ACCOUNT",
        lambda: posting("s", "fee", ("a", "available", -10), ("exchange", "available", 10)),
    ),
    "deposit to the world": (
        InvalidTransaction,
        "INVALID_TRANSACTION",
        lambda: posting("dw", "deposit", ("world", "external", 10), ("a", "available", -10)),
    ),
    "fee paid to the world": (
        InvalidTransaction,
        "INVALID_TRANSACTION",
        lambda: posting("fw", "fee", ("a", "available", -10), ("world", "external", 10)),
    ),
    "unknown kind": (
        InvalidTransaction,
        "INVALID_TRANSACTION",
        lambda: posting("k", "gift", ("a", "available", -10), ("exchange", "fees", 10)),
    ),
    "zero line": (
        InvalidTransaction,
        "INVALID_TRANSACTION",
        lambda: Posting("z", "fee", 0, (Entry("a", "available", 0), Entry("exchange", "fees", 0))),
    ),
    "one line": (
        InvalidTransaction,
        "INVALID_TRANSACTION",
        lambda: Posting("o", "fee", 0, (Entry("a", "margin", 0),)),
    ),
    "float amount": (
        InvalidTransaction,
        "INVALID_TRANSACTION",
        lambda: Posting(
            "f", "fee", 0, (Entry("a", "available", FLOAT), Entry("exchange", "fees", -FLOAT))
        ),
    ),
    "bool amount": (
        InvalidTransaction,
        "INVALID_TRANSACTION",
        lambda: Posting(
            "b", "fee", 0, (Entry("a", "available", True), Entry("exchange", "fees", -1))
        ),
    ),
    "huge amount": (
        InvalidTransaction,
        "INVALID_TRANSACTION",
        lambda: posting("h", "fee", ("a", "available", -(2**60)), ("exchange", "fees", 2**60)),
    ),
    "empty key": (InvalidTransaction, "INVALID_TRANSACTION", lambda: deposit("", "a", 10)),
    "long key": (InvalidTransaction, "INVALID_TRANSACTION", lambda: deposit("k" * 129, "a", 10)),
    "negative time": (
        InvalidTransaction,
        "INVALID_TRANSACTION",
        lambda: deposit("t", "a", 10, time=-1),
    ),
    "float time": (
        InvalidTransaction,
        "INVALID_TRANSACTION",
        lambda: deposit("t", "a", 10, time=FLOAT),
    ),
    "mapping without lines": (
        InvalidTransaction,
        "INVALID_TRANSACTION",
        lambda: {"key": "m", "kind": "fee", "time": 0},
    ),
    "key reused for other content": (
        DuplicateTransaction,
        "DUPLICATE_TRANSACTION",
        lambda: deposit("d", "a", 1),
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refusal_has_its_code_and_changes_nothing(funded: Ledger, case: str) -> None:
    error, code, make = REFUSALS[case]
    before = snapshot(funded)
    with pytest.raises(error) as raised:
        funded.post(make())
    assert raised.value.code == code
    assert str(raised.value).startswith(code)
    assert snapshot(funded) == before


@pytest.mark.parametrize(
    "case", ["overdraft", "unbalanced USD", "unknown owner", "key reused for other content"]
)
def test_one_refusal_refuses_the_whole_batch(funded: Ledger, case: str) -> None:
    error, _, make = REFUSALS[case]
    before = snapshot(funded)
    batch = [margin_lock("fine-1", "a", 1_00), make(), deposit("fine-2", "a", 5_00)]
    with pytest.raises(error):
        funded.post_many(batch)
    assert snapshot(funded) == before
    assert funded.transaction("fine-1") is None


def test_an_overdraft_is_judged_in_batch_order(funded: Ledger) -> None:
    before = snapshot(funded)
    with pytest.raises(InsufficientFunds) as raised:
        funded.post_many(
            [withdrawal("w1", "a", 100_00), withdrawal("w2", "a", 1), deposit("late", "a", 10_00)]
        )
    assert raised.value.details == {
        "key": "w2",
        "owner": "a",
        "account": "available",
        "shortfall": 1,
    }
    assert snapshot(funded) == before


def test_exchange_accounts_may_go_negative(funded: Ledger) -> None:
    funded.post(posting("rebate", "fee", ("exchange", "fees", -7), ("a", "available", 7)))
    funded.post(
        posting("vm", "variation_margin", ("exchange", "clearing", -5_00), ("a", "available", 5_00))
    )
    assert funded.balance("exchange", "fees") == -7
    assert funded.balance("exchange", "clearing") == -5_00


def test_gpu_hour_positions_may_be_either_sign(funded: Ledger) -> None:
    funded.post(
        posting("ob", "delivery_obligation", ("p", "gpuh_owed", -24), ("a", "gpuh_owed", 24))
    )
    assert (funded.balance("p", "gpuh_owed"), funded.balance("a", "gpuh_owed")) == (-24, 24)


def test_open_account_refuses_conflicts_and_malformed_owners(ledger: Ledger) -> None:
    ledger.open_account("a", "trader")
    cases: list[tuple[str, str, type[LedgerError], str]] = [
        ("a", "provider", AccountConflict, "ACCOUNT_CONFLICT"),
        ("exchange", "trader", AccountConflict, "ACCOUNT_CONFLICT"),
        ("world", "provider", AccountConflict, "ACCOUNT_CONFLICT"),
        ("b", "exchange", InvalidAccount, "INVALID_ACCOUNT"),
        ("", "trader", InvalidAccount, "INVALID_ACCOUNT"),
        ("x" * 65, "trader", InvalidAccount, "INVALID_ACCOUNT"),
    ]
    for owner, role, error, code in cases:
        with pytest.raises(error) as raised:
            ledger.open_account(owner, role)
        assert raised.value.code == code
    assert [a.owner for a in ledger.accounts()].count("a") == 5
    assert {a.owner for a in ledger.accounts()} == {"a", "exchange", "world"}


def test_reading_an_unknown_account_is_refused(ledger: Ledger) -> None:
    with pytest.raises(UnknownAccount):
        ledger.balance("nobody")
    with pytest.raises(UnknownAccount):
        ledger.balances("nobody")
    with pytest.raises(UnknownAccount):
        ledger.balance("exchange", "available")


def test_auto_open_opens_participants_on_first_posting(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger(auto_open=True)
    ledger.post_many([deposit("d", "acct:1", 10_00), margin_lock("m", "acct:1", 4_00)])
    assert ledger.balances("acct:1")["margin"] == 4_00
    assert {a.role for a in ledger.accounts("acct:1")} == {"trader"}
    with pytest.raises(UnknownAccount):  # still no such sub-account, nor new system owners
        ledger.post(posting("x", "fee", ("acct:1", "savings", -1), ("exchange", "fees", 1)))
    with pytest.raises(InsufficientFunds):  # a refused batch opens nobody
        ledger.post(withdrawal("w", "acct:2", 1))
    assert [a for a in ledger.accounts() if a.owner == "acct:2"] == []
    assert ledger.check()["balanced"]
