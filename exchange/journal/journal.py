"""The journal: append-only, checksummed, group-committed command log with snapshots.

One writer appends batches; each batch is one ``write`` and one ``fsync`` before
:meth:`Journal.append_batch` returns, so a returned sequence number is durable. Opening a
journal recovers it: the last segment is verified record by record and a torn or corrupt
tail is cut and reported. See ``docs/journal.md`` for the format and the guarantees.

A thread keeps the last segment written with zeros (and fsynced) a little ahead of its
last record. An append that lands inside those zeros changes neither the file's size nor
its blocks, so ``fdatasync`` makes it durable without a file-system journal commit: about
half the time of an ``fsync`` that grows the file, and without waiting for other files'
metadata (the ledger's, say). A zeroed tail therefore ends the last segment like the end
of the file does; rotation cuts it off the segment it closes.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from exchange.journal.errors import JournalClosed, JournalCorrupt, JournalWriteError
from exchange.journal.files import fsync_dir, lock_directory, pwrite_all, write_all
from exchange.journal.format import (
    READ_CHUNK,
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
from exchange.journal.snapshots import (
    SnapshotInvalid,
    list_snapshots,
    prune_snapshots,
    read_snapshot,
    remove_temporaries,
    write_snapshot_file,
)

log = logging.getLogger("cfx")

#: Default size at which the journal starts a new segment file.
DEFAULT_SEGMENT_BYTES = 64 << 20
#: Default number of snapshots kept.
DEFAULT_KEEP_SNAPSHOTS = 3

_HEADER = SEGMENT_HEADER.size
_RECORD = RECORD_HEADER.size
#: Descriptors a forked snapshot writer closes: all it inherited (``close_range`` on Linux).
_MAX_FD = 1 << 20
#: Zeros kept written ahead of the last record, when fsyncing: at least this much, topped
#: up to twice as much (by default; see :class:`Journal`).
RUNWAY_BYTES = 1 << 20
#: Zeros written per call.
_ZERO_CHUNK = bytes(256 << 10)


@dataclass
class SkippedSnapshot:
    """A snapshot :meth:`Journal.latest_snapshot` passed over, and why. ``by_caller``: for
    the caller's limit or choice (after ``at_most``, or not loadable by it), not for
    anything wrong with the snapshot or where it stands."""

    seq: int
    reason: str
    by_caller: bool = False


@dataclass
class RecoveryReport:
    """What opening the journal found and repaired.

    ``records`` counts the records from the first retained segment to ``last_seq``.
    ``truncated_bytes`` is how much of the tail was cut, ``reason`` why (None when the
    journal was clean), and ``cut_file`` names the file the cut bytes were saved to.
    ``skipped_snapshots`` is filled by :meth:`Journal.latest_snapshot`.
    """

    segments: int
    records: int
    last_seq: int
    truncated_bytes: int = 0
    reason: str | None = None
    cut_file: str | None = None
    skipped_snapshots: list[SkippedSnapshot] = field(default_factory=list)


class Journal:
    """An append-only journal of opaque payloads numbered 1, 2, 3, ... in one directory.

    Single writer: one thread appends (the sequencer). The writing methods take an internal
    lock, so a snapshot or compaction from another thread cannot interleave with an append,
    but the design and the sequence order assume one writer. :meth:`replay` reads the
    records that were durable when it was called and may run beside appends. Another
    process opening the same directory gets :class:`JournalLocked`.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        fsync: bool = True,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS,
        runway_bytes: int = RUNWAY_BYTES,
        acknowledged: int = 0,
        acknowledged_because: str | None = None,
    ) -> None:
        """Open (creating if needed) the journal in ``directory`` and recover its tail.

        ``fsync=False`` skips every fsync: for tests and benchmarks only, since an
        acknowledged append may then be lost by a machine crash. ``runway_bytes`` is how
        many zeros to keep written ahead of the last record when fsyncing (0: none, every
        append grows the file). ``acknowledged`` is a seq the caller knows was durable (its
        ledger holds what the record did, say: ``acknowledged_because`` says so in the
        error): a journal that no longer reaches it is :class:`JournalCorrupt`, as is one
        that a valid snapshot shows to have lost records.
        """
        if segment_bytes <= _HEADER:
            raise ValueError(f"segment_bytes must exceed the {_HEADER}-byte segment header")
        if keep_snapshots < 1:
            raise ValueError("keep_snapshots must be at least 1")
        if runway_bytes < 0:
            raise ValueError("runway_bytes must not be negative")
        self.directory = Path(directory)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self.keep_snapshots = keep_snapshots
        self.runway_bytes = runway_bytes if fsync else 0
        self._make_directory()
        self._lock = threading.Lock()
        self._snapshot_lock = threading.Lock()
        self._lock_file = lock_directory(self.directory)
        self._fd: int | None = None
        self._bases: list[int] = []
        self._size = 0  # end of the last record in the last segment
        self._zeroed = 0  # the last segment's durable size: zeros past ``_size``
        self._zeroing: tuple[int, int] | None = None  # bytes the runway thread writes now
        self._runway: threading.Thread | None = None
        #: No zeros for this segment: full, writing them failed, or a version 1 segment.
        self._runway_off = False
        self._changed = threading.Condition(self._lock)  # the runway moved, or is wanted
        self._next_seq = 1
        self._broken: str | None = None
        self._closed = False
        try:
            self.recovery = self._recover(
                acknowledged,
                acknowledged_because or f"records up to seq {acknowledged} were acknowledged",
            )
        except BaseException:
            self.close()
            raise

    def _make_directory(self) -> None:
        """Create the directory and any missing parents, durably when fsyncing."""
        missing = [self.directory, *self.directory.parents]
        missing = missing[: next(i for i, p in enumerate(missing) if p.exists())]
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.fsync:
            for created in missing:
                fsync_dir(created.parent)

    # -- state -----------------------------------------------------------------------------
    @property
    def next_seq(self) -> int:
        """The seq the next appended record will get."""
        return self._next_seq

    @property
    def last_seq(self) -> int:
        """The seq of the last durable record (0 when the journal is empty)."""
        return self._next_seq - 1

    @property
    def first_seq(self) -> int:
        """The seq of the oldest retained record (``next_seq`` when there is none)."""
        return self._bases[0] if self._bases else self._next_seq

    @property
    def segments(self) -> list[Path]:
        """The segment files, oldest first."""
        return [self.directory / segment_name(base) for base in self._bases]

    # -- appending -------------------------------------------------------------------------
    def append(self, payload: bytes) -> int:
        """Append one record durably and return its seq."""
        return self.append_batch([payload])[0]

    def append_batch(self, payloads: Sequence[bytes]) -> tuple[int, int]:
        """Append ``payloads`` with one write and one fsync; return the first and last seq.

        On any write or fsync error the segment is cut back to its size before the batch
        and :class:`JournalWriteError` is raised: no record of the batch is kept, and the
        next append (once the disk has room) continues at the same seq.
        """
        if not payloads:
            raise ValueError("append_batch needs at least one payload")
        size = sum(_RECORD + len(payload) for payload in payloads)
        with self._lock:
            # Wait first, while the runway thread writes zeros where this batch would go (or
            # in the segment it would close): nothing is read before, so no other caller's
            # append that runs meanwhile can be overwritten or numbered twice.
            while True:
                self._check_writable()
                rotate = self._fd is None or (
                    self._size > _HEADER and self._size + size > self.segment_bytes
                )
                zeroing = self._zeroing
                if zeroing is None or (not rotate and self._size + size <= zeroing[0]):
                    break
                self._changed.wait()
            first = self._next_seq
            data = encode_records(first, payloads)
            if rotate:
                self._rotate()
            assert self._fd is not None
            before = self._size
            stop = before + len(data)
            try:
                pwrite_all(self._fd, data, before)
                if self.fsync:
                    if stop <= self._zeroed:  # size and blocks are durable already
                        os.fdatasync(self._fd)
                    else:
                        os.fsync(self._fd)
                        self._zeroed = stop
            except BaseException as exc:
                self._roll_back(before, exc)
                raise
            self._size = stop
            self._next_seq = first + len(payloads)
            if (
                self.runway_bytes
                and self._zeroed - stop < self.runway_bytes
                and self._zeroing is None
                and not self._runway_off
            ):
                self._want_runway()
            return first, self._next_seq - 1

    # -- the zeroed runway ---------------------------------------------------------------
    def _want_runway(self) -> None:
        """Have the runway thread top up the zeros ahead of the last record (lock held)."""
        if self._runway is None:
            self._runway = threading.Thread(
                target=self._keep_runway, name="journal-runway", daemon=True
            )
            self._runway.start()
        self._changed.notify_all()

    def _keep_runway(self) -> None:
        """Write and fsync zeros ahead of the last record while appends come near them.

        One chunk at a time, each reserved in ``_zeroing`` while it is written: an append
        waits for at most one chunk, and only when it would reach into it.
        """
        zeros = _ZERO_CHUNK
        with self._lock:
            while True:
                while not self._closed and (
                    self._fd is None
                    or self._runway_off
                    or self._zeroed - self._size >= self.runway_bytes
                ):
                    self._changed.wait()
                if self._closed:
                    return
                fd = self._fd
                assert fd is not None
                start = max(self._zeroed, self._size)
                end = min(start + len(zeros), self._size + 2 * self.runway_bytes)
                end = min(end, self.segment_bytes)
                if end <= start:  # the segment is full: the next one gets a runway
                    self._runway_off = True
                    continue
                self._zeroing = (start, end)
                self._lock.release()
                try:
                    at = start
                    while at < end:
                        written = os.pwrite(fd, zeros[: end - at], at)
                        if written <= 0:
                            raise OSError(errno.EIO, "write made no progress")
                        at += written
                    os.fsync(fd)
                except OSError as exc:  # a full disk, say: appends grow the file instead
                    log.warning("journal: no zeros written ahead of the last record: %s", exc)
                    end = start
                finally:
                    self._lock.acquire()
                    self._zeroing = None
                    self._changed.notify_all()
                if end == start:
                    self._runway_off = True  # until the next segment
                elif start <= self._zeroed:  # not after a rollback cut below ``start``
                    self._zeroed = max(self._zeroed, end)

    def _quiet_runway(self) -> None:
        """Wait (lock held) until the runway thread is not writing into the segment."""
        while self._zeroing is not None:
            self._changed.wait()

    def _check_writable(self) -> None:
        if self._closed:
            raise JournalClosed("the journal is closed")
        if self._broken is not None:
            raise JournalWriteError(self._broken, code="JOURNAL_BROKEN")

    def _roll_back(self, before: int, exc: BaseException) -> None:
        """Cut the last segment back to ``before`` bytes; raise the error the caller sees."""
        assert self._fd is not None
        # No wait for the runway thread (another append could run meanwhile): it writes
        # only past this batch, and what it writes past the cut reads as zeros, a hole
        # before it too. ``_zeroed`` stops below the cut until an fsync raises it again.
        try:
            os.ftruncate(self._fd, before)
            self._zeroed = min(self._zeroed, before)
            if self.fsync:
                os.fsync(self._fd)
        except OSError as undo:
            self._broken = (
                f"append failed ({exc}) and cutting it back failed ({undo}); "
                "reopen the journal to recover"
            )
            raise JournalWriteError(self._broken, code="JOURNAL_BROKEN", errno=undo.errno) from exc
        if isinstance(exc, OSError):
            raise JournalWriteError(
                f"append of seq {self._next_seq} onwards not written: {exc.strerror or exc}",
                errno=exc.errno,
            ) from exc

    def _rotate(self) -> None:
        """Start a new segment at ``next_seq``: create, write the header, fsync it and the dir.

        The segment before it is first cut to its last record, zeros ahead of it dropped.
        """
        if self._fd is not None:
            assert self._zeroing is None  # append_batch waited for it
            try:
                if os.fstat(self._fd).st_size > self._size:
                    os.ftruncate(self._fd, self._size)
                    if self.fsync:
                        os.fsync(self._fd)
            except OSError as exc:
                raise JournalWriteError(
                    f"segment {segment_name(self._bases[-1])} not closed: {exc.strerror or exc}",
                    errno=exc.errno,
                ) from exc
            self._zeroed = min(self._zeroed, self._size)
        base = self._next_seq
        path = self.directory / segment_name(base)
        fd = -1
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            write_all(fd, segment_header(base, ZERO_PADDED_VERSION if self.runway_bytes else 1))
            if self.fsync:
                os.fsync(fd)
                fsync_dir(self.directory)
        except OSError as exc:
            if fd >= 0:
                os.close(fd)
                try:
                    os.unlink(path)
                except OSError as undo:
                    self._broken = (
                        f"new segment {path.name} failed ({exc}) and could not be removed "
                        f"({undo}); reopen the journal to recover"
                    )
            raise JournalWriteError(
                f"new segment {path.name} not created: {exc.strerror or exc}", errno=exc.errno
            ) from exc
        if self._fd is not None:
            # the old segment is synced and done with: an error closing it changes nothing
            # on disk, and must not leave the journal pointing at a closed descriptor
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = fd
        self._bases.append(base)
        self._size = self._zeroed = _HEADER
        self._runway_off = False

    # -- recovery --------------------------------------------------------------------------
    def _recover(self, acknowledged: int, acknowledged_because: str) -> RecoveryReport:
        """Verify the last segment, cut a bad tail, and find ``next_seq``.

        A tail is cut only when it may be a torn write, the unacknowledged batch a crash
        interrupted: when the records it would drop were acknowledged (a valid snapshot
        holds their effects, or the caller says so), it is damage, and
        :class:`JournalCorrupt` is raised with nothing changed.
        """
        self._bases = self._list_segments()
        for base in self._bases[:-1]:
            self._check_header(base)
        truncated = 0
        reasons: list[str] = []
        cut_file: str | None = None
        cursor = Cursor(_HEADER, 1)
        padded = False
        tail: tuple[Path, int, int, str] | None = None  # (segment, offset, size, why) to cut
        empty: list[Path] = []  # segments a crash left with a header at most, to remove
        while self._bases:
            base = self._bases[-1]
            path = self.directory / segment_name(base)
            with open(path, "rb", buffering=0) as file:
                size = os.fstat(file.fileno()).st_size
                header = file.read(_HEADER)
                problem = check_segment_header(header, base)
                padded = problem is None and segment_version(header) == ZERO_PADDED_VERSION
                if problem is not None:
                    if size > _HEADER:
                        raise JournalCorrupt(f"{path.name}: {problem}, with {size} bytes after it")
                    # A crash while creating the segment: it never held a record.
                    empty.append(path)
                    self._bases.pop()
                    truncated += size
                    reasons.append(f"{problem} in {path.name}; removed it")
                    cursor = Cursor(_HEADER, base)
                    continue
                try:
                    for _ in scan_records(file, size, base, 2**64, cursor):
                        pass
                except Damage as damage:
                    cursor = damage.cursor
                    if not padded or not _zeros_to_end(file, cursor.offset, size):
                        tail = (path, cursor.offset, size, str(damage))
                    # else only zeros follow: written ahead of the records, not damage
            break
        self._refuse_loss(cursor.next_seq - 1, acknowledged, acknowledged_because, tail)
        # from here on the journal is repaired; nothing before this line changed a file
        remove_temporaries(self.directory)
        for path in empty:
            path.unlink()
        if empty and self.fsync:
            fsync_dir(self.directory)
        if tail is not None:
            path, offset, size, damage_text = tail
            truncated += size - offset
            reasons.append(f"{damage_text} in {path.name}; cut {size - offset} bytes")
            cut_file = self._cut(path, offset, size)
        self._next_seq = cursor.next_seq
        self._size = cursor.offset
        for seq, snapshot in list_snapshots(self.directory):
            if seq > self._next_seq - 1:
                # of records the journal no longer holds (a cut tail): once new records
                # take those numbers it would pass for them, so it is moved out of the way
                aside = snapshot.with_name(f"{snapshot.name}.ahead-{time.time_ns()}")
                os.replace(snapshot, aside)
                reasons.append(f"{snapshot.name} is past the last record; moved to {aside.name}")
                if self.fsync:
                    fsync_dir(self.directory)
        if self._bases:
            path = self.directory / segment_name(self._bases[-1])
            self._fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            self._runway_off = not padded  # zeros must not follow version 1 records
            if self.fsync:  # whatever the zeros' state at the crash, they are durable now
                os.fsync(self._fd)
                self._zeroed = os.fstat(self._fd).st_size
        return RecoveryReport(
            segments=len(self._bases),
            records=self._next_seq - self.first_seq,
            last_seq=self.last_seq,
            truncated_bytes=truncated,
            reason="; ".join(reasons) or None,
            cut_file=cut_file,
        )

    def _refuse_loss(
        self,
        end: int,
        acknowledged: int,
        acknowledged_because: str,
        tail: tuple[Path, int, int, str] | None,
    ) -> None:
        """Raise :class:`JournalCorrupt` if records after ``end`` were acknowledged."""
        proof = [
            (seq, f"snapshot {path.name} holds the state after seq {seq}")
            for seq, path in list_snapshots(self.directory)
            if seq > end and _readable(path, seq)
        ]
        if acknowledged > end:
            proof.append((acknowledged, acknowledged_because))
        if not proof:
            return
        _, why = max(proof)
        found = f"{tail[3]} in {tail[0].name}" if tail is not None else "no records after it"
        raise JournalCorrupt(
            f"the journal ends at seq {end} ({found}), but {why}: acknowledged records are "
            "damaged or missing, so nothing was cut or changed. Restore the journal "
            "directory from a copy; or, to give up the records after the damage for good, "
            "move aside the snapshots past it (and rebuild the ledger: move its database "
            "aside, and it is refilled from the journal), then start again"
        )

    def _list_segments(self) -> list[int]:
        bases: list[int] = []
        with os.scandir(self.directory) as entries:
            names = [entry.name for entry in entries]
        for name in names:
            base = parse_segment_name(name)
            if base is not None:
                if name != segment_name(base):  # e.g. journal-1.log beside journal-0…1.log
                    raise JournalCorrupt(f"{name}: expected the name {segment_name(base)}")
                bases.append(base)
        bases.sort()
        if bases and bases[0] < 1:
            raise JournalCorrupt("a segment file starts at seq 0")
        return bases

    def _check_header(self, base: int) -> None:
        path = self.directory / segment_name(base)
        with open(path, "rb") as file:
            problem = check_segment_header(file.read(_HEADER), base)
        if problem is not None:
            raise JournalCorrupt(f"{path.name}: {problem}")

    def _cut(self, path: Path, offset: int, size: int) -> str | None:
        """Save bytes ``offset:size`` of ``path`` beside it, then truncate it to ``offset``."""
        cut_path = path.with_name(f"{path.name}.cut-{offset}-{time.time_ns()}")
        saved: str | None = cut_path.name
        try:
            with open(path, "rb") as source:
                source.seek(offset)
                tail = source.read(size - offset)
            with open(cut_path, "xb") as out:
                out.write(tail)
                if self.fsync:
                    out.flush()
                    os.fsync(out.fileno())
        except OSError:  # no room to keep the evidence must not stop recovery
            saved = None
            with contextlib.suppress(OSError):
                cut_path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, offset)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if self.fsync:
            fsync_dir(self.directory)
        return saved

    # -- reading ---------------------------------------------------------------------------
    def replay(self, after_seq: int = 0) -> Iterator[tuple[int, bytes]]:
        """Return an iterator over ``(seq, payload)`` for every durable record after ``after_seq``.

        Every record read is verified; damage raises :class:`JournalCorrupt` when the
        iterator reaches it, as does asking for records that compaction removed.
        """
        with self._lock:
            if self._closed:
                raise JournalClosed("the journal is closed")
            bases = list(self._bases)
            last_end = self._size
            last_seq = self.last_seq
        after_seq = max(after_seq, 0)
        if after_seq >= last_seq:
            return iter(())
        start = bisect.bisect_right(bases, after_seq + 1) - 1
        if start < 0:
            raise JournalCorrupt(
                f"records {after_seq + 1}..{bases[0] - 1} are no longer in the journal"
            )
        return self._replay(bases[start:], last_end, after_seq)

    def _replay(
        self, bases: list[int], last_end: int, after_seq: int
    ) -> Iterator[tuple[int, bytes]]:
        cursor = Cursor(_HEADER, bases[0])
        for index, base in enumerate(bases):
            path = self.directory / segment_name(base)
            if index and cursor.next_seq != base:
                raise JournalCorrupt(
                    f"{path.name} starts at seq {base} but the previous segment ends at "
                    f"{cursor.next_seq - 1}"
                )
            last = index == len(bases) - 1
            with open(path, "rb", buffering=0) as file:
                header = file.read(_HEADER)
                problem = check_segment_header(header, base)
                if problem is not None:
                    raise JournalCorrupt(f"{path.name}: {problem}")
                end = last_end if last else os.fstat(file.fileno()).st_size
                try:
                    yield from scan_records(file, end, base, after_seq, cursor)
                except Damage as damage:
                    # A closed version 2 segment may still end in zeros (its cut to the last
                    # record not durable at a crash): the end, if the next segment goes on
                    # from there, which the check above makes sure of.
                    if (
                        last
                        or segment_version(header) != ZERO_PADDED_VERSION
                        or not _zeros_to_end(file, damage.cursor.offset, end)
                    ):
                        raise JournalCorrupt(f"{path.name}: {damage}") from None
                    cursor.offset, cursor.next_seq = damage.cursor.offset, damage.cursor.next_seq

    # -- snapshots -------------------------------------------------------------------------
    def write_snapshot(self, seq: int, data: bytes) -> Path:
        """Write the state at ``seq`` atomically, keep the newest snapshots, return its path."""
        if self._closed:
            raise JournalClosed("the journal is closed")
        if not 0 <= seq <= self.last_seq:
            raise ValueError(f"snapshot seq {seq} is not in the journal (last seq {self.last_seq})")
        with self._snapshot_lock:
            path = write_snapshot_file(self.directory, seq, data, self.fsync)
            prune_snapshots(self.directory, self.keep_snapshots, self.fsync)
        return path

    def fork_snapshot(self, seq: int, produce: Callable[[], bytes]) -> int:
        """Write the snapshot at ``seq`` from a forked copy of this process; return its pid.

        The child sees the memory of the moment of the fork (copy-on-write), so ``produce``
        serialises the state as it is now while this process goes on changing it. It writes
        the file as :meth:`write_snapshot` does and exits with status 0 on success. Call
        :meth:`snapshot_forked` once it has exited. The child runs at nice 19, on the CPU
        time that the server and its clients leave idle (see :func:`fork_child`).
        """
        if self._closed:
            raise JournalClosed("the journal is closed")
        if not 0 <= seq <= self.last_seq:
            raise ValueError(f"snapshot seq {seq} is not in the journal (last seq {self.last_seq})")
        directory, fsync = self.directory, self.fsync

        def write() -> None:
            gc.disable()
            write_snapshot_file(directory, seq, produce(), fsync)

        return fork_child(write, f"snapshot {seq}", nice=19)

    def snapshot_forked(self, seq: int) -> None:
        """Take note of a snapshot a forked writer wrote: prune the oldest beyond the kept ones."""
        if self._closed:
            raise JournalClosed("the journal is closed")
        with self._snapshot_lock:
            prune_snapshots(self.directory, self.keep_snapshots, self.fsync)

    def latest_snapshot(self, at_most: int | None = None) -> tuple[int, bytes] | None:
        """Return ``(seq, data)`` of the newest valid snapshot the journal can replay from.

        Damaged snapshots, those ahead of the journal or behind its oldest record, and those
        after ``at_most`` when it is given, are skipped and listed in
        ``recovery.skipped_snapshots``.
        """
        return next(self.snapshots(at_most), None)

    def snapshots(self, at_most: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Yield ``(seq, data)`` of every valid snapshot, newest first.

        A caller that cannot use one (say, its data no longer loads) takes the next: each
        yielded snapshot can be replayed from. Skipped snapshots, and those the caller
        passed over, are listed in ``recovery.skipped_snapshots`` with why.
        """
        skipped: list[SkippedSnapshot] = []
        self.recovery.skipped_snapshots = skipped
        for seq, path in reversed(list_snapshots(self.directory)):
            problem = self._snapshot_problem(seq)
            by_caller = problem is None and at_most is not None and seq > at_most
            if by_caller:
                problem = f"after seq {at_most}, the point to replay from"
            if problem is None:
                try:
                    data = read_snapshot(path, seq)
                except (SnapshotInvalid, OSError) as exc:
                    problem = str(exc)
                else:
                    yield seq, data
                    problem, by_caller = "passed over by the caller", True
            skipped.append(SkippedSnapshot(seq, problem, by_caller))

    def _snapshot_problem(self, seq: int) -> str | None:
        if seq > self.last_seq:
            return f"ahead of the journal (last seq {self.last_seq})"
        if seq + 1 < self.first_seq:
            return f"older than the journal's first record {self.first_seq}"
        return None

    def compact(self, before_seq: int) -> list[Path]:
        """Delete segments holding only records <= ``before_seq``; return the deleted paths.

        Never deletes the last segment, and never a record after the oldest valid snapshot,
        so falling back to any kept snapshot can still replay.
        """
        with self._lock:
            self._check_writable()
            valid = [
                seq
                for seq, path in list_snapshots(self.directory)
                if self._snapshot_problem(seq) is None and _readable(path, seq)
            ]
            if not valid:
                return []
            limit = min(before_seq, min(valid))
            removed: list[Path] = []
            while len(self._bases) > 1 and self._bases[1] <= limit + 1:
                path = self.directory / segment_name(self._bases[0])
                path.unlink()
                removed.append(path)
                self._bases.pop(0)
            if removed and self.fsync:
                fsync_dir(self.directory)
            return removed

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        """Close the segment file and release the directory lock; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._changed.notify_all()
            self._quiet_runway()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._lock_file.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _zeros_to_end(file: BinaryIO, offset: int, end: int) -> bool:
    """Whether bytes ``offset:end`` of ``file`` are all zeros."""
    file.seek(offset)
    while offset < end:
        chunk = file.read(min(READ_CHUNK, end - offset))
        if not chunk or chunk.count(0) != len(chunk):
            return False
        offset += len(chunk)
    return True


def _readable(path: Path, seq: int) -> bool:
    try:
        read_snapshot(path, seq)
    except (SnapshotInvalid, OSError):
        return False
    return True


def fork_child(run: Callable[[], None], what: str, nice: int = 0) -> int:
    """Run ``run`` in a forked copy of this process; return the child's pid.

    The child closes every inherited descriptor first, and this call returns only then: the
    listening socket and the data dir's locks never outlive this process through it. It
    restores the default handling of SIGINT and SIGTERM, lowers its priority by ``nice``,
    and exits with status 0 when ``run`` returns, 1 (saying why on stderr) when it raises.
    """
    ready, told = os.pipe()
    pid = os.fork()
    if pid:
        os.close(told)
        try:
            os.read(ready, 1)  # returns once the child has let go of every descriptor
        finally:
            os.close(ready)
        return pid
    status = 1  # pragma: no cover - runs in the child, which coverage does not follow
    try:
        os.closerange(3, told)
        os.closerange(told + 1, _MAX_FD)
        os.close(told)  # the parent's read returns
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        if nice:
            with contextlib.suppress(OSError):
                os.nice(nice)
        run()
        status = 0
    except BaseException as exc:
        with contextlib.suppress(Exception):
            os.write(2, f"cfx: {what} failed: {exc!r}\n".encode())
    finally:
        os._exit(status)
