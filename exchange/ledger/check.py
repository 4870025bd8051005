"""The ledger's invariants, proven from the stored rows by aggregate queries.

Each invariant is a query that finds its violations; the ledger is balanced when all of
them find none. The queries read the lines themselves, not the balances, wherever the
balances are what is being checked, so a drifted balance cannot vouch for itself.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import RowMapping

from exchange.ledger.types import NON_NEGATIVE, WORLD

_NON_NEGATIVE = ", ".join(f"'{name}'" for name in sorted(NON_NEGATIVE))

#: Each invariant: its name, the query finding violations (first ``:limit``), and the query
#: counting them. Names are the keys of ``check()["invariants"]``.
INVARIANTS: dict[str, tuple[str, str]] = {
    # every transaction's lines sum to zero per asset
    "transactions_balance": (
        "SELECT transaction_id, asset, SUM(amount) AS total FROM ledger_line "
        "GROUP BY transaction_id, asset HAVING SUM(amount) <> 0 "
        "ORDER BY transaction_id, asset LIMIT :limit",
        "SELECT COUNT(*) FROM (SELECT 1 FROM ledger_line GROUP BY transaction_id, asset "
        "HAVING SUM(amount) <> 0) AS v",
    ),
    # every transaction has lines (at least two)
    "transactions_have_lines": (
        "SELECT t.id, COUNT(l.n) AS lines FROM ledger_transaction t "
        "LEFT JOIN ledger_line l ON l.transaction_id = t.id "
        "GROUP BY t.id HAVING COUNT(l.n) < 2 ORDER BY t.id LIMIT :limit",
        "SELECT COUNT(*) FROM (SELECT t.id FROM ledger_transaction t "
        "LEFT JOIN ledger_line l ON l.transaction_id = t.id "
        "GROUP BY t.id HAVING COUNT(l.n) < 2) AS v",
    ),
    # a line's asset is its account's asset
    "line_assets_match_accounts": (
        "SELECT l.transaction_id, l.n, l.asset, a.asset AS account_asset FROM ledger_line l "
        "JOIN ledger_account a ON a.id = l.account_id WHERE l.asset <> a.asset "
        "ORDER BY l.transaction_id, l.n LIMIT :limit",
        "SELECT COUNT(*) FROM ledger_line l JOIN ledger_account a ON a.id = l.account_id "
        "WHERE l.asset <> a.asset",
    ),
    # every account has exactly one balance, of its asset, equal to the sum of its lines
    "balances_match_lines": (
        "SELECT a.id AS account_id, a.owner, a.name, b.amount AS balance, "
        "COALESCE(s.total, 0) AS lines_total FROM ledger_account a "
        "LEFT JOIN ledger_balance b ON b.account_id = a.id "
        "LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM ledger_line "
        "GROUP BY account_id) s ON s.account_id = a.id "
        "WHERE b.amount IS NULL OR b.amount <> COALESCE(s.total, 0) OR b.asset <> a.asset "
        "ORDER BY a.id LIMIT :limit",
        "SELECT COUNT(*) FROM ledger_account a "
        "LEFT JOIN ledger_balance b ON b.account_id = a.id "
        "LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM ledger_line "
        "GROUP BY account_id) s ON s.account_id = a.id "
        "WHERE b.amount IS NULL OR b.amount <> COALESCE(s.total, 0) OR b.asset <> a.asset",
    ),
    # no participant's available, margin or escrow is below zero
    "no_negative_participant_cash": (
        "SELECT a.id AS account_id, a.owner, a.name, b.amount AS balance FROM ledger_account a "
        "JOIN ledger_balance b ON b.account_id = a.id "
        f"WHERE a.role IN ('trader', 'provider') AND a.name IN ({_NON_NEGATIVE}) "
        "AND b.amount < 0 ORDER BY a.id LIMIT :limit",
        "SELECT COUNT(*) FROM ledger_account a JOIN ledger_balance b ON b.account_id = a.id "
        f"WHERE a.role IN ('trader', 'provider') AND a.name IN ({_NON_NEGATIVE}) "
        "AND b.amount < 0",
    ),
    # only deposits and withdrawals touch the world, each in its own direction
    "external_only_deposits_withdrawals": (
        "SELECT t.id AS transaction_id, t.kind, SUM(l.amount) AS external FROM ledger_line l "
        "JOIN ledger_account a ON a.id = l.account_id "
        "JOIN ledger_transaction t ON t.id = l.transaction_id "
        f"WHERE a.owner = '{WORLD}' GROUP BY t.id, t.kind "
        "HAVING NOT ((t.kind = 'deposit' AND SUM(l.amount) < 0) "
        "OR (t.kind = 'withdrawal' AND SUM(l.amount) > 0)) ORDER BY t.id LIMIT :limit",
        "SELECT COUNT(*) FROM (SELECT t.id FROM ledger_line l "
        "JOIN ledger_account a ON a.id = l.account_id "
        "JOIN ledger_transaction t ON t.id = l.transaction_id "
        f"WHERE a.owner = '{WORLD}' GROUP BY t.id, t.kind "
        "HAVING NOT ((t.kind = 'deposit' AND SUM(l.amount) < 0) "
        "OR (t.kind = 'withdrawal' AND SUM(l.amount) > 0))) AS v",
    ),
}


def _world_sum(kind: str) -> str:
    return (
        "SELECT COALESCE(SUM(l.amount), 0) FROM ledger_line l "
        "JOIN ledger_account a ON a.id = l.account_id "
        "JOIN ledger_transaction t ON t.id = l.transaction_id "
        f"WHERE a.owner = '{WORLD}' AND t.kind = '{kind}'"
    )


#: The figures reported besides the invariants, each a scalar query.
FIGURES: dict[str, str] = {
    "transactions": "SELECT COUNT(*) FROM ledger_transaction",
    "lines": "SELECT COUNT(*) FROM ledger_line",
    "accounts": "SELECT COUNT(*) FROM ledger_account",
    # deposits and withdrawals, from the lines on the world's account
    "deposits": f"SELECT -({_world_sum('deposit')})",
    "withdrawals": _world_sum("withdrawal"),
    # USD held inside the exchange (participants and exchange accounts), from the lines
    "held": (
        "SELECT COALESCE(SUM(l.amount), 0) FROM ledger_line l "
        "JOIN ledger_account a ON a.id = l.account_id "
        f"WHERE a.asset = 'USD' AND a.owner <> '{WORLD}'"
    ),
    # totals of every balance per asset: zero when every transaction balances
    "total_usd": "SELECT COALESCE(SUM(amount), 0) FROM ledger_balance WHERE asset = 'USD'",
    "total_gpuh": "SELECT COALESCE(SUM(amount), 0) FROM ledger_balance WHERE asset = 'GPUH'",
}

#: Every violation count and figure in one statement: one round trip, one snapshot.
SUMMARY = "SELECT " + ", ".join(
    [f"({count}) AS {name}" for name, (_, count) in INVARIANTS.items()]
    + [f"({query}) AS {name}" for name, query in FIGURES.items()]
)


def _plain(row: RowMapping) -> dict[str, Any]:
    # PostgreSQL sums BIGINTs as NUMERIC: give integers back, never a Decimal (or a float)
    return {k: int(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def run_check(connection: Connection, limit: int = 100) -> dict[str, Any]:
    """Run every invariant on ``connection`` and report.

    The result: ``balanced`` (all invariants hold), ``invariants`` (name -> holds),
    ``violations`` (name -> up to ``limit`` offending rows, only for broken invariants),
    ``violation_counts``, row ``counts``, and the USD conservation figures in integer
    cents: ``deposits``, ``withdrawals``, ``held`` (USD inside the exchange, summed from the
    lines) with ``held == deposits - withdrawals``, and balance ``totals`` per asset.
    """
    summary = {
        name: int(value)
        for name, value in connection.execute(text(SUMMARY)).mappings().one().items()
    }
    invariants = {name: summary[name] == 0 for name in INVARIANTS}
    violation_counts = {name: summary[name] for name in INVARIANTS if summary[name]}
    violations: dict[str, list[dict[str, Any]]] = {}
    for name in violation_counts:
        rows = connection.execute(text(INVARIANTS[name][0]), {"limit": limit}).mappings().all()
        violations[name] = [_plain(row) for row in rows]
    deposits, withdrawals, held = summary["deposits"], summary["withdrawals"], summary["held"]
    totals = {"USD": summary["total_usd"], "GPUH": summary["total_gpuh"]}
    invariants["usd_conserved"] = held == deposits - withdrawals
    invariants["totals_zero"] = totals == {"USD": 0, "GPUH": 0}
    if not invariants["usd_conserved"]:
        violations["usd_conserved"] = [
            {"held": held, "deposits": deposits, "withdrawals": withdrawals}
        ]
        violation_counts["usd_conserved"] = 1
    if not invariants["totals_zero"]:
        violations["totals_zero"] = [{"totals": totals}]
        violation_counts["totals_zero"] = 1
    return {
        "balanced": all(invariants.values()),
        "invariants": invariants,
        "violations": violations,
        "violation_counts": violation_counts,
        "counts": {name: summary[name] for name in ("transactions", "lines", "accounts")},
        "deposits": deposits,
        "withdrawals": withdrawals,
        "held": held,
        "totals": totals,
    }
