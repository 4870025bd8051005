"""Every REST answer matches the schema the OpenAPI document gives for it, field for field.

A contract's whole life runs against a real server, and each response is validated strictly
(no missing, extra or mistyped field) against the model its route documents.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import TypeAdapter

from exchange.gateway import schemas as S
from tests.gateway.conftest import Client, Server


def check(response: httpx.Response, model: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    TypeAdapter(model).validate_python(response.json(), strict=True)
    return response.json()


def test_documented_models_are_what_the_exchange_sends(server: Server, symbol: str) -> None:
    url = server.url
    check(httpx.get(url + "/v1/health"), S.Health)
    check(httpx.get(url + "/v1/contracts"), list[S.Contract])
    check(httpx.get(url + f"/v1/contracts/{symbol}"), S.Contract)
    check(httpx.get(url + "/v1/index/H100"), S.Index)

    creds = check(server.admin("POST", "/v1/admin/accounts", {"name": "farm", "role": "provider", "deposit": "5000.00"}), S.Credentials, 201)  # fmt: skip
    farm = Client(url, creds["api_key"], creds["api_secret"], creds["account_id"])
    lab = server.account("lab")
    check(server.admin("POST", f"/v1/admin/accounts/{lab.account_id}/deposits", {"amount": "10.00"}), S.Account)  # fmt: skip
    check(server.admin("POST", f"/v1/admin/accounts/{lab.account_id}/withdrawals", {"amount": "5.00"}), S.Account)  # fmt: skip

    check(farm.place(symbol, "sell", "3.50", 10), S.Order, 201)
    bought = check(lab.place(symbol, "buy", "3.50", 6, client_order_id="lab-1"), S.Order, 201)
    assert bought["fills"]
    resting = check(lab.place(symbol, "buy", "3.10", 2), S.Order, 201)
    check(lab.request("PATCH", f"/v1/orders/{resting['order_id']}", {"quantity": 1}), S.Order)
    check(lab.request("GET", f"/v1/orders/{resting['order_id']}"), S.Order)
    check(lab.request("GET", "/v1/orders"), list[S.Order])
    check(lab.request("DELETE", f"/v1/orders/{resting['order_id']}"), S.Order)
    check(lab.request("DELETE", f"/v1/orders?symbol={symbol}"), list[S.Order])
    check(lab.request("POST", "/v1/orders/cancel-after", {"timeout_s": 60}), S.CancelAfterState)
    check(lab.request("POST", "/v1/orders/cancel-after", {"timeout_s": 0}), S.CancelAfterState)
    check(lab.request("GET", "/v1/fills"), list[S.Fill])
    check(lab.request("GET", "/v1/account"), S.Account)
    check(lab.request("GET", "/v1/positions"), list[S.Position])
    check(httpx.get(url + f"/v1/book/{symbol}"), S.Book)
    check(httpx.get(url + f"/v1/trades/{symbol}"), list[S.Trade])
    for interval in ("1m", "1h", "1d"):
        check(httpx.get(url + f"/v1/candles/{symbol}?interval={interval}"), list[S.Candle])
    check(server.admin("POST", f"/v1/admin/accounts/{lab.account_id}/disable"), S.KillSwitch)
    check(server.admin("POST", f"/v1/admin/accounts/{lab.account_id}/enable"), S.KillSwitch)
    check(server.admin("POST", f"/v1/admin/contracts/{symbol}/halt"), S.Contract)
    check(server.admin("POST", f"/v1/admin/contracts/{symbol}/resume"), S.Contract)

    day = symbol.split("-", 1)[1]  # delivery day, e.g. 2026-12-02
    advanced = check(server.admin("POST", "/v1/admin/clock/advance", {"to": f"{day}T12:00:00Z"}), S.ClockAdvanced)  # fmt: skip
    assert {e["event"] for e in advanced["ran"]} >= {"daily_settlement", "expiry", "delivery_start"}
    check(httpx.get(url + f"/v1/settlement-prices/{symbol}"), list[S.SettlementPrice])
    [delivery] = check(farm.request("GET", "/v1/deliveries"), list[S.Delivery])
    path = f"/v1/deliveries/{delivery['delivery_id']}"
    body = {"gpu_hours": 6, "period_start": f"{day}T00:00:00Z", "period_end": f"{day}T12:00:00Z"}
    check(farm.request("POST", path + "/attestations", body), S.Delivery, 201)
    disputed = {"gpu_hours": 2, "reason": "two GPUs were down"}
    check(lab.request("POST", path + "/disputes", disputed), S.Delivery, 201)
    check(server.admin("POST", "/v1/admin/clock/advance", {"to": "2026-12-31T00:00:00Z"}), S.ClockAdvanced)  # fmt: skip
    resolved = check(server.admin("POST", f"/v1/admin/deliveries/{delivery['delivery_id']}/resolve", {"provider_hours": 1}), S.Delivery)  # fmt: skip
    assert resolved["status"] == "settled" and resolved["attestations"][0]["time"].endswith("Z")
    assert check(server.admin("GET", "/v1/admin/ledger/check"), S.LedgerCheck)["balanced"]

    # Refusals: the documented error body.
    check(httpx.get(url + "/v1/contracts/H100-1999-01-01"), S.Error, 404)
    check(lab.place(symbol, "buy", "3.50", 1), S.Error, 409)  # the contract has expired
    check(lab.request("GET", "/v1/orders/999999"), S.Error, 404)
    check(httpx.get(url + "/v1/account"), S.Error, 401)


def test_openapi_documents_every_route_with_its_models(server: Server) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            ok = next(c for c in operation["responses"] if c.startswith("2"))
            content = operation["responses"][ok].get("content", {})
            schema = content.get("application/json", {}).get("schema", {})
            assert "$ref" in schema or "$ref" in schema.get("items", {}), (method, path, schema)
            if path.startswith("/v1/") and path != "/v1/health":
                error = operation["responses"]["404"]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/Error"}, (method, path)
