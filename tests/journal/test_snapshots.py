"""Snapshots: atomic, checked, pruned, with fallback past damage; compaction behind them."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from exchange.journal import Journal, JournalCorrupt, JournalWriteError, SkippedSnapshot
from exchange.journal.snapshots import SNAPSHOT_HEADER, write_snapshot_file
from tests.journal.conftest import flip_bit, numbered, record_ends, truncate


def journal_with(directory: Path, records: int, **options: int) -> Journal:
    journal = Journal(directory, fsync=False, **options)  # type: ignore[arg-type]
    for i in range(records):
        journal.append(b"r%d" % (i + 1))
    return journal


def test_the_newest_snapshot_is_returned(tmp_path: Path) -> None:
    with journal_with(tmp_path, 10) as journal:
        assert journal.latest_snapshot() is None
        journal.write_snapshot(4, b"state at 4")
        path = journal.write_snapshot(9, b"state at 9")
        assert path.name == "snapshot-000000000009.bin"
        assert path.stat().st_size == SNAPSHOT_HEADER.size + len(b"state at 9")
        assert journal.latest_snapshot() == (9, b"state at 9")
        assert journal.recovery.skipped_snapshots == []


def test_only_the_newest_snapshots_are_kept(tmp_path: Path) -> None:
    with Journal(tmp_path, fsync=False, keep_snapshots=3) as journal:
        journal.append_batch([b"x"] * 10)
        for seq in (2, 4, 6, 8, 10):
            journal.write_snapshot(seq, b"s%d" % seq)
    assert sorted(p.name for p in tmp_path.glob("snapshot-*")) == [
        "snapshot-000000000006.bin",
        "snapshot-000000000008.bin",
        "snapshot-000000000010.bin",
    ]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda path: flip_bit(path, path.stat().st_size - 1, 2), "bad crc"),
        (lambda path: flip_bit(path, 8, 0), "file name says"),
        (lambda path: flip_bit(path, 0, 0), "bad magic"),
        (lambda path: truncate(path, path.stat().st_size - 1), "data bytes, header says"),
        (lambda path: truncate(path, 10), "shorter than the header"),
    ],
)
def test_a_corrupt_newest_snapshot_falls_back_to_the_previous(
    tmp_path: Path, damage: object, reason: str
) -> None:
    with journal_with(tmp_path, 10) as journal:
        journal.write_snapshot(5, b"five")
        newest = journal.write_snapshot(8, b"eight")
        damage(newest)  # type: ignore[operator]
    with Journal(tmp_path) as journal:
        assert journal.latest_snapshot() == (5, b"five")
        [skipped] = journal.recovery.skipped_snapshots
        assert skipped.seq == 8
        assert reason in skipped.reason
        assert list(journal.replay(5)) == numbered([b"r6", b"r7", b"r8", b"r9", b"r10"], 6)


def test_no_valid_snapshot_means_replay_from_the_start(tmp_path: Path) -> None:
    with journal_with(tmp_path, 3) as journal:
        for seq in (1, 2):
            flip_bit(journal.write_snapshot(seq, b"state"), SNAPSHOT_HEADER.size, 0)
        assert journal.latest_snapshot() is None
        assert [s.seq for s in journal.recovery.skipped_snapshots] == [2, 1]


def test_a_snapshot_ahead_of_the_journal_is_skipped(tmp_path: Path) -> None:
    with journal_with(tmp_path, 5) as journal:
        journal.write_snapshot(3, b"three")
        write_snapshot_file(tmp_path, 50, b"from a lost future", fsync=False)
        assert journal.latest_snapshot() == (3, b"three")
        assert journal.recovery.skipped_snapshots == [
            SkippedSnapshot(50, "ahead of the journal (last seq 5)")
        ]
        with pytest.raises(ValueError, match="not in the journal"):
            journal.write_snapshot(6, b"too early")


def test_a_half_written_snapshot_is_ignored_and_removed(tmp_path: Path) -> None:
    with journal_with(tmp_path, 5) as journal:
        journal.write_snapshot(2, b"two")
    leftover = tmp_path / "snapshot-000000000005.bin.tmp"
    leftover.write_bytes(b"partial")
    writers = tmp_path / "snapshot-000000000004.bin.4242.tmp"  # as named now: by writer pid
    writers.write_bytes(b"partial")
    with Journal(tmp_path) as journal:
        assert not leftover.exists() and not writers.exists()
        assert journal.latest_snapshot() == (2, b"two")


def test_a_full_disk_while_snapshotting_keeps_the_old_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with journal_with(tmp_path, 5) as journal:
        journal.write_snapshot(2, b"two")

        def full(fd: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "write", full)
        with pytest.raises(JournalWriteError) as raised:
            journal.write_snapshot(5, b"five" * 1000)
        monkeypatch.undo()
        assert raised.value.code == "SNAPSHOT_WRITE_FAILED"
        assert sorted(p.name for p in tmp_path.glob("snapshot-*")) == ["snapshot-000000000002.bin"]
        assert journal.latest_snapshot() == (2, b"two")


def test_compaction_deletes_only_segments_every_kept_snapshot_covers(tmp_path: Path) -> None:
    # Two records per segment: segments start at 1, 3, 5, ..., 19.
    with Journal(tmp_path, fsync=False, segment_bytes=60) as journal:
        for i in range(10):
            journal.append_batch([b"a%02d" % i, b"b%02d" % i])
        assert journal.compact(20) == []  # no snapshot: nothing is covered
        journal.write_snapshot(8, b"at 8")
        journal.write_snapshot(13, b"at 13")
        removed = journal.compact(13)  # limited by the older snapshot, 8
        assert [p.name for p in removed] == [
            "journal-000000000001.log",
            "journal-000000000003.log",
            "journal-000000000005.log",
            "journal-000000000007.log",  # seqs 7 and 8: covered by the snapshot at 8
        ]
        assert journal.first_seq == 9
        assert len(list(journal.replay(8))) == 12
        with pytest.raises(JournalCorrupt, match="no longer"):
            journal.replay(0)
    with Journal(tmp_path, fsync=False) as journal:
        assert journal.recovery.records == 12
        assert journal.latest_snapshot() == (13, b"at 13")


def test_compaction_never_deletes_the_last_segment(tmp_path: Path) -> None:
    with journal_with(tmp_path, 4, segment_bytes=60) as journal:
        journal.write_snapshot(4, b"all")
        journal.compact(4)
        assert len(journal.segments) == 1
        assert journal.append(b"next") == 5


def test_a_corrupt_snapshot_does_not_license_compaction(tmp_path: Path) -> None:
    with journal_with(tmp_path, 8, segment_bytes=60) as journal:
        flip_bit(journal.write_snapshot(6, b"six"), SNAPSHOT_HEADER.size, 1)
        assert journal.compact(6) == []


def _exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_forked_writer_snapshots_the_moment_of_the_fork(tmp_path: Path) -> None:
    """The child serialises the memory of the fork while the parent goes on changing it."""
    state = {"seq": 3, "orders": [1, 2, 3]}
    with journal_with(tmp_path, 5, keep_snapshots=2) as journal:
        journal.write_snapshot(1, b"old")
        journal.write_snapshot(2, b"older than the kept two")

        def produce() -> bytes:
            time.sleep(0.3)  # the parent changes the state meanwhile
            return repr(state).encode()

        pid = journal.fork_snapshot(3, produce)
        state["orders"].append(4)
        state["seq"] = 4
        assert _exit_code(pid) == 0
        journal.snapshot_forked(3)
        assert journal.latest_snapshot() == (3, b"{'seq': 3, 'orders': [1, 2, 3]}")
    assert sorted(p.name for p in tmp_path.glob("snapshot-*")) == [
        "snapshot-000000000002.bin",
        "snapshot-000000000003.bin",
    ]


def test_a_forked_writer_holds_no_lock_of_the_data_dir(tmp_path: Path) -> None:
    """A restarted process may open the journal while the last one's writer still runs."""
    journal = journal_with(tmp_path, 3)
    pid = journal.fork_snapshot(3, lambda: time.sleep(1.0) or b"state at 3")
    journal.close()  # as if killed: the child is still writing
    with Journal(tmp_path, fsync=False) as reopened:  # the journal's lock is free
        assert reopened.last_seq == 3
        assert _exit_code(pid) == 0
        assert reopened.latest_snapshot() == (3, b"state at 3")


def test_a_forked_writer_that_fails_exits_non_zero_and_leaves_no_file(tmp_path: Path) -> None:
    def produce() -> bytes:
        raise RuntimeError("cannot serialise")

    with journal_with(tmp_path, 3) as journal:
        assert _exit_code(journal.fork_snapshot(3, produce)) == 1
        assert journal.latest_snapshot() is None
        assert not list(tmp_path.glob("snapshot-*"))
        with pytest.raises(ValueError, match="not in the journal"):
            journal.fork_snapshot(4, lambda: b"")


def test_a_forked_writer_runs_at_the_lowest_priority(tmp_path: Path) -> None:
    """The writer takes the CPU the server leaves idle: it runs at nice 19."""
    with journal_with(tmp_path, 3) as journal:
        pid = journal.fork_snapshot(3, lambda: str(os.nice(0)).encode())
        assert _exit_code(pid) == 0
        assert journal.latest_snapshot() == (3, b"19")


def _five_records_and_a_snapshot(directory: Path) -> tuple[Path, Path, int]:
    """Records old-1..old-5 in one segment, a snapshot after them: the segment, the
    snapshot and where record 4 starts."""
    payloads = [b"old-%d" % i for i in range(1, 6)]
    with Journal(directory, runway_bytes=0) as journal:
        journal.append_batch(payloads)
        snapshot = journal.write_snapshot(5, b"after old 1..5")
    return next(directory.glob("journal-*.log")), snapshot, record_ends(payloads)[2]


def test_a_cut_that_would_drop_records_a_snapshot_holds_is_refused_with_nothing_changed(
    tmp_path: Path,
) -> None:
    """A snapshot holds only durable records: a tail past it is damage, not a torn write."""
    segment, _, fourth = _five_records_and_a_snapshot(tmp_path)
    flip_bit(segment, fourth + 20, 3)  # record 4 of 5 is damaged
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != "lock"}
    with pytest.raises(JournalCorrupt) as refused:
        Journal(tmp_path)
    message = str(refused.value)
    assert (
        "the journal ends at seq 3 (bad crc at offset 79 (seq 4) in journal-000000000001.log)"
        in message
    )
    assert "snapshot snapshot-000000000005.bin holds the state after seq 5" in message
    assert "nothing was cut or changed" in message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != "lock"} == before
    # records the caller knows were acknowledged count as proof too
    (tmp_path / "snapshot-000000000005.bin").unlink()
    with pytest.raises(JournalCorrupt, match="records up to seq 4 were acknowledged"):
        Journal(tmp_path, acknowledged=4)
    # the operator gives them up: the tail is cut, and new records take the numbers
    with Journal(tmp_path, acknowledged=3) as journal:
        assert journal.last_seq == 3 and "cut" in (journal.recovery.reason or "")
        journal.append_batch([b"new-4", b"new-5", b"new-6"])
        assert journal.latest_snapshot() is None


def test_a_damaged_snapshot_past_a_cut_tail_is_moved_aside_before_new_records_reuse_its_seq(
    tmp_path: Path,
) -> None:
    segment, snapshot, fourth = _five_records_and_a_snapshot(tmp_path)
    flip_bit(snapshot, SNAPSHOT_HEADER.size, 0)
    truncate(segment, fourth)  # records 4 and 5 are lost
    with Journal(tmp_path) as journal:
        assert journal.last_seq == 3 and "moved to" in (journal.recovery.reason or "")
        assert [p.name.split(".ahead-")[0] for p in tmp_path.glob("*.ahead-*")] == [
            "snapshot-000000000005.bin"
        ]
        journal.append_batch([b"new-4", b"new-5", b"new-6"])
        assert journal.latest_snapshot() is None  # nothing describes new-4 and new-5
