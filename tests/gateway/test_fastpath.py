"""Placing and cancelling below the router answers exactly as the FastAPI routes do.

The same script of requests (valid, malformed, unsigned, forged, replayed, refused by risk,
rate limited) runs against two fresh exchanges on the simulated clock, one with the fast
path and one with every request handed to the routes. Every answer (status, body, and the
headers a client reads) and the final state must be identical, and the fast path must have
served the requests it exists for.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from exchange.gateway import fastpath
from exchange.gateway.app import create_app
from exchange.gateway.auth import sign
from exchange.gateway.ratelimit import TokenBucket
from tests.reliability.conftest import admin_headers, in_process

Request = tuple[str, str, bytes, dict[str, str]]


def _signed(creds: dict[str, Any], method: str, path: str, body: bytes, **extra: str) -> Request:
    ts = str(int(time.time()))
    headers = {"CFX-KEY": creds["api_key"], "CFX-TIMESTAMP": ts,
               "CFX-SIGNATURE": sign(creds["api_secret"], ts, method, path, body),
               "Content-Type": "application/json"} | extra  # fmt: skip
    return method, path, body, headers


def _script(creds: dict[str, Any], other: dict[str, Any], symbol: str, price: str) -> list[Any]:
    """Requests in order; a callable entry builds its request from the answers so far."""

    def order(**fields: Any) -> bytes:
        body = {"symbol": symbol, "side": "buy", "type": "limit", "price": price, "quantity": 2}
        return orjson.dumps(body | fields)

    def cancel_first(answers: list[httpx.Response]) -> Request:
        return _signed(creds, "DELETE", f"/v1/orders/{answers[0].json()['order_id']}", b"")

    replayed = _signed(creds, "DELETE", "/v1/orders/999998", b"")  # not cancel_first's path
    return [
        _signed(creds, "POST", "/v1/orders", order()),
        _signed(creds, "POST", "/v1/orders", order(client_order_id="c-1", side="sell", quantity=1)),
        _signed(creds, "POST", "/v1/orders", order(client_order_id="c-1", side="sell", quantity=1)),
        _signed(creds, "POST", "/v1/orders", order(type="market", price=None, side="sell")),
        _signed(creds, "POST", "/v1/orders", order(time_in_force="IOC", post_only=False)),
        _signed(creds, "POST", "/v1/orders", order(price="1000.00")),  # out of band
        _signed(creds, "POST", "/v1/orders", order(price="3.001")),  # off the tick
        _signed(creds, "POST", "/v1/orders", order(symbol="H100-1999-01-01")),
        _signed(creds, "POST", "/v1/orders", order(quantity=0)),
        _signed(creds, "POST", "/v1/orders", order(quantity=1.0)),
        _signed(creds, "POST", "/v1/orders", order(colour="red")),
        _signed(creds, "POST", "/v1/orders", b"{not json"),
        _signed(creds, "POST", "/v1/orders", b"[1, 2]"),
        _signed(creds, "POST", "/v1/orders", b""),
        _signed(creds, "POST", "/v1/orders", order(), **{"Content-Type": "text/plain"}),
        _signed(creds, "POST", "/v1/orders?x=1", order()),
        ("POST", "/v1/orders", order(), {"Content-Type": "application/json"}),  # unsigned
        _signed(creds, "POST", "/v1/orders", order(), **{"CFX-SIGNATURE": "0" * 64}),
        _signed(creds, "POST", "/v1/orders", order(), **{"CFX-KEY": "nobody"}),
        _signed(other, "POST", "/v1/orders", order(side="sell")),
        cancel_first,
        cancel_first,  # already cancelled
        replayed,
        replayed,  # the same signature again
        _signed(other, "DELETE", "/v1/orders/2", b""),  # another account's order
        _signed(creds, "DELETE", "/v1/orders/999999", b""),
        _signed(creds, "DELETE", "/v1/orders/0", b""),
        _signed(creds, "DELETE", f"/v1/orders/{2**63}", b""),
        _signed(creds, "DELETE", "/v1/orders/abc", b""),
        _signed(creds, "DELETE", "/v1/orders/3?reason=x", b""),
        *[_signed(creds, "POST", "/v1/orders", order(quantity=1)) for _ in range(4)],  # limited
    ]


async def _run(
    data: Path, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[Any], str, int]:
    served = 0
    real = fastpath.serve

    async def spy(*args: Any) -> Any:
        nonlocal served
        passed_on = await real(*args)
        served += passed_on is None
        return passed_on

    monkeypatch.setattr(fastpath, "serve", spy)
    monkeypatch.setattr(fastpath, "_wants", fastpath._wants if fast else lambda scope: None)
    async with in_process(data) as svc:
        transport = httpx.ASGITransport(app=create_app(svc))
        async with httpx.AsyncClient(transport=transport, base_url="http://cfx") as http:
            made = [
                (
                    await http.post(
                        "/v1/admin/accounts",
                        headers=admin_headers(),
                        json={"name": n, "deposit": "100000.00"},
                    )
                ).json()
                for n in ("a", "b")
            ]
            contract = next(
                view
                for view in map(svc.contract_view, svc.symbols())
                if view["status"] == "trading"
            )
            answers: list[httpx.Response] = []
            script = _script(made[0], made[1], contract["symbol"], contract["reference_price"])
            for n, item in enumerate(script):
                if n == len(script) - 4:  # the last requests meet a rate limit
                    svc.limiter = TokenBucket(rate=0.001, burst=1)
                method, path, body, headers = item(answers) if callable(item) else item
                answers.append(await http.request(method, path, content=body, headers=headers))
            seen = [
                (
                    r.status_code,
                    r.headers.get("content-type"),
                    # seconds to wait: from the wall clock, so only whether one is given
                    "retry-after" in r.headers,
                    r.content,
                )
                for r in answers
            ]
            return seen, str(svc.state.state_hash()), served


def test_the_fast_path_answers_as_the_routes_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, fast_state, served = asyncio.run(_run(tmp_path / "fast", True, monkeypatch))
    routed, routed_state, none = asyncio.run(_run(tmp_path / "routed", False, monkeypatch))
    for n, (a, b) in enumerate(zip(fast, routed, strict=True)):
        assert a == b, (n, a, b)
    assert fast_state == routed_state
    assert none == 0
    statuses = [status for status, *_ in fast]
    assert statuses.count(201) >= 4 and 429 in statuses and 401 in statuses and 422 in statuses
    assert served >= 15  # places, cancels and their refusals after authentication
