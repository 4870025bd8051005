"""A day contract from first trade to settled delivery, through the API, every cent counted."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import create_engine, make_url, text

from tests.gateway.conftest import Server, start_server, stop_server


def _cash(client: object) -> dict[str, Decimal]:
    account = client.request("GET", "/v1/account").json()  # type: ignore[attr-defined]
    return {
        k: Decimal(account[k]) for k in ("cash", "available", "margin_locked", "delivery_escrow")
    }


def test_contract_life_through_the_api(server: Server) -> None:
    _contract_life(server)


def test_contract_life_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("CREATE DATABASE cfx_lifecycle"))
    engine.dispose()
    url = make_url(postgres_url).set(database="cfx_lifecycle").render_as_string(hide_password=False)
    server = start_server(tmp_path / "cfx", extra=["--db", url])
    try:
        _contract_life(server)
    finally:
        stop_server(server)


def _contract_life(server: Server) -> None:
    symbol = "H100-2026-12-05"
    assert httpx.get(server.url + f"/v1/contracts/{symbol}").json()["status"] == "trading"
    provider = server.account("gpu-cloud", deposit="1000.00", role="provider")
    lab = server.account("lab", deposit="1000.00")

    assert provider.place(symbol, "sell", "3.50", 24).status_code == 201
    bought = lab.place(symbol, "buy", "3.50", 24)
    assert bought.status_code == 201 and bought.json()["status"] == "filled"
    assert _cash(lab)["cash"] == Decimal("999.91")  # 0.10% taker fee on $84.00 is 8.4 cents: 9

    # settlement every midnight, expiry at 23:00 on the 4th, delivery on the 5th
    ran = server.advance("2026-12-05T00:30:00Z")["ran"]
    events = [e["event"] for e in ran]
    assert "daily_settlement" in events and "expiry" in events
    expiry = next(e for e in ran if e["event"] == "expiry" and e["symbol"] == symbol)
    assert expiry["final_price"] == "3.50"  # prices on the wire are decimal strings
    contract = httpx.get(server.url + f"/v1/contracts/{symbol}").json()
    assert (contract["status"], contract["final_settlement_price"]) == ("delivering", "3.50")
    prices = httpx.get(server.url + f"/v1/settlement-prices/{symbol}").json()
    assert prices[-1] == {"time": "2026-12-04T23:00:00.000Z", "price": "3.50", "final": True}
    assert _cash(lab)["delivery_escrow"] == Decimal("84.00")

    [delivery] = provider.request("GET", "/v1/deliveries").json()
    assert lab.request("GET", "/v1/deliveries").json() == [delivery]
    assert (delivery["gpu_hours"], delivery["price"], delivery["status"]) == (24, "3.50", "pending")
    twenty_hours = {
        "gpu_hours": 20,
        "period_start": "2026-12-05T00:00:00Z",
        "period_end": "2026-12-05T20:00:00Z",
    }
    attestations = f"/v1/deliveries/{delivery['delivery_id']}/attestations"
    early = provider.request("POST", attestations, twenty_hours | {"gpu_hours": 19})  # at 00:30
    assert (early.status_code, early.json()["error"]["code"]) == (400, "ATTESTATION_PERIOD")
    server.advance("2026-12-05T20:30:00Z")
    attested = provider.request("POST", attestations, twenty_hours)
    assert attested.status_code == 201, attested.text
    too_many = provider.request(
        "POST",
        attestations,
        {
            "gpu_hours": 5,
            "period_start": "2026-12-05T20:00:00Z",
            "period_end": "2026-12-05T20:30:00Z",
        },
    )
    assert (too_many.status_code, too_many.json()["error"]["code"]) == (
        400,
        "ATTESTATION_EXCEEDS_OWED",
    )
    not_theirs = lab.request(
        "POST",
        f"/v1/deliveries/{delivery['delivery_id']}/attestations",
        {"gpu_hours": 1, "period_start": "a", "period_end": "b"},
    )
    assert not_theirs.status_code == 403

    server.advance("2026-12-07T00:00:00Z")  # delivery end plus 24 h of grace
    [settled] = lab.request("GET", "/v1/deliveries").json()
    assert settled["status"] == "settled"
    assert _cash(provider)["cash"] == Decimal("1000.00") + Decimal("70.00") - Decimal("7.00")
    assert _cash(lab) == {
        "cash": Decimal("999.91") - Decimal("84.00") + Decimal("14.00") + Decimal("7.00"),
        "available": Decimal("936.91"),
        "margin_locked": Decimal("0.00"),
        "delivery_escrow": Decimal("0.00"),
    }
    check = server.admin("GET", "/v1/admin/ledger/check").json()
    assert check["balanced"] is True
    index = httpx.get(server.url + "/v1/index/H100").json()
    assert index["history"] and index["price"] is not None
