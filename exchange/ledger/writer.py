"""The ledger's write-behind in a process of its own.

The exchange posts to the ledger behind the journal, in batches. From a thread of the
server, the SQL layer's Python work (building parameters, checking each posting, chaining
digests) holds the interpreter lock the sequencer needs: on the 2-core benchmark machine it
cost a fifth of the websocket order rate at saturation, and at 6,000 orders/s it made the
p99 of acknowledgements 27 ms where it is 4 ms without it. :class:`LedgerProcess` runs
:meth:`Ledger.post_many` in a child process instead. The server sends each batch down a
pipe and waits for the answer in an executor thread, which holds no lock while it waits.

Nothing about what is posted changes: the same batches, in the same order, each in one
database transaction, with the same idempotency keys. A batch the child could not post comes
back as :class:`LedgerWriteFailed` and is kept by the caller to try again; a child that died
is started afresh on the next batch. The child ignores SIGINT and SIGTERM, so Ctrl-C in the
server's terminal does not take the ledger away from the server's last flush. Killed
together with the server, a child that was in the middle of a batch finishes or abandons
its transaction, and the restarted server's replay finds those keys posted or not: either
way nothing is posted twice.

The child runs at a lower priority (:data:`WRITER_NICE`): its work may wait a moment, the
sequencer's may not. Every acknowledgement waits for the sequencer's turn of the event loop,
while the ledger only has to keep up on average.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

#: Seconds to wait for the child's answer to one batch: a database that hangs (a lock wait,
#: a network partition) must not hang the server's ledger check and shutdown with it.
ANSWER_TIMEOUT_S = 60.0
#: Seconds a stopping child may take to finish its batch before it is killed.
STOP_TIMEOUT_S = 30.0
#: How much the child lowers its priority: as far as it goes. It still keeps up with the
#: websocket benchmark at saturation, and the sequencer gains most (docs/ledger.md).
WRITER_NICE = 19


class LedgerWriteFailed(Exception):
    """The writer process could not post a batch; nothing of it was written."""


def _serve(url: str, conn: Connection) -> None:  # in the child
    from exchange.ledger import Ledger

    # Ctrl-C in a terminal signals the whole process group, and a service manager may
    # terminate the group: the server stops this child itself, after its last batch (a
    # server that is gone closes the pipe, and the child ends on that).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # a container may forbid it: then at the same priority
        os.nice(WRITER_NICE)

    ledger = Ledger(url, auto_open=True)
    try:
        while True:
            try:
                batch = conn.recv()
            except (EOFError, OSError):  # the server is gone (killed: a reset, not an EOF)
                return
            if batch is None:
                return
            try:
                ledger.post_many(batch)
            except Exception as exc:
                answer: str | None = f"{type(exc).__name__}: {exc}"
            else:
                answer = None
            try:
                conn.send(answer)
            except OSError:  # the server died waiting: a restart replays what it lacks
                return
    finally:
        ledger.close()


class LedgerProcess:
    """A child process that posts batches to the ledger at ``url``, one at a time."""

    def __init__(self, url: str, answer_timeout_s: float = ANSWER_TIMEOUT_S) -> None:
        self.url = url
        self.answer_timeout_s = answer_timeout_s
        self._context = mp.get_context("spawn")
        self._conn: Connection | None = None
        self._process: Any = None
        self._starts = 0

    @property
    def restarts(self) -> int:
        """Writers started after the first, each in place of one that died."""
        return max(0, self._starts - 1)

    def _start(self) -> Connection:
        self._conn, child = self._context.Pipe()
        self._process = self._context.Process(
            target=_serve, args=(self.url, child), name="cfx-ledger-writer", daemon=True
        )
        self._process.start()
        child.close()
        self._starts += 1
        return self._conn

    def post_many(self, batch: Sequence[Mapping[str, Any]]) -> None:
        """Post ``batch`` in the child; raise :class:`LedgerWriteFailed` if it was not."""
        if self._process is None or not self._process.is_alive():
            self._stop(kill=True)
            self._start()
        assert self._conn is not None
        try:
            self._conn.send(batch)
            if not self._conn.poll(self.answer_timeout_s):
                # stuck (a database that does not answer): a fresh child takes the retry,
                # and whatever the stuck one committed is skipped then by its keys
                self._stop(kill=True)
                raise LedgerWriteFailed(
                    f"the ledger writer gave no answer in {self.answer_timeout_s:g} s"
                )
            answer = self._conn.recv()
        except (EOFError, OSError) as exc:  # the child died: a fresh one takes the retry
            self._stop(kill=True)
            raise LedgerWriteFailed(f"the ledger writer process stopped: {exc!r}") from exc
        if answer is not None:
            raise LedgerWriteFailed(answer)

    def _stop(self, kill: bool) -> None:
        """Stop the child: after the batch it has (``kill=False``), or at once."""
        if self._conn is not None and not kill:
            with contextlib.suppress(OSError):
                self._conn.send(None)
        if self._process is not None:
            if not kill:
                self._process.join(STOP_TIMEOUT_S)
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
        if self._conn is not None:
            self._conn.close()
        self._conn = self._process = None

    def close(self) -> None:
        """Let the child finish the batch it has, then stop it."""
        self._stop(kill=False)
