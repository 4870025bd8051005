"""Appending, replaying, reopening and rotating: the journal's ordinary life."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.journal import Journal, JournalClosed, JournalLocked
from exchange.journal.format import SEGMENT_HEADER
from tests.journal.conftest import numbered, read_all

batches = st.lists(st.lists(st.binary(max_size=120), min_size=1, max_size=12), max_size=25)


@settings(max_examples=50, deadline=None)
@given(batches=batches, segment_bytes=st.integers(17, 1500), data=st.data())
def test_batches_round_trip_across_segments_and_reopen(
    batches: list[list[bytes]], segment_bytes: int, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        written: list[bytes] = []
        with Journal(tmp, fsync=False, segment_bytes=segment_bytes) as journal:
            for batch in batches:
                assert journal.append_batch(batch) == (
                    len(written) + 1,
                    len(written) + len(batch),
                )
                written.extend(batch)
            assert list(journal.replay()) == numbered(written)
            after = data.draw(st.integers(0, len(written) + 1), label="after")
            assert list(journal.replay(after)) == numbered(written)[after:]
            for path in journal.segments[:-1]:  # a segment is full before the next starts
                assert path.stat().st_size > SEGMENT_HEADER.size
        with Journal(tmp, fsync=False, segment_bytes=segment_bytes) as journal:
            assert journal.recovery.reason is None
            assert journal.recovery.truncated_bytes == 0
            assert journal.recovery.last_seq == journal.last_seq == len(written)
            assert journal.recovery.records == len(written)
            assert journal.append(b"next") == len(written) + 1
            assert list(journal.replay(len(written))) == [(len(written) + 1, b"next")]


def test_a_new_journal_starts_at_seq_1(tmp_path: Path) -> None:
    with Journal(tmp_path / "j") as journal:
        assert (journal.next_seq, journal.last_seq) == (1, 0)
        assert list(journal.replay()) == []
        assert journal.segments == []
        assert journal.append_batch([b"a", b"b", b"c"]) == (1, 3)
        assert journal.segments == [tmp_path / "j" / "journal-000000000001.log"]


def test_reopening_continues_the_sequence(tmp_path: Path) -> None:
    for round_ in range(3):
        with Journal(tmp_path) as journal:
            assert journal.last_seq == 2 * round_
            journal.append_batch([b"x%d" % round_, b"y%d" % round_])
    assert read_all(tmp_path) == numbered([b"x0", b"y0", b"x1", b"y1", b"x2", b"y2"])


def test_segments_are_named_by_their_first_seq(tmp_path: Path) -> None:
    with Journal(tmp_path, fsync=False, segment_bytes=100) as journal:
        for i in range(6):
            journal.append_batch([bytes(30), bytes(30)])  # 92 bytes: one batch per segment
            assert journal.segments[-1].name == f"journal-{2 * i + 1:012d}.log"
        assert len(journal.segments) == 6


def test_a_batch_larger_than_a_segment_still_goes_in_whole(tmp_path: Path) -> None:
    with Journal(tmp_path, fsync=False, segment_bytes=64) as journal:
        journal.append_batch([bytes(100)] * 3)
        journal.append(b"small")
        assert [p.name for p in journal.segments] == [
            "journal-000000000001.log",
            "journal-000000000004.log",
        ]
    assert read_all(tmp_path) == numbered([bytes(100)] * 3 + [b"small"])


def test_replay_sees_what_was_durable_when_it_was_called(tmp_path: Path) -> None:
    with Journal(tmp_path, fsync=False) as journal:
        journal.append_batch([b"a", b"b"])
        records = journal.replay()
        journal.append_batch([b"c"])
        assert list(records) == numbered([b"a", b"b"])
        assert list(journal.replay(1)) == [(2, b"b"), (3, b"c")]


def test_replay_after_the_last_seq_is_empty(tmp_path: Path) -> None:
    with Journal(tmp_path, fsync=False) as journal:
        journal.append_batch([b"a"])
        assert list(journal.replay(1)) == []
        assert list(journal.replay(99)) == []
        assert list(journal.replay(-5)) == [(1, b"a")]
    with Journal(tmp_path / "empty") as journal:
        assert list(journal.replay(-1)) == []


def test_misuse_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        journal.append(b"a")
        with pytest.raises(ValueError, match="at least one"):
            journal.append_batch([])
        with pytest.raises(TypeError):
            journal.append_batch([b"ok", "not bytes"])  # type: ignore[list-item]
        assert journal.next_seq == 2
    assert read_all(tmp_path) == [(1, b"a")]
    with pytest.raises(ValueError, match="segment_bytes"):
        Journal(tmp_path, segment_bytes=16)


def test_one_writer_per_directory(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    with pytest.raises(JournalLocked) as raised:
        Journal(tmp_path)
    assert raised.value.code == "JOURNAL_LOCKED"
    journal.close()
    Journal(tmp_path).close()


def test_a_closed_journal_refuses_work(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.close()
    journal.close()
    with pytest.raises(JournalClosed):
        journal.append(b"late")
    with pytest.raises(JournalClosed):
        journal.replay()


def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    with Journal(tmp_path / "data" / "journal") as journal:
        journal.append(b"a")
    assert read_all(tmp_path / "data" / "journal") == [(1, b"a")]
