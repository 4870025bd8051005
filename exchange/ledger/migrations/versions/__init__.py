"""One file per revision, oldest first: ``0001_initial``, ``0002_digest_append_only``."""
