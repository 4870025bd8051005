"""Snapshots from a process that follows the journal, so the sequencer never stops for one.

A snapshot forked from the sequencer costs it the fork itself: copying the page tables of a
process of a few hundred megabytes stops the event loop for 5-10 ms, which is most of an
order's latency budget at 10,000 orders/s. Instead, once at start, the server forks a
*follower*: a copy of the state at that moment, which then reads every record the sequencer
makes durable from the journal's files, applies it exactly as a restart would replay it, and
writes the snapshot at every ``snapshot_every``-th seq itself.

The sequencer tells the follower how far the journal is durable through eight bytes of
shared memory, written after each batch (a store, no system call). The follower reads no
further than that: a record written but not yet synced could still be cut back if its sync
failed, and a snapshot must hold only what a restart replays.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import logging
import mmap
import os
import signal
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson

from exchange.journal.errors import JournalCorrupt, JournalError
from exchange.journal.format import (
    MAX_PAYLOAD,
    RECORD_HEADER,
    SEGMENT_HEADER,
    check_segment_header,
    parse_segment_name,
    segment_name,
)
from exchange.journal.journal import fork_child
from exchange.journal.snapshots import prune_snapshots, write_snapshot_file
from exchange.sequencer.state import ExchangeState, Refused

log = logging.getLogger(__name__)

#: How long the follower sleeps when it has caught up with the durable journal.
POLL_S = 0.005
#: Bytes read from a segment at a time.
READ_CHUNK = 1 << 20
#: The follower runs on the CPU time the server and its clients leave idle: at nice 5 it
#: took enough from a loaded 2-core machine to double the server's p99 at 8,000-10,000
#: orders/s; at 19 it still kept up (docs/journal.md).
FOLLOWER_NICE = 19
#: Shared by the server and its follower: the durable seq (the server writes it), 1 once the
#: follower is asked to stop, and the seq the follower has applied (and snapshotted if due).
_SHARED = struct.Struct("<qqq")
_DURABLE, _STOP, _APPLIED = 0, 8, 16  # their offsets
_WORD = struct.Struct("<q")
#: Fewest CPUs on which ``cfx serve`` snapshots through a follower by default. It replays
#: every command (17% of a core at 10,000 commands/s): on 2 cores, shared with a load
#: generator, that cost the server more p99 at 8,000-10,000 orders/s than the forks it
#: saves (bench/README.md); with cores to spare, the fork's 5-10 ms is all that is left.
FOLLOWER_MIN_CPUS = 4


class JournalTail:
    """Reads a journal's records in order as its writer appends them, from another process.

    It never writes or cuts anything. Every record is checked (length, seq, crc) as
    :func:`exchange.journal.format.scan_records` checks it.
    """

    def __init__(self, directory: Path, after_seq: int) -> None:
        self.directory = directory
        self.next_seq = after_seq + 1
        self._fd = -1
        self._offset = 0
        self._base = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _open(self, base: int) -> None:
        self.close()
        path = self.directory / segment_name(base)
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        problem = check_segment_header(os.pread(self._fd, SEGMENT_HEADER.size, 0), base)
        if problem is not None:
            raise JournalCorrupt(f"{path.name}: {problem}")
        self._offset = SEGMENT_HEADER.size
        self._base = base

    def _seek(self) -> None:
        """Open the segment holding ``next_seq`` and move to its record."""
        bases = sorted(
            base for base in map(parse_segment_name, os.listdir(self.directory)) if base is not None
        )
        i = bisect.bisect_right(bases, self.next_seq) - 1
        if i < 0:
            raise JournalCorrupt(f"record {self.next_seq} is no longer in the journal")
        self._open(bases[i])
        wanted, self.next_seq = self.next_seq, bases[i]
        for _ in self.read(wanted - 1):  # check the records before it on the way
            pass

    def read(self, upto: int) -> Iterator[tuple[int, bytes]]:
        """Yield ``(seq, payload)`` of the records from ``next_seq`` to ``upto``, all of which
        the writer has made durable; raise :class:`JournalCorrupt` if one is not whole."""
        if self._fd < 0 and self.next_seq <= upto:
            self._seek()
        unpack = RECORD_HEADER.unpack_from
        header = RECORD_HEADER.size
        while self.next_seq <= upto:
            at = self._offset  # file offset of data[0]
            data = os.pread(self._fd, READ_CHUNK, at)
            off = 0
            while self.next_seq <= upto and off + header <= len(data):
                length, crc, seq = unpack(data, off)
                stop = off + header + length
                if length > MAX_PAYLOAD or seq != self.next_seq:
                    break
                if stop > len(data):
                    if off == 0:  # a record bigger than the chunk: read it whole
                        data = os.pread(self._fd, header + length, at)
                        if len(data) < header + length:
                            break
                        continue
                    break
                if zlib.crc32(data[off + 8 : stop]) != crc:
                    raise JournalCorrupt(
                        f"{segment_name(self._base)}: bad crc at offset {at + off} (seq {seq})"
                    )
                # past it before handing it out: a caller that stops here resumes after it
                self.next_seq += 1
                self._offset = at + stop
                yield seq, data[off + header : stop]
                off = stop
            if off or self.next_seq > upto:
                continue
            # no whole record here: the segment ended (zeros or its end), the next holds it
            if not (self.directory / segment_name(self.next_seq)).exists():
                raise JournalCorrupt(
                    f"record {self.next_seq} is durable but not in {segment_name(self._base)} "
                    "or a segment of its own"
                )
            self._open(self.next_seq)


class SnapshotFollower:
    """The parent's handle on the follower process (see the module's docstring)."""

    def __init__(self, directory: Path, snapshot_every: int, keep: int, fsync: bool) -> None:
        self.directory = directory
        self.snapshot_every = snapshot_every
        self.keep = keep
        self.fsync = fsync
        self._shared = mmap.mmap(-1, _SHARED.size)  # MAP_SHARED: the child sees the stores
        self.pid = 0
        self.exit_code: int | None = None
        self._reaper: threading.Thread | None = None

    def start(self, state: ExchangeState) -> None:
        """Fork the follower with ``state`` (the state at the journal's last durable record)."""
        _SHARED.pack_into(self._shared, 0, state.seq, 0, state.seq)
        parent = os.getpid()
        args = (self.directory, state, self.snapshot_every, self.keep, self.fsync)
        self.pid = fork_child(
            lambda: follow(*args, self._shared, parent), "snapshot follower", nice=FOLLOWER_NICE
        )
        self._reaper = threading.Thread(target=self._reap, name="snapshot-follower", daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        _, status = os.waitpid(self.pid, 0)
        self.exit_code = os.waitstatus_to_exitcode(status)
        if not _WORD.unpack_from(self._shared, _STOP)[0]:
            log.error(
                "the snapshot follower exited (status %d); snapshots fork from now on",
                self.exit_code,
            )

    @property
    def alive(self) -> bool:
        return self._reaper is not None and self.exit_code is None

    @property
    def applied(self) -> int:
        """The seq the follower has applied, and written the snapshot of if one was due."""
        return int(_WORD.unpack_from(self._shared, _APPLIED)[0])

    def durable(self, seq: int) -> None:
        """Let the follower read up to ``seq``: every record to it is durable."""
        _WORD.pack_into(self._shared, _DURABLE, seq)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the follower to stop (it finishes the record it is on) and wait for it."""
        if self._reaper is None:
            return
        _WORD.pack_into(self._shared, _STOP, 1)
        self._reaper.join(timeout)
        if self._reaper.is_alive():
            log.error("the snapshot follower did not stop in %.0f s; killed", timeout)
            self.kill()

    def kill(self) -> None:
        """Stop the follower at once (SIGKILL), wherever it is."""
        if self._reaper is None:
            return
        _WORD.pack_into(self._shared, _STOP, 1)
        if self.exit_code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self._reaper.join()


def follow(
    directory: Path,
    state: ExchangeState,
    snapshot_every: int,
    keep: int,
    fsync: bool,
    shared: mmap.mmap,
    parent: int,
) -> None:
    """The follower's loop: apply what is durable, snapshot every ``snapshot_every``-th seq.

    Stops when asked, or when the parent is gone (killed: its successor forks another).
    """
    from exchange.sequencer.loop import snapshot_state

    # Ctrl-C or a service manager signals the whole process group: the follower stops when
    # the server asks, or once it is gone, never halfway through a snapshot on a signal
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    gc.freeze()  # what the fork handed over stays shared with the parent, unscanned
    # no answers, feeds or postings: only the state (snapshots leave these flags out)
    state.replaying, state.posted_to = True, 2**63 - 1
    tail = JournalTail(directory, state.seq)
    try:
        while True:
            durable, stop, _ = _SHARED.unpack_from(shared)
            if stop or os.getppid() != parent:
                return
            if durable <= state.seq:
                time.sleep(POLL_S)
                continue
            for seq, payload in tail.read(durable):
                with contextlib.suppress(Refused):  # refused: changed nothing, as live
                    state.apply(seq, orjson.loads(payload))
                if seq % snapshot_every == 0:
                    if os.getppid() != parent:  # a successor may be running on the data dir
                        return
                    try:
                        write_snapshot_file(directory, seq, snapshot_state(state), fsync)
                        prune_snapshots(directory, keep, fsync)
                    except (JournalError, OSError) as exc:  # a full disk: the journal recovers
                        os.write(2, f"cfx: snapshot {seq} not written: {exc!r}\n".encode())
                if _WORD.unpack_from(shared, _STOP)[0]:
                    return
            _WORD.pack_into(shared, _APPLIED, state.seq)
    finally:
        tail.close()
