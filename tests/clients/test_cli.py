"""The cfx command line against a real server: trading commands, JSON output, helpful errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import orjson
import pytest
from rich.console import Console
from typer.testing import CliRunner

from bench.server import Server
from clients import commands
from clients.cli import app
from tests.clients.conftest import Trader

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "console", Console(width=200))


@pytest.fixture(scope="module")
def creds(server: Server, trader: Trader) -> list[str]:
    bot = trader("cli-bot")
    return ["--url", server.url, "--key", str(bot.key), "--secret", str(bot.secret)]


def cfx(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_place_list_amend_cancel(creds: list[str], symbol: str) -> None:
    code, out = cfx("orders", "place", symbol, "buy", "3", "3.21", "--post-only", *creds, "--json")
    assert code == 0, out
    order = orjson.loads(out)
    assert (order["status"], order["price"], order["quantity"]) == ("open", "3.21", 3)
    # times as the exchange writes them: UTC with milliseconds and Z
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", order["created_at"]), order
    code, out = cfx("orders", "list", "--symbol", symbol, *creds, "--json")
    assert [o["order_id"] for o in orjson.loads(out)] == [order["order_id"]]
    code, out = cfx("orders", "amend", str(order["order_id"]), "--quantity", "2", *creds)
    assert code == 0 and "amended" in out
    code, out = cfx("orders", "list", *creds)
    assert code == 0 and "3.21" in out and symbol in out
    code, out = cfx("orders", "cancel", str(order["order_id"]), *creds, "--json")
    assert code == 0 and orjson.loads(out)[0]["status"] == "cancelled"
    code, out = cfx("orders", "list", "--status", "all", "--limit", "1", *creds)
    assert code == 0 and "cancelled (user)" in out
    code, out = cfx("orders", "cancel", "--all", *creds, "--json")
    assert code == 0 and orjson.loads(out) == []


def test_account_fills_deliveries_book_trades_contracts(
    server: Server, creds: list[str], symbol: str, trader: Trader
) -> None:
    trader("cli-maker").place_order(symbol, "sell", 2, "3.33")
    code, out = cfx("orders", "place", symbol, "buy", "2", *creds)  # a market order
    assert code == 0 and "filled 2 @ 3.33 (taker)" in out
    code, out = cfx("account", *creds, "--json")
    account = orjson.loads(out)
    assert code == 0 and account["positions"][0]["quantity"] == 2
    code, out = cfx("account", *creds)
    assert code == 0 and "margin_locked" in out and symbol in out
    code, out = cfx("fills", *creds, "--json")
    assert orjson.loads(out)[0]["price"] == "3.33"
    trade_id = orjson.loads(out)[0]["trade_id"]
    code, out = cfx("fills", "--limit", "1", "--before", str(trade_id), *creds, "--json")
    assert (code, orjson.loads(out)) == (0, [])
    code, out = cfx("orders", "list", "--status", "all", "--limit", "1", *creds, "--json")
    assert code == 0 and [o["status"] for o in orjson.loads(out)] == ["filled"]
    assert cfx("deliveries", *creds, "--json") == (0, "[]\n")
    code, out = cfx("trades", symbol, "--url", server.url, "--json")
    assert orjson.loads(out)[0]["quantity"] == 2
    code, out = cfx("book", symbol, "--once", "--url", server.url)
    assert code == 0 and symbol in out
    code, out = cfx("book", symbol, "--url", server.url, "--json")
    assert orjson.loads(out)["symbol"] == symbol
    code, out = cfx("contracts", "--url", server.url, "--json")
    assert symbol in {c["symbol"] for c in orjson.loads(out)}
    code, out = cfx("contracts", "--calendar", "--at", "2026-12-01T00:00:00Z", "--json")
    assert code == 0 and "H100-2026-12-02" in {c["symbol"] for c in orjson.loads(out)}


def test_errors_say_how_to_fix_them(server: Server, creds: list[str], symbol: str) -> None:
    code, out = cfx("account", "--url", "http://127.0.0.1:9", "--key", "k", "--secret", "s")
    assert code == 2 and "cfx serve" in out and "--url" in out
    code, out = cfx("account", "--url", server.url, "--key", "cfx_nope", "--secret", "s")
    assert code == 2 and "--key" in out and "unknown API key" in out
    code, out = cfx("account", "--url", server.url)
    assert code == 2 and "CFX_API_KEY" in out
    typo = symbol[:-1] + ("9" if symbol[-1] != "9" else "8")
    code, out = cfx("orders", "place", typo, "buy", "1", "3.00", *creds)
    assert code == 1 and "UNKNOWN_SYMBOL" in out and "Did you mean" in out
    code, out = cfx("orders", "place", symbol, "buy", "1", "3.001", *creds)
    assert code == 1 and "INVALID_TICK" in out
    code, out = cfx("orders", "place", symbol, "hold", "1", "3.00", *creds)
    assert code == 2 and "buy" in out
    code, out = cfx("bot", "arbitrageur", *creds)
    assert code == 2 and "market-maker" in out


def test_live_book_ladder_follows_the_feed(server: Server, trader: Trader, symbol: str) -> None:
    """`cfx book SYMBOL` keeps a ladder from the websocket feed until Ctrl-C."""
    ladder = subprocess.Popen(
        [sys.executable, "-m", "clients.cli", "book", symbol, "--url", server.url, "--depth", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ, COLUMNS="120"),
    )  # fmt: skip
    try:
        time.sleep(3)  # connected and showing the snapshot
        trader("cli-ladder").place_order(symbol, "sell", 7, "4.44")
        time.sleep(2)
    finally:
        ladder.send_signal(signal.SIGINT)
        out, _ = ladder.communicate(timeout=30)
    text = out.decode()
    assert ladder.returncode == 0, text
    assert symbol in text and "4.44" in text and "7" in text


def test_cancelling_a_filled_order_says_so(creds: list[str], symbol: str, trader: Trader) -> None:
    trader("cli-filler").place_order(symbol, "sell", 1, "3.34")
    code, out = cfx("orders", "place", symbol, "buy", "1", "3.34", *creds, "--json")
    order = orjson.loads(out)
    assert order["status"] == "filled", out
    code, out = cfx("orders", "cancel", str(order["order_id"]), *creds)
    assert code == 0 and "already filled: nothing to cancel" in out, out


def test_tables_are_not_cut_when_piped(server: Server, creds: list[str], symbol: str) -> None:
    """Into a pipe there is no terminal width: rows come out whole, not cut to 80 columns."""
    env = {**os.environ, "COLUMNS": ""}
    out = subprocess.run(
        [sys.executable, "-m", "clients.cli", "contracts", "--url", server.url],
        capture_output=True, text=True, timeout=60, env=env, check=True,
    ).stdout  # fmt: skip
    [row] = [line for line in out.splitlines() if f" {symbol} " in line]
    assert "…" not in out and len(row) > 80
    assert row.split("│")[-2].strip().endswith("+00:00")  # last_trade_time, the last column
