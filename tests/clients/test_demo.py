"""``cfx demo``: a live market in one command, with trades, settlements, expiry and deliveries."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from bench.server import free_port
from clients import demo
from exchange.service import run_offline


def test_demo_runs_a_market_through_expiry_and_delivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(demo, "console", Console(file=out, width=200))
    data_dir = tmp_path / "data"
    demo.demo(
        port=free_port(), data_dir=data_dir, speed=9000, duration_s=40,
        start=datetime(2026, 12, 1, tzinfo=UTC),
    )  # fmt: skip
    text = out.getvalue()
    assert "open http://127.0.0.1:" in text
    assert "expiry      H100-2026-12-02 final price" in text
    assert "settlement  " in text and "delivering  H100-2026-12-02" in text
    assert "settled" in text, text

    async def check(svc):  # type: ignore[no-untyped-def]
        trades = svc.state.trade_count if hasattr(svc.state, "trade_count") else None
        return await svc.ledger_check(), trades

    ledger, _ = run_offline(data_dir, check)
    assert ledger["balanced"] is True
