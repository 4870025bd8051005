"""Opening a damaged journal: torn and corrupt tails are cut and reported, never misread."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.journal import Journal, JournalCorrupt
from exchange.journal.format import RECORD_HEADER, SEGMENT_HEADER, encode_records
from tests.journal.conftest import flip_bit, numbered, read_all, record_ends, truncate

PAYLOADS = [b"first", b"", b"x" * 40, b"fourth record", b"the last record, torn"]


def build(directory: Path, payloads: list[bytes], **options: int) -> Path:
    """Write ``payloads`` one per batch; return the last segment."""
    with Journal(directory, fsync=False, **options) as journal:  # type: ignore[arg-type]
        for payload in payloads:
            journal.append(payload)
        return journal.segments[-1]


def test_torn_last_record_at_every_byte_offset(tmp_path: Path) -> None:
    segment = build(tmp_path / "original", PAYLOADS)
    ends = record_ends(PAYLOADS)
    last_start = ends[-2]
    for cut in range(last_start, ends[-1]):
        directory = tmp_path / f"cut-{cut}"
        shutil.copytree(tmp_path / "original", directory)
        truncate(directory / segment.name, cut)
        with Journal(directory, fsync=False) as journal:
            report = journal.recovery
            assert list(journal.replay()) == numbered(PAYLOADS[:-1])
            assert report.last_seq == journal.last_seq == len(PAYLOADS) - 1
            assert report.truncated_bytes == cut - last_start
            if cut == last_start:  # the whole record is gone: nothing to cut
                assert report.reason is None
            else:
                assert report.reason is not None
                assert report.reason.startswith("torn record")
            assert journal.append(b"again") == len(PAYLOADS)
        assert read_all(directory) == numbered([*PAYLOADS[:-1], b"again"])


@settings(max_examples=80, deadline=None)
@given(payloads=st.lists(st.binary(max_size=60), min_size=1, max_size=30), data=st.data())
def test_a_cut_anywhere_keeps_exactly_the_whole_records_before_it(
    payloads: list[bytes], data: st.DataObject
) -> None:
    ends = record_ends(payloads)
    cut = data.draw(st.integers(0, ends[-1]), label="cut")
    with tempfile.TemporaryDirectory() as tmp:
        segment = build(Path(tmp), payloads)
        truncate(segment, cut)
        kept = sum(1 for end in ends if end <= cut)
        with Journal(tmp, fsync=False) as journal:
            assert list(journal.replay()) == numbered(payloads[:kept])
            clean = cut in (SEGMENT_HEADER.size, *ends)
            assert (journal.recovery.reason is None) == clean
            assert journal.append(b"next") == kept + 1
        assert read_all(Path(tmp)) == numbered([*payloads[:kept], b"next"])


@settings(max_examples=80, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=60), min_size=1, max_size=20),
    data=st.data(),
)
def test_a_flipped_bit_cuts_the_last_segment_from_that_record(
    payloads: list[bytes], data: st.DataObject
) -> None:
    ends = record_ends(payloads)
    starts = [SEGMENT_HEADER.size, *ends[:-1]]
    index = data.draw(st.integers(0, len(payloads) - 1), label="record")
    offset = data.draw(st.integers(starts[index], ends[index] - 1), label="offset")
    bit = data.draw(st.integers(0, 7), label="bit")
    with tempfile.TemporaryDirectory() as tmp:
        segment = build(Path(tmp), payloads)
        flip_bit(segment, offset, bit)
        with Journal(tmp, fsync=False) as journal:
            report = journal.recovery
            assert list(journal.replay()) == numbered(payloads[:index])
            assert report.truncated_bytes == ends[-1] - starts[index]
            assert report.reason is not None
            assert report.reason.split(" at ")[0] in (
                "bad crc",
                "bad record length",
                "torn record payload",
            )
            assert segment.stat().st_size == starts[index]


def test_a_flipped_payload_bit_in_the_tail_is_a_bad_crc(tmp_path: Path) -> None:
    segment = build(tmp_path, PAYLOADS)
    flip_bit(segment, record_ends(PAYLOADS)[-1] - 3, 0)
    with Journal(tmp_path) as journal:
        assert journal.recovery.reason is not None
        assert journal.recovery.reason.startswith("bad crc at offset")
        assert journal.last_seq == len(PAYLOADS) - 1


@pytest.mark.parametrize("wrong_seq", [7, 5, 1])
def test_a_record_with_a_valid_crc_but_the_wrong_seq_is_a_gap(
    tmp_path: Path, wrong_seq: int
) -> None:
    segment = build(tmp_path, PAYLOADS)  # seqs 1..5; the next must be 6
    with open(segment, "ab") as file:
        file.write(encode_records(wrong_seq, [b"out of place"]))
    with Journal(tmp_path) as journal:
        assert journal.recovery.reason is not None
        assert journal.recovery.reason.startswith(f"seq gap at offset {record_ends(PAYLOADS)[-1]}")
        assert journal.next_seq == 6
    assert read_all(tmp_path) == numbered(PAYLOADS)


def test_the_cut_bytes_are_kept_beside_the_segment(tmp_path: Path) -> None:
    segment = build(tmp_path, PAYLOADS)
    good = record_ends(PAYLOADS)[-2]
    original = segment.read_bytes()
    truncate(segment, len(original) - 2)
    with Journal(tmp_path) as journal:
        cut_file = journal.recovery.cut_file
    assert cut_file is not None
    assert (tmp_path / cut_file).read_bytes() == original[good:-2]
    assert read_all(tmp_path) == numbered(PAYLOADS[:-1])  # the cut file is not a segment


def test_a_torn_new_segment_header_removes_the_empty_segment(tmp_path: Path) -> None:
    with Journal(tmp_path, fsync=False, segment_bytes=60) as journal:
        journal.append_batch([bytes(30)])
        journal.append_batch([bytes(30)])
        assert len(journal.segments) == 2
        newest = journal.segments[-1]
    truncate(newest, 16)
    truncate(newest, 7)  # the crash came while the header was being written
    with Journal(tmp_path, fsync=False, segment_bytes=60) as journal:
        assert journal.recovery.reason is not None
        assert "torn segment header" in journal.recovery.reason
        assert journal.recovery.truncated_bytes == 7
        assert not newest.exists()
        assert journal.append(b"again") == 2
    assert read_all(tmp_path) == numbered([bytes(30), b"again"])


def test_a_refused_recovery_removes_no_segment_either(tmp_path: Path) -> None:
    with Journal(tmp_path, fsync=False, segment_bytes=60) as journal:
        journal.append_batch([bytes(30)])
        journal.append_batch([bytes(30)])
        newest = journal.segments[-1]
    truncate(newest, 7)  # record 2 went with the header, but it had been acknowledged
    (tmp_path / "snapshot-000000000001.bin.tmp").write_bytes(b"half")
    with pytest.raises(JournalCorrupt, match="records up to seq 2 were acknowledged"):
        Journal(tmp_path, fsync=False, segment_bytes=60, acknowledged=2)
    assert newest.stat().st_size == 7 and (tmp_path / "snapshot-000000000001.bin.tmp").exists()


def test_an_empty_last_segment_is_fine(tmp_path: Path) -> None:
    with Journal(tmp_path, fsync=False, segment_bytes=60) as journal:
        journal.append_batch([bytes(30)])
        journal.append_batch([bytes(30)])
        newest = journal.segments[-1]
    truncate(newest, SEGMENT_HEADER.size)
    with Journal(tmp_path, fsync=False) as journal:
        assert journal.recovery.reason is None
        assert journal.next_seq == 2


def test_a_corrupt_header_with_records_after_it_is_a_hard_error(tmp_path: Path) -> None:
    segment = build(tmp_path, PAYLOADS)
    flip_bit(segment, 1, 3)
    with pytest.raises(JournalCorrupt, match="bad segment magic"):
        Journal(tmp_path)


def earlier_and_last(directory: Path) -> tuple[Path, Path]:
    with Journal(directory, fsync=False, segment_bytes=100) as journal:
        for i in range(8):
            journal.append_batch([b"%d" % i * 20, b"-" * 10])
        return journal.segments[0], journal.segments[-1]


def test_corruption_in_an_earlier_segment_is_a_hard_error_on_replay(tmp_path: Path) -> None:
    earlier, _ = earlier_and_last(tmp_path)
    flip_bit(earlier, SEGMENT_HEADER.size + RECORD_HEADER.size + 2, 5)
    with Journal(tmp_path) as journal:
        assert journal.recovery.reason is None  # opening reads only the last segment
        size = earlier.stat().st_size
        with pytest.raises(JournalCorrupt, match="bad crc") as raised:
            list(journal.replay())
        assert raised.value.code == "JOURNAL_CORRUPT"
        assert earlier.stat().st_size == size  # acknowledged data is never cut
        assert len(list(journal.replay(2))) == 14  # replay past the damage still works


def test_a_torn_earlier_segment_is_a_hard_error(tmp_path: Path) -> None:
    earlier, _ = earlier_and_last(tmp_path)
    truncate(earlier, earlier.stat().st_size - 1)
    with Journal(tmp_path) as journal, pytest.raises(JournalCorrupt, match="torn record"):
        list(journal.replay())


def test_a_missing_middle_segment_is_a_hard_error(tmp_path: Path) -> None:
    with Journal(tmp_path, fsync=False, segment_bytes=100) as journal:
        for i in range(8):
            journal.append_batch([b"%d" % i * 50])
        middle = journal.segments[3]
    middle.unlink()
    with Journal(tmp_path) as journal, pytest.raises(JournalCorrupt, match="previous segment"):
        list(journal.replay())


def test_a_bad_header_in_an_earlier_segment_stops_the_open(tmp_path: Path) -> None:
    earlier, last = earlier_and_last(tmp_path)
    size = last.stat().st_size
    flip_bit(earlier, 9, 0)
    with pytest.raises(JournalCorrupt, match="says base"):
        Journal(tmp_path)
    assert last.stat().st_size == size


def test_records_removed_by_compaction_are_not_silently_skipped(tmp_path: Path) -> None:
    first, _ = earlier_and_last(tmp_path)
    first.unlink()
    with Journal(tmp_path) as journal, pytest.raises(JournalCorrupt, match="no longer"):
        journal.replay(0)


def test_a_segment_under_a_second_name_is_a_hard_error(tmp_path: Path) -> None:
    segment = build(tmp_path, PAYLOADS)
    shutil.copy(segment, tmp_path / "journal-1.log")
    with pytest.raises(JournalCorrupt, match=r"journal-1\.log: expected the name journal-0"):
        Journal(tmp_path)
