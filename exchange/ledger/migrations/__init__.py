"""Alembic revisions of the ledger schema; run by :func:`exchange.ledger.store.migrate`."""
