"""The ledger's tables, as sqlmodel models on their own registry and metadata.

``ledger_line`` and ``ledger_transaction`` are append-only; ``ledger_balance`` is the one
table that changes, always in the database transaction that appends the lines it sums.
The migrations in ``exchange/ledger/migrations`` create exactly this schema (a test
compares them).
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, MetaData, Table
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

#: Names for constraints and indexes, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
#: A 64-bit integer that is SQLite's rowid alias when it is the whole primary key.
BIGINT = BigInteger().with_variant(Integer(), "sqlite")


class LedgerBase(
    SQLModel, registry=registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))
):
    """Base of the ledger's tables, kept apart from any other SQLModel metadata."""


class LedgerAccount(LedgerBase, table=True):
    """A sub-account: one owner's holding of one asset (``available``, ``fees``, ...)."""

    __tablename__: ClassVar[Any] = "ledger_account"
    __table_args__ = (
        CheckConstraint("asset IN ('USD', 'GPUH')", name="asset"),
        CheckConstraint("role IN ('trader', 'provider', 'exchange', 'world')", name="role"),
        Index("uq_ledger_account_owner_name", "owner", "name", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    owner: str = Field(max_length=64)
    name: str = Field(max_length=32)
    asset: str = Field(max_length=8)
    role: str = Field(max_length=16)


class LedgerTransaction(LedgerBase, table=True):
    """One balanced movement: header of its lines, unique by idempotency ``key``."""

    __tablename__: ClassVar[Any] = "ledger_transaction"
    __table_args__ = (Index("uq_ledger_transaction_key", "key", unique=True),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT)
    key: str = Field(max_length=128)
    kind: str = Field(max_length=32)
    time: int = Field(sa_type=BigInteger)
    memo: str = Field(default="")
    digest: str = Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})


class LedgerLine(LedgerBase, table=True):
    """One signed amount of one asset on one account, the ``n``-th line of its transaction."""

    __tablename__: ClassVar[Any] = "ledger_line"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        CheckConstraint("asset IN ('USD', 'GPUH')", name="asset"),
        Index("ix_ledger_line_account_id_transaction_id", "account_id", "transaction_id"),
        {"sqlite_with_rowid": False},
    )

    transaction_id: int = Field(
        primary_key=True, sa_type=BigInteger, foreign_key="ledger_transaction.id"
    )
    n: int = Field(primary_key=True, sa_type=Integer)
    account_id: int = Field(sa_type=BigInteger, foreign_key="ledger_account.id")
    asset: str = Field(max_length=8)
    amount: int = Field(sa_type=BigInteger)


class LedgerBalance(LedgerBase, table=True):
    """The running sum of an account's lines, updated with every line appended."""

    __tablename__: ClassVar[Any] = "ledger_balance"
    __table_args__ = (CheckConstraint("asset IN ('USD', 'GPUH')", name="asset"),)

    account_id: int = Field(primary_key=True, sa_type=BIGINT, foreign_key="ledger_account.id")
    asset: str = Field(max_length=8)
    amount: int = Field(default=0, sa_type=BigInteger)


def table(model: type[LedgerBase]) -> Table:
    """Return the Core table of ``model``, for bulk statements."""
    result: Table = model.__table__  # type: ignore[attr-defined]
    return result


METADATA = LedgerBase.metadata
ACCOUNT = table(LedgerAccount)
TRANSACTION = table(LedgerTransaction)
LINE = table(LedgerLine)
BALANCE = table(LedgerBalance)
