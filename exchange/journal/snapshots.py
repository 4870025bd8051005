"""Snapshot files: state at a sequence number, written atomically and checked on read.

``snapshot-<seq, 12+ digits>.bin`` is a 28-byte header followed by the data, little endian::

    magic b"CFXSNAP1" | u64 seq | u64 data length | u32 crc32(seq bytes + length bytes + data)

A snapshot is written to a temporary file, fsynced, renamed over its final name, and the
directory fsynced, so a crash leaves either the whole snapshot or none of it.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import zlib
from pathlib import Path

from exchange.journal.errors import JournalWriteError
from exchange.journal.files import fsync_dir, write_all

#: First bytes of every snapshot file.
SNAPSHOT_MAGIC = b"CFXSNAP1"
#: ``magic | seq | length | crc32``.
SNAPSHOT_HEADER = struct.Struct("<8sQQI")
#: Suffix of a snapshot still being written; such files are removed when a journal opens.
TEMP_SUFFIX = ".tmp"

_SNAPSHOT_NAME = re.compile(r"^snapshot-(\d+)\.bin$")


class SnapshotInvalid(Exception):
    """A snapshot file failed its checks."""


def snapshot_name(seq: int) -> str:
    """Return the file name of the snapshot taken at ``seq``."""
    return f"snapshot-{seq:012d}.bin"


def list_snapshots(directory: Path) -> list[tuple[int, Path]]:
    """Return ``(seq, path)`` of every snapshot file, oldest first."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            match = _SNAPSHOT_NAME.match(entry.name)
            if match:
                found.append((int(match.group(1)), Path(entry.path)))
    found.sort()
    return found


def remove_temporaries(directory: Path) -> None:
    """Delete snapshot files a crash left half-written."""
    with os.scandir(directory) as entries:
        leftovers = [entry.path for entry in entries if _is_temporary(entry.name)]
    for path in leftovers:
        with contextlib.suppress(FileNotFoundError):  # its writer renamed it meanwhile
            os.unlink(path)


def _is_temporary(name: str) -> bool:
    return name.startswith("snapshot-") and name.endswith(TEMP_SUFFIX)


def encode_snapshot(seq: int, data: bytes) -> bytes:
    """Return the header and body of a snapshot file."""
    lengths = struct.pack("<QQ", seq, len(data))
    crc = zlib.crc32(data, zlib.crc32(lengths))
    return SNAPSHOT_HEADER.pack(SNAPSHOT_MAGIC, seq, len(data), crc) + data


def read_snapshot(path: Path, seq: int) -> bytes:
    """Return the data of the snapshot at ``path``; raise :class:`SnapshotInvalid` if damaged."""
    raw = path.read_bytes()
    if len(raw) < SNAPSHOT_HEADER.size:
        raise SnapshotInvalid(f"{len(raw)} bytes, shorter than the header")
    magic, stored_seq, length, crc = SNAPSHOT_HEADER.unpack_from(raw)
    if magic != SNAPSHOT_MAGIC:
        raise SnapshotInvalid(f"bad magic {magic!r}")
    if stored_seq != seq:
        raise SnapshotInvalid(f"header says seq {stored_seq}, file name says {seq}")
    if len(raw) != SNAPSHOT_HEADER.size + length:
        raise SnapshotInvalid(f"{len(raw) - SNAPSHOT_HEADER.size} data bytes, header says {length}")
    data = raw[SNAPSHOT_HEADER.size :]
    if zlib.crc32(data, zlib.crc32(raw[8:24])) != crc:
        raise SnapshotInvalid("bad crc")
    return data


def write_snapshot_file(directory: Path, seq: int, data: bytes, fsync: bool) -> Path:
    """Write a snapshot atomically and return its path; raise :class:`JournalWriteError`."""
    path = directory / snapshot_name(seq)
    # named for the writer: a follower or forked writer that outlived a killed server may
    # still be writing the same snapshot as the server that took over
    temp = path.with_name(f"{path.name}.{os.getpid()}{TEMP_SUFFIX}")
    body = encode_snapshot(seq, data)
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            write_all(fd, body)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        if fsync:
            fsync_dir(directory)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise JournalWriteError(
            f"snapshot {seq} not written: {exc.strerror or exc}",
            code="SNAPSHOT_WRITE_FAILED",
            errno=exc.errno,
        ) from exc
    return path


def prune_snapshots(directory: Path, keep: int, fsync: bool) -> list[Path]:
    """Delete all but the newest ``keep`` snapshots; return the deleted paths."""
    old = [path for _, path in list_snapshots(directory)[:-keep]] if keep > 0 else []
    for path in old:
        path.unlink(missing_ok=True)  # another writer may have pruned it first
    if old and fsync:
        fsync_dir(directory)
    return old
