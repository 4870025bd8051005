"""Refusals of the ledger: each carries a stable ``SNAKE_CASE`` code, and changed nothing."""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Base of every ledger refusal; ``code`` is stable, ``details`` says what and where."""

    code = "LEDGER_ERROR"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(f"{self.code}: {message}")
        self.message = message
        self.details = details


class InvalidTransaction(LedgerError):
    """A malformed posting: bad key, kind, time, line or amount, or a misuse of ``external``."""

    code = "INVALID_TRANSACTION"


class UnbalancedTransaction(LedgerError):
    """The lines of one asset in a posting do not sum to zero."""

    code = "UNBALANCED_TRANSACTION"


class UnknownAccount(LedgerError):
    """A line names an owner or sub-account the ledger does not have."""

    code = "UNKNOWN_ACCOUNT"


class InsufficientFunds(LedgerError):
    """A posting would take a participant's ``available``, ``margin`` or ``escrow`` below zero."""

    code = "INSUFFICIENT_FUNDS"


class DuplicateTransaction(LedgerError):
    """An idempotency key already names a transaction with different content.

    Posting the *same* content again under the same key is not an error: it is a replay,
    and returns the original transaction's receipt.
    """

    code = "DUPLICATE_TRANSACTION"


class InvalidAccount(LedgerError):
    """``open_account`` got a role that is not a participant's, or a malformed owner name."""

    code = "INVALID_ACCOUNT"


class AccountConflict(LedgerError):
    """``open_account`` names an owner open with another role, or a reserved owner."""

    code = "ACCOUNT_CONFLICT"


class SchemaTooNew(LedgerError):
    """The database was migrated by a newer cfx than this one: refuse to touch it."""

    code = "SCHEMA_TOO_NEW"
