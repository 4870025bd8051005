"""Helpers for the journal tests: reading a whole journal, editing files in place."""

from __future__ import annotations

import time
from pathlib import Path

from exchange.journal import Journal
from exchange.journal.format import RECORD_HEADER, SEGMENT_HEADER


def read_all(directory: Path) -> list[tuple[int, bytes]]:
    """Open the journal in ``directory`` and return every record."""
    with Journal(directory, fsync=False) as journal:
        return list(journal.replay())


def numbered(payloads: list[bytes], first: int = 1) -> list[tuple[int, bytes]]:
    """Return ``payloads`` paired with consecutive seqs from ``first``."""
    return list(enumerate(payloads, first))


def record_ends(payloads: list[bytes]) -> list[int]:
    """Return the file offset after each record of a single segment holding ``payloads``."""
    ends = []
    offset = SEGMENT_HEADER.size
    for payload in payloads:
        offset += RECORD_HEADER.size + len(payload)
        ends.append(offset)
    return ends


def flip_bit(path: Path, offset: int, bit: int) -> None:
    """Flip one bit of ``path`` in place."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def truncate(path: Path, size: int) -> None:
    """Cut ``path`` to ``size`` bytes."""
    with open(path, "r+b") as file:
        file.truncate(size)


def wait_for_runway(journal: Journal) -> Journal:
    """``journal`` once its zeros reach a runway past the last record, or the segment's end:
    appends land in them from then on."""
    deadline = time.monotonic() + 10
    while journal._zeroed < min(journal._size + journal.runway_bytes, journal.segment_bytes):
        assert time.monotonic() < deadline, "no zeros were written ahead of the records"
        time.sleep(0.005)
    return journal


def wait_for_zeroing(journal: Journal) -> None:
    """Return while the runway thread is writing zeros."""
    deadline = time.monotonic() + 5
    while journal._zeroing is None:
        assert time.monotonic() < deadline, "the runway thread wrote no zeros"
        time.sleep(0.001)
