"""File-system helpers: whole writes, directory fsync, and the writer's lock file."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import IO

from exchange.journal.errors import JournalLocked

#: Name of the lock file that keeps a second writer out of a journal directory.
LOCK_NAME = "journal.lock"


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``: one ``os.write`` unless the kernel writes less."""
    written = os.write(fd, data)
    if written == len(data):
        return
    view = memoryview(data)
    while written < len(data):
        n = os.write(fd, view[written:])
        if n <= 0:
            raise OSError(errno.EIO, "write made no progress")
        written += n


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` to ``fd`` at ``offset``, as :func:`write_all` does."""
    written = os.pwrite(fd, data, offset)
    if written == len(data):
        return
    view = memoryview(data)
    while written < len(data):
        n = os.pwrite(fd, view[written:], offset + written)
        if n <= 0:
            raise OSError(errno.EIO, "write made no progress")
        written += n


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (created, renamed, removed files) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def lock_directory(directory: Path) -> IO[bytes]:
    """Take the exclusive writer lock of ``directory``; keep the returned file open to hold it."""
    lock = open(directory / LOCK_NAME, "ab")  # noqa: SIM115 - held until Journal.close
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        lock.close()
        raise JournalLocked(f"{directory} is already open for writing") from exc
    return lock
