"""kill -9 a real appending process at random moments: every acknowledged batch survives."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from exchange.journal import Journal
from tests.journal.child import make_payload

CHILD = Path(__file__).with_name("child.py")
ROUNDS = 8


def run_and_kill(directory: Path, seed: int, delay: float) -> tuple[int, list[tuple[int, int]]]:
    """Run the appending child, SIGKILL it ``delay`` s after it is ready.

    Return the last seq it found on opening and the batches it acknowledged.
    """
    child = subprocess.Popen(
        [sys.executable, str(CHILD), "crash", str(directory), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # unbuffered: a buffered readline of "ready" could take the first acknowledged
        # batches with it, and communicate() below reads the pipe itself, never that buffer
        bufsize=0,
    )
    assert child.stdout is not None
    ready = child.stdout.readline().decode()
    assert ready.startswith("ready "), (ready, child.stderr.read() if child.stderr else b"")
    time.sleep(delay)
    os.kill(child.pid, signal.SIGKILL)
    output, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    *lines, _unfinished = output.decode().split("\n")
    batches = [(int(first), int(last)) for first, last in (line.split() for line in lines)]
    return int(ready.split()[1]), batches


def test_every_acknowledged_batch_survives_kill_9(tmp_path: Path) -> None:
    rng = random.Random(20261207)
    acknowledged = 0
    for round_ in range(ROUNDS):
        start, batches = run_and_kill(tmp_path, seed=round_, delay=rng.uniform(0.05, 0.4))
        assert start >= acknowledged  # the child reopened with everything acknowledged so far
        expected_first = start + 1
        for first, last in batches:
            assert first == expected_first
            expected_first = last + 1
            acknowledged = last
        with Journal(tmp_path) as journal:
            assert journal.last_seq >= acknowledged
            count = 0
            for seq, payload in journal.replay():
                assert payload == make_payload(seq)
                count += 1
            assert count == journal.last_seq
    assert acknowledged > 0
