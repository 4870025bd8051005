"""kill -9 in the middle of order flow: every acknowledged order survives the restart."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.gateway.conftest import start_server, stop_server


def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        contracts = httpx.get(server.url + "/v1/contracts").json()
        symbol = next(c["symbol"] for c in contracts if c["symbol"].startswith("H100-"))
        traders = [server.account(f"t{i}") for i in range(2)]
        acked: list[tuple[int, int]] = []  # (account, order id)
        stop = threading.Event()

        def flow(i: int) -> None:
            n = 0
            while not stop.is_set():
                side, price = (
                    ("buy", f"3.{10 + n % 30:02d}")
                    if (n + i) % 2
                    else ("sell", f"3.{20 + n % 30:02d}")
                )
                try:
                    response = traders[i].place(symbol, side, price, 1 + n % 5)
                except httpx.HTTPError:
                    return  # the server died under us: this request was never acknowledged
                if response.status_code == 201:
                    acked.append((i, response.json()["order_id"]))
                n += 1

        threads = [threading.Thread(target=flow, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        while len(acked) < 150:
            threading.Event().wait(0.05)
        stop_server(server, kill=True)  # SIGKILL, mid-stream
        stop.set()
        for t in threads:
            t.join()
    finally:
        stop_server(server, kill=True)

    restarted = start_server(tmp_path, port=server.port)
    try:
        for i, order_id in acked:
            response = traders[i].request("GET", f"/v1/orders/{order_id}")
            assert response.status_code == 200, (order_id, response.text)
        book = httpx.get(restarted.url + f"/v1/book/{symbol}?depth=1000").json()
        open_orders = [
            o
            for i in range(2)
            for o in traders[i].request("GET", f"/v1/orders?symbol={symbol}&status=open").json()
        ]
        resting = sum(o["remaining_quantity"] for o in open_orders)
        assert resting == sum(int(q) for _, q in book["bids"] + book["asks"])
        assert restarted.admin("GET", "/v1/admin/ledger/check").json()["balanced"] is True
    finally:
        stop_server(restarted)
