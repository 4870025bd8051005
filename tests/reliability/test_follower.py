"""Snapshots written by the follower process: the state at their seq, and never a fork."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

import exchange.journal.journal as journal_module
import exchange.sequencer.follower as follower_module
from exchange.journal import Journal
from exchange.journal.snapshots import list_snapshots
from exchange.sequencer.follower import JournalTail
from exchange.sequencer.loop import restore_state
from exchange.service import ExchangeService
from tests.reliability.conftest import crash, in_process
from tests.reliability.test_storage_faults import _accounts, _h100, _trade


@pytest.mark.parametrize("fsync", [False, True], ids=["no-runway", "zeros-ahead"])
def test_the_tail_reads_what_replay_reads_across_segments_as_it_grows(
    tmp_path: Path, fsync: bool
) -> None:
    journal = Journal(tmp_path / "j", fsync=fsync, segment_bytes=4096)
    tail = JournalTail(tmp_path / "j", 0)
    read: list[tuple[int, bytes]] = []
    try:
        for batch in range(40):
            journal.append_batch([f"command {batch}-{i}".encode() * (1 + i) for i in range(7)])
            if batch % 3 == 0:  # read part of the way, then the rest later
                read.extend(tail.read(journal.last_seq - 2))
        read.extend(tail.read(journal.last_seq))
        assert len(journal.segments) >= 5
        assert read == list(journal.replay(0))
        later = JournalTail(tmp_path / "j", 100)  # starting mid-journal
        assert list(later.read(journal.last_seq)) == list(journal.replay(100))
        later.close()
        left = JournalTail(tmp_path / "j", 0)  # a reader that stops half-way resumes after
        first = next(left.read(journal.last_seq))
        assert [first, *left.read(journal.last_seq)] == read
        left.close()
    finally:
        tail.close()
        journal.close()


def _wait_for_snapshot(data: Path, seq: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(s == seq for s, _ in list_snapshots(data / "journal")):
        assert time.monotonic() < deadline, f"no snapshot at {seq} after {timeout} s"
        time.sleep(0.02)


def test_follower_snapshots_hold_the_state_at_their_seq_and_the_sequencer_never_forks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "cfx"
    forks: list[int] = []
    real_fork = journal_module.fork_child

    def counted(run, what, nice=0):  # type: ignore[no-untyped-def]
        forks.append(1)
        return real_fork(run, what, nice)

    monkeypatch.setattr(journal_module, "fork_child", counted)

    async def run() -> int:
        async with in_process(data, snapshot_every=40, snapshot_follower=True) as svc:
            assert svc.follower is not None and svc.follower.alive
            symbol = _h100(svc)
            accounts = await _accounts(svc, 3)
            hashes: dict[int, str] = {}
            svc.sequencer.listeners.append(
                lambda seq, _c, _o: hashes.setdefault(seq, str(svc.state.state_hash()))
            )
            await _trade(svc, accounts, symbol, 150, seed=4)
            last = svc.state.seq // 40 * 40
            await asyncio.to_thread(_wait_for_snapshot, data, last)
            snapshots = {seq for seq, _ in list_snapshots(data / "journal")}
            assert len(snapshots) == svc.journal.keep_snapshots  # the older ones pruned
            for seq, payload in svc.journal.snapshots():
                assert str(restore_state(payload).state_hash()) == hashes[seq]
            return last

    last = asyncio.run(run())
    assert forks == []  # snapshots_in_background never ran: fork_child is the follower's only

    async def reopen() -> None:
        async with in_process(data, snapshot_every=40, snapshot_follower=True) as svc:
            assert svc.recovery["snapshot_seq"] == last

    asyncio.run(reopen())


def test_a_dead_follower_leaves_snapshots_to_a_forked_writer(tmp_path: Path) -> None:
    data = tmp_path / "cfx"

    async def run() -> None:
        async with in_process(data, snapshot_every=40, snapshot_follower=True) as svc:
            assert svc.follower is not None
            accounts = await _accounts(svc, 2)
            os.kill(svc.follower.pid, signal.SIGKILL)
            await asyncio.to_thread(svc.follower._reaper.join, 10)  # type: ignore[union-attr]
            assert not svc.follower.alive
            await _trade(svc, accounts, _h100(svc), 100, seed=5)
            svc.sequencer.wait_for_snapshot(timeout=30)
            assert list_snapshots(data / "journal"), "a forked writer took over"

    asyncio.run(run())


def test_a_follower_that_cannot_start_leaves_snapshots_to_forked_writers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_memory(*args: object, **kwargs: object) -> int:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(follower_module, "fork_child", no_memory)

    async def run() -> None:
        async with in_process(tmp_path / "cfx", snapshot_every=40, snapshot_follower=True) as svc:
            assert svc.follower is None
            await _trade(svc, await _accounts(svc, 2), _h100(svc), 60, seed=6)
            svc.sequencer.wait_for_snapshot(timeout=30)
            assert list_snapshots(tmp_path / "cfx" / "journal")

    asyncio.run(run())


def test_the_follower_ignores_the_signals_of_its_process_group(tmp_path: Path) -> None:
    """Ctrl-C reaches every process of the group: the follower stops when asked, not then."""

    async def run() -> None:
        async with in_process(tmp_path / "cfx", snapshot_every=40, snapshot_follower=True) as svc:
            assert svc.follower is not None
            accounts = await _accounts(svc, 2)  # commands it must apply: then it is in its loop
            deadline = time.monotonic() + 10
            while svc.follower.applied < svc.state.seq and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert svc.follower.applied == svc.state.seq
            for sig in (signal.SIGINT, signal.SIGTERM):
                os.kill(svc.follower.pid, sig)
            await asyncio.sleep(0.3)
            assert svc.follower.alive
            await _trade(svc, accounts, _h100(svc), 50, seed=7)
            await asyncio.to_thread(_wait_for_snapshot, tmp_path / "cfx", 40)
            assert svc.follower.alive

    asyncio.run(run())


def test_the_follower_stops_with_its_parent(tmp_path: Path) -> None:
    """kill -9 of the server: its follower sees it gone and exits, holding no lock."""
    data = tmp_path / "cfx"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child plays the server, then dies by SIGKILL
        os.close(read)

        async def serve() -> None:
            svc = ExchangeService(data, clock="sim", snapshot_every=40, snapshot_follower=True)
            await svc.start()
            assert svc.follower is not None
            os.write(write, str(svc.follower.pid).encode())
            await asyncio.sleep(60)

        asyncio.run(serve())
        os._exit(0)
    os.close(write)
    follower = int(os.read(read, 64))
    os.close(read)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(follower, 0)
        except ProcessLookupError:
            break
        time.sleep(0.02)
    else:
        pytest.fail("the follower outlived its parent by 10 s")

    async def reopen() -> None:  # the data dir is free again
        async with in_process(data) as svc:
            assert svc.state.seq >= 1
            await crash(svc)

    asyncio.run(reopen())
