"""Programs the journal tests run in a child process (kill -9, file size limits).

``python child.py crash DIR SEED``: append random batches forever, printing ``first last``
after each append returns. ``python child.py fsize DIR LIMIT``: append until the file size
limit refuses a write, then lift the limit and append again; print a JSON report.
"""

from __future__ import annotations

import json
import random
import resource
import signal
import sys
from pathlib import Path

from exchange.journal import Journal, JournalWriteError


def make_payload(seq: int) -> bytes:
    """Return the payload the crash child writes at ``seq``: its length also depends on seq."""
    return f"{seq}|".encode() * (1 + (seq * 7919) % 300)


def crash(directory: Path, seed: int) -> None:
    rng = random.Random(seed)
    with Journal(directory, segment_bytes=256 << 10) as journal:
        print(f"ready {journal.last_seq} {journal.recovery.truncated_bytes}", flush=True)
        while True:
            seq = journal.next_seq
            size = rng.choice((1, 2, 8, 64, 256))
            first, last = journal.append_batch([make_payload(s) for s in range(seq, seq + size)])
            print(f"{first} {last}", flush=True)


def fsize(directory: Path, limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    report: dict[str, object] = {}
    with Journal(directory) as journal:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            while True:
                journal.append_batch([b"y" * 1000] * 3)
        except JournalWriteError as exc:
            report.update(code=exc.code, errno=exc.errno, last_seq=journal.last_seq)
        report["size_after_failure"] = journal.segments[-1].stat().st_size
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        report["retry"] = list(journal.append_batch([b"after"]))
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    mode, target, number = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    {"crash": crash, "fsize": fsize}[mode](target, number)
