"""Stores: connection settings, URLs, reopening, and the in-memory SQLite ledger."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from exchange.ledger import Ledger
from exchange.ledger.store import normalize_url
from tests.ledger.conftest import UrlFactory
from tests.ledger.postings import deposit, margin_lock


def test_sqlite_runs_in_wal_mode_with_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "ledger.db"
    with Ledger(f"sqlite:///{path}") as ledger, ledger.engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys")
        }
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}  # 2 is FULL
    assert path.exists()


def test_a_ledger_reopens_with_everything_it_held(new_url: UrlFactory) -> None:
    url = new_url()
    with Ledger(url) as ledger:
        ledger.open_account("a", "provider")
        ledger.post_many([deposit("d", "a", 5_00), margin_lock("m", "a", 2_00)])
        before = ledger.trial_balance(), ledger.history("a"), ledger.accounts()
    with Ledger(url) as reopened:
        assert (reopened.trial_balance(), reopened.history("a"), reopened.accounts()) == before
        assert reopened.post(margin_lock("m2", "a", 1_00)).id == 3
        assert reopened.check()["balanced"]


def test_the_foreign_keys_hold_on_both_stores(ledger: Ledger) -> None:
    forged = [
        "INSERT INTO ledger_transaction (id, key, kind, time, memo) VALUES (9, 'x', 'fee', 0, '')",
        "INSERT INTO ledger_line VALUES (9, 0, 999, 'USD', 5)",
    ]
    with (
        pytest.raises(IntegrityError, match=r"(?i)foreign key"),
        ledger.engine.begin() as connection,
    ):
        for statement in forged:
            connection.execute(text(statement))
    assert ledger.check()["counts"]["transactions"] == 0


def test_an_in_memory_sqlite_ledger_works() -> None:
    with Ledger("sqlite://") as ledger:
        ledger.open_account("a")
        ledger.post(deposit("d", "a", 1))
        assert ledger.balance("a") == 1
        assert ledger.check()["balanced"]


def test_urls_pin_postgresql_to_psycopg_and_refuse_other_databases() -> None:
    assert normalize_url("postgresql://u:pw@h/db") == "postgresql+psycopg://u:pw@h/db"
    socket = make_url(normalize_url("postgresql+psycopg://u@/db?host=/tmp"))
    assert (socket.drivername, socket.database, socket.query) == (
        "postgresql+psycopg",
        "db",
        {"host": "/tmp"},
    )
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    with pytest.raises(ValueError, match="SQLite or PostgreSQL"):
        normalize_url("mysql://u@h/db")


def test_the_url_property_hides_the_password() -> None:
    with Ledger("sqlite://") as ledger:
        assert ledger.url == "sqlite://"
