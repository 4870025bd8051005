"""Write failures (full disk, I/O errors): nothing half-written survives, and the journal goes on."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.journal import Journal, JournalWriteError
from tests.journal.conftest import numbered, read_all, wait_for_runway

CHILD = Path(__file__).with_name("child.py")


def is_segment(fd: int) -> bool:
    return os.readlink(f"/proc/self/fd/{fd}").endswith(".log")


class FailingDisk:
    """Stands in for ``os.write`` and ``os.pwrite``: lets ``room`` more bytes reach segment
    files, then ENOSPC.

    Like a real full disk, the write that crosses the limit is short; the next one fails.
    ``abrupt`` fails the crossing write itself after writing part of it.
    """

    def __init__(self, room: int, abrupt: bool = False) -> None:
        self.room = room
        self.abrupt = abrupt
        self.real_write = os.write
        self.real_pwrite = os.pwrite

    def install(self, patch: pytest.MonkeyPatch) -> None:
        patch.setattr(os, "write", self.write)
        patch.setattr(os, "pwrite", self.pwrite)

    def write(self, fd: int, data: Any) -> int:
        return self._take(fd, data, lambda chunk: self.real_write(fd, chunk))

    def pwrite(self, fd: int, data: Any, offset: int) -> int:
        return self._take(fd, data, lambda chunk: self.real_pwrite(fd, chunk, offset))

    def _take(self, fd: int, data: Any, write: Callable[[bytes], int]) -> int:
        if not is_segment(fd):
            return write(data)
        data = bytes(data)
        if len(data) <= self.room:
            self.room -= len(data)
            return write(data)
        written = write(data[: self.room]) if self.room else 0
        self.room = 0
        if written and not self.abrupt:
            return written
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def fail_once(
    real: Callable[..., Any], error: int, when: Callable[..., bool]
) -> Callable[..., Any]:
    calls = {"failed": False}

    def replacement(*args: Any) -> Any:
        if not calls["failed"] and when(*args):
            calls["failed"] = True
            raise OSError(error, os.strerror(error))
        return real(*args)

    return replacement


@pytest.mark.parametrize("abrupt", [False, True])
def test_a_full_disk_leaves_no_partial_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, abrupt: bool
) -> None:
    with Journal(tmp_path, runway_bytes=0) as journal:  # every append grows the file
        journal.append_batch([b"a", b"b"])
        segment = journal.segments[-1]
        size = segment.stat().st_size
        with monkeypatch.context() as patch:
            FailingDisk(room=25, abrupt=abrupt).install(patch)
            with pytest.raises(JournalWriteError) as raised:
                journal.append_batch([b"c" * 40, b"d" * 40])
        assert raised.value.code == "JOURNAL_WRITE_FAILED"
        assert raised.value.errno == errno.ENOSPC
        assert segment.stat().st_size == size
        assert journal.next_seq == 3
        assert journal.append_batch([b"e"]) == (3, 3)  # space is back
    with Journal(tmp_path) as journal:
        assert journal.recovery.reason is None
        assert list(journal.replay()) == numbered([b"a", b"b", b"e"])


@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.binary(max_size=50), min_size=1, max_size=6), min_size=1, max_size=8
    ),
    room=st.integers(0, 600),
    abrupt=st.booleans(),
)
def test_a_full_disk_at_any_byte_keeps_exactly_the_whole_batches(
    batches: list[list[bytes]], room: int, abrupt: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        kept: list[bytes] = []
        FailingDisk(room=room, abrupt=abrupt).install(patch)
        with Journal(tmp, fsync=False, segment_bytes=200) as journal:
            for batch in batches:
                try:
                    journal.append_batch(batch)
                except JournalWriteError:
                    break
                kept.extend(batch)
            patch.undo()
            assert journal.append_batch([b"after"]) == (len(kept) + 1,) * 2
        with Journal(tmp, fsync=False) as journal:
            assert journal.recovery.reason is None
            assert list(journal.replay()) == numbered([*kept, b"after"])


@pytest.mark.parametrize(
    ("sync", "runway"),
    [("fsync", 0), ("fdatasync", 1 << 20)],
    ids=["fsync-growing-the-file", "fdatasync-into-the-zeros"],
)
def test_a_failed_sync_rolls_the_batch_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync: str, runway: int
) -> None:
    with Journal(tmp_path, runway_bytes=runway) as journal:
        journal.append(b"a")
        wait_for_runway(journal)
        size = journal.segments[-1].stat().st_size
        monkeypatch.setattr(os, sync, fail_once(getattr(os, sync), errno.EIO, is_segment))
        with pytest.raises(JournalWriteError) as raised:
            journal.append(b"lost")
        assert raised.value.errno == errno.EIO
        if not runway:  # the file grew by the batch, and is cut back
            assert journal.segments[-1].stat().st_size == size
        assert journal.append(b"b") == 2
    assert read_all(tmp_path) == numbered([b"a", b"b"])


@pytest.mark.parametrize("abrupt", [False, True])
def test_a_failed_write_into_the_zeros_ahead_is_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, abrupt: bool
) -> None:
    with Journal(tmp_path) as journal:
        journal.append_batch([b"a", b"b"])
        wait_for_runway(journal)
        with monkeypatch.context() as patch:
            FailingDisk(room=25, abrupt=abrupt).install(patch)
            with pytest.raises(JournalWriteError) as raised:
                journal.append_batch([b"c" * 40, b"d" * 40])
        assert raised.value.errno == errno.ENOSPC
        assert journal.next_seq == 3
        assert journal.append_batch([b"e"]) == (3, 3)
    with Journal(tmp_path) as journal:
        assert journal.recovery.reason is None
        assert list(journal.replay()) == numbered([b"a", b"b", b"e"])


def test_a_failed_rollback_breaks_the_journal_until_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Journal(tmp_path, runway_bytes=0) as journal:
        journal.append(b"a")
        with monkeypatch.context() as patch:
            FailingDisk(room=20, abrupt=True).install(patch)
            patch.setattr(os, "ftruncate", fail_once(os.ftruncate, errno.EIO, lambda *a: True))
            with pytest.raises(JournalWriteError) as raised:
                journal.append(b"x" * 50)
        assert raised.value.code == "JOURNAL_BROKEN"
        with pytest.raises(JournalWriteError) as again:
            journal.append(b"b")
        assert again.value.code == "JOURNAL_BROKEN"
    with Journal(tmp_path) as journal:  # reopening cuts the 20 half-written bytes
        assert journal.recovery.truncated_bytes == 20
        assert journal.recovery.reason is not None
        assert journal.append(b"b") == 2
    assert read_all(tmp_path) == numbered([b"a", b"b"])


def test_a_failed_new_segment_is_removed_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Journal(tmp_path, segment_bytes=60) as journal:
        journal.append(bytes(30))
        with monkeypatch.context() as patch:
            FailingDisk(room=5).install(patch)
            with pytest.raises(JournalWriteError, match="new segment"):
                journal.append(bytes(30))
        assert [p.name for p in journal.segments] == ["journal-000000000001.log"]
        assert sorted(p.name for p in tmp_path.glob("journal-*")) == ["journal-000000000001.log"]
        assert journal.append(bytes(30)) == 2
        assert len(journal.segments) == 2
    assert read_all(tmp_path) == numbered([bytes(30), bytes(30)])


def test_an_error_closing_the_finished_segment_does_not_strand_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Journal(tmp_path, segment_bytes=60) as journal:
        journal.append(bytes(30))
        with monkeypatch.context() as patch:
            patch.setattr(os, "close", fail_once(os.close, errno.EIO, is_segment))
            assert journal.append(bytes(30)) == 2  # rotated: the new segment is in use
        assert journal.append(bytes(30)) == 3
    assert read_all(tmp_path) == numbered([bytes(30)] * 3)


def test_a_real_file_size_limit_is_survived(tmp_path: Path) -> None:
    """The kernel itself refuses the write (RLIMIT_FSIZE): a short write, then EFBIG."""
    limit = 50_000
    result = subprocess.run(
        [sys.executable, str(CHILD), "fsize", str(tmp_path), str(limit)],
        capture_output=True,
        timeout=60,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["code"] == "JOURNAL_WRITE_FAILED"
    assert report["errno"] == errno.EFBIG
    assert report["size_after_failure"] <= limit
    assert report["retry"] == [report["last_seq"] + 1] * 2
    with Journal(tmp_path) as journal:
        assert journal.recovery.reason is None
        records = list(journal.replay())
    assert records[-1] == (report["last_seq"] + 1, b"after")
    assert [seq for seq, _ in records] == list(range(1, len(records) + 1))
