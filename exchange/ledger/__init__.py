"""The delivery ledger: double-entry accounts of USD cents and GPU-hours, in SQL.

Every movement of money or GPU-hours is one :class:`Posting` whose lines sum to zero per
asset; :meth:`Ledger.post_many` appends a batch in one database transaction, refuses
anything that would break an invariant (a :class:`LedgerError` with a stable ``code``) and
treats a repeated idempotency key as a replay. :meth:`Ledger.check` proves the invariants
from the stored rows. SQLite is the embedded store, PostgreSQL the deployment store; Alembic
migrations run on open. See ``docs/ledger.md``.
"""

from exchange.ledger.errors import (
    AccountConflict,
    DuplicateTransaction,
    InsufficientFunds,
    InvalidAccount,
    InvalidTransaction,
    LedgerError,
    SchemaTooNew,
    UnbalancedTransaction,
    UnknownAccount,
)
from exchange.ledger.ledger import Ledger
from exchange.ledger.types import (
    EXCHANGE,
    NON_NEGATIVE,
    PARTICIPANT_ACCOUNTS,
    SYSTEM_ACCOUNTS,
    WORLD,
    Account,
    Asset,
    Entry,
    HistoryEntry,
    Kind,
    Posting,
    Receipt,
    Role,
    Transaction,
)

__all__ = [
    "EXCHANGE",
    "NON_NEGATIVE",
    "PARTICIPANT_ACCOUNTS",
    "SYSTEM_ACCOUNTS",
    "WORLD",
    "Account",
    "AccountConflict",
    "Asset",
    "DuplicateTransaction",
    "Entry",
    "HistoryEntry",
    "InsufficientFunds",
    "InvalidAccount",
    "InvalidTransaction",
    "Kind",
    "Ledger",
    "LedgerError",
    "Posting",
    "Receipt",
    "Role",
    "SchemaTooNew",
    "Transaction",
    "UnbalancedTransaction",
    "UnknownAccount",
]
