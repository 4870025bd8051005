"""A flood of connections takes the exchange to its limit, not past it: the journal keeps
the file descriptors it needs, and orders are taken throughout."""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson

from bench.server import start_server, stop_server
from exchange.gateway.protocols import RESERVED_FDS

OPEN_FILES = 400
FLOOD = 600  #: connections opened at once: more than the server may open files


def _descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_connection_flood_leaves_the_journal_its_descriptors(tmp_path: Path) -> None:
    """Under a limit of 400 open files, 600 connections at once, each sending a request:
    those past the total (400 - 256) are answered 503 UNAVAILABLE at once, none is reset,
    the server's descriptors stay below its limit, and an order placed over a connection
    opened before the flood is acknowledged (its journal append finds its descriptors)."""
    server = start_server(tmp_path / "data", open_files=OPEN_FILES)
    try:
        pid = server.process.pid
        symbol = next(c["symbol"] for c in httpx.get(server.url + "/v1/contracts").json()
                      if c["symbol"].startswith("H100-"))  # fmt: skip
        with httpx.Client(timeout=30) as session:
            trader = server.account("through-the-flood")
            trader.session = session
            assert trader.place(symbol, "buy", "3.00", 1).status_code == 201  # connected
            flood: list[socket.socket] = []
            try:
                for _ in range(FLOOD):
                    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                    sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                    flood.append(sock)
                answers: Counter[str] = Counter()
                for sock in flood:
                    answer = sock.recv(65536)
                    status = answer.split(b" ", 2)[1].decode()
                    answers[status] += 1
                    if status == "503":
                        body = answer.partition(b"\r\n\r\n")[2]
                        error = orjson.loads(body)["error"]
                        assert error["code"] == "UNAVAILABLE", error
                total = OPEN_FILES - RESERVED_FDS
                assert answers["200"] == total - 1  # the trader's connection is one of them
                assert answers["503"] == FLOOD - answers["200"]
                assert _descriptors(pid) < total + 64  # the rest is the exchange's own
                placed = trader.place(symbol, "buy", "3.01", 1)
                assert placed.status_code == 201, placed.text
            finally:
                for sock in flood:
                    sock.close()
        deadline = time.monotonic() + 10
        while httpx.get(server.url + "/v1/health", timeout=10).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert server.admin("GET", "/v1/admin/ledger/check").json()["balanced"] is True
    finally:
        stop_server(server)
