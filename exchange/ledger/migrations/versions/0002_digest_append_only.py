"""Content digests for idempotent replay, and append-only enforced by the database.

``ledger_transaction.digest`` fingerprints a transaction's content, so a replayed key with
the same content is a no-op and one with different content is refused. Existing rows are
backfilled from their lines. Then triggers make ``ledger_transaction``, ``ledger_line`` and
``ledger_account`` append-only and forbid deleting a balance.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from exchange.ledger.types import Entry, Posting, digest

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

#: Tables whose rows are never updated or deleted.
APPEND_ONLY = ("ledger_transaction", "ledger_line", "ledger_account")
#: Transactions backfilled per round trip.
PAGE = 1000


def _backfill() -> None:
    bind = op.get_bind()
    after = 0
    while True:
        headers = bind.execute(
            sa.text(
                "SELECT id, key, kind, time, memo FROM ledger_transaction "
                "WHERE id > :after ORDER BY id LIMIT :page"
            ),
            {"after": after, "page": PAGE},
        ).all()
        if not headers:
            return
        lines: dict[int, list[Entry]] = {row.id: [] for row in headers}
        for row in bind.execute(
            sa.text(
                "SELECT l.transaction_id, a.owner, a.name, l.amount FROM ledger_line l "
                "JOIN ledger_account a ON a.id = l.account_id "
                "WHERE l.transaction_id > :after AND l.transaction_id <= :last"
            ),
            {"after": after, "last": headers[-1].id},
        ):
            lines[row.transaction_id].append(Entry(row.owner, row.name, row.amount))
        bind.execute(
            sa.text("UPDATE ledger_transaction SET digest = :digest WHERE id = :id"),
            [
                {
                    "id": h.id,
                    "digest": digest(Posting(h.key, h.kind, h.time, tuple(lines[h.id]), h.memo)),
                }
                for h in headers
            ],
        )
        after = headers[-1].id


def upgrade() -> None:
    """Add and backfill ``digest``; install the append-only triggers."""
    op.add_column(
        "ledger_transaction",
        sa.Column("digest", sa.String(32), nullable=False, server_default=""),
    )
    _backfill()
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP; END $$"
        )
        for name in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE ON {name} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
            )
        op.execute(
            "CREATE TRIGGER ledger_balance_no_delete BEFORE DELETE ON ledger_balance "
            "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
        )
        return
    for name in APPEND_ONLY:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {name}_no_{action.lower()} BEFORE {action} ON {name} "
                f"BEGIN SELECT RAISE(ABORT, '{name} is append-only: {action} refused'); END"
            )
    op.execute(
        "CREATE TRIGGER ledger_balance_no_delete BEFORE DELETE ON ledger_balance "
        "BEGIN SELECT RAISE(ABORT, 'ledger_balance rows are never deleted'); END"
    )


def downgrade() -> None:
    """Drop the triggers and the digest."""
    if op.get_bind().dialect.name == "postgresql":
        for name in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {name}_append_only ON {name}")
        op.execute("DROP TRIGGER ledger_balance_no_delete ON ledger_balance")
        op.execute("DROP FUNCTION ledger_append_only()")
    else:
        for name in APPEND_ONLY:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER {name}_no_{action}")
        op.execute("DROP TRIGGER ledger_balance_no_delete")
    op.drop_column("ledger_transaction", "digest")
