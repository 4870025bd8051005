"""Migrations: a database made by an older cfx opens, upgraded; the models match the schema."""

from __future__ import annotations

import threading

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from exchange.ledger import DuplicateTransaction, Ledger, SchemaTooNew
from exchange.ledger.models import METADATA
from exchange.ledger.store import alembic_config, head_revision, make_engine, migrate
from tests.ledger.conftest import UrlFactory
from tests.ledger.postings import deposit

#: What the first release wrote for one trader with a $25.00 deposit and $5.00 margin.
FIRST_RELEASE_ROWS = [
    "INSERT INTO ledger_account (owner, name, asset, role) VALUES "
    "('acct:1', 'available', 'USD', 'trader'), ('acct:1', 'margin', 'USD', 'trader'), "
    "('acct:1', 'escrow', 'USD', 'trader'), ('acct:1', 'gpuh_owed', 'GPUH', 'trader'), "
    "('acct:1', 'gpuh_delivered', 'GPUH', 'trader')",
    "INSERT INTO ledger_balance (account_id, asset, amount) "
    "SELECT id, asset, 0 FROM ledger_account WHERE owner = 'acct:1'",
    "INSERT INTO ledger_transaction (id, key, kind, time, memo) VALUES "
    "(1, '1:1', 'deposit', 0, ''), (2, '2:1', 'margin', 10, 'initial')",
    "INSERT INTO ledger_line (transaction_id, n, account_id, asset, amount) VALUES "
    "(1, 0, 4, 'USD', -2500), (1, 1, 5, 'USD', 2500), (2, 0, 5, 'USD', -500), (2, 1, 6, 'USD', 500)",
    "UPDATE ledger_balance SET amount = -2500 WHERE account_id = 4",
    "UPDATE ledger_balance SET amount = 2000 WHERE account_id = 5",
    "UPDATE ledger_balance SET amount = 500 WHERE account_id = 6",
]


def test_head_is_the_second_revision() -> None:
    assert head_revision() == "0002"


def test_a_database_of_the_first_revision_opens_upgraded(new_url: UrlFactory) -> None:
    url = new_url(empty=True)
    engine = make_engine(url)
    migrate(engine, "0001")
    with engine.begin() as connection:
        for statement in FIRST_RELEASE_ROWS:
            connection.execute(text(statement))
        assert "digest" not in {
            c["name"] for c in inspect(connection).get_columns("ledger_transaction")
        }
    engine.dispose()

    with Ledger(url) as ledger:
        assert ledger.revision == "0002"
        assert ledger.balances("acct:1") == {
            "available": 20_00,
            "margin": 5_00,
            "escrow": 0,
            "gpuh_owed": 0,
            "gpuh_delivered": 0,
        }
        check = ledger.check()
        assert check["balanced"], check
        assert (check["deposits"], check["held"]) == (25_00, 25_00)
        # the backfilled digests make replays of old keys idempotent
        assert ledger.post(deposit("1:1", "acct:1", 25_00)).replayed
        with pytest.raises(DuplicateTransaction):
            ledger.post(deposit("1:1", "acct:1", 26_00))
        assert ledger.post(deposit("3:1", "acct:1", 1_00)).id == 3
        assert ledger.balance("acct:1") == 21_00


def test_the_models_match_the_migrated_schema(new_url: UrlFactory) -> None:
    url = new_url(empty=True)
    Ledger(url).close()
    engine = make_engine(url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), METADATA) == []
    engine.dispose()


def test_downgrade_to_base_and_up_again(new_url: UrlFactory) -> None:
    url = new_url(empty=True)
    Ledger(url).close()
    engine = make_engine(url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
        assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
    migrate(engine)
    engine.dispose()
    with Ledger(url) as ledger:
        assert ledger.check()["balanced"]
        assert ledger.revision == "0002"


def test_a_database_of_a_newer_cfx_is_refused(new_url: UrlFactory) -> None:
    url = new_url()
    Ledger(url).close()
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(SchemaTooNew) as raised:
        Ledger(url)
    assert raised.value.code == "SCHEMA_TOO_NEW"
    assert raised.value.details == {"revision": "0099"}


def test_ledgers_opening_a_new_database_at_once_migrate_it_once(new_url: UrlFactory) -> None:
    url = new_url(empty=True)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Ledger(url).close()
        except BaseException as exc:  # collected and judged below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Ledger(url) as ledger:
        assert ledger.revision == "0002"
        assert len(ledger.accounts()) == 4
        assert ledger.check()["balanced"]
