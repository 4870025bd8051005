"""GET /v1/market/deliveries: the public, anonymised delivery records, on a real server."""

from __future__ import annotations

import httpx
import pytest

from bench.server import Server

FIELDS = {"delivery_id", "symbol", "gpu_hours", "price", "status"}


def _public(server: Server, query: str = "") -> httpx.Response:
    return httpx.get(server.url + "/v1/market/deliveries" + query, timeout=30)


def test_deliveries_are_public_and_anonymous(server: Server) -> None:
    assert _public(server).json() == []  # an empty market has none, and says so

    provider = server.account("gpu-cloud", role="provider")
    lab, other = server.account("lab"), server.account("other-lab")
    for symbol, price, sizes in (
        ("H100-2026-12-02", "3.40", (10, 6)),
        ("A100-2026-12-02", "1.45", (8,)),
    ):
        for consumer, size in zip((lab, other), sizes, strict=False):
            assert provider.place(symbol, "sell", price, size).status_code == 201
            assert consumer.place(symbol, "buy", price, size).json()["status"] == "filled"
    server.advance("2026-12-02T00:30:00Z")  # trading closed at 23:00: deliveries assigned

    public = _public(server).json()
    private = {d["delivery_id"]: d for d in provider.request("GET", "/v1/deliveries").json()}
    assert len(public) == len(private) == 3
    assert [d["delivery_id"] for d in public] == sorted(private, reverse=True)  # newest first
    for record in public:
        assert set(record) == FIELDS  # no provider_account, no consumer_account
        assert record == {k: private[record["delivery_id"]][k] for k in FIELDS}
    assert sorted((d["symbol"], d["gpu_hours"], d["price"], d["status"]) for d in public) == [
        ("A100-2026-12-02", 8, "1.45", "pending"),
        ("H100-2026-12-02", 6, "3.40", "pending"),
        ("H100-2026-12-02", 10, "3.40", "pending"),
    ]

    h100 = _public(server, "?symbol=H100-2026-12-02").json()
    assert {d["symbol"] for d in h100} == {"H100-2026-12-02"} and len(h100) == 2
    assert _public(server, "?symbol=H100-2026-W50").json() == []
    [newest] = _public(server, "?limit=1").json()
    assert newest == public[0]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("?symbol=H100-1999-01-01", 404, "UNKNOWN_SYMBOL"),
        ("?symbol=" + "X" * 100, 404, "UNKNOWN_SYMBOL"),  # as every list's symbol filter
        ("?limit=0", 400, "INVALID_REQUEST"),
        ("?limit=05", 400, "INVALID_REQUEST"),
        ("?limit=1001", 400, "INVALID_REQUEST"),
        ("?limit=many", 400, "INVALID_REQUEST"),
    ],
)
def test_bad_queries_get_a_code(server: Server, query: str, status: int, code: str) -> None:
    response = _public(server, query)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_openapi_documents_the_response(server: Server) -> None:
    spec = httpx.get(server.url + "/openapi.json", timeout=30).json()
    operation = spec["paths"]["/v1/market/deliveries"]["get"]
    assert "public" in operation["tags"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["type"] == "array"
    model = spec["components"]["schemas"][schema["items"]["$ref"].rsplit("/", 1)[-1]]
    assert set(model["properties"]) == FIELDS
    assert {p["name"] for p in operation["parameters"]} == {"symbol", "limit"}
