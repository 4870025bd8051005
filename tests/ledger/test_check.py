"""check() finds every kind of broken invariant, and the database refuses to rewrite history.

The ledger never writes any of these states; the tests forge them with raw SQL to prove
the check would see them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from exchange.ledger import Ledger
from tests.ledger.postings import deposit, margin_lock

#: A forged state: SQL statements run in one transaction, and the invariants they break.
FORGERIES: dict[str, tuple[list[str], set[str]]] = {
    "balance drifted from its lines": (
        ["UPDATE ledger_balance SET amount = amount + 1 WHERE account_id = {a}"],
        {"balances_match_lines", "totals_zero"},
    ),
    "unbalanced transaction": (
        [
            "INSERT INTO ledger_transaction (id, key, kind, time, memo) VALUES (99, 'x', 'fee', 0, '')",
            "INSERT INTO ledger_line VALUES (99, 0, {a}, 'USD', 5)",
            "INSERT INTO ledger_line VALUES (99, 1, {fees}, 'USD', -4)",
            "UPDATE ledger_balance SET amount = amount + 5 WHERE account_id = {a}",
            "UPDATE ledger_balance SET amount = amount - 4 WHERE account_id = {fees}",
        ],
        {"transactions_balance", "usd_conserved", "totals_zero"},
    ),
    "transaction without lines": (
        [
            "INSERT INTO ledger_transaction (id, key, kind, time, memo) VALUES (99, 'x', 'fee', 0, '')"
        ],
        {"transactions_have_lines"},
    ),
    "negative available": (
        [
            "INSERT INTO ledger_transaction (id, key, kind, time, memo) VALUES (99, 'x', 'fee', 0, '')",
            "INSERT INTO ledger_line VALUES (99, 0, {a}, 'USD', -200)",
            "INSERT INTO ledger_line VALUES (99, 1, {fees}, 'USD', 200)",
            "UPDATE ledger_balance SET amount = amount - 200 WHERE account_id = {a}",
            "UPDATE ledger_balance SET amount = amount + 200 WHERE account_id = {fees}",
        ],
        {"no_negative_participant_cash"},
    ),
    "money taken out without a withdrawal": (
        [
            "INSERT INTO ledger_transaction (id, key, kind, time, memo) VALUES (99, 'x', 'fee', 0, '')",
            "INSERT INTO ledger_line VALUES (99, 0, {a}, 'USD', -10)",
            "INSERT INTO ledger_line VALUES (99, 1, {external}, 'USD', 10)",
            "UPDATE ledger_balance SET amount = amount - 10 WHERE account_id = {a}",
            "UPDATE ledger_balance SET amount = amount + 10 WHERE account_id = {external}",
        ],
        {"external_only_deposits_withdrawals", "usd_conserved"},
    ),
    "line of the wrong asset": (
        [
            "INSERT INTO ledger_transaction (id, key, kind, time, memo) VALUES (99, 'x', 'fee', 0, '')",
            "INSERT INTO ledger_line VALUES (99, 0, {a}, 'GPUH', -10)",
            "INSERT INTO ledger_line VALUES (99, 1, {hours}, 'GPUH', 10)",
            "UPDATE ledger_balance SET amount = amount - 10 WHERE account_id = {a}",
            "UPDATE ledger_balance SET amount = amount + 10 WHERE account_id = {hours}",
        ],
        {"line_assets_match_accounts", "usd_conserved", "totals_zero"},
    ),
}


@pytest.fixture
def booked(make_ledger: Callable[..., Ledger]) -> tuple[Ledger, dict[str, int]]:
    """A ledger with a funded trader ``a`` ($1.50 available, $0.50 margin), and account ids."""
    ledger = make_ledger()
    ledger.open_account("a")
    ledger.post_many([deposit("d", "a", 2_00), margin_lock("m", "a", 50)])
    ids = {(a.owner, a.name): a.id for a in ledger.accounts()}
    names = {
        "a": ids["a", "available"],
        "hours": ids["a", "gpuh_owed"],
        "fees": ids["exchange", "fees"],
        "external": ids["world", "external"],
    }
    return ledger, names


def forge(ledger: Ledger, statements: list[str], names: dict[str, int]) -> None:
    """Run raw SQL behind the ledger's back."""
    with ledger.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement.format(**names)))


def test_a_sound_ledger_passes_with_figures(booked: tuple[Ledger, dict[str, int]]) -> None:
    ledger, _ = booked
    assert ledger.check() == {
        "balanced": True,
        "invariants": {
            "transactions_balance": True,
            "transactions_have_lines": True,
            "line_assets_match_accounts": True,
            "balances_match_lines": True,
            "no_negative_participant_cash": True,
            "external_only_deposits_withdrawals": True,
            "usd_conserved": True,
            "totals_zero": True,
        },
        "violations": {},
        "violation_counts": {},
        "counts": {"transactions": 2, "lines": 4, "accounts": 9},
        "deposits": 2_00,
        "withdrawals": 0,
        "held": 2_00,
        "totals": {"USD": 0, "GPUH": 0},
    }


@pytest.mark.parametrize("case", list(FORGERIES))
def test_check_finds_a_forged_state(booked: tuple[Ledger, dict[str, int]], case: str) -> None:
    ledger, names = booked
    statements, broken = FORGERIES[case]
    forge(ledger, statements, names)
    result = ledger.check()
    assert result["balanced"] is False
    assert {name for name, holds in result["invariants"].items() if not holds} == broken
    assert set(result["violations"]) == broken
    assert all(result["violation_counts"][name] >= 1 for name in broken)
    for rows in result["violations"].values():  # plain JSON values: integers, never floats
        for row in rows:
            assert all(type(v) in (int, str, dict) for v in row.values()), row


def test_check_reports_at_most_limit_violations(booked: tuple[Ledger, dict[str, int]]) -> None:
    ledger, names = booked
    forge(
        ledger,
        [
            f"INSERT INTO ledger_transaction (id, key, kind, time, memo) VALUES ({i}, 'x{i}', 'fee', 0, '')"
            for i in range(90, 95)
        ],
        names,
    )
    result = ledger.check(limit=2)
    assert result["violation_counts"]["transactions_have_lines"] == 5
    assert [row["id"] for row in result["violations"]["transactions_have_lines"]] == [90, 91]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_line SET amount = amount * 2",
        "DELETE FROM ledger_line",
        "UPDATE ledger_transaction SET memo = 'edited'",
        "DELETE FROM ledger_transaction WHERE id = 2",
        "UPDATE ledger_account SET owner = 'b' WHERE owner = 'a'",
        "DELETE FROM ledger_account WHERE owner = 'a'",
        "DELETE FROM ledger_balance",
    ],
)
def test_the_database_refuses_to_rewrite_history(
    booked: tuple[Ledger, dict[str, int]], statement: str
) -> None:
    ledger, names = booked
    before = ledger.trial_balance(), ledger.history("a")
    with pytest.raises(DBAPIError, match=r"append-only|never deleted"):
        forge(ledger, [statement], names)
    assert (ledger.trial_balance(), ledger.history("a")) == before
    assert ledger.check()["balanced"]
