"""The dashboard in headless Chromium against a real server: orders placed through the signed
REST API must appear in the page's ladder and trades tape, live from the websocket feed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, WebSocketRoute, expect, sync_playwright

from bench.server import Server

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
FEED = re.compile(r"/v1/ws$")

expect.set_options(timeout=30_000)  # a shared 2-core machine can be slow; nothing here is timed


@dataclass
class Watched:
    """A page and every error its console or scripts reported."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def level(self, side: str, price: str) -> Any:
        ladder = "#bids" if side == "buy" else "#asks"
        return self.page.locator(f'{ladder} .level[data-price="{price}"] .size')


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    watched = Watched(page)
    page.on("console", lambda m: watched.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watched.errors.append(str(e)))
    yield watched
    context.close()


def test_orders_show_in_the_ladder_and_the_tape(
    server: Server, watched: Watched, tmp_path: Path
) -> None:
    page = watched.page
    symbol = "H100-2026-W50"
    listed = httpx.get(server.url + "/v1/contracts", timeout=30).json()
    page.goto(server.url + "/")
    expect(page.locator("#contracts tr[data-symbol]")).to_have_count(len(listed))
    expect(page.locator("#connection")).to_have_text("live")

    page.locator(f'#contracts tr[data-symbol="{symbol}"]').click()
    expect(page.locator(f'#contracts tr[data-symbol="{symbol}"]')).to_have_class(
        re.compile("selected")
    )
    expect(page.locator("#summary .symbol")).to_have_text(symbol)
    assert page.url.endswith(f"#{symbol}")
    # nothing traded yet: every panel says so instead of failing
    expect(page.locator("#book-state")).to_contain_text("sequence")
    expect(page.locator("#bids")).to_have_text("No bids")
    expect(page.locator("#asks")).to_have_text("No offers")
    expect(page.locator("#trades")).to_have_text("No trades yet")
    expect(page.locator("#deliveries")).to_contain_text("No deliveries yet")

    buyer, seller, taker = server.account("bids"), server.account("asks"), server.account("taker")
    assert buyer.place(symbol, "buy", "3.40", 10).status_code == 201
    assert buyer.place(symbol, "buy", "3.38", 7).status_code == 201
    assert seller.place(symbol, "sell", "3.60", 5).status_code == 201
    expect(watched.level("buy", "3.40")).to_have_text("10")
    expect(watched.level("buy", "3.38")).to_have_text("7")
    expect(watched.level("sell", "3.60")).to_have_text("5")
    expect(page.locator("#spread")).to_contain_text("spread 0.20")

    crossing = taker.place(symbol, "buy", "3.60", 2)
    assert crossing.json()["status"] == "filled"
    [trade] = httpx.get(server.url + f"/v1/trades/{symbol}?limit=1", timeout=30).json()
    newest = page.locator("#trades .trade").first
    expect(newest).to_have_attribute("data-trade-id", str(trade["trade_id"]))
    expect(newest.locator(".price")).to_have_text("3.60")
    expect(newest.locator(".size")).to_have_text("2")
    expect(watched.level("sell", "3.60")).to_have_text("3")
    expect(page.locator(f'#contracts tr[data-symbol="{symbol}"] .last')).to_have_text("3.60")
    expect(page.locator("#summary .last")).to_have_text("3.60")

    page.locator('#interval-tabs button[data-interval="1h"]').click()
    expect(page.locator('#interval-tabs button[data-interval="1h"]')).to_have_class("active")

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert watched.errors == []


def test_a_gap_in_the_book_feed_brings_a_fresh_snapshot(server: Server, watched: Watched) -> None:
    page = watched.page
    symbol = "H100-2026-W51"
    sent: list[dict[str, Any]] = []
    dropped: list[int] = []

    def relay(ws: WebSocketRoute) -> None:
        upstream = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            sent.append(json.loads(message))
            upstream.send(message)

        def from_server(message: str | bytes) -> None:
            data = json.loads(message)
            if data.get("channel") == "book" and data.get("type") == "update" and not dropped:
                dropped.append(data["sequence"])  # lose one update on the way
                return
            ws.send(message)

        ws.on_message(from_page)
        upstream.on_message(from_server)

    page.route_web_socket(FEED, relay)
    page.goto(f"{server.url}/#{symbol}")
    expect(page.locator("#book-state")).to_contain_text("sequence")

    maker = server.account("gap-maker")
    assert maker.place(symbol, "buy", "3.30", 4).status_code == 201  # this update is lost
    assert maker.place(symbol, "sell", "3.70", 6).status_code == 201  # this one shows the gap
    expect(watched.level("buy", "3.30")).to_have_text("4")
    expect(watched.level("sell", "3.70")).to_have_text("6")
    assert dropped
    book = f"book:{symbol}"
    assert [m["op"] for m in sent if book in m.get("channels", [])] == [
        "subscribe",
        "unsubscribe",
        "subscribe",
    ]
    assert watched.errors == []


def test_the_page_reconnects_when_the_socket_drops(server: Server, watched: Watched) -> None:
    page = watched.page
    symbol = "A100-2026-W50"
    sockets: list[WebSocketRoute] = []

    def relay(ws: WebSocketRoute) -> None:
        sockets.append(ws)
        ws.connect_to_server()

    page.route_web_socket(FEED, relay)
    page.goto(f"{server.url}/#{symbol}")
    expect(page.locator("#book-state")).to_contain_text("sequence")
    with page.expect_websocket(timeout=30_000):
        sockets[0].close(code=1001, reason="going away")
    expect(page.locator("#connection")).to_have_text("live")

    trader = server.account("after-drop")
    assert trader.place(symbol, "buy", "1.40", 9).status_code == 201
    expect(watched.level("buy", "1.40")).to_have_text("9")
    assert len(sockets) == 2
    assert watched.errors == []


def test_an_exchange_with_nothing_listed_renders_empty_panels(
    server: Server, watched: Watched
) -> None:
    """No real exchange is ever without contracts; its REST answers are stubbed to say so."""
    page = watched.page

    def index(route: Route) -> None:
        product = route.request.url.rsplit("/", 1)[-1]
        route.fulfill(json={"product": product, "price": None, "history": []})

    page.route("**/v1/contracts", lambda route: route.fulfill(json=[]))
    page.route("**/v1/market/deliveries*", lambda route: route.fulfill(json=[]))
    page.route("**/v1/index/*", index)
    page.route_web_socket(FEED, lambda ws: None)  # a feed that never says anything
    page.goto(server.url + "/")
    expect(page.locator("#contracts")).to_have_text("No contracts are listed yet.")
    expect(page.locator("#summary")).to_contain_text("No contracts are listed yet")
    expect(page.locator("#bids")).to_have_text("No contract selected")
    expect(page.locator("#trades")).to_have_text("No contract selected")
    expect(page.locator("#index .index-card")).to_have_count(2)
    expect(page.locator("#index")).to_contain_text("No settlement yet")
    expect(page.locator("#deliveries")).to_contain_text("No deliveries yet")
    assert watched.errors == []


def test_static_files_and_unknown_names(server: Server) -> None:
    page = httpx.get(server.url + "/", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    script = httpx.get(server.url + "/dashboard/app.js", timeout=30)
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    for name in ("nope.js", "..%2Fdashboard.py", ".hidden.js", "dashboard.py"):
        missing = httpx.get(server.url + f"/dashboard/{name}", timeout=30)
        assert missing.status_code == 404, name
        assert missing.json()["error"]["code"] == "NOT_FOUND"
