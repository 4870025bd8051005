"""Fixtures shared across the suite: a real exchange, and a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.server import Server, start_server, stop_server
from tests.ledger.conftest import postgres_url

__all__ = ["postgres_url"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real ``cfx serve`` in its own process, on a simulated clock, one per test module."""
    srv = start_server(tmp_path_factory.mktemp("cfx") / "data")
    yield srv
    stop_server(srv)
