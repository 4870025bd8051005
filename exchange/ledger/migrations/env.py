"""Alembic environment: migrate the connection the ledger hands over, or a URL's database.

:func:`exchange.ledger.store.migrate` puts its connection in
``config.attributes["connection"]``. Used from the ``alembic`` command line instead, the
database comes from ``-x url=...`` (or ``sqlalchemy.url``).
"""

from __future__ import annotations

from alembic import context

from exchange.ledger.models import METADATA
from exchange.ledger.store import make_engine

config = context.config


def run_offline() -> None:
    """Write the SQL for a database named by URL, without connecting."""
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    context.configure(url=url, target_metadata=METADATA, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Migrate the given connection, or connect to the URL and migrate that database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=METADATA)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database as -x url=sqlite:///path/ledger.db")
    engine = make_engine(url)
    try:
        with engine.begin() as own:
            context.configure(connection=own, target_metadata=METADATA)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
