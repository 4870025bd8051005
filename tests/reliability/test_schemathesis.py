"""Every operation of the OpenAPI document, fuzzed by schemathesis against a real server.

Cases are generated from the server's own ``/openapi.json``, both fitting the schema and
not. Private operations are signed with a real account's key most of the time (so the
fuzzing reaches the handlers, not only the signature check); admin operations get the
token or not. No response may be a 5xx, and each must conform to the document.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from exchange.gateway.auth import sign
from tests.reliability.conftest import ADMIN_TOKEN, Server, start_server, stop_server

EXAMPLES = 2500
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("fuzz") / "cfx")
    yield server
    stop_server(server)


def test_no_operation_answers_5xx_or_off_schema(fuzzed: Server) -> None:
    server = fuzzed
    trader = server.account("fuzzer", deposit="5000.00")
    symbols = [c["symbol"] for c in httpx.get(server.url + "/v1/contracts").json()]
    for price in ("2.90", "3.10"):  # something to find, cancel and amend
        trader.place(symbols[5], "buy", price, 1)
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    strategy = schema.as_strategy(GenerationMode.POSITIVE) | schema.as_strategy(
        GenerationMode.NEGATIVE
    )
    statuses: Counter[int] = Counter()
    operations: Counter[str] = Counter()
    http = httpx.Client(base_url=server.url, timeout=30)
    request = http.request

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, choice=st.integers(0, 9))
    def fuzz(case: schemathesis.Case, choice: int) -> None:
        kwargs = case.as_transport_kwargs(base_url=server.url)
        method, url = kwargs["method"], kwargs["url"]
        path = url[len(server.url) :]
        params = kwargs.get("params") or {}
        if params:
            path += "?" + urlencode(params, doseq=True)
        body = kwargs.get("content")
        if body is None and kwargs.get("json") is not None:
            body = json.dumps(kwargs["json"])  # the standard library writes any integer
        data = body if isinstance(body, bytes) else (body or "").encode()
        headers = {k: str(v) for k, v in (kwargs.get("headers") or {}).items()}
        if data:
            headers.setdefault("Content-Type", "application/json")
        if path.startswith("/v1/admin/"):
            if choice < 7:
                headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        elif case.operation.path not in _PUBLIC and choice < 8:
            ts = str(int(time.time()))
            headers |= {"CFX-KEY": trader.key, "CFX-TIMESTAMP": ts,
                        "CFX-SIGNATURE": sign(trader.secret, ts, method, path, data)}  # fmt: skip
        response = request(method, path, content=data, headers=headers)
        statuses[response.status_code] += 1
        operations[f"{method} {case.operation.path}"] += 1
        if response.status_code == 429:  # the fuzzer outran its own rate limit: wait it out
            time.sleep(float(response.headers.get("Retry-After", "1")))
        case.validate_response(response, checks=CHECKS)
        if response.status_code >= 400:
            error = response.json()["error"]
            assert isinstance(error["code"], str) and error["code"].isupper(), error

    with http:
        fuzz()
    assert httpx.get(server.url + "/v1/health").status_code == 200
    assert server.admin("GET", "/v1/admin/ledger/check").json()["balanced"] is True
    print(f"schemathesis: {sum(statuses.values())} requests over {len(operations)} operations, "
          f"statuses {dict(sorted(statuses.items()))}")  # fmt: skip
    assert not any(status >= 500 for status in statuses)
    assert len(operations) >= 20


_PUBLIC = {
    "/v1/health",
    "/v1/contracts",
    "/v1/contracts/{symbol}",
    "/v1/book/{symbol}",
    "/v1/trades/{symbol}",
    "/v1/candles/{symbol}",
    "/v1/settlement-prices/{symbol}",
    "/v1/index/{product}",
    "/",
}
