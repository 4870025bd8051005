"""After a restart, clean or kill -9, the public market data is what it was before."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import start_server, stop_server


def _public(url: str, symbol: str) -> dict[str, object]:
    return {
        "trades": httpx.get(f"{url}/v1/trades/{symbol}").json(),
        "candles": {i: httpx.get(f"{url}/v1/candles/{symbol}?interval={i}").json() for i in ("1m", "1h", "1d")},
        # Book sequences start again after a restart (subscribers get a fresh snapshot).
        "book": {k: v for k, v in httpx.get(f"{url}/v1/book/{symbol}").json().items() if k != "sequence"},
        "contract": httpx.get(f"{url}/v1/contracts/{symbol}").json(),
    }  # fmt: skip


@pytest.mark.parametrize("kill", [False, True], ids=["clean", "kill-9"])
def test_tape_candles_and_book_survive_a_restart(tmp_path: Path, kill: bool) -> None:
    server = start_server(tmp_path / "data")
    try:
        symbol = next(
            c["symbol"] for c in httpx.get(server.url + "/v1/contracts").json()
            if c["product"] == "H100" and len(c["symbol"]) == 15
        )  # fmt: skip
        maker, taker = server.account("md-maker"), server.account("md-taker")
        for minute, price in enumerate(("3.50", "3.52", "3.49", "3.55")):
            server.advance(f"2026-12-01T00:{minute:02d}:30Z")
            assert maker.place(symbol, "sell", price, 4).status_code == 201
            assert taker.place(symbol, "buy", price, 3).status_code == 201
        assert maker.place(symbol, "buy", "3.40", 7).status_code == 201
        before = _public(server.url, symbol)
        assert len(before["trades"]) >= 4  # type: ignore[arg-type]
        stop_server(server, kill=kill)
        server = start_server(server.data_dir, port=server.port)
        assert _public(server.url, symbol) == before
    finally:
        stop_server(server)
