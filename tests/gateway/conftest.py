"""Fixtures: a real exchange in a real uvicorn process, and signed clients for it."""

from __future__ import annotations

import httpx
import pytest

from bench.server import ADMIN_TOKEN, START, Client, Server, free_port, start_server, stop_server

__all__ = ["ADMIN_TOKEN", "START", "Client", "Server", "free_port", "start_server", "stop_server"]


@pytest.fixture(scope="module")
def symbol(server: Server) -> str:
    contracts = httpx.get(server.url + "/v1/contracts").json()
    day = [
        c["symbol"] for c in contracts if c["symbol"].startswith("H100-") and len(c["symbol"]) == 15
    ]
    return str(day[0])
