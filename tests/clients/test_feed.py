"""The websocket side of the SDK against a real server: local books, order entry, reconnects."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import re
import socket
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.sync.server import serve as ws_serve

from bench.server import ADMIN_TOKEN, Server, start_server, stop_server
from clients import (
    AsyncClient,
    AsyncFeed,
    CfxError,
    Client,
    Credentials,
    Feed,
    OutcomeUnknown,
    Rejected,
)
from tests.clients.conftest import Trader


def _levels(levels: list[list[str]]) -> list[tuple[str, int]]:
    return [(str(p), int(q)) for p, q in levels]


def _rest_levels(book: list[tuple[object, int]]) -> list[tuple[str, int]]:
    return [(str(p), q) for p, q in book]


def test_sync_feed_keeps_the_book_and_enters_orders(
    server: Server, trader: Trader, symbol: str
) -> None:
    maker, taker = trader("feed-maker"), trader("feed-taker")
    with Feed(server.url, [f"book:{symbol}", f"trades:{symbol}", "orders", "fills"],
              maker.key, maker.secret) as feed:  # fmt: skip
        resting = [feed.place(symbol, "sell", 2, f"3.{60 + i}") for i in range(3)]
        assert all(o.status == "open" for o in resting)
        taker.place_order(symbol, "buy", 3, "3.61")
        seen: set[str] = set()
        while not {"trades", "fills"} <= seen:
            message = feed.next(timeout=10)
            assert message is not None, f"only saw {seen}"
            seen.add(message["channel"])
        cancelled = feed.cancel(resting[2].order_id)
        assert cancelled.status == "cancelled"
        with pytest.raises(Rejected) as error:
            feed.place(symbol, "buy", 1, "3.001")
        assert error.value.code == "INVALID_TICK"
        while feed.next(timeout=0.5) is not None:
            pass
        book = maker.book(symbol, depth=10)
        local = feed.book(symbol)
        assert local.sequence == book.sequence
        assert _levels(local.asks(10)) == _rest_levels(book.asks)
        assert _levels(local.bids(10)) == _rest_levels(book.bids)


def test_a_gap_resubscribes_by_itself(server: Server, trader: Trader, symbol: str) -> None:
    bot = trader("feed-gap")
    with Feed(server.url, [f"book:{symbol}"]) as feed:
        feed.next(timeout=10)  # the snapshot
        feed.book(symbol).sequence = (feed.book(symbol).sequence or 0) - 1  # lose one update
        order = bot.place_order(symbol, "sell", 1, "3.95")
        while feed.core.resyncs == 0 or not feed.book(symbol).synced:
            assert feed.next(timeout=10) is not None
        bot.cancel_order(order.order_id)
        while feed.next(timeout=0.5) is not None:
            pass
        assert feed.book(symbol).sequence == bot.book(symbol).sequence
        assert feed.core.resyncs == 1


def test_async_client_and_feed(server: Server, trader: Trader, symbol: str) -> None:
    seller = trader("async-seller")

    async def main() -> None:
        async with AsyncClient(server.url, admin_token=ADMIN_TOKEN) as admin:
            creds = await admin.create_account("async-buyer", deposit="50000.00")
        cfx = AsyncClient(server.url, creds.api_key, creds.api_secret)
        async with cfx, cfx.feed([f"book:{symbol}", f"trades:{symbol}", "fills"]) as feed:
            ask = seller.place_order(symbol, "sell", 2, "3.70")
            order = await feed.place(symbol, "buy", 2, "3.70", time_in_force="IOC")
            assert order.status == "filled" and order.fills[0].trade_id > 0
            channels = set()
            async for message in feed:
                channels.add(message["channel"])
                if {"book", "trades", "fills"} <= channels:
                    break
            fills = await cfx.fills(symbol)
            assert fills[0].order_id == order.order_id
            assert (await cfx.order(order.order_id)).status == "filled"
            assert seller.order(ask.order_id).filled_quantity >= 1  # older asks may come first
            assert (await cfx.account()).account_id == creds.account_id

    asyncio.run(main())


def _account_and_h100(server: Server, name: str) -> tuple[Credentials, str]:
    """A new account's credentials, and an H100 contract to trade."""
    with Client(server.url, admin_token=ADMIN_TOKEN) as admin:
        creds = admin.create_account(name, deposit="50000.00")
        return creds, next(c.symbol for c in admin.contracts() if c.product == "H100")


def test_feeds_survive_a_server_restart(tmp_path: Path) -> None:
    """kill -9 the exchange and restart it: both feeds reconnect, re-auth and resubscribe."""
    server = start_server(tmp_path / "data")
    try:
        creds, symbol = _account_and_h100(server, "restart")

        async def before_and_after() -> None:
            nonlocal server
            async with AsyncClient(server.url, creds.api_key, creds.api_secret).feed(
                [f"book:{symbol}", "orders"]
            ) as feed:
                first = await feed.place(symbol, "buy", 1, "3.30")
                stop_server(server, kill=True)
                server = start_server(server.data_dir, port=server.port)
                second = await feed.place(symbol, "buy", 1, "3.31")
                assert feed.reconnects == 1
                assert second.order_id > first.order_id
                while feed.book(symbol).bids(1) != [["3.31", "1"]]:
                    assert await feed.next(timeout=10) is not None

        asyncio.run(before_and_after())

        with Feed(server.url, [f"book:{symbol}"], creds.api_key, creds.api_secret) as feed:
            feed.next(timeout=10)
            stop_server(server, kill=True)
            server = start_server(server.data_dir, port=server.port)
            third = feed.place(symbol, "buy", 1, "3.32")
            assert third.status == "open" and feed.reconnects == 1
            while feed.book(symbol).bids(1) != [["3.32", "1"]]:
                assert feed.next(timeout=10) is not None
    finally:
        stop_server(server)


def test_a_rest_call_made_during_a_restart_waits_for_it(tmp_path: Path) -> None:
    """kill -9 the exchange; calls made while it is down and starting again are answered."""
    server = start_server(tmp_path / "data")
    try:
        creds, symbol = _account_and_h100(server, "rest-restart")
        with Client(server.url, creds.api_key, creds.api_secret) as bot:
            first = bot.place_order(symbol, "buy", 1, "3.30")
            stop_server(server, kill=True)
            restarted: list[Server] = []
            later = threading.Timer(
                2.0, lambda: restarted.append(start_server(server.data_dir, port=server.port))
            )
            later.start()
            try:
                second = bot.place_order(symbol, "buy", 1, "3.31")  # refused for 2 s and more
            finally:
                later.join()
                server = restarted[0] if restarted else server
            assert second.order_id > first.order_id
            assert {o.order_id for o in bot.orders(status="open")} == {
                first.order_id, second.order_id
            }  # fmt: skip
    finally:
        stop_server(server)


def test_a_refused_feed_closes_its_connection(server: Server, trader: Trader) -> None:
    """Opening with a wrong secret raises, and leaves no socket behind for the GC to find."""
    bot = trader("feed-refused")
    feed = Feed(server.url, ["orders"], bot.key, "0" * 64)
    with pytest.raises(CfxError):
        feed.open()
    assert feed._ws is not None and feed._ws.protocol.state.name == "CLOSED"

    async def refused() -> AsyncFeed:
        feed = AsyncFeed(server.url, ["orders"], bot.key, "0" * 64)
        with pytest.raises(CfxError):
            await feed.open()
        return feed

    feed_async = asyncio.run(refused())
    assert feed_async._ws is not None and feed_async._ws.transport.is_closing()
    gc.collect()  # an unclosed socket would warn here, and warnings are errors


def test_a_feed_cancelled_while_opening_closes_its_connection(server: Server) -> None:
    """A bot cancelled while its feed authenticates (the demo's end, say) leaks nothing."""

    async def cancelled() -> AsyncFeed:
        feed = AsyncFeed(server.url, ["orders"], "key", "secret")
        answered = asyncio.Event()

        async def no_reply(message: object, timeout: float = 30.0) -> None:
            answered.set()
            await asyncio.Event().wait()  # the exchange has not answered yet

        feed._exchange = no_reply  # type: ignore[method-assign,assignment]
        opening = asyncio.create_task(feed.open())
        await answered.wait()
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        return feed

    feed = asyncio.run(cancelled())
    assert feed._ws is not None and feed._ws.transport.is_closing()
    gc.collect()


def test_a_refused_resync_is_asked_for_again() -> None:
    """A book resync the exchange refuses (rate limited) is sent again a second later; its
    answers are the feed's own, never the user's."""
    from clients.feed import RESYNC_RETRY_S, FeedCore

    core = FeedCore(["book:X"])
    core.subscribe(["book:X"])
    snapshot = {"channel": "book", "type": "snapshot", "symbol": "X", "sequence": 5,
                "bids": [], "asks": [], "checksum": 2186104446}  # fmt: skip
    assert core.receive(snapshot, now=0.0).deliver == snapshot
    gap = {"channel": "book", "type": "update", "symbol": "X", "sequence": 7, "changes": [],
           "checksum": 2186104446}  # fmt: skip
    [resync] = core.receive(gap, now=1.0).resend
    assert resync["op"] == "subscribe" and resync["channels"] == ["book:X"]
    refused = {"op": "error", "id": resync["id"], "error": {"code": "RATE_LIMITED", "message": ""}}
    answer = core.receive(refused, now=1.1)
    assert answer.reply_to is None and answer.resend == []
    assert core.receive({"channel": "heartbeat"}, now=1.1 + RESYNC_RETRY_S / 2).resend == []
    [again] = core.receive({"channel": "heartbeat"}, now=1.2 + RESYNC_RETRY_S).resend
    assert again["channels"] == ["book:X"] and again["id"] != resync["id"]
    assert core.receive({"op": "ack", "id": again["id"]}, now=3.0).reply_to is None
    assert core.receive(snapshot | {"sequence": 9}, now=3.1).deliver is not None
    assert core.books["X"].synced


def test_an_async_feed_whose_queue_is_full_still_closes(server: Server, symbol: str) -> None:
    async def main() -> None:
        feed = AsyncFeed(server.url, [f"book:{symbol}", "ticker:*"], max_queue=1)
        await feed.open()
        await asyncio.sleep(0.5)  # the snapshot and tickers fill the queue of one
        await feed.close()
        assert await feed.next(timeout=1) is None  # the end marker, not QueueFull

    asyncio.run(main())


def test_feed_amends_cancels_all_and_arms_the_switch(
    server: Server, trader: Trader, symbol: str
) -> None:
    bot = trader("feed-amender")
    with Feed(server.url, ["orders"], bot.key, bot.secret) as feed:
        order = feed.place(symbol, "buy", 2, "3.10")
        amended = feed.amend(order.order_id, price="3.12", quantity=4)
        assert (amended.order_id, str(amended.price), amended.quantity) == (
            order.order_id, "3.12", 4
        )  # fmt: skip
        assert bot.order(order.order_id) == amended
        with pytest.raises(Rejected) as error:
            feed.amend(order.order_id)
        assert error.value.code == "INVALID_REQUEST"
        armed = feed.cancel_after(30)
        assert armed["account_id"] == bot.account().account_id and armed["cancel_at"]
        assert feed.cancel_after(0)["cancel_at"] is None
        assert [o.order_id for o in feed.cancel_all(symbol)] == [order.order_id]

    async def main() -> None:
        async with AsyncFeed(server.url, [], bot.key, bot.secret) as feed:
            order = await feed.place(symbol, "sell", 1, "3.90")
            assert (await feed.amend(order.order_id, quantity=3)).quantity == 3
            assert (await feed.cancel_after(10))["cancel_at"]
            cancelled = await feed.cancel_all()
            assert [(o.order_id, o.status) for o in cancelled] == [(order.order_id, "cancelled")]

    asyncio.run(main())
    assert bot.orders(status="open") == []


class _Forgetful:
    """A websocket exchange that drops the connection instead of answering the first amend
    and the first cancel_all: what a feed sees when the exchange restarts at that moment."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.server = ws_serve(self.handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.socket.getsockname()[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, ws: Any) -> None:
        for raw in ws:
            message = orjson.loads(raw)
            op = message["op"]
            self.seen.append(op)
            if op in ("amend", "cancel_all") and self.seen.count(op) == 1:
                return  # the connection closes, unanswered
            reply = {"op": "ack", "id": message["id"]}
            if op == "auth":
                reply["account_id"] = 1
            elif op == "cancel_all":
                reply["orders"] = []
            ws.send(orjson.dumps(reply).decode())


@pytest.mark.parametrize("run_async", [False, True], ids=["sync", "asyncio"])
def test_an_amend_whose_answer_was_lost_is_not_sent_again(run_async: bool) -> None:
    """A dropped connection: a cancel-all is sent again (twice comes out the same), an amend
    is not (it may have run), and the caller learns its outcome is unknown."""
    exchange = _Forgetful()
    try:
        if run_async:

            async def main() -> list[Any]:
                async with AsyncFeed(exchange.url, [], "k", "s") as feed:
                    with pytest.raises(OutcomeUnknown):
                        await feed.amend(7, price="3.00")
                    return await feed.cancel_all()

            cancelled = asyncio.run(main())
        else:
            with Feed(exchange.url, [], "k", "s") as feed:
                with pytest.raises(OutcomeUnknown):
                    feed.amend(7, price="3.00")
                cancelled = feed.cancel_all()
        assert cancelled == []
        assert [op for op in exchange.seen if op != "auth"] == ["amend", "cancel_all", "cancel_all"]
    finally:
        exchange.server.shutdown()


class _SilentPeer:
    """A websocket peer that accepts the handshake and then never answers, not even a close."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(4096)
            key = re.search(rb"sec-websocket-key: *(\S+)", request, re.IGNORECASE)
            assert key is not None
            digest = hashlib.sha1(key[1] + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
            connection.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                + base64.b64encode(digest)
                + b"\r\n\r\n"
            )
            while connection.recv(4096):
                pass


@pytest.mark.parametrize("pause_s", [0.0, 0.05], ids=["stopping-reconnects", "closing"])
def test_a_feed_closed_under_cancellation_leaves_no_socket_open(pause_s: float) -> None:
    """``asyncio.run`` cancels a bot while it closes its feed: the socket is closed anyway.

    The bot's ``async with`` closes the feed when the bot is cancelled; the loop's shutdown
    cancels it again, mid-way through the closing handshake. Were the connection left open,
    the garbage collector would find an unclosed socket long after the loop has gone.
    """
    peer = _SilentPeer()
    feeds: list[AsyncFeed] = []

    async def bot() -> None:
        async with AsyncFeed(peer.url) as feed:
            feeds.append(feed)
            async for _message in feed:
                pass

    async def main() -> None:
        task = asyncio.create_task(bot())
        while not feeds:
            await asyncio.sleep(0.01)
        task.cancel()
        # The bot is closing its feed: stopping its reconnection task, or (later) waiting
        # for the peer's half of a closing handshake that never comes.
        await asyncio.sleep(pause_s)

    asyncio.run(main())  # cancels the bot again and closes the loop
    (feed,) = feeds
    assert feed._ws is not None and feed._ws.transport.is_closing()
    assert feed._task is not None and feed._task.done()
    peer.listener.close()


def test_requests_on_a_closed_feed_fail_at_once(server: Server, symbol: str) -> None:
    """After close, a request raises CLOSED at once (not a timeout 30 or 60 s later, nor
    the websocket library's own exception); one waiting for its answer when the feed is
    closed raises it too, without waiting for the closing handshake."""
    with Feed(server.url, [f"book:{symbol}"]) as feed:
        feed.next(timeout=10)
    for request in (lambda: feed.cancel(1), lambda: feed.next(timeout=1)):
        with pytest.raises(CfxError) as closed:
            request()
        assert closed.value.code == "CLOSED"

    async def asyncio_feed() -> None:
        peer = _SilentPeer()  # answers nothing: the cancel below waits for good
        feed = AsyncFeed(peer.url)
        await feed.open()
        waiting = asyncio.create_task(feed.cancel(1))
        await asyncio.sleep(0.1)
        closing = asyncio.create_task(feed.close())  # waits for a close frame that never comes
        with pytest.raises(CfxError) as closed:
            await asyncio.wait_for(waiting, 1)
        assert closed.value.code == "CLOSED" and not closing.done()
        with pytest.raises(CfxError) as closed:
            await feed.place(symbol, "buy", 1, "3.00")
        assert closed.value.code == "CLOSED"
        closing.cancel()  # the connection is dropped at once (see above)
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        peer.listener.close()

    asyncio.run(asyncio_feed())
