"""The SQL the ledger runs on its hot path, per dialect, built once at import.

Appends: SQLite gets Core ``INSERT``/``UPDATE`` constructs compiled once and run with the
driver's ``executemany`` over row tuples; PostgreSQL gets one statement per table with the
rows passed as arrays and unnested by the server (psycopg's ``executemany`` would send one
statement per row). Per-batch reads take a whole set as one parameter: a JSON array unpacked
by SQLite's ``json_each``, a PostgreSQL array.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, TextClause, bindparam, insert, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Compiled, Dialect

from exchange.ledger.models import ACCOUNT, BALANCE, LINE, TRANSACTION

#: Column order of the row tuples appended.
TX_COLUMNS = ("id", "key", "kind", "time", "memo", "digest")
LINE_COLUMNS = ("transaction_id", "n", "account_id", "asset", "amount")


def positional(compiled: Compiled, order: Sequence[str]) -> str:
    """Return the SQL of ``compiled`` after checking it takes parameters in ``order``."""
    if tuple(getattr(compiled, "positiontup", None) or ()) != tuple(order):
        raise RuntimeError(f"expected positional parameters {order}: {compiled}")
    return str(compiled)


def sqlite_appends(dialect: Dialect) -> dict[str, str]:
    """Compile the append statements once, for executemany with tuples in column order."""
    statements = {
        "transaction": (
            insert(TRANSACTION).values({c: bindparam(c) for c in TX_COLUMNS}),
            TX_COLUMNS,
        ),
        "line": (insert(LINE).values({c: bindparam(c) for c in LINE_COLUMNS}), LINE_COLUMNS),
        "move": (
            update(BALANCE)
            .where(BALANCE.c.account_id == bindparam("b_id"))
            .values(amount=BALANCE.c.amount + bindparam("b_delta")),
            ("b_delta", "b_id"),
        ),
    }
    return {
        name: positional(statement.compile(dialect=dialect), order)
        for name, (statement, order) in statements.items()
    }


def unnest_insert(table: Table, columns: Sequence[str]) -> TextClause:
    """Return ``INSERT INTO table (columns) SELECT * FROM unnest(:c0, :c1, ...)`` (PostgreSQL)."""
    pg = postgresql.dialect()
    arrays = ", ".join(
        f"CAST(:c{i} AS {table.c[name].type.compile(pg)}[])" for i, name in enumerate(columns)
    )
    names = ", ".join(pg.identifier_preparer.quote(name) for name in columns)
    return text(f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays})")


PG_INSERT_TRANSACTIONS = unnest_insert(TRANSACTION, TX_COLUMNS)
PG_INSERT_LINES = unnest_insert(LINE, LINE_COLUMNS)
PG_MOVE_BALANCES = text(
    "UPDATE ledger_balance AS b SET amount = b.amount + m.delta "
    "FROM unnest(CAST(:ids AS BIGINT[]), CAST(:deltas AS BIGINT[])) AS m(id, delta) "
    "WHERE b.account_id = m.id"
)


# An owner's accounts: a rare read (ids are cached), an expanding IN is fine.
ACCOUNTS_OF = (
    select(ACCOUNT)
    .where(ACCOUNT.c.owner.in_(bindparam("owners", expanding=True)))
    .order_by(ACCOUNT.c.id)
)
# Per-batch reads: an expanding IN would bind (and name) every value.
STORED_KEYS = {
    "sqlite": text(
        "SELECT key, id, digest FROM ledger_transaction "
        "WHERE key IN (SELECT value FROM json_each(:keys))"
    ),
    "postgresql": text(
        "SELECT key, id, digest FROM ledger_transaction WHERE key = ANY(CAST(:keys AS VARCHAR[]))"
    ),
}
BALANCES = {
    "sqlite": text(
        "SELECT account_id, amount FROM ledger_balance "
        "WHERE account_id IN (SELECT value FROM json_each(:ids)) ORDER BY account_id"
    ),
    # locked in account order, so that two writers never wait for each other in a cycle
    "postgresql": text(
        "SELECT account_id, amount FROM ledger_balance "
        "WHERE account_id = ANY(CAST(:ids AS BIGINT[])) ORDER BY account_id FOR UPDATE"
    ),
}
