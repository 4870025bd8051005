"""Zeros written ahead of the last record: appends land in them, and recovery reads past them.

A fsyncing journal keeps its last segment written with zeros a little past the last record,
so an append changes neither the file's size nor its blocks and ``fdatasync`` makes it
durable. These tests hold that the zeros never change what the journal holds: a zeroed
tail is the end of a (version 2) segment, a segment is cut to its records when the next
begins, and anything but zeros after the records is damage, cut and reported as ever.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.journal import Journal, JournalClosed, JournalCorrupt
from exchange.journal.format import (
    SEGMENT_HEADER,
    ZERO_PADDED_VERSION,
    Cursor,
    encode_records,
    parse_segment_name,
    scan_records,
    segment_header,
    segment_version,
)
from tests.journal.conftest import (
    numbered,
    read_all,
    record_ends,
    wait_for_runway,
    wait_for_zeroing,
)


def counting(real: Callable[..., Any], calls: list[str], name: str) -> Callable[..., Any]:
    def count(fd: int) -> Any:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".log"):
            calls.append(name)
        return real(fd)

    return count


def test_appends_land_in_the_zeros_and_need_only_fdatasync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payloads = [f"order {i}".encode() for i in range(200)]
    with Journal(tmp_path, runway_bytes=64 << 10) as journal:
        journal.append(payloads[0])
        wait_for_runway(journal)
        segment = journal.segments[-1]
        size = segment.stat().st_size
        assert size >= journal._size + journal.runway_bytes
        calls: list[str] = []
        monkeypatch.setattr(os, "fsync", counting(os.fsync, calls, "fsync"))
        monkeypatch.setattr(os, "fdatasync", counting(os.fdatasync, calls, "fdatasync"))
        for payload in payloads[1:]:
            journal.append(payload)
        monkeypatch.undo()
        assert calls == ["fdatasync"] * 199
        assert segment.stat().st_size == size  # no append grew the file
        assert segment.read_bytes()[record_ends(payloads)[-1] :].strip(b"\0") == b""
    with Journal(tmp_path) as journal:
        assert journal.recovery.reason is None
        assert journal.recovery.truncated_bytes == 0
        assert list(journal.replay()) == numbered(payloads)
        assert journal.append(b"next") == 201
    assert read_all(tmp_path)[-1] == (201, b"next")


def test_a_new_segment_cuts_the_zeros_off_the_one_it_closes(tmp_path: Path) -> None:
    payloads = [bytes([i % 251]) * (i % 300) for i in range(400)]
    with Journal(tmp_path, segment_bytes=8 << 10, runway_bytes=2 << 10) as journal:
        for i in range(0, len(payloads), 3):
            journal.append_batch(payloads[i : i + 3])
            if i % 30 == 0:
                wait_for_runway(journal)
        segments = journal.segments
    assert len(segments) > 5
    seq = 1
    for path in segments[:-1]:
        data = path.read_bytes()
        assert segment_version(data) == ZERO_PADDED_VERSION
        count = next(
            n
            for n in range(1, len(payloads))
            if len(encode_records(seq, payloads[seq - 1 : seq - 1 + n])) + SEGMENT_HEADER.size
            == len(data)
        )  # the file ends exactly at its last record
        seq += count
    assert read_all(tmp_path) == numbered(payloads)


def test_something_other_than_zeros_after_the_records_is_cut_and_reported(
    tmp_path: Path,
) -> None:
    with Journal(tmp_path) as journal:
        journal.append_batch([b"a", b"b"])
        wait_for_runway(journal)
        end = journal._size
        segment = journal.segments[-1]
    size = segment.stat().st_size
    with open(segment, "r+b") as file:  # half a record written into the zeros, then a crash
        file.seek(end)
        file.write(encode_records(3, [b"c" * 40])[:30])
    with Journal(tmp_path) as journal:
        report = journal.recovery
        assert report.reason is not None and report.reason.startswith("bad crc")
        assert report.truncated_bytes == size - end
        assert report.cut_file is not None
        assert (tmp_path / report.cut_file).read_bytes().rstrip(b"\0") == encode_records(
            3, [b"c" * 40]
        )[:30].rstrip(b"\0")
        assert list(journal.replay()) == numbered([b"a", b"b"])
        assert journal.append(b"c") == 3
    assert read_all(tmp_path) == numbered([b"a", b"b", b"c"])


def test_zeros_after_a_version_1_segment_are_damage_and_it_gets_no_more(
    tmp_path: Path,
) -> None:
    segment = tmp_path / "journal-000000000001.log"
    records = segment_header(1) + encode_records(1, [b"a", b"b"])
    segment.write_bytes(records + bytes(100))
    with Journal(tmp_path) as journal:
        assert journal.recovery.truncated_bytes == 100
        assert journal.recovery.reason is not None
        for payload in (b"c", b"d", b"e"):
            journal.append(payload)
        time.sleep(0.05)
        assert segment.stat().st_size == len(records) + 3 * (16 + 1)  # no zeros after them
    with Journal(tmp_path) as journal:
        assert journal.recovery.reason is None
        assert list(journal.replay()) == numbered([b"a", b"b", b"c", b"d", b"e"])


@settings(max_examples=25, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.binary(max_size=300), min_size=1, max_size=8), min_size=1, max_size=25
    ),
    segment_bytes=st.integers(200, 6000),
    runway_bytes=st.integers(0, 3000),
    reopen_at=st.integers(0, 25),
    waits=st.lists(st.booleans(), min_size=25, max_size=25),
)
def test_any_appends_read_back_the_same_across_reopening(
    batches: list[list[bytes]],
    segment_bytes: int,
    runway_bytes: int,
    reopen_at: int,
    waits: list[bool],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(tmp, segment_bytes=segment_bytes, runway_bytes=runway_bytes)
        appended: list[bytes] = []
        try:
            for index, batch in enumerate(batches):
                if index == reopen_at:
                    journal.close()
                    journal = Journal(tmp, segment_bytes=segment_bytes, runway_bytes=runway_bytes)
                    assert journal.recovery.reason is None
                if waits[index] and runway_bytes:
                    time.sleep(0.002)  # let the zeros catch up, or not
                first, last = journal.append_batch(batch)
                assert (first, last) == (len(appended) + 1, len(appended) + len(batch))
                appended.extend(batch)
            assert list(journal.replay()) == numbered(appended)
            segments = journal.segments
        finally:
            journal.close()
        with Journal(tmp, fsync=False) as reopened:
            assert reopened.recovery.reason is None
            assert list(reopened.replay()) == numbered(appended)
        for path in segments[:-1]:  # closed segments hold records to their very end
            base = parse_segment_name(path.name)
            assert base is not None
            with open(path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                list(scan_records(file, size, base, 0, Cursor(0, 0)))  # Damage if not


def slow_runway_fsync(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make the runway thread's fsync slow, so appends meet it writing zeros."""
    real = os.fsync

    def fsync(fd: int) -> None:
        if threading.current_thread().name == "journal-runway":
            time.sleep(seconds)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_appends_waiting_for_the_zeros_are_numbered_and_written_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_runway_fsync(monkeypatch, 0.2)
    with Journal(tmp_path, runway_bytes=4096, segment_bytes=64 << 10) as journal:
        journal.append(b"a")
        wait_for_zeroing(journal)  # slowly
        told: dict[bytes, tuple[int, int]] = {}

        def append(payload: bytes) -> None:
            told[payload] = journal.append_batch([payload])

        writers = [
            threading.Thread(target=append, args=(bytes([65 + i]) * (3000 + 500 * i),))
            for i in range(4)
        ]
        for writer in writers:
            writer.start()
            time.sleep(0.01)
        for writer in writers:
            writer.join()
        assert sorted(first for first, _ in told.values()) == [2, 3, 4, 5]
        by_seq = {first: payload for payload, (first, _) in told.items()}
        expected = numbered([b"a", *(by_seq[seq] for seq in range(2, 6))])
        assert list(journal.replay()) == expected
    with Journal(tmp_path) as journal:
        assert journal.recovery.reason is None
        assert list(journal.replay()) == expected


def test_closing_while_an_append_waits_for_the_zeros_refuses_it_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_runway_fsync(monkeypatch, 0.3)
    journal = Journal(tmp_path, runway_bytes=4096, segment_bytes=4096 + 100)
    journal.append(b"a")
    wait_for_zeroing(journal)
    outcome: list[BaseException | tuple[int, int]] = []

    def append() -> None:
        try:
            outcome.append(journal.append_batch([b"b" * 5000]))  # waits: a new segment
        except BaseException as exc:  # the outcome is what is checked
            outcome.append(exc)

    writer = threading.Thread(target=append)
    writer.start()
    time.sleep(0.05)
    journal.close()
    writer.join()
    assert len(outcome) == 1 and isinstance(outcome[0], JournalClosed)
    assert read_all(tmp_path) == numbered([b"a"])


def test_a_closed_segment_still_ending_in_zeros_replays_when_the_next_goes_on(
    tmp_path: Path,
) -> None:
    """A crash can leave the cut of a closed segment undone; the seqs still join up."""
    payloads = [bytes([i]) * 700 for i in range(1, 12)]
    with Journal(tmp_path, segment_bytes=3000, runway_bytes=1000) as journal:
        for payload in payloads:
            journal.append(payload)
        segments = journal.segments
    assert len(segments) > 2
    with open(segments[0], "ab") as file:  # zeros after its last record, as before the cut
        file.write(bytes(5000))
    with Journal(tmp_path) as journal:
        assert list(journal.replay()) == numbered(payloads)
    records = segments[1].read_bytes()  # but a record lost to zeros is still damage
    segments[1].write_bytes(records[: SEGMENT_HEADER.size] + bytes(len(records) - 16))
    with Journal(tmp_path) as journal, pytest.raises(JournalCorrupt, match="starts at seq"):
        list(journal.replay())


def test_no_thread_when_no_zeros_are_wanted(tmp_path: Path) -> None:
    for options in ({"fsync": False}, {"runway_bytes": 0}):
        with Journal(tmp_path / str(options), **options) as journal:  # type: ignore[arg-type]
            for i in range(50):
                journal.append(bytes(i))
            assert journal._runway is None
