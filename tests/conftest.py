"""Fixtures shared across the suite: a real PostgreSQL server for the tests that need one."""

from __future__ import annotations

from tests.ledger.conftest import postgres_url

__all__ = ["postgres_url"]
