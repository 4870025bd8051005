"""Journal errors: each carries a stable ``code`` for logs and API error bodies."""

from __future__ import annotations


class JournalError(Exception):
    """Base class of every error the journal raises."""

    code: str = "JOURNAL_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {super().__str__()}"


class JournalWriteError(JournalError):
    """An append or snapshot could not be made durable; nothing of it was kept.

    ``code`` is ``JOURNAL_WRITE_FAILED`` when the journal rolled the write back and stays
    usable (retry once the disk has room), ``SNAPSHOT_WRITE_FAILED`` for a snapshot, and
    ``JOURNAL_BROKEN`` when even the rollback failed: then every later append raises too,
    and the journal must be reopened. That append's fate is unknown: reopening cuts a torn
    record, but records written whole (the sync failed, not the write) are valid and kept.
    """

    code = "JOURNAL_WRITE_FAILED"

    def __init__(self, message: str, *, code: str | None = None, errno: int | None = None) -> None:
        super().__init__(message, code=code)
        self.errno = errno


class JournalCorrupt(JournalError):
    """Acknowledged records are damaged or missing; refusing to guess."""

    code = "JOURNAL_CORRUPT"


class JournalLocked(JournalError):
    """Another process (or another open Journal) already writes this directory."""

    code = "JOURNAL_LOCKED"


class JournalClosed(JournalError):
    """The journal was closed."""

    code = "JOURNAL_CLOSED"
