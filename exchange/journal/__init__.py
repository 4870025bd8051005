"""The journal: the durable, checksummed record of every sequenced command.

The sequencer appends each batch of commands with :meth:`Journal.append_batch` (one write,
one fsync) before applying or acknowledging them; on start it loads
:meth:`Journal.latest_snapshot` and replays the records after it with
:meth:`Journal.replay`. See ``docs/journal.md``.
"""

from exchange.journal.errors import (
    JournalClosed,
    JournalCorrupt,
    JournalError,
    JournalLocked,
    JournalWriteError,
)
from exchange.journal.format import MAX_PAYLOAD
from exchange.journal.journal import (
    DEFAULT_KEEP_SNAPSHOTS,
    DEFAULT_SEGMENT_BYTES,
    Journal,
    RecoveryReport,
    SkippedSnapshot,
)

__all__ = [
    "DEFAULT_KEEP_SNAPSHOTS",
    "DEFAULT_SEGMENT_BYTES",
    "MAX_PAYLOAD",
    "Journal",
    "JournalClosed",
    "JournalCorrupt",
    "JournalError",
    "JournalLocked",
    "JournalWriteError",
    "RecoveryReport",
    "SkippedSnapshot",
]
