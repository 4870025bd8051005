"""Feeds through an exchange outage, against a real server killed and restarted on the same
data dir and port: ``next(timeout=...)`` keeps its timeout while the exchange is down (a
bot's timers run on it), books hold no stale levels while unsynced, and the same feed
resyncs once the exchange is back."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.server import ADMIN_TOKEN, start_server, stop_server
from clients import AsyncFeed, Client, Credentials, Feed, LocalBook
from clients.feed import FeedCore
from clients.sync import RECONNECT_ATTEMPT_S
from exchange.marketdata.book import checksum

OUTAGE_S = 4.0  #: how long nothing listens on the port after the kill
POLL_S = 0.2  #: the timeout of every next() call through the outage
#: While nothing listens, each reconnection attempt is refused at once: a call takes about
#: its timeout. Generous for a noisy 2-core VM, and far below what the old feed took (it
#: slept through the outage inside one call, here at least OUTAGE_S).
DOWN_BOUND_S = 1.5
#: While the exchange starts up and once it is back, one reconnection attempt may overrun.
UP_BOUND_S = POLL_S + RECONNECT_ATTEMPT_S + 1.0
GIVE_UP_S = 120.0  #: the feed must have resynced this long after the kill


class Outage:
    """A real exchange with a market in one book, killed by :meth:`kill` and started again
    on the same data dir and port ``OUTAGE_S`` later (by a thread, while the test polls)."""

    def __init__(self, tmp_path: Path) -> None:
        self.servers = [start_server(tmp_path / "data")]
        self.restarter: threading.Timer | None = None
        self.killed = 0.0
        with Client(self.url, admin_token=ADMIN_TOKEN) as admin:
            self.creds: Credentials = admin.create_account("outage", deposit="50000.00")
            self.symbol = next(c.symbol for c in admin.contracts() if c.product == "H100")
        with Client(self.url, self.creds.api_key, self.creds.api_secret) as trader:
            trader.place_order(self.symbol, "sell", 2, "3.80")
            trader.place_order(self.symbol, "buy", 1, "3.20")

    @property
    def url(self) -> str:
        return self.servers[0].url

    @property
    def back(self) -> bool:
        """Whether the restarted exchange answers its health check."""
        return len(self.servers) == 2

    def kill(self) -> None:
        server = self.servers[0]
        stop_server(server, kill=True)
        self.killed = time.monotonic()
        self.restarter = threading.Timer(
            OUTAGE_S,
            lambda: self.servers.append(start_server(server.data_dir, port=server.port)),
        )
        self.restarter.start()

    def check(self, started: float, took: float, message: Any, book: LocalBook) -> None:
        """One ``next(timeout=POLL_S)`` during the outage: on time, and no stale levels."""
        assert started - self.killed < GIVE_UP_S, f"no resync {GIVE_UP_S:g} s after the kill"
        if started - self.killed < OUTAGE_S:  # nothing listens on the port
            assert took < DOWN_BOUND_S, f"next(timeout={POLL_S}) took {took:.1f} s, exchange down"
            assert message is None
            if started - self.killed > 1.0:
                assert not book.synced, "the book still claims to follow a dead connection"
        else:  # starting up, or back
            assert took < UP_BOUND_S, f"next(timeout={POLL_S}) took {took:.1f} s, exchange back"
        if not book.synced:
            assert book.bids() == [] and book.asks() == [], "an unsynced book shows old levels"
            assert book.sequence is None

    def assert_resynced(self, book: LocalBook) -> None:
        """The local book is the exchange's, resting orders (recovered from disk) included."""
        assert book.synced
        with Client(self.url) as client:
            rest = client.book(self.symbol, depth=50)
        assert book.sequence == rest.sequence
        assert book.asks() == [[str(p), str(q)] for p, q in rest.asks]
        assert book.bids() == [[str(p), str(q)] for p, q in rest.bids]
        assert book.asks(1) == [["3.80", "2"]] and book.bids(1) == [["3.20", "1"]]

    def close(self) -> None:
        if self.restarter is not None:
            self.restarter.join()
        for server in self.servers:
            stop_server(server)


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[Outage]:
    outage = Outage(tmp_path)
    try:
        yield outage
    finally:
        outage.close()


def test_sync_feed_next_keeps_its_timeout_through_an_outage_and_resyncs(outage: Outage) -> None:
    # Many retries: how long the exchange takes to start again is not what is tested here.
    with Feed(outage.url, [f"book:{outage.symbol}", "orders"], outage.creds.api_key,
              outage.creds.api_secret, retries=1000) as feed:  # fmt: skip
        book = feed.book(outage.symbol)
        while feed.next(timeout=1.0) is not None:  # the snapshot, and whatever else is queued
            pass
        assert book.synced and book.asks(1) == [["3.80", "2"]]

        outage.kill()
        polls = 0
        while not (outage.back and book.synced):
            started = time.monotonic()
            message = feed.next(timeout=POLL_S)
            outage.check(started, time.monotonic() - started, message, book)
            polls += 1
        assert polls > OUTAGE_S / DOWN_BOUND_S  # the bot's timers kept running

        while feed.next(timeout=1.0) is not None:
            pass
        assert feed.book(outage.symbol) is book and feed.reconnects == 1
        outage.assert_resynced(book)
        order = feed.place(outage.symbol, "buy", 1, "3.21")  # order entry works again
        assert order.status == "open"


def test_async_feed_next_keeps_its_timeout_through_an_outage_and_resyncs(
    outage: Outage,
) -> None:
    async def main() -> None:
        async with AsyncFeed(outage.url, [f"book:{outage.symbol}", "orders"],
                             outage.creds.api_key, outage.creds.api_secret,
                             retries=1000) as feed:  # fmt: skip
            book = feed.book(outage.symbol)
            while await feed.next(timeout=1.0) is not None:
                pass
            assert book.synced and book.asks(1) == [["3.80", "2"]]

            outage.kill()
            polls = 0
            while not (outage.back and book.synced):
                started = time.monotonic()
                message = await feed.next(timeout=POLL_S)
                outage.check(started, time.monotonic() - started, message, book)
                polls += 1
            assert polls > OUTAGE_S / DOWN_BOUND_S

            while await feed.next(timeout=1.0) is not None:
                pass
            assert feed.book(outage.symbol) is book and feed.reconnects == 1
            outage.assert_resynced(book)
            order = await feed.place(outage.symbol, "buy", 1, "3.21")
            assert order.status == "open"

    asyncio.run(main())


def test_sync_feed_next_without_a_timeout_blocks_until_the_exchange_is_back(
    outage: Outage,
) -> None:
    with Feed(outage.url, [f"book:{outage.symbol}"], retries=1000) as feed:
        book = feed.book(outage.symbol)
        while feed.next(timeout=1.0) is not None:
            pass
        outage.kill()
        message = feed.next(timeout=None)  # reconnects as often as it takes
        assert message is not None and time.monotonic() - outage.killed > OUTAGE_S
        while not book.synced:
            assert feed.next(timeout=10) is not None
        while feed.next(timeout=1.0) is not None:
            pass
        assert feed.reconnects == 1
        outage.assert_resynced(book)


def test_a_book_that_loses_the_feed_forgets_its_levels() -> None:
    """On a gap, a wrong checksum or a dropped connection, a feed's book is emptied along
    with being marked unsynced: old levels never pass for current ones."""
    core = FeedCore(["book:X"])
    core.subscribe(["book:X"])
    book = core.books["X"]
    bids, asks = [["3.20", "1"]], [["3.80", "2"]]
    snapshot = {"channel": "book", "type": "snapshot", "symbol": "X", "sequence": 5,
                "bids": bids, "asks": asks, "checksum": checksum(bids, asks)}  # fmt: skip
    gap = {"channel": "book", "type": "update", "symbol": "X", "sequence": 7, "changes": [],
           "checksum": checksum(bids, asks)}  # fmt: skip
    wrong = gap | {"sequence": 6, "checksum": 0}
    for lose in (lambda: core.receive(gap), lambda: core.receive(wrong), core.disconnected):
        core.receive(snapshot)
        assert book.synced and book.bids() == bids and book.asks() == asks
        lose()
        assert not book.synced and book.sequence is None
        assert book.bids() == [] and book.asks() == []
    assert core.resyncs == 2
