"""Storage faults: a torn journal tail, damaged or unloadable snapshots, a ledger that lags
the snapshots, and a full disk. Each ends in the identical state, with nothing acknowledged
lost and nothing half-written kept."""

from __future__ import annotations

import asyncio
import errno
import os
import random
import shutil
import struct
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import exchange.journal.journal as journal_module
import exchange.journal.snapshots as snapshot_module
from exchange.gateway.app import create_app
from exchange.journal.snapshots import encode_snapshot, list_snapshots
from exchange.sequencer.state import Refused
from exchange.service import ExchangeService
from tests.reliability.conftest import (
    Bot,
    Signed,
    admin_headers,
    crash,
    day_symbols,
    in_process,
    run_bots,
    start_server,
    stop_server,
    verify_acknowledged,
)


# -- a torn last record --------------------------------------------------------------------------
def test_a_torn_last_record_after_kill_9_is_cut_and_nothing_acknowledged_is_lost(
    tmp_path: Path,
) -> None:
    data = tmp_path / "cfx"
    server = start_server(data)
    symbols = day_symbols(server)[1:3]
    rng = random.Random(7)
    bots = [Bot(server.account(f"b{i}"), f"b{i}", symbols, random.Random(i)) for i in range(3)]
    stop = threading.Event()
    threads = run_bots(bots, stop)
    time.sleep(1.0)
    stop_server(server, kill=True)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    # the batch being written when the process died: a header promising more than is there
    [segment] = sorted((data / "journal").glob("journal-*.log"))
    with open(segment, "ab") as f:
        f.write(struct.pack("<IIQ", 300, 0xDEADBEEF, 10**6) + rng.randbytes(40))
    server = start_server(data, port=server.port)
    try:
        verify_acknowledged(server, bots, symbols)
    finally:
        stop_server(server)
    assert list((data / "journal").glob("journal-*.log.cut-*")), "the cut tail is kept"


# -- snapshots ---------------------------------------------------------------------------------
async def _trade(svc: ExchangeService, accounts: list[int], symbol: str, n: int, seed: int) -> None:
    """Deterministic order flow through the sequencer: places, some crossing, some cancels."""
    rng = random.Random(seed)
    for i in range(n):
        account = accounts[i % len(accounts)]
        side = rng.choice(["buy", "sell"])
        body = {"symbol": symbol, "side": side, "type": "limit",
                "price": f"3.{rng.randint(0, 20):02d}", "quantity": rng.randint(1, 5),
                "time_in_force": "GTC", "post_only": False, "client_order_id": f"o{seed}-{i}",
                "self_trade_prevention": "cancel_newest"}  # fmt: skip
        try:
            outcome = await svc.sequencer.submit(svc.place_command(account, body))
        except Refused:
            continue
        if rng.random() < 0.2 and outcome.reply["remaining_quantity"]:
            cancel = {"op": "cancel", "account_id": account, "order_id": outcome.reply["order_id"]}
            await svc.sequencer.submit(cancel)


async def _accounts(svc: ExchangeService, n: int) -> list[int]:
    made = [await svc.create_account(f"t{i}", "trader", "50000.00") for i in range(n)]
    return [int(m["account_id"]) for m in made]


def _h100(svc: ExchangeService) -> str:
    return [s for s in svc.symbols() if s.startswith("H100-") and len(s) == 15][1]


def _picture(svc: ExchangeService, symbol: str) -> dict[str, Any]:
    return {
        "hash": svc.state.state_hash(),
        "seq": svc.state.seq,
        "book": svc.book_view(symbol, 1000) | {"sequence": None},
        "accounts": [svc.account_out(a) for a in sorted(svc.state.accounts)],
    }


def _build(data: Path) -> tuple[dict[str, Any], str]:
    async def run() -> tuple[dict[str, Any], str]:
        # in-line snapshots, one at every 25th command: a forked writer still busy with the
        # last one skips the next, and these tests need the same three snapshots every run
        async with in_process(data, snapshot_every=25, background_snapshots=False) as svc:
            symbol = _h100(svc)
            accounts = await _accounts(svc, 3)
            await _trade(svc, accounts, symbol, 120, seed=1)
            return _picture(svc, symbol), symbol

    return asyncio.run(run())


def _reopen(data: Path, symbol: str) -> tuple[dict[str, Any], dict[str, Any], bool]:
    async def run() -> tuple[dict[str, Any], dict[str, Any], bool]:
        async with in_process(data, snapshot_every=25, background_snapshots=False) as svc:
            check = await svc.ledger_check()
            return _picture(svc, symbol), svc.recovery, bool(check["balanced"])

    return asyncio.run(run())


def _damage_newest(journal: Path, how: str) -> int:
    seq, path = list_snapshots(journal)[-1]
    raw = bytearray(path.read_bytes())
    if how == "flipped":  # the crc catches it
        raw[len(raw) // 2] ^= 0x40
        path.write_bytes(bytes(raw))
    elif how == "truncated":
        path.write_bytes(bytes(raw[: len(raw) // 3]))
    elif how == "unloadable":  # a well-formed file whose data this version cannot load
        path.write_bytes(encode_snapshot(seq, b"\x80\x05not a pickle of the state"))
    return seq


@pytest.mark.parametrize("how", ["flipped", "truncated", "unloadable", "all gone"])
def test_a_bad_newest_snapshot_falls_back_and_replays_to_the_identical_state(
    tmp_path: Path, how: str
) -> None:
    data = tmp_path / "cfx"
    before, symbol = _build(data)
    journal = data / "journal"
    assert len(list_snapshots(journal)) == 3  # older ones are kept to fall back to
    if how == "all gone":
        for _, path in list_snapshots(journal):
            path.unlink()
        bad = None
    else:
        bad = _damage_newest(journal, how)
    after, recovery, balanced = _reopen(data, symbol)
    assert after == before
    assert balanced
    if bad is None:
        assert recovery["snapshot_seq"] == 0
    else:
        assert 0 < recovery["snapshot_seq"] < bad
        passed = [s.seq for s in recovery["recovery"].skipped_snapshots]
        passed += [u["seq"] for u in recovery["unloadable_snapshots"]]
        assert bad in passed


def test_postings_behind_a_snapshot_are_made_again_after_a_crash(tmp_path: Path) -> None:
    """The ledger lagged (its database away) when a snapshot was taken, then the process
    died: the restart replays from a point the ledger had reached, so nothing is lost."""
    data = tmp_path / "cfx"

    async def first() -> dict[int, dict[str, Any]]:
        svc = ExchangeService(data, clock="sim", start=None, admin_token="t", snapshot_every=10,
                              background_snapshots=False)  # fmt: skip
        await svc.start()

        def away(batch: Any) -> Any:
            raise ConnectionError("the database is away")

        svc.ledger.post_many = away  # type: ignore[method-assign]
        symbol = _h100(svc)
        accounts = await _accounts(svc, 3)
        await _trade(svc, accounts, symbol, 40, seed=2)
        assert list_snapshots(data / "journal"), "snapshots were taken meanwhile"
        views = {a: svc.state.account_view(a) for a in accounts}
        await crash(svc)
        return views

    views = asyncio.run(first())

    async def second() -> dict[int, dict[str, int]]:
        async with in_process(data) as svc:
            assert (await svc.ledger_check())["balanced"]
            return {a: svc.ledger.balances(f"acct:{a}") for a in views}

    ledger = asyncio.run(second())
    for account, view in views.items():
        want = {"available": view["available"], "margin": view["margin_locked"],
                "escrow": view["delivery_escrow"]}  # fmt: skip
        got = {k: ledger[account].get(k, 0) for k in want}
        assert got == want, (account, got, want)


# -- a full disk ------------------------------------------------------------------------------
class Disk:
    """Stands in for the journal's disk: when full, a write gets part way, then ENOSPC."""

    def __init__(self) -> None:
        self.full = False
        self.refused = 0

    def write_all(self, fd: int, data: bytes) -> None:
        if self.full:
            self.refused += 1
            os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        from exchange.journal.files import write_all

        write_all(fd, data)

    def pwrite_all(self, fd: int, data: bytes, offset: int) -> None:
        if self.full:
            self.refused += 1
            os.pwrite(fd, data[: len(data) // 2], offset)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        from exchange.journal.files import pwrite_all

        pwrite_all(fd, data, offset)


def test_a_full_disk_refuses_with_503_changes_nothing_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "cfx"
    disk = Disk()
    monkeypatch.setattr(journal_module, "write_all", disk.write_all)
    monkeypatch.setattr(journal_module, "pwrite_all", disk.pwrite_all)
    monkeypatch.setattr(snapshot_module, "write_all", disk.write_all)

    async def run() -> str:
        async with in_process(data, snapshot_every=7) as svc:
            transport = httpx.ASGITransport(app=create_app(svc))
            async with httpx.AsyncClient(transport=transport, base_url="http://cfx") as http:
                made = await http.post("/v1/admin/accounts", headers=admin_headers(),
                                       json={"name": "a", "deposit": "1000.00"})  # fmt: skip
                trader = Signed(http, made.json())
                symbol = _h100(svc)
                order = {"symbol": symbol, "side": "buy", "type": "limit", "price": "3.00",
                         "quantity": 2}  # fmt: skip
                assert (await trader.request("POST", "/v1/orders", order)).status_code == 201
                segment = max((data / "journal").glob("journal-*.log"))
                # the records, without the zeros the journal keeps written after them
                records, seq, picture = (
                    segment.read_bytes().rstrip(b"\0"),
                    svc.journal.last_seq,
                    _picture(svc, symbol),
                )
                disk.full = True
                for attempt in range(5):
                    response = await trader.request(
                        "POST", "/v1/orders", order | {"client_order_id": f"full-{attempt}"}
                    )
                    assert response.status_code == 503, response.text
                    assert response.json()["error"]["code"] == "JOURNAL_UNAVAILABLE"
                deposit = await http.post(f"/v1/admin/accounts/{trader.account_id}/deposits",
                                          headers=admin_headers(), json={"amount": "5.00"})  # fmt: skip
                assert deposit.status_code == 503
                assert (await trader.request("GET", "/v1/orders")).status_code == 200  # reads go on
                assert segment.read_bytes().rstrip(b"\0") == records, "no half-written record"
                assert (svc.journal.last_seq, _picture(svc, symbol)) == (seq, picture)
                disk.full = False  # room again: the same exchange takes orders
                for attempt in range(10):  # passes a snapshot point, and writes it
                    response = await trader.request(
                        "POST", "/v1/orders", order | {"client_order_id": f"full-{attempt}"}
                    )
                    assert response.status_code == 201, response.text
                    assert response.json()["client_order_id"] == f"full-{attempt}"
                assert disk.refused >= 6
                return str(svc.state.state_hash())

    expected = asyncio.run(run())

    async def reopen() -> None:
        async with in_process(data) as svc:
            assert svc.journal.recovery.truncated_bytes == 0
            assert svc.state.state_hash() == expected
            assert (await svc.ledger_check())["balanced"]

    asyncio.run(reopen())


@pytest.mark.parametrize(
    ("background", "follower"),
    [(False, False), (True, False), (True, True)],
    ids=["in-line", "forked writer", "follower"],
)
def test_a_snapshot_on_a_full_disk_does_not_stop_the_exchange(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, background: bool, follower: bool
) -> None:
    disk = Disk()
    disk.full = True  # snapshots cannot be written; the journal can
    monkeypatch.setattr(snapshot_module, "write_all", disk.write_all)

    async def run() -> str:
        async with in_process(
            tmp_path / "cfx",
            snapshot_every=5,
            background_snapshots=background,
            snapshot_follower=follower,
        ) as svc:
            accounts = await _accounts(svc, 2)
            await asyncio.wait_for(_trade(svc, accounts, _h100(svc), 30, seed=3), 30)
            svc.sequencer.wait_for_snapshot(timeout=30)
            if svc.follower is not None:  # it met the full disk in its copy, and went on
                deadline = time.monotonic() + 30
                while svc.follower.applied < svc.state.seq and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                assert svc.follower.applied == svc.state.seq and svc.follower.alive
            # a forked writer meets the full disk in its own copy of ``disk``
            assert background or disk.refused >= 3
            assert not list_snapshots(tmp_path / "cfx" / "journal")
            return str(svc.state.state_hash())

    expected = asyncio.run(run())

    async def reopen() -> None:
        async with in_process(tmp_path / "cfx") as svc:
            assert svc.state.state_hash() == expected

    asyncio.run(reopen())


def test_a_copy_of_the_data_dir_recovers_the_same(tmp_path: Path) -> None:
    """A data dir copied while nothing runs (a backup) opens to the identical state."""
    data = tmp_path / "cfx"
    before, symbol = _build(data)
    shutil.copytree(data, tmp_path / "copy")
    (tmp_path / "copy" / "lock").unlink()
    after, _, balanced = _reopen(tmp_path / "copy", symbol)
    assert after == before and balanced


def test_a_forked_snapshot_holds_the_state_at_its_seq(tmp_path: Path) -> None:
    """The writer forks mid-stream; the state it wrote is the state at its seq exactly."""
    from exchange.sequencer.loop import restore_state

    data = tmp_path / "cfx"

    async def run() -> int:
        async with in_process(
            data, snapshot_every=40, background_snapshots=True, snapshot_follower=False
        ) as svc:
            symbol = _h100(svc)
            accounts = await _accounts(svc, 3)
            hashes: dict[int, str] = {}
            svc.sequencer.listeners.append(
                lambda seq, _c, _o: hashes.setdefault(seq, str(svc.state.state_hash()))
            )
            await _trade(svc, accounts, symbol, 60, seed=4)
            svc.sequencer.wait_for_snapshot(timeout=30)
            latest = svc.journal.latest_snapshot()
            assert latest is not None
            seq, written = latest
            assert seq % 40 == 0 and seq < svc.state.seq  # trading went on past the fork
            assert str(restore_state(written).state_hash()) == hashes[seq]
            return seq

    seq = asyncio.run(run())

    async def reopen() -> None:
        async with in_process(
            data, snapshot_every=40, background_snapshots=True, snapshot_follower=False
        ) as svc:
            assert svc.recovery["snapshot_seq"] == seq

    asyncio.run(reopen())


def test_a_write_whose_sync_and_rollback_both_fail_is_not_called_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fdatasync fails, then the ftruncate that would cut the batch back fails too: the
    records may be whole in the segment, so the answer says the command may run after a
    restart (503 JOURNAL_BROKEN), nothing more is taken, and after the restart it has run."""
    data = tmp_path / "cfx"
    failing = {"on": False}

    def faulty(name: str) -> Any:
        real = getattr(os, name)

        def call(*args: Any) -> Any:
            if failing["on"]:
                raise OSError(errno.EIO, f"injected EIO in {name}")
            return real(*args)

        return call

    for name in ("fsync", "fdatasync", "ftruncate"):
        monkeypatch.setattr(journal_module.os, name, faulty(name))

    async def run() -> None:
        async with in_process(data, background_snapshots=False) as svc:
            transport = httpx.ASGITransport(app=create_app(svc))
            async with httpx.AsyncClient(transport=transport, base_url="http://cfx") as http:
                made = await http.post("/v1/admin/accounts", headers=admin_headers(),
                                       json={"name": "a", "deposit": "1000.00"})  # fmt: skip
                trader = Signed(http, made.json())
                order = {"symbol": _h100(svc), "side": "buy", "type": "limit", "price": "3.00",
                         "quantity": 2, "client_order_id": "fate-unknown"}  # fmt: skip
                failing["on"] = True
                response = await trader.request("POST", "/v1/orders", order)
                failing["on"] = False
                assert response.status_code == 503
                assert response.json()["error"]["code"] == "JOURNAL_BROKEN"
                assert "may be carried out" in response.json()["error"]["message"]
                again = await trader.request("POST", "/v1/orders", order | {"client_order_id": "x"})
                assert again.status_code == 503  # nothing more until a restart
                await crash(svc)
                svc._tasks = []

    asyncio.run(run())

    async def reopen() -> None:
        async with in_process(data, background_snapshots=False) as svc:
            ids = [o.client_order_id for o in svc.state.orders.values()]
            assert ids == ["fate-unknown"]  # written whole before the sync failed: it ran

    asyncio.run(reopen())


def test_a_ledger_ahead_of_its_journal_stops_the_start_with_the_reason(tmp_path: Path) -> None:
    """An older copy of the journal beside a ledger that went on: new commands would reuse
    numbers the ledger holds with other postings, so the exchange refuses to start."""
    from exchange.journal import JournalCorrupt

    data = tmp_path / "cfx"

    async def trade() -> None:
        async with in_process(data) as svc:
            accounts = await _accounts(svc, 3)
            await _trade(svc, accounts, _h100(svc), 40, seed=3)
            await svc.ledger_check()  # every posting is in the ledger

    asyncio.run(trade())
    shutil.rmtree(data / "journal")  # as if restored from a copy older than the ledger
    with pytest.raises(JournalCorrupt, match="journal ends at seq 0") as refused:
        asyncio.run(trade())
    assert "the ledger holds the postings of commands up to seq" in str(refused.value)
    assert "nothing was cut or changed" in str(refused.value)
    shutil.rmtree(data / "ledger.db", ignore_errors=True)
    for leftover in data.glob("ledger.db*"):
        leftover.unlink()
    asyncio.run(trade())  # an empty ledger with it: fills from the journal, starts
