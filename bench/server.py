"""A real exchange in a real uvicorn process, and signed clients for it.

Used by the gateway benchmark and the test suite: ``start_server`` runs ``cfx serve`` on a
simulated clock in a data dir of its own.
"""

from __future__ import annotations

import functools
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from exchange.gateway.auth import sign

ADMIN_TOKEN = "local-admin-token"
START = "2026-12-01T00:00:00Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    port: int

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/ws"

    def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method,
            self.url + path,
            json=body,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )

    def account(
        self, name: str = "bot", deposit: str = "100000.00", role: str = "trader"
    ) -> Client:
        response = self.admin(
            "POST", "/v1/admin/accounts", {"name": name, "deposit": deposit, "role": role}
        )
        assert response.status_code == 201, response.text
        creds = response.json()
        return Client(self.url, creds["api_key"], creds["api_secret"], creds["account_id"])

    def advance(self, to: str) -> dict[str, Any]:
        response = self.admin("POST", "/v1/admin/clock/advance", {"to": to})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


@dataclass
class Client:
    """A signed REST client, as a trading bot would write one from SPEC section 6."""

    url: str
    key: str
    secret: str
    account_id: int
    #: A connection pool to reuse, as a long-running bot would; by default each request
    #: opens a connection of its own (what survives a server restart without retries).
    session: httpx.Client | None = None

    def request(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None
    ) -> httpx.Response:
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else b"")
        timestamp = str(int(time.time()))
        headers = {
            "CFX-KEY": self.key,
            "CFX-TIMESTAMP": timestamp,
            "CFX-SIGNATURE": sign(self.secret, timestamp, method, path, data),
            "Content-Type": "application/json",
        }
        send = self.session.request if self.session is not None else httpx.request
        return send(method, self.url + path, content=data, headers=headers, timeout=30)

    def place(
        self, symbol: str, side: str, price: str | None, quantity: int, **extra: Any
    ) -> httpx.Response:
        body = {
            "symbol": symbol,
            "side": side,
            "type": "limit" if price else "market",
            "quantity": quantity,
        }
        if price:
            body["price"] = price
        return self.request("POST", "/v1/orders", body | extra)


def start_server(
    data_dir: Path,
    port: int | None = None,
    extra: list[str] | None = None,
    clock: str = "sim",
    env: dict[str, str] | None = None,
    open_files: int | None = None,
    host: str = "127.0.0.1",
) -> Server:
    """Start ``cfx serve`` on a simulated clock; its output goes to ``<data_dir>.log``.

    ``env`` adds environment variables (``CFX_RATE_LIMIT``, say). ``clock="real"`` runs it on
    the wall clock instead (event times comparable with
    ``time.time_ns()`` in another process on this machine). ``open_files`` caps the files
    the server may open (soft and hard limit alike). ``host``: the address it listens on
    (``"::1"`` for IPv6 loopback).
    """
    port = port or free_port()
    env = dict(os.environ, CFX_ADMIN_TOKEN=ADMIN_TOKEN) | (env or {})
    when = ["--clock", "sim", "--start", START] if clock == "sim" else ["--clock", clock]
    args = [sys.executable, "-m", "clients.cli", "serve", "--host", host, "--port", str(port),
            "--data-dir", str(data_dir), *when, *(extra or [])]  # fmt: skip
    log_path = data_dir.with_name(data_dir.name + ".log")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            args,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=None  # in the child, before it runs the server
            if open_files is None
            else functools.partial(
                resource.setrlimit, resource.RLIMIT_NOFILE, (open_files, open_files)
            ),
        )
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                return Server(url, data_dir, process, port)
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    process.wait()
    raise RuntimeError(f"server did not start in time: {log_path.read_text()[-2000:]}")


def stop_server(server: Server, kill: bool = False) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        server.process.wait(timeout=30)
