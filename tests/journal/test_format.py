"""The record format and the chunked scanner, independent of files on disk."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.journal.format import (
    MAX_PAYLOAD,
    RECORD_HEADER,
    SEGMENT_HEADER,
    ZERO_PADDED_VERSION,
    Cursor,
    Damage,
    check_segment_header,
    encode_records,
    parse_segment_name,
    scan_records,
    segment_header,
    segment_name,
    segment_version,
)


def segment(base: int, payloads: list[bytes]) -> bytes:
    return segment_header(base) + encode_records(base, payloads)


def scan(data: bytes, base: int, after: int = 0, chunk: int = 1 << 20) -> list[tuple[int, bytes]]:
    return list(scan_records(io.BytesIO(data), len(data), base, after, Cursor(0, 0), chunk))


def test_record_layout_is_little_endian_length_crc_seq_payload() -> None:
    record = encode_records(7, [b"abc"])
    assert record[:4] == (3).to_bytes(4, "little")
    assert record[8:16] == (7).to_bytes(8, "little")
    assert record[16:] == b"abc"
    assert int.from_bytes(record[4:8], "little") == zlib.crc32(record[8:])
    assert RECORD_HEADER.size == 16


def test_segment_names_sort_by_base_and_round_trip() -> None:
    assert segment_name(1) == "journal-000000000001.log"
    assert parse_segment_name(segment_name(123_456)) == 123_456
    assert parse_segment_name("journal-1.log.cut-16-99") is None
    assert parse_segment_name("snapshot-000000000001.bin") is None


def test_segment_header_checks_magic_version_and_base() -> None:
    header = segment_header(5)
    assert len(header) == SEGMENT_HEADER.size == 16
    assert check_segment_header(header, 5) is None
    assert check_segment_header(header, 6) == "segment header says base 5, file name says 6"
    assert check_segment_header(header[:9], 5) == "torn segment header (9 of 16 bytes)"
    assert check_segment_header(b"XXXX" + header[4:], 5) == "bad segment magic b'XXXX'"
    padded = segment_header(5, ZERO_PADDED_VERSION)
    assert check_segment_header(padded, 5) is None
    assert (segment_version(header), segment_version(padded)) == (1, 2)
    wrong_version = header[:4] + struct.pack("<I", 3) + header[8:]
    assert check_segment_header(wrong_version, 5) == "unsupported segment version 3"


@settings(max_examples=60, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=200), max_size=40),
    base=st.integers(1, 2**40),
    chunk=st.integers(1, 300),
    data=st.data(),
)
def test_scan_yields_every_record_at_any_chunk_size(
    payloads: list[bytes], base: int, chunk: int, data: st.DataObject
) -> None:
    after = data.draw(st.integers(base - 1, base + len(payloads)), label="after")
    expected = [(s, p) for s, p in enumerate(payloads, base) if s > after]
    assert scan(segment(base, payloads), base, after, chunk) == expected


def test_scan_leaves_the_cursor_after_the_last_record() -> None:
    data = segment(10, [b"a", b"bb", b"ccc"])
    cursor = Cursor(0, 0)
    list(scan_records(io.BytesIO(data), len(data), 10, 0, cursor, chunk=5))
    assert cursor == Cursor(len(data), 13)


def test_scan_stops_at_end_even_if_the_file_goes_on() -> None:
    durable = segment(1, [b"one", b"two"])
    data = durable + encode_records(3, [b"in flight"])[:7]
    assert scan_records_to(data, len(durable)) == [(1, b"one"), (2, b"two")]


def scan_records_to(data: bytes, end: int) -> list[tuple[int, bytes]]:
    return list(scan_records(io.BytesIO(data), end, 1, 0, Cursor(0, 0)))


BAD_TAILS = {
    "torn record header": encode_records(3, [b"xyz"])[:10],
    "torn record payload": encode_records(3, [b"xyz"])[:18],
    "seq gap": encode_records(4, [b"xyz"]) + encode_records(5, [b"after"]),
    "bad crc": bytes(16) + encode_records(4, [b"after"]),
    "bad record length": struct.pack("<IIQ", MAX_PAYLOAD + 1, 0, 3) + bytes(100),
}


@pytest.mark.parametrize("kind", list(BAD_TAILS))
def test_scan_reports_the_first_bad_record(kind: str) -> None:
    good = segment(1, [b"a", b"b"])
    data = good + BAD_TAILS[kind]
    cursor = Cursor(0, 0)
    found: list[tuple[int, bytes]] = []
    with pytest.raises(Damage) as raised:
        found.extend(scan_records(io.BytesIO(data), len(data), 1, 0, cursor, chunk=7))
    assert raised.value.kind == kind
    assert raised.value.cursor == Cursor(len(good), 3)
    assert found == [(1, b"a"), (2, b"b")]


def test_scan_reports_a_duplicate_seq_as_a_gap() -> None:
    data = segment(1, [b"a", b"b"]) + encode_records(2, [b"again"])
    with pytest.raises(Damage, match=r"seq gap at offset \d+ \(seq 3\): found 2"):
        scan(data, 1)


def test_encode_refuses_an_oversized_payload() -> None:
    with pytest.raises(ValueError, match="MAX_PAYLOAD"):
        encode_records(1, [bytes(MAX_PAYLOAD + 1)])
