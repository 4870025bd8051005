"""Stores: a SQLAlchemy engine for SQLite or PostgreSQL, set up for a ledger, and migrations.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` and foreign keys
on. ``synchronous=FULL`` fsyncs the WAL at every commit, so a committed batch survives a
power cut: the ledger does not lean on the journal for its own durability. SQLite's
``sqlite3`` driver is told to leave transactions alone (``isolation_level=None``) and the
engine emits ``BEGIN`` itself: ``BEGIN IMMEDIATE`` for writers, which takes the database's
one write lock before the overdraft check reads a balance, and a plain ``BEGIN`` (a
consistent WAL snapshot) for readers.

PostgreSQL is reached with psycopg 3 (``postgresql+psycopg://``; a bare ``postgresql://``
URL is taken to mean the same). Writers lock the balance rows they touch with
``SELECT ... FOR UPDATE`` in account order; readers of :meth:`Ledger.check` use
``REPEATABLE READ`` so every query sees one snapshot.

Migrations are Alembic revisions in ``exchange/ledger/migrations``, run with a Config built
here (no ``alembic.ini``), on a connection of the ledger's own engine.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from exchange.ledger.errors import SchemaTooNew

#: Where the Alembic revisions live (shipped inside the package).
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The execution option that makes a SQLite transaction ``BEGIN IMMEDIATE``.
WRITE = "cfx_ledger_write"
#: The key of PostgreSQL's advisory lock held while migrating.
MIGRATION_LOCK = 0x6366785F6C6467  # "cfx_ldg"
#: Seconds a SQLite writer waits for the write lock before giving up.
SQLITE_BUSY_TIMEOUT_S = 30.0


def normalize_url(url: str) -> str:
    """Return ``url`` with PostgreSQL pinned to psycopg 3; refuse other databases."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite":
        return url
    raise ValueError(f"the ledger stores in SQLite or PostgreSQL, not {backend!r}")


def make_engine(url: str, echo: bool = False) -> Engine:
    """Create an engine for ``url`` with the ledger's connection settings."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, echo=echo, pool_pre_ping=True)
    memory = parsed.database in (None, "", ":memory:")
    if not memory:
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    }
    if memory:
        options["poolclass"] = StaticPool
    engine = create_engine(url, echo=echo, **options)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # the driver must not emit BEGIN itself; _sqlite_begin does (the SQLAlchemy recipe)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, waiting as long as a writer would for the write lock.

    On a new database, connections opening at once race to switch it to WAL, and SQLite
    answers the losers "database is locked" at once, without its busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get(WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def is_postgres(engine: Engine) -> bool:
    """Say whether ``engine`` talks to PostgreSQL (otherwise SQLite)."""
    return engine.dialect.name == "postgresql"


def alembic_config(connection: Connection | None = None) -> Config:
    """Build the Alembic configuration in code; ``connection`` is the one to migrate."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """Return the newest revision this code knows."""
    head = _script().get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """Return the revision ``connection``'s database is at, ``None`` for a new database."""
    return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: the newest) in one transaction.

    Raise :class:`SchemaTooNew` if the database is at a revision this code does not know.
    """
    script = _script()
    at_head = revision == "head"
    if at_head:
        with engine.connect() as connection:
            if current_revision(connection) == head_revision():
                return  # the common case: nothing to lock, nothing to run
    # as a writer: on SQLite, BEGIN IMMEDIATE makes a second process wait, then see head
    with engine.execution_options(**{WRITE: True}).begin() as connection:
        if is_postgres(engine):
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        current = current_revision(connection)
        if at_head and current == head_revision():
            return
        if current is not None:
            try:
                script.get_revision(current)
            except CommandError as exc:
                raise SchemaTooNew(
                    f"the ledger database is at revision {current!r}, newer than this cfx "
                    f"(head {script.get_current_head()!r})",
                    revision=current,
                ) from exc
        command.upgrade(alembic_config(connection), revision)
