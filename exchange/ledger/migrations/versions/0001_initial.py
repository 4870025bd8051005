"""Initial ledger: accounts, transactions, lines, balances, and the system accounts.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

#: A 64-bit id that is SQLite's rowid alias.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ASSETS = "asset IN ('USD', 'GPUH')"
#: The system accounts every ledger starts with: (owner, name, asset, role).
SYSTEM = [
    ("exchange", "fees", "USD", "exchange"),
    ("exchange", "clearing", "USD", "exchange"),
    ("exchange", "penalties", "USD", "exchange"),
    ("world", "external", "USD", "world"),
]


def upgrade() -> None:
    """Create the four tables and open the exchange's and the world's accounts."""
    account = op.create_table(
        "ledger_account",
        sa.Column("id", ID, primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("asset", sa.String(8), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_account"),
        sa.CheckConstraint(ASSETS, name="ck_ledger_account_asset"),
        sa.CheckConstraint(
            "role IN ('trader', 'provider', 'exchange', 'world')", name="ck_ledger_account_role"
        ),
    )
    op.create_index(
        "uq_ledger_account_owner_name", "ledger_account", ["owner", "name"], unique=True
    )
    op.create_table(
        "ledger_transaction",
        sa.Column("id", ID, primary_key=True),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("memo", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_transaction"),
    )
    op.create_index("uq_ledger_transaction_key", "ledger_transaction", ["key"], unique=True)
    op.create_table(
        "ledger_line",
        sa.Column("transaction_id", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("asset", sa.String(8), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("transaction_id", "n", name="pk_ledger_line"),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transaction.id"],
            name="fk_ledger_line_transaction_id_ledger_transaction",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_account.id"], name="fk_ledger_line_account_id_ledger_account"
        ),
        sa.CheckConstraint("amount <> 0", name="ck_ledger_line_amount_nonzero"),
        sa.CheckConstraint(ASSETS, name="ck_ledger_line_asset"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_ledger_line_account_id_transaction_id", "ledger_line", ["account_id", "transaction_id"]
    )
    op.create_table(
        "ledger_balance",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("asset", sa.String(8), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_ledger_balance"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_account.id"],
            name="fk_ledger_balance_account_id_ledger_account",
        ),
        sa.CheckConstraint(ASSETS, name="ck_ledger_balance_asset"),
    )
    op.bulk_insert(
        account, [{"owner": o, "name": n, "asset": a, "role": r} for o, n, a, r in SYSTEM]
    )
    op.execute(
        "INSERT INTO ledger_balance (account_id, asset, amount) "
        "SELECT id, asset, 0 FROM ledger_account ORDER BY id"
    )


def downgrade() -> None:
    """Drop every ledger table."""
    op.drop_table("ledger_balance")
    op.drop_index("ix_ledger_line_account_id_transaction_id", "ledger_line")
    op.drop_table("ledger_line")
    op.drop_index("uq_ledger_transaction_key", "ledger_transaction")
    op.drop_table("ledger_transaction")
    op.drop_index("uq_ledger_account_owner_name", "ledger_account")
    op.drop_table("ledger_account")
