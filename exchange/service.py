"""Wiring: the exchange's data path, top to bottom.

1. gateway (``exchange.gateway``): REST and websocket requests, authenticated and validated,
   become commands.
2. sequencer (``exchange.sequencer.loop``): numbers each command, appends it to
3. the journal (``exchange.journal``) with one fsync per batch, then applies it to
4. the state (``exchange.sequencer.state``): risk checks, then
5. the engine (``exchange.engine``), then clearing (positions, margin, fees, settlement,
   expiry, delivery).
6. Each outcome fans out to market data (``exchange.marketdata``: books with sequence
   numbers and checksums, trades, tickers, candles), to private websocket streams, and
7. to the ledger (``exchange.ledger``), written behind the journal in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import logging
import math
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from contracts import ContractError, ListingCalendar, format_cents, to_cents, to_ticks
from exchange.collector import FreezingCollector
from exchange.gateway.auth import derive_secret, load_master_key, new_api_key
from exchange.gateway.errors import ApiError
from exchange.gateway.models import PAGE_LIMIT
from exchange.gateway.ratelimit import ReplayCache, TokenBucket
from exchange.journal import JournalError
from exchange.journal.files import fsync_dir
from exchange.journal.format import Cursor, Damage, parse_segment_name, scan_records
from exchange.journal.snapshots import list_snapshots
from exchange.ledger.writer import LedgerProcess
from exchange.marketdata import MarketData
from exchange.marketdata.formatting import iso_ms
from exchange.reasons import Reason
from exchange.sequencer.follower import FOLLOWER_MIN_CPUS, SnapshotFollower
from exchange.sequencer.loop import Clock, Sequencer
from exchange.sequencer.state import (
    NS,
    RISK_VERSION,
    SIGNATURE_MEMORY_S,
    ExchangeState,
    Order,
    Outcome,
    iso,
    to_ns,
)

log = logging.getLogger("cfx")

#: Market data is published at most this often (seconds): one book update per symbol
#: covers every command in between. See docs/marketdata.md.
FEED_INTERVAL_S = 0.01

#: A write-behind batch this many postings long means the ledger's writer, which runs at the
#: lowest priority (``exchange/ledger/writer.py``), is falling behind the journal (at
#: 20,000 orders/s a batch holds about 1,400): said in the log, at most every
#: LEDGER_BEHIND_LOG_S seconds.
LEDGER_BEHIND_POSTINGS = 100_000
LEDGER_BEHIND_LOG_S = 60.0
#: Requests per second per API key, unless CFX_RATE_LIMIT says otherwise.
DEFAULT_RATE_LIMIT = 200.0
#: Requests per second per client address for those no API key's limit counts (public
#: views, the dashboard, websocket handshakes, requests without a known key), unless
#: CFX_PUBLIC_RATE_LIMIT says otherwise (0: no limit, as behind a proxy).
DEFAULT_PUBLIC_RATE_LIMIT = 100.0
#: What ``GET /v1/orders?status=`` means in order statuses.
STATUS_FILTERS = {"open": ("open", "partially_filled")}
#: The wire text of a price in cents, written once per value (a few ladders' worth kept):
#: every acknowledgement, fill and book level carries prices.
_cents_text = functools.lru_cache(maxsize=1 << 17)(format_cents)


#: The most requests a second a rate setting may say (a billion: no limit, in effect).
MAX_RATE_SETTING = 1e9


def rate_setting(name: str, default: float, off: float | None = None) -> float:
    """A rate in requests a second from the environment variable ``name`` (unset or empty:
    ``default``); ``off`` is the value that lifts the limit, where one does. Raise
    :class:`ValueError` saying what is wrong with any other value that is not a positive
    number."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if value == off or 0 < value <= MAX_RATE_SETTING:
        return value
    lifted = f", or {off:g} for no limit" if off is not None else ""
    raise ValueError(
        f"{name}={text!r}: give a positive number of requests a second, at most "
        f"{MAX_RATE_SETTING:,.0f}{lifted}"
    )


def rate_settings() -> tuple[float, float]:
    """``CFX_RATE_LIMIT`` and ``CFX_PUBLIC_RATE_LIMIT`` (0: no limit), as
    :func:`rate_setting` reads them."""
    return (
        rate_setting("CFX_RATE_LIMIT", DEFAULT_RATE_LIMIT),
        rate_setting("CFX_PUBLIC_RATE_LIMIT", DEFAULT_PUBLIC_RATE_LIMIT, off=0),
    )


def fraction_str(value: Fraction, places: int = 4) -> str:
    """Format an exact fraction of cents as USD, rounded half even to ``places`` decimals."""
    usd = Decimal(value.numerator) / Decimal(value.denominator) / 100
    return str(usd.quantize(Decimal(1).scaleb(-places)))


def parse_usd(text: str) -> int:
    """Parse a positive decimal USD string into integer cents, refusing anything inexact."""
    try:
        cents = to_cents(text)
    except ContractError as exc:
        raise ApiError(Reason.INVALID_AMOUNT, exc.message) from exc
    if cents <= 0:
        raise ApiError(Reason.INVALID_AMOUNT, "amount must be positive")
    return cents


class ListingConflict(ValueError):
    """The data dir was created with other listing terms than the ones asked for now."""


class ClockConflict(ValueError):
    """The data dir's exchange runs on the other kind of clock than the one asked for now."""


def _write_durably(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all, durably, before anything depends on it."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    fsync_dir(path.parent)


def fixed_clock(data_dir: Path, clock: str | None) -> None:
    """Hold a data dir to the clock it was first served with (kept in ``clock.json``).

    A simulated exchange started on the real clock would jump to the machine's time at once,
    running every settlement, expiry and delivery in between for good; a real one started on
    a simulated clock would stop. Either is refused with :class:`ClockConflict`.

    ``clock=None`` (opening the exchange without serving it, :func:`run_offline`) leaves a
    new data dir's clock undecided (``{"clock": null}``): the first server picks it. A data
    dir without the file (made before it was kept, or the file was lost) has its clock read
    from its journal (:func:`_journal_clock`).
    """
    path = data_dir / "clock.json"
    segments = sorted((data_dir / "journal").glob("journal-*.log"))
    if path.exists():
        kept = json.loads(path.read_text())["clock"]
    else:
        kept = _journal_clock(segments[0]) if segments else None
        if clock is None and not segments:
            _write_durably(path, json.dumps({"clock": None}) + "\n")
            return
    if clock is None:
        return
    if kept is not None and kept != clock:
        raise ClockConflict(
            f"{data_dir} runs on the {'simulated' if kept == 'sim' else 'real'} clock: "
            f"start it with --clock {kept} (the clock is fixed when a data dir is "
            "first served), or use a new --data-dir"
        )
    if kept is None or not path.exists():
        _write_durably(path, json.dumps({"clock": clock}) + "\n")


def _journal_clock(segment: Path, records: int = 100_000) -> str | None:
    """The clock the journal's commands ran on, judged from the first ``records`` of its
    first ``segment``: real if it has a ``tick`` (a real clock ticks when it starts and
    every second), else simulated if it has an ``advance`` after the first record (an admin
    moved the clock, which only a simulated one allows; the first record may be the start
    of a data dir opened offline, on any clock); None when it has neither."""
    base = parse_segment_name(segment.name)
    if base is None:
        return None
    advanced = False
    with open(segment, "rb") as file:
        scan = scan_records(file, os.fstat(file.fileno()).st_size, base, 0, Cursor(0, base))
        with contextlib.suppress(Damage, ValueError):  # a torn tail: recovery cuts it
            for seq, payload in islice(scan, records):
                op = orjson.loads(payload).get("op")
                if op == "tick":
                    return "real"
                advanced = advanced or (op == "advance" and seq > 1)
    return "sim" if advanced else None


def listing_calendar(data_dir: Path, batch_interval_s: int | None) -> ListingCalendar:
    """The data dir's listing calendar: continuous trading, or batch auctions every N s.

    The choice is part of the exchange's history (replaying the journal must list the same
    contracts the same way), so it is fixed when the data dir is created and kept in
    ``listing.json``; asking for other terms later raises :class:`ListingConflict`.
    """
    path = data_dir / "listing.json"
    if path.exists():
        terms = json.loads(path.read_text())
    elif any((data_dir / "journal").glob("*")):
        terms = {"mechanism": "continuous", "batch_interval_s": None}  # made before the file
    else:
        terms = {
            "mechanism": "batch" if batch_interval_s else "continuous",
            "batch_interval_s": batch_interval_s,
        }
        _write_durably(path, json.dumps(terms) + "\n")  # before the journal's first record
    if batch_interval_s is not None and terms["batch_interval_s"] != batch_interval_s:
        raise ListingConflict(
            f"{data_dir} lists {terms['mechanism']} contracts"
            + (f" (batch every {terms['batch_interval_s']} s)" if terms["batch_interval_s"] else "")
            + "; the listing terms are fixed when a data dir is created: use a new --data-dir"
        )
    if terms["mechanism"] == "batch":
        return ListingCalendar(spec_overrides=terms)
    return ListingCalendar()


class ExchangeService:
    """One running exchange: state, journal, ledger, market data and the gateway's helpers."""

    def __init__(
        self,
        data_dir: Path,
        db_url: str | None = None,
        clock: str = "real",
        start: datetime | None = None,
        admin_token: str | None = None,
        backend: str = "numba",
        snapshot_every: int = 100_000,
        batch_interval_s: int | None = None,
        background_snapshots: bool | None = None,
        snapshot_follower: bool | None = None,
        tune_gc: bool = False,
        ledger_process: bool = False,
        keep_clock: bool = True,
    ) -> None:
        from exchange.journal import Journal
        from exchange.ledger import Ledger

        self.data_dir = Path(data_dir)
        # private: its journal names every API key, and its master.key derives their secrets
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = self.data_dir.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning(
                "the data dir %s is open to other users (mode %03o): its master.key gives "
                "every API key's secret; chmod 700 it",
                self.data_dir,
                mode,
            )
        self._lock = open(self.data_dir / "lock", "w")  # noqa: SIM115 - held for the service's life
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock.close()
            raise DataDirBusy(
                f"another cfx process is using {self.data_dir}; use --url to reach it"
            ) from exc
        self.ledger: Any = None
        try:
            self.master_key = load_master_key(self.data_dir)
            self.admin_token = (
                admin_token or os.environ.get("CFX_ADMIN_TOKEN") or self._stored_admin_token()
            )
            self.clock = Clock(simulated=clock == "sim")
            self.start_ns = to_ns(start) if start else None
            calendar = listing_calendar(self.data_dir, batch_interval_s)  # before the journal
            fixed_clock(self.data_dir, clock if keep_clock else None)
            self.db_url = db_url or f"sqlite:///{self.data_dir / 'ledger.db'}"
            self.ledger = Ledger(self.db_url, auto_open=True)
            # what the ledger holds was acknowledged: recovery must not cut the journal below
            # it, and replays from no later than it (start)
            self._ledger_at_open = ledger_seq = self._ledger_seq()
            self.journal = Journal(
                self.data_dir / "journal",
                acknowledged=ledger_seq,
                acknowledged_because=(
                    f"the ledger holds the postings of commands up to seq {ledger_seq} (or "
                    "belongs to a newer copy of this journal)"
                ),
            )
        except BaseException:  # the data dir is not opened: let go of it for whoever is next
            if self.ledger is not None:
                self.ledger.close()
            self._lock.close()
            raise
        state = ExchangeState(backend=backend, calendar=calendar)
        self.sequencer = Sequencer(state, self.journal, self.clock)
        self.md = MarketData()
        # Requests per second per API key (REST) or account (websocket orders), burst twice
        # that; CFX_RATE_LIMIT overrides the default, e.g. for load tests.
        rate, public_rate = rate_settings()
        self.limiter = TokenBucket(rate=rate, burst=max(1, int(2 * rate)))
        #: Per client address, for the requests no key's limit counts (None: not limited).
        self.public_limiter = (
            TokenBucket(rate=public_rate, burst=max(1, int(2 * public_rate)))
            if public_rate > 0
            else None
        )
        # a key's rate limit keeps it below its share of remembered signatures (burst, the
        # rate over the window, and a websocket auth per second of timestamp besides)
        self.replays = ReplayCache(
            per_key=self.limiter.burst + int(rate * SIGNATURE_MEMORY_S) + 2 * SIGNATURE_MEMORY_S,
            ttl_s=SIGNATURE_MEMORY_S,  # as long as the state keeps them
        )
        self.snapshot_every = snapshot_every
        #: Snapshots while serving come from a forked writer (where processes fork).
        self.background_snapshots = (
            hasattr(os, "fork") if background_snapshots is None else background_snapshots
        )
        #: ... and from a process that follows the journal, so the sequencer never forks
        #: after start (exchange/sequencer/follower.py; a forked writer if it dies). By
        #: default only with CPUs to spare for it: see FOLLOWER_MIN_CPUS.
        if snapshot_follower is None:
            snapshot_follower = _usable_cpus() >= FOLLOWER_MIN_CPUS
        self.snapshot_follower = (
            hasattr(os, "fork") and self.background_snapshots and snapshot_follower
        )
        self.follower: SnapshotFollower | None = None
        #: Freeze long-lived objects out of the cycle collector (one per process: the server).
        self.collector = FreezingCollector() if tune_gc else None
        #: Post the write-behind batches from a child process (off the interpreter lock).
        self.ledger_writer = LedgerProcess(self.db_url) if ledger_process else None
        self.subscribers: set[Any] = set()
        #: Authenticated websocket connections by account, for the private streams.
        self.private: dict[int, set[Any]] = {}
        # Market data waiting to be published: engine events, trade ids, the batch time.
        self._md_events: list[np.ndarray] = []
        self._md_trade_ids: list[int] = []
        self._md_now = 0
        self._md_live = False  # off while recovery replays (the market data is rebuilt after)
        self._md_timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self._md_published = 0.0
        self._prices: dict[tuple[int, str], int] = {}  # (tick, text) -> ticks, parsed once
        self._pending_postings: list[dict[str, Any]] = []
        self._ledger_lock = asyncio.Lock()  # one ledger batch at a time, in seq order
        self._ledger_behind_said = -LEDGER_BEHIND_LOG_S  # monotonic time of the last warning
        self._tasks: list[asyncio.Task[None]] = []
        self.recovery: dict[str, Any] = {}
        self._recovered: dict[str, Any] = {}
        self.started = False
        self.sequencer.listeners.append(self._on_outcome)
        self.sequencer.batch_listeners.append(self._on_batch)

    def _stored_admin_token(self) -> str:
        path = self.data_dir / "admin.token"
        if path.exists():
            return path.read_text().strip()
        token = secrets.token_urlsafe(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token)
        return token

    @property
    def state(self) -> ExchangeState:
        return self.sequencer.state

    # -- lifecycle --------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        if not self.started:  # ``cfx serve`` starts it before the server, to report failures
            await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        self.started = True
        # Replay from no later than the ledger has caught up to: postings still queued when
        # the process died are made again by the replay (the ledger skips keys it has).
        self.recovery = self.sequencer.recover(at_most=self._ledger_at_open)
        self._report_recovery()
        self._rebuild_market_data()
        self._md_live = True
        if self.snapshot_follower:
            journal = self.journal
            follower = SnapshotFollower(
                journal.directory, self.snapshot_every, journal.keep_snapshots, journal.fsync
            )
            try:
                follower.start(self.state)
            except OSError:  # e.g. no memory to fork: forked writers, when they can
                log.exception("the snapshot follower did not start; snapshots fork instead")
            else:
                self.follower = follower
                self.sequencer.batch_listeners.append(self._follower_durable)
        if self.collector is not None:
            self.collector.install()
            self.sequencer.batch_listeners.append(self.collector.after_batch)
        self.sequencer.start()
        if self.start_ns is not None and (self.state.seq != 0 or not self.clock.simulated):
            log.warning(
                "the start time is ignored: %s",
                f"the exchange in {self.data_dir} is already at {iso(self.state.now)}"
                if self.state.seq
                else "the real clock starts now",
            )
        if self.state.seq == 0:
            start = self.start_ns if self.start_ns is not None else time.time_ns()
            if self.clock.simulated:
                await self.sequencer.submit({"op": "advance", "to": start})
            else:
                await self.sequencer.submit({"op": "tick"})
        if self.state.rules.risk_version < RISK_VERSION:  # journaled: replays apply it here
            await self.sequencer.submit({"op": "rules", "risk_version": RISK_VERSION})
        self._tasks.append(asyncio.create_task(self._write_ledger(), name="ledger-writer"))
        if not self.clock.simulated:
            self._tasks.append(asyncio.create_task(self._tick(), name="clock"))

    def _report_recovery(self) -> None:
        """Keep what recovery repaired or passed over for ``GET /v1/admin/journal``, and log
        the cut tail and the snapshots it could not use."""
        self._recovered = recovered = self._recovery_out()
        if recovered["reason"]:
            kept = (
                f"; the cut bytes are kept in {self.journal.directory / recovered['cut_file']}"
                if recovered["cut_file"]
                else ""
            )
            log.warning(
                "journal recovery: %s (it now ends at seq %d)%s",
                recovered["reason"],
                recovered["last_seq"],
                kept,
            )
        for passed_over in recovered["snapshots_passed_over"]:
            log.warning(
                "snapshot at seq %d not used: %s", passed_over["seq"], passed_over["reason"]
            )

    def _recovery_out(self) -> dict[str, Any]:
        """What the last start found and did, as ``GET /v1/admin/journal`` shows it."""
        report = self.journal.recovery
        # the snapshots skipped for what they are or where they stand, and those that did
        # not load; not those skipped routinely (newer than the ledger, which is written
        # behind) or passed over for not loading (listed just once, as not loading)
        passed_over = [
            {"seq": s.seq, "reason": s.reason} for s in report.skipped_snapshots if not s.by_caller
        ] + [
            {"seq": u["seq"], "reason": u["reason"]} for u in self.recovery["unloadable_snapshots"]
        ]
        return {
            "snapshot_seq": self.recovery["snapshot_seq"],
            "replayed": self.recovery["replayed"],
            "seconds": self.recovery["seconds"],
            "last_seq": self.state.seq,
            "truncated_bytes": report.truncated_bytes,
            "reason": report.reason,
            "cut_file": report.cut_file,
            "snapshots_passed_over": sorted(passed_over, key=lambda s: -int(s["seq"])),
            "lossy_snapshot": self.recovery["lossy_snapshot"],
        }

    def journal_out(self) -> dict[str, Any]:
        """``GET /v1/admin/journal``: where the journal stands, and what the last start did."""
        journal = self.journal
        return {
            "seq": self.state.seq,
            "first_seq": journal.first_seq,
            "last_seq": journal.last_seq,
            "segments": len(journal.segments),
            "snapshots": [seq for seq, _ in list_snapshots(journal.directory)],
            "recovery": self._recovered,
        }

    async def stop(self) -> None:
        async with self._ledger_lock:  # let a ledger batch in flight finish first
            for task in self._tasks:
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        try:
            await self.sequencer.stop()
        finally:
            if self.follower is not None:  # it ends the record it is on: off the loop
                await asyncio.to_thread(self.follower.stop)
        try:
            self._flush_ledger()
        except Exception:  # the next start replays the journal into the ledger
            log.exception("ledger not flushed at stop")
        if self.ledger_writer is not None:
            self.ledger_writer.close()
        self.journal.close()
        self._lock.close()

    async def _tick(self) -> None:
        """Move the real clock forward once a second so scheduled events run on time."""
        while True:
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                await self.sequencer.submit({"op": "tick"})

    # -- fan-out ------------------------------------------------------------------------------
    def _rebuild_market_data(self) -> None:
        """Seed every book from the engine, and the tapes, candles and tickers from the fills.

        After a restart the market data is what it was: every trade is in the state as the
        taker's fill, so the history is rebuilt exactly, whatever snapshot recovery used.
        """
        self.md = MarketData()
        for symbol in self.symbols():
            self._add_symbol(symbol)
        trades = self.state.orders.taker_fills()
        for trade_id, symbol, price, quantity, side, ts in trades:
            market = self.md[symbol]
            market.tape.record(trade_id, price, quantity, side, ts)
            market.candles.record(price, quantity, ts)
            market.ticker.record(price, quantity, ts)

    def _add_symbol(self, symbol: str) -> None:
        contract = self.state.contracts[symbol]
        bids, asks = (
            self.state.engine.depth(contract.book, 1_000_000) if contract.book_open else ([], [])
        )
        self.md.add_symbol(symbol, Decimal(contract.tick_cents) / 100, bids, asks)

    def _on_outcome(self, seq: int, command: dict[str, Any], outcome: Outcome) -> None:
        if outcome.postings:
            self._pending_postings.extend(outcome.postings)
        if self._md_live:
            if len(self.state.contracts) != len(self.md):
                for symbol in self.state.contracts:
                    if symbol not in self.md:
                        self._add_symbol(symbol)
            for _, events in outcome.events:
                if len(events):
                    self._md_events.append(events)
            if outcome.trades:
                self._md_trade_ids.extend(t["trade_id"] for t in outcome.trades)
            self._md_now = self.state.now
            if self.private:
                self._deliver_private(outcome)
        if seq and seq % self.snapshot_every == 0:
            self._snapshot(seq)

    def _snapshot(self, seq: int) -> None:
        """Snapshot the state at ``seq``: from a forked writer while serving, else in-line."""
        if self.follower is not None and self.follower.alive:
            return  # the follower writes it
        try:
            if self._md_live and self.background_snapshots:
                if not self.sequencer.snapshot_in_background():
                    log.warning(
                        "snapshot at seq %d skipped: the last one is still being written", seq
                    )
                return
            self.sequencer.snapshot()
        except (JournalError, OSError):  # e.g. a full disk: the journal alone still recovers
            log.exception("snapshot at seq %d not written", seq)

    def _follower_durable(self) -> None:
        """After each batch: every record to the state's seq is durable (it was applied)."""
        assert self.follower is not None
        self.follower.durable(self.state.seq)

    def _deliver_private(self, outcome: Outcome) -> None:
        """Hand one command's private updates to the connections of the accounts involved."""
        private = self.private
        order_ids: list[int] | None = None
        for account in outcome.touched_accounts:
            for connection in private.get(account, ()):
                channels = connection.channels
                if "orders" in channels:
                    if order_ids is None:
                        order_ids = _order_ids(outcome)
                    connection.on_orders(order_ids)
                if "positions" in channels:
                    connection.on_positions()
        for trade in outcome.trades:
            for role in ("taker", "maker"):
                for connection in private.get(trade[f"{role}_account"], ()):
                    connection.on_fill(trade, role)

    def register_private(self, connection: Any) -> None:
        self.private.setdefault(connection.account, set()).add(connection)

    def unregister_private(self, connection: Any) -> None:
        connections = self.private.get(connection.account)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self.private[connection.account]

    def _on_batch(self) -> None:
        """After each sequencer batch: publish its market data, at most every FEED_INTERVAL_S.

        Market data is computed once per publication over every command since the last one:
        each book gets at most one update (its sequence +1) however many commands changed
        it. Under light load a batch is published as soon as it is applied; under heavy load
        publications are spaced by ``FEED_INTERVAL_S``, so the feed's message rate per
        subscriber stays bounded while the order rate grows.
        """
        if not self._md_events or self._md_timer is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._md_published + FEED_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self._md_timer = loop.call_soon(self.flush_market_data)
        else:
            self._md_timer = loop.call_later(wait, self.flush_market_data)

    def flush_market_data(self) -> None:
        """Publish what is pending now: before any read of the market data, and on a timer."""
        if self._md_timer is not None:
            self._md_timer.cancel()
            self._md_timer = None
        if not self._md_events:
            return
        batches, trade_ids = self._md_events, self._md_trade_ids
        self._md_events, self._md_trade_ids = [], []
        self._md_published = time.monotonic()
        if len(batches) == 1:
            events = batches[0]
        else:  # joined as bytes: numpy copies structured rows field by field (50x slower)
            events = np.frombuffer(b"".join([b.tobytes() for b in batches]), batches[0].dtype)
        try:
            messages = self.md.on_events(
                events, self.state.by_book.__getitem__, trade_ids, self._md_now
            )
        except Exception:  # a projection bug must not stop the exchange
            log.exception("market data not published at seq %d", self.state.seq)
            return
        if messages and self.subscribers:
            from exchange.gateway.ws import broadcast

            broadcast(list(self.subscribers), messages)  # type: ignore[arg-type]

    async def _write_ledger(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            try:
                await self._post_pending()
            except Exception:  # the database is away: the batch is kept; try again
                log.exception("ledger write failed; retrying")
                await asyncio.sleep(1.0)

    async def _post_pending(self) -> None:
        """Post the queued postings as one batch; on failure keep them, in order, and raise."""
        async with self._ledger_lock:
            if not self._pending_postings:
                return
            batch, self._pending_postings = self._pending_postings, []
            if len(batch) >= LEDGER_BEHIND_POSTINGS:
                now = time.monotonic()
                if now - self._ledger_behind_said >= LEDGER_BEHIND_LOG_S:
                    self._ledger_behind_said = now
                    log.warning(
                        "the ledger is %d postings behind the journal (at seq %d): its "
                        "writer does not keep up",
                        len(batch),
                        self.state.seq,
                    )
            post = self.ledger_writer.post_many if self.ledger_writer else self.ledger.post_many
            try:
                await asyncio.get_running_loop().run_in_executor(None, post, batch)
            except BaseException:
                self._pending_postings[:0] = batch
                raise

    def _ledger_seq(self) -> int:
        """The seq whose postings the ledger holds last (all before it are there too)."""
        key = self.ledger.last_key()
        seq, _, _ = (key or "0").partition(":")
        return int(seq) if seq.isdigit() else 0

    def _flush_ledger(self) -> None:
        if self._pending_postings:
            batch, self._pending_postings = self._pending_postings, []
            self.ledger.post_many(batch)

    async def ledger_check(self) -> dict[str, Any]:
        try:
            await self._post_pending()
            result: dict[str, Any] = await asyncio.get_running_loop().run_in_executor(
                None, self.ledger.check
            )
        except Exception as exc:
            raise ApiError(
                Reason.UNAVAILABLE, f"the ledger database cannot be reached now: {exc}"
            ) from exc
        return result

    # -- accounts -----------------------------------------------------------------------------
    async def create_account(self, name: str, role: str, deposit: str | None) -> dict[str, Any]:
        api_key = new_api_key()
        command: dict[str, Any] = {
            "op": "create_account",
            "name": name,
            "role": role,
            "api_key": api_key,
        }
        if deposit is not None:
            command["deposit"] = parse_usd(deposit)
        outcome = await self.sequencer.submit(command)
        return {
            "account_id": outcome.reply["account_id"],
            "api_key": api_key,
            "api_secret": derive_secret(self.master_key, api_key),
        }

    def parse_amount(self, text: str) -> int:
        return parse_usd(text)

    # -- contracts and prices ------------------------------------------------------------------
    def symbols(self) -> list[str]:
        contracts = self.state.contracts.values()
        return [
            c.symbol
            for c in sorted(contracts, key=lambda c: (c.product, c.delivery_start, c.delivery_end))
        ]

    def known_symbol(self, symbol: str) -> str:
        if symbol not in self.state.contracts:
            raise ApiError(
                Reason.UNKNOWN_SYMBOL,
                f"no contract {symbol!r} is listed; GET /v1/contracts lists them",
            )
        return symbol

    def price_str(self, symbol: str, ticks: int | None) -> str | None:
        if ticks is None:
            return None
        return _cents_text(ticks * self.state.contracts[symbol].tick_cents)

    def parse_price(self, symbol: str, text: str) -> int:
        tick_cents = self.state.contracts[symbol].tick_cents
        key = (tick_cents, text)
        ticks = self._prices.get(key)
        if ticks is not None:
            return ticks
        try:
            ticks = to_ticks(text, Decimal(tick_cents) / 100)
        except ContractError as exc:
            raise ApiError(Reason[exc.code or "INVALID_PRICE"], exc.message) from exc
        if len(self._prices) >= 100_000:  # bots send few distinct prices; keep it bounded
            self._prices.clear()
        self._prices[key] = ticks
        return ticks

    def contract_view(self, symbol: str) -> dict[str, Any]:
        c = self.state.contracts[symbol]
        status = "halted" if c.halted and c.status == "trading" else c.status
        return {
            "symbol": c.symbol,
            "product": c.product,
            "delivery_start": iso(c.delivery_start),
            "delivery_end": iso(c.delivery_end),
            "last_trade_time": iso(c.last_trade_time),
            "tick_size": format_cents(c.tick_cents),
            "lot_size": 1,
            "initial_margin_rate": str(Decimal(c.margin_bps) / 10_000),
            "price_band": str(Decimal(c.band_bps) / 10_000),
            "maker_fee_rate": str(Decimal(c.maker_fee_bps) / 10_000),
            "taker_fee_rate": str(Decimal(c.taker_fee_bps) / 10_000),
            "mechanism": "batch" if c.mechanism else "continuous",
            "batch_interval_s": c.batch_interval_ns // NS if c.mechanism else None,
            "status": status,
            "reference_price": self.price_str(symbol, c.reference),
            "last_price": self.price_str(symbol, c.last_price),
            "final_settlement_price": self.price_str(symbol, c.final_price),
        }

    def clock_iso(self) -> str:
        now = self.state.now if self.clock.simulated else max(time.time_ns(), self.state.now)
        return iso(now)

    # -- market data --------------------------------------------------------------------------
    def book_view(self, symbol: str, depth: int) -> dict[str, Any]:
        self.flush_market_data()
        return dict(self.md.rest_book(symbol, depth))

    def trades_view(self, symbol: str, limit: int) -> list[dict[str, Any]]:
        self.flush_market_data()
        return [dict(row) for row in self.md.trades(symbol, limit)]

    def candles_view(self, symbol: str, interval: str, limit: int) -> list[dict[str, Any]]:
        self.flush_market_data()
        return [dict(row) for row in self.md.candles(symbol, interval, limit)]

    def settlements_view(self, symbol: str) -> list[dict[str, Any]]:
        c = self.state.contracts[symbol]
        out = [
            {"time": iso(t), "price": self.price_str(symbol, p), "final": False}
            for t, p in c.settlements
        ]
        if c.final_price is not None and out:
            out[-1]["final"] = True
        return out

    def index_view(self, product: str) -> dict[str, Any]:
        if product not in ("H100", "A100"):
            raise ApiError(
                Reason.UNKNOWN_PRODUCT, f"no product {product!r}; the products are H100 and A100"
            )
        history = [
            {
                "time": iso(t),
                "price": format_cents(p * self.state.contracts[s].tick_cents),
                "contract": s,
            }
            for t, p, s in self.state.index.get(product, [])
        ]
        return {
            "product": product,
            "price": history[-1]["price"] if history else None,
            "history": history,
        }

    # -- orders and accounts --------------------------------------------------------------------
    def place_command(self, account: int, body: dict[str, Any]) -> dict[str, Any]:
        symbol = self.known_symbol(body["symbol"])
        command = {"op": "place", "account_id": account} | body
        if body["type"] == "limit":
            if body.get("price") is None:
                raise ApiError(Reason.INVALID_REQUEST, "a limit order needs a price")
            command["price"] = self.parse_price(symbol, body["price"])
        elif body.get("price") is not None:
            raise ApiError(Reason.INVALID_REQUEST, "a market order takes no price")
        return command

    def own_order(self, account: int, order_id: int) -> Order:
        order = self.state.orders.get(order_id)
        if order is None or order.account != account:
            raise ApiError(Reason.ORDER_NOT_FOUND, f"order {order_id} not found")
        return order

    def check_own_order(self, account: int, order_id: int) -> None:
        """Raise ``ORDER_NOT_FOUND`` as :meth:`own_order` does, without building the order
        (a closed one is rebuilt from its columns, fills and all)."""
        if self.state.orders.account_of(order_id) != account:
            raise ApiError(Reason.ORDER_NOT_FOUND, f"order {order_id} not found")

    def order_out(self, view: dict[str, Any]) -> dict[str, Any]:
        symbol = view["symbol"]
        out = view.copy()
        del out["tick_cents"]
        out.pop("idempotent_replay", None)
        out["price"] = self.price_str(symbol, view["price"])
        out["created_at"] = iso_ms(view["created_at"])  # remembers a batch's shared time
        out["fills"] = [
            {"trade_id": f["trade_id"], "price": self.price_str(symbol, f["price"]), "quantity": f["quantity"],
             "liquidity": f["liquidity"], "time": iso_ms(f["time"])}
            for f in view["fills"]
        ]  # fmt: skip
        return out

    def orders_view(
        self,
        account: int,
        symbol: str | None,
        status: str | None,
        limit: int = PAGE_LIMIT,
        before: int | None = None,
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` matching orders (ids below ``before``), in order id order."""
        statuses = None if status is None else STATUS_FILTERS.get(status, (status,))
        found = self.state.orders.select(account, symbol=symbol, statuses=statuses, before=before)
        page = list(islice(found, limit))
        page.reverse()
        return [self.order_out(self.state.order_view(o)) for o in page]

    def fills_view(
        self, account: int, symbol: str | None, limit: int = PAGE_LIMIT, before: int | None = None
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` fills (trade ids below ``before``), newest first."""
        return [
            {"trade_id": trade_id, "order_id": order_id, "symbol": name,
             "side": "buy" if side == 0 else "sell", "price": self.price_str(name, price),
             "quantity": quantity, "liquidity": liquidity, "time": iso(ts)}
            for trade_id, order_id, name, side, price, quantity, liquidity, ts
            in self.state.orders.fills_of(account, symbol=symbol, before=before, limit=limit)
        ]  # fmt: skip

    def positions_out(self, account: int) -> list[dict[str, Any]]:
        out = []
        for p in self.state.positions_view(account):
            tick = p["tick_cents"]
            out.append(
                {"symbol": p["symbol"], "quantity": p["quantity"],
                 "average_price": fraction_str(p["average_price"] * tick) if p["average_price"] is not None else None,
                 "unrealized_pnl": fraction_str(Fraction(p["unrealized_pnl"])),
                 "realized_pnl": fraction_str(Fraction(p["realized_pnl"]))}
            )  # fmt: skip
        return out

    def account_out(self, account: int) -> dict[str, Any]:
        view = self.state.account_view(account)
        return {
            "account_id": view["account_id"],
            "name": view["name"],
            "role": view["role"],
            "cash": format_cents(view["cash"]),
            "available": format_cents(view["available"]),
            "margin_locked": format_cents(view["margin_locked"]),
            "delivery_escrow": format_cents(view["delivery_escrow"]),
            "positions": self.positions_out(account),
        }

    def delivery_out(self, view: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in view.items() if k != "tick_cents"}
        for field in ("attestations", "disputes"):
            out[field] = [entry | {"time": iso(entry["time"])} for entry in view[field]]
        out["price"] = format_cents(view["price"] * view["tick_cents"])
        out["amount"] = format_cents(view["price"] * view["tick_cents"] * view["gpu_hours"])
        return out

    def deliveries_view(self, account: int) -> list[dict[str, Any]]:
        return [
            self.delivery_out(self.state.delivery_view(d))
            for d in sorted(self.state.deliveries.values(), key=lambda d: d.delivery_id)
            if account in (d.provider, d.consumer)
        ]


def _order_ids(outcome: Outcome) -> list[int]:
    """The orders a command's events touched, in order of first appearance."""
    seen: dict[int, None] = {}
    for _, events in outcome.events:
        for order_id, maker_order_id in zip(
            events["order_id"].tolist(), events["maker_order_id"].tolist(), strict=True
        ):
            if order_id:
                seen[order_id] = None
            if maker_order_id:
                seen[maker_order_id] = None
    return list(seen)


class DataDirBusy(RuntimeError):
    """Another process holds the data dir."""


def run_offline(data_dir: Path, action: Callable[[ExchangeService], Awaitable[Any]]) -> Any:
    """Open the exchange on ``data_dir`` without serving it, run ``action``, close it."""

    async def main() -> Any:
        # time stands still while it runs, whatever clock the data dir keeps for serving
        svc = ExchangeService(data_dir, clock="sim", keep_clock=False)
        await svc.start()
        try:
            return await action(svc)
        finally:
            await svc.stop()

    return asyncio.run(main())


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity, where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
