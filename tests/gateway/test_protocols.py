"""The handshake's refusals as JSON errors, case by case (the server-level test sends them
over a socket: tests/gateway/test_rest.py)."""

from __future__ import annotations

import orjson

from exchange.gateway.protocols import JsonHandshake


def test_a_server_failure_stays_a_plain_500() -> None:
    failed = JsonHandshake().reject(500, "Internal Server Error")
    assert (failed.status_code, failed.body) == (500, b"Internal Server Error")
    assert failed.headers["Content-Type"].startswith("text/plain")


def test_a_refusal_has_one_content_type_and_a_length_that_fits() -> None:
    for status in (400, 403, 405, 414, 426, 431):
        response = JsonHandshake().reject(status, "")
        assert response.headers.get_all("Content-Type") == ["application/json"]
        assert response.headers.get_all("Content-Length") == [str(len(response.body))]
        error = orjson.loads(response.body)["error"]
        assert error["message"], status
        assert error["code"] == {403: "FORBIDDEN", 414: "PAYLOAD_TOO_LARGE",
                                 431: "PAYLOAD_TOO_LARGE"}.get(status, "INVALID_REQUEST")  # fmt: skip
