"""The on-disk format of journal segments: names, headers, records, and the scanner.

A segment file ``journal-<first seq, 12+ digits>.log`` is a 16-byte header followed by
records, all little endian::

    segment header  magic b"CFXJ" | u32 version (1 or 2) | u64 base seq (= the name's number)
    record          u32 payload length | u32 crc32 | u64 seq | payload bytes

The crc32 (zlib) covers the 8 seq bytes followed by the payload, which sit next to each
other, so one ``crc32`` call over ``record[8:]`` checks both. Sequence numbers rise by
exactly 1 from the segment's base to its last record, and across segments.

In a version 1 segment the records run to the end of the file. A version 2 segment may
end in zeros after its last record (written ahead of the records, so that appends do not
grow the file): zeros where the next record would start, through the end of the file,
end it just as the end of the file does.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

#: First bytes of every segment file.
SEGMENT_MAGIC = b"CFXJ"
#: Segment format version of records to the end of the file.
SEGMENT_VERSION = 1
#: Segment format version of records, then possibly zeros to the end of the file.
ZERO_PADDED_VERSION = 2
#: ``magic | version | base seq``.
SEGMENT_HEADER = struct.Struct("<4sIQ")
#: ``payload length | crc32(seq bytes + payload) | seq``.
RECORD_HEADER = struct.Struct("<IIQ")
#: Largest payload accepted; a longer length field is treated as corruption.
MAX_PAYLOAD = 64 << 20
#: Bytes read per ``read`` call when scanning a segment.
READ_CHUNK = 4 << 20

_SEGMENT_NAME = re.compile(r"^journal-(\d+)\.log$")
_SEQ = struct.Struct("<Q")


def segment_name(base: int) -> str:
    """Return the file name of the segment whose first record is ``base``."""
    return f"journal-{base:012d}.log"


def parse_segment_name(name: str) -> int | None:
    """Return the base seq encoded in a segment file name, or None for other files."""
    match = _SEGMENT_NAME.match(name)
    return int(match.group(1)) if match else None


def segment_header(base: int, version: int = SEGMENT_VERSION) -> bytes:
    """Return the header of a new segment starting at ``base``."""
    return SEGMENT_HEADER.pack(SEGMENT_MAGIC, version, base)


def segment_version(header: bytes) -> int:
    """The version in a segment header that :func:`check_segment_header` accepted."""
    return int(SEGMENT_HEADER.unpack_from(header)[1])


def check_segment_header(header: bytes, base: int) -> str | None:
    """Return why ``header`` is not a valid header for segment ``base``, or None."""
    if len(header) < SEGMENT_HEADER.size:
        return f"torn segment header ({len(header)} of {SEGMENT_HEADER.size} bytes)"
    magic, version, stored = SEGMENT_HEADER.unpack_from(header)
    if magic != SEGMENT_MAGIC:
        return f"bad segment magic {magic!r}"
    if version not in (SEGMENT_VERSION, ZERO_PADDED_VERSION):
        return f"unsupported segment version {version}"
    if stored != base:
        return f"segment header says base {stored}, file name says {base}"
    return None


def encode_records(first_seq: int, payloads: Sequence[bytes]) -> bytes:
    """Frame ``payloads`` as consecutive records numbered from ``first_seq``."""
    pack = RECORD_HEADER.pack
    pack_seq = _SEQ.pack
    crc32 = zlib.crc32
    parts: list[bytes] = []
    append = parts.append
    seq = first_seq
    for payload in payloads:
        size = len(payload)
        if size > MAX_PAYLOAD:
            raise ValueError(f"payload of {size} bytes exceeds MAX_PAYLOAD ({MAX_PAYLOAD})")
        append(pack(size, crc32(payload, crc32(pack_seq(seq))), seq))
        append(payload)
        seq += 1
    return b"".join(parts)


@dataclass
class Cursor:
    """Where a scan stands: the file offset after the last good record, and the next seq."""

    offset: int
    next_seq: int


class Damage(Exception):
    """A scan met a record it cannot trust; ``cursor`` points at that record."""

    def __init__(self, kind: str, cursor: Cursor, detail: str = "") -> None:
        super().__init__(f"{kind} at offset {cursor.offset} (seq {cursor.next_seq}){detail}")
        self.kind = kind
        self.cursor = cursor


def scan_records(
    file: BinaryIO,
    end: int,
    base: int,
    after_seq: int,
    cursor: Cursor,
    chunk: int = READ_CHUNK,
) -> Iterator[tuple[int, bytes]]:
    """Yield the records of a segment up to file offset ``end`` whose seq exceeds ``after_seq``.

    Read big chunks and parse them in memory. Verify every record (length, seq, crc) even
    when it is not yielded. Keep ``cursor`` at the first unverified byte; raise
    :class:`Damage` at the first bad or incomplete record.
    """
    unpack = RECORD_HEADER.unpack_from
    crc32 = zlib.crc32
    header_size = RECORD_HEADER.size
    pos = SEGMENT_HEADER.size  # file offset of buf[0]
    cursor.offset, cursor.next_seq = pos, base
    expected = base
    file.seek(pos)
    carry = b""
    need = 0  # bytes the partial record in ``carry`` needs in total
    while pos + len(carry) < end:
        want = min(max(chunk, need - len(carry)), end - pos - len(carry))
        data = file.read(want)
        if not data:
            raise Damage("file shorter than expected", Cursor(pos, expected), f", end {end}")
        buf = carry + data if carry else data
        n = len(buf)
        off = 0
        while True:
            if off + header_size > n:
                need = header_size
                break
            length, crc, seq = unpack(buf, off)
            stop = off + header_size + length
            if length > MAX_PAYLOAD:
                raise Damage("bad record length", Cursor(pos + off, expected), f": {length}")
            if stop > n:
                need = header_size + length
                break
            if seq != expected or crc32(buf[off + 8 : stop]) != crc:
                if crc32(buf[off + 8 : stop]) != crc:
                    raise Damage("bad crc", Cursor(pos + off, expected))
                raise Damage("seq gap", Cursor(pos + off, expected), f": found {seq}")
            if seq > after_seq:
                yield seq, buf[off + header_size : stop]
            expected += 1
            off = stop
        carry = buf[off:]
        pos += off
        cursor.offset, cursor.next_seq = pos, expected
    if carry:
        kind = "torn record header" if len(carry) < header_size else "torn record payload"
        raise Damage(kind, Cursor(pos, expected), f", {len(carry)} bytes left")
