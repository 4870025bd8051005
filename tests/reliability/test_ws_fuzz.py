"""Hostile websocket frames: every one gets an error with a code (or an ack, when it happens
to be valid), or the connection is closed cleanly with a policy code; the server stays up.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from exchange.gateway.auth import sign
from tests.reliability.conftest import Server, start_server, stop_server

#: Close codes a clean refusal may use: normal, policy violation, message too big.
CLEAN_CLOSE = {1000, 1008, 1009}

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
OPS = st.sampled_from(
    ["subscribe", "unsubscribe", "auth", "place", "cancel", "amend", "cancel_all", "cancel_after",
     "ping", "dance", "", None, 1]
)  # fmt: skip
FIELDS = st.sampled_from(["channels", "id", "key", "timestamp", "signature", "symbol", "side",
                          "type", "price", "quantity", "order_id", "client_order_id", "timeout_s"])  # fmt: skip
MESSAGE = st.builds(
    lambda op, extra: {"op": op} | extra, OPS, st.dictionaries(FIELDS, JSON, max_size=6)
)


def _text(value: Any) -> str:
    return (
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
        if not isinstance(value, str)
        else value
    )


def _deep(depth: int) -> str:
    return '{"op": "place", "id": ' + "[" * depth + "]" * depth + "}"


FRAME = st.one_of(
    MESSAGE.map(lambda m: _text(_safe(m))),
    JSON.map(lambda v: _text(_safe(v))),
    st.text(max_size=200),
    st.binary(max_size=200),
    st.integers(1, 5000).map(_deep),
    st.sampled_from(
        ['{"op": "place", "quantity": 1' + "0" * 400 + "}", "[" * 100_000, "x" * 70_000]
    ),
)


def _safe(value: Any) -> Any:
    """JSON that orjson can write: floats as given, integers beyond 64 bits as raw digits."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        return float(value)
    if isinstance(value, list):
        return [_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _safe(v) for k, v in value.items()}
    return value


def _huge_frame(server: Server) -> str:
    """Send a frame beyond what the server reads at all; return how the connection ended."""
    with connect(server.ws_url, max_size=None, open_timeout=30, close_timeout=30) as ws:
        try:
            ws.send("x" * (17 << 20))
            while True:
                ws.recv(timeout=120)
        except ConnectionClosed as closed:
            # a close frame with a policy code, read even while the frame is still being
            # sent: the server drops the rest rather than resetting the connection
            code = closed.rcvd.code if closed.rcvd else None
            assert code in CLEAN_CLOSE, code
            return f"close {code}"
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def ws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("wsfuzz") / "cfx")
    yield server
    stop_server(server)


def test_hostile_frames_get_coded_errors_or_a_clean_close(ws_server: Server) -> None:
    server = ws_server
    trader = server.account("wsfuzz")
    outcomes: Counter[str] = Counter()
    state: dict[str, ClientConnection] = {}
    probe = iter(range(10**9))

    def connection() -> ClientConnection:
        if "ws" not in state:
            ws = stack.enter_context(connect(server.ws_url, max_size=None, open_timeout=30))
            ts = str(int(time.time()))
            if next(probe) % 2:  # half the time, an authenticated connection
                ws.send(orjson.dumps({"op": "auth", "id": "a", "key": trader.key, "timestamp": ts,
                                      "signature": sign(trader.secret, ts, "GET", "/v1/ws", b"")}).decode())  # fmt: skip
            state["ws"] = ws
        return state["ws"]

    @settings(max_examples=400, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(frame=FRAME)
    def fuzz(frame: str | bytes) -> None:
        ws = connection()
        marker = f"probe-{next(probe)}"
        try:
            ws.send(frame)
            ws.send(orjson.dumps({"op": "ping", "id": marker}).decode())
            while True:
                message = orjson.loads(ws.recv(timeout=30))
                if message.get("op") == "pong" and message.get("id") == marker:
                    break
                if message.get("op") == "error":
                    code = message["error"]["code"]
                    assert isinstance(code, str) and code.isupper(), message
                    outcomes[code] += 1
                elif message.get("op") in ("ack", "pong"):  # the frame was a valid request
                    outcomes[message["op"]] += 1
                else:
                    assert "channel" in message, message
        except ConnectionClosed as closed:
            state.pop("ws")  # the next example starts afresh, whatever this one found
            code = closed.rcvd.code if closed.rcvd else None
            assert code in CLEAN_CLOSE, (code, frame[:100])
            outcomes[f"close {code}"] += 1

    with contextlib.ExitStack() as stack:
        fuzz()
    outcomes[_huge_frame(server)] += 1
    assert httpx.get(server.url + "/v1/health").status_code == 200
    assert server.admin("GET", "/v1/admin/ledger/check").json()["balanced"] is True
    print(f"websocket fuzz: {sum(outcomes.values())} outcomes {dict(outcomes)}")
    assert outcomes["INVALID_REQUEST"] > 0
