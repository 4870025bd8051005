"""Fixtures: a real exchange in a real uvicorn process, and SDK clients for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bench.server import ADMIN_TOKEN, Server
from clients import Client, Credentials


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[Client]:
    with Client(server.url, admin_token=ADMIN_TOKEN) as client:
        yield client


Trader = Callable[..., Client]


@pytest.fixture(scope="module")
def trader(server: Server, admin: Client) -> Iterator[Trader]:
    """Make funded trading accounts: ``trader("alice", deposit="100.00")``."""
    made: list[Client] = []

    def make(name: str, deposit: str = "100000.00", role: str = "trader") -> Client:
        creds: Credentials = admin.create_account(name, role=role, deposit=deposit)
        made.append(Client(server.url, creds.api_key, creds.api_secret))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture(scope="module")
def symbol(admin: Client) -> str:
    return next(
        c.symbol for c in admin.contracts() if c.symbol.startswith("H100-") and len(c.symbol) == 15
    )
