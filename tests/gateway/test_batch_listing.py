"""`cfx serve --batch-interval N`: contracts trade in uniform-price batch auctions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.gateway.conftest import START, start_server, stop_server


def test_batch_contracts_trade_only_in_auctions(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", extra=["--batch-interval", "60"])
    try:
        contracts = httpx.get(server.url + "/v1/contracts").json()
        assert {(c["mechanism"], c["batch_interval_s"]) for c in contracts} == {("batch", 60)}
        symbol = next(c["symbol"] for c in contracts if c["product"] == "H100")
        buyer, seller = server.account("batch-buyer"), server.account("batch-seller")
        bid = buyer.place(symbol, "buy", "3.60", 5)
        ask = seller.place(symbol, "sell", "3.40", 3)
        assert bid.status_code == ask.status_code == 201, (bid.text, ask.text)
        assert bid.json()["status"] == ask.json()["status"] == "open"  # no trade between calls
        assert httpx.get(server.url + f"/v1/trades/{symbol}").json() == []
        # crossing its own bid, the buyer's sell is cancelled (cancel_newest, the default)
        own = buyer.place(symbol, "sell", "3.30", 2)
        assert own.status_code == 201, own.text
        assert (own.json()["status"], own.json()["cancel_reason"]) == ("cancelled", "self_trade")

        ran = server.advance("2026-12-01T00:01:00Z")["ran"]
        # every contract held an auction; only the one that matched is in the answer
        assert [(e["symbol"], e["trades"]) for e in ran if e["event"] == "auction"] == [(symbol, 1)]
        [trade] = httpx.get(server.url + f"/v1/trades/{symbol}").json()
        assert trade["quantity"] in (3, "3")
        assert "3.40" <= trade["price"] <= "3.60"  # one uniform price for the whole cross
        order = buyer.request("GET", f"/v1/orders/{bid.json()['order_id']}").json()
        assert (order["filled_quantity"], order["status"]) == (3, "partially_filled")
    finally:
        stop_server(server)

    # The listing terms belong to the data dir: a restart may not change them.
    refused = subprocess.run(
        [sys.executable, "-m", "clients.cli", "serve", "--data-dir", str(tmp_path / "data"),
         "--port", "0", "--clock", "sim", "--start", START, "--batch-interval", "5"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "batch every 60 s" in refused.stderr and "--data-dir" in refused.stderr
