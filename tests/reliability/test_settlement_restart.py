"""kill -9 during a clock advance that runs daily settlements, an expiry and a delivery
settlement; re-advancing after the restart finishes each exactly once.

The same deterministic scenario runs once without kills (the reference) and then with a
kill at seeded moments inside each advance. The ledger must end with the identical
transactions (same kinds, memos and lines), the same balances, the same settlement prices
and deliveries, and balance.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.reliability.conftest import Client, Server, start_server, stop_server

D1, D2 = "H100-2026-12-02", "H100-2026-12-04"
PHASES = ["2026-12-02T06:00:00Z", "2026-12-04T06:00:00Z"]


def _advance(server: Server, to: str, delay: float | None, figures: Counter[str]) -> Server:
    """Advance to ``to``; with a ``delay``, kill the server that long after sending it."""
    if delay is None:
        server.advance(to)
        return server
    thread = threading.Thread(
        target=lambda: _swallow(lambda: server.admin("POST", "/v1/admin/clock/advance", {"to": to}))
    )
    thread.start()
    time.sleep(delay)
    stop_server(server, kill=True)
    thread.join(timeout=60)
    server = start_server(server.data_dir, port=server.port)
    clock = httpx.get(server.url + "/v1/health").json()["clock"]
    figures[
        "advance durable before the kill"
        if clock.startswith(to[:19])
        else "advance lost with the kill"
    ] += 1
    server.advance(to)  # finishing it (or doing it) again must change nothing twice
    return server


def _swallow(call: Any) -> None:
    with contextlib.suppress(httpx.HTTPError):
        call()


def _scenario(data: Path, delays: list[float | None], figures: Counter[str]) -> dict[str, Any]:
    server = start_server(data)
    try:
        p1, p2 = (server.account(n, "10000.00", "provider") for n in ("p1", "p2"))
        c1, c2 = (server.account(n, "10000.00") for n in ("c1", "c2"))
        trades: list[tuple[Client, Client, str, str, int]] = [
            (p1, c1, D1, "3.00", 10), (p2, c2, D1, "3.05", 6), (p2, c1, D2, "3.10", 4),
            (c2, p1, D2, "3.15", 3),
        ]  # fmt: skip
        for seller, buyer, symbol, price, quantity in trades:
            assert seller.place(symbol, "sell", price, quantity).status_code == 201
            assert buyer.place(symbol, "buy", price, quantity).status_code == 201
        server.advance("2026-12-01T23:50:00Z")
        assert p2.place(D2, "sell", "3.20", 2).status_code == 201  # in the settlement window
        assert c1.place(D2, "buy", "3.20", 2).status_code == 201
        server = _advance(server, PHASES[0], delays[0], figures)
        for provider, short in ((p1, 1), (p2, 0)):  # p1 delivers an hour short
            for delivery in provider.request("GET", "/v1/deliveries").json():
                if delivery["provider_account"] == provider.account_id:
                    body = {"gpu_hours": delivery["gpu_hours"] - short,
                            "period_start": "2026-12-02T00:00:00Z", "period_end": "2026-12-02T06:00:00Z"}  # fmt: skip
                    response = provider.request(
                        "POST", f"/v1/deliveries/{delivery['delivery_id']}/attestations", body
                    )
                    assert response.status_code == 201, response.text
        server = _advance(server, PHASES[1], delays[1], figures)
        picture = {
            "settlements": {s: httpx.get(server.url + f"/v1/settlement-prices/{s}").json() for s in (D1, D2)},
            "deliveries": c1.request("GET", "/v1/deliveries").json() + c2.request("GET", "/v1/deliveries").json(),
            "contracts": {s: httpx.get(server.url + f"/v1/contracts/{s}").json()["status"] for s in (D1, D2)},
            "check": server.admin("GET", "/v1/admin/ledger/check").json(),
        }  # fmt: skip
    finally:
        stop_server(server)
    picture["ledger"] = _ledger(data / "ledger.db")
    return picture


def _ledger(path: Path) -> dict[str, Any]:
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT t.id, t.kind, t.memo, a.owner, a.name, l.amount FROM ledger_transaction t "
            "JOIN ledger_line l ON l.transaction_id = t.id JOIN ledger_account a ON a.id = l.account_id"
        )).all()  # fmt: skip
        balances = connection.execute(text(
            "SELECT a.owner, a.name, b.amount FROM ledger_balance b JOIN ledger_account a ON a.id = b.account_id"
        )).all()  # fmt: skip
    engine.dispose()
    transactions: dict[int, list[Any]] = {}
    for tx, kind, memo, owner, name, amount in rows:
        transactions.setdefault(tx, [kind, memo]).append((owner, name, amount))
    content = Counter((t[0], t[1], tuple(sorted(t[2:]))) for t in transactions.values())
    return {"transactions": content, "balances": {(o, n): a for o, n, a in balances if a}}


def test_settlement_expiry_and_delivery_run_once_across_kills(tmp_path: Path) -> None:
    figures: Counter[str] = Counter()
    reference = _scenario(tmp_path / "reference", [None, None], figures)
    kinds = Counter(kind for kind, _, _ in reference["ledger"]["transactions"].elements())
    assert (
        kinds["variation_margin"]
        and kinds["escrow"]
        and kinds["delivery_payment"]
        and kinds["penalty"]
    )
    assert reference["check"]["balanced"] is True
    assert [len(v) for v in reference["settlements"].values()] == [1, 3]  # final; 2nd, 3rd, final
    rng = random.Random(5)
    for run in range(3):
        delays = [rng.choice([0.0, 0.01, 0.04, 0.1]) for _ in PHASES]
        killed = _scenario(tmp_path / f"killed-{run}", list(delays), figures)
        assert killed["ledger"] == reference["ledger"], run
        for key in ("settlements", "deliveries", "contracts"):
            assert killed[key] == reference[key], (run, key)
        assert killed["check"]["balanced"] is True
    print(f"settlement kills: {dict(figures)}")
    assert sum(figures.values()) == 6
