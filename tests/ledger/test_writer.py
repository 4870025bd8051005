"""Posting from the writer process: the same batches land, refusals come back, a dead
writer is replaced."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange.ledger import Ledger
from exchange.ledger.writer import WRITER_NICE, LedgerProcess, LedgerWriteFailed
from tests.ledger.postings import deposit, margin_lock


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Ledger, LedgerProcess]]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(url, auto_open=True)
    ledger.open_account("a")
    writer = LedgerProcess(url)
    yield ledger, writer
    writer.close()
    assert ledger.check()["balanced"]
    ledger.close()


def test_batches_posted_by_the_writer_are_in_the_ledger(
    stores: tuple[Ledger, LedgerProcess],
) -> None:
    ledger, writer = stores
    writer.post_many([deposit("d", "a", 5_00), margin_lock("m", "a", 1_00)])
    writer.post_many([margin_lock("m", "a", 1_00)])  # a replayed key changes nothing
    balances = ledger.balances("a")
    assert (balances["available"], balances["margin"]) == (4_00, 1_00)
    assert ledger.last_key() == "m"


def test_a_refused_batch_raises_and_writes_nothing(stores: tuple[Ledger, LedgerProcess]) -> None:
    ledger, writer = stores
    with pytest.raises(LedgerWriteFailed, match="InsufficientFunds"):
        writer.post_many([deposit("d", "a", 1_00), margin_lock("m", "a", 2_00)])
    assert ledger.balances("a").get("available", 0) == 0
    writer.post_many([deposit("d", "a", 1_00)])  # the same writer goes on
    assert ledger.balances("a")["available"] == 1_00


def test_a_writer_that_died_is_replaced(stores: tuple[Ledger, LedgerProcess]) -> None:
    ledger, writer = stores
    writer.post_many([deposit("d1", "a", 1_00)])
    assert writer._process is not None
    os.kill(writer._process.pid, signal.SIGKILL)
    writer._process.join()
    writer.post_many([deposit("d2", "a", 1_00)])
    assert writer.restarts == 1
    assert ledger.balances("a")["available"] == 2_00


def test_the_writer_outlives_a_ctrl_c_sent_to_the_process_group(
    stores: tuple[Ledger, LedgerProcess],
) -> None:
    """The server's stop still posts through the same child after Ctrl-C or a group SIGTERM."""
    ledger, writer = stores
    writer.post_many([deposit("d1", "a", 1_00)])
    assert writer._process is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        os.kill(writer._process.pid, sig)
    writer.post_many([deposit("d2", "a", 1_00)])
    assert writer._process.is_alive()
    assert writer.restarts == 0
    assert ledger.balances("a")["available"] == 2_00


def test_a_writer_that_never_answers_is_replaced_and_stops_nothing(tmp_path: Path) -> None:
    """A stuck child (a database that hangs) costs one bounded wait: the batch fails, a
    fresh child posts it, and closing does not wait on the stuck one."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(url, auto_open=True)
    ledger.open_account("a")
    # a child's first answer waits for it to start (imports, on a busy machine seconds)
    writer = LedgerProcess(url, answer_timeout_s=60.0)
    try:
        writer.post_many([deposit("d1", "a", 1_00)])
        os.kill(writer._process.pid, signal.SIGSTOP)  # stuck: alive, never answers
        writer.answer_timeout_s = 1.0
        with pytest.raises(LedgerWriteFailed, match="no answer in 1 s"):
            writer.post_many([deposit("d2", "a", 2_00)])
        writer.answer_timeout_s = 60.0
        writer.post_many([deposit("d2", "a", 2_00)])  # a fresh child
        assert ledger.balances("a")["available"] == 3_00 and writer.restarts == 1
    finally:
        writer.close()
        ledger.close()


def test_a_server_killed_mid_exchange_ends_the_writer_quietly(tmp_path: Path) -> None:
    """A server killed with bytes unread resets the pipe rather than closing it: the child
    ends as on an EOF, without a traceback, and keeps what it posted."""
    from exchange.ledger.writer import _serve

    class Killed:
        def __init__(self, fail_on: str) -> None:
            self.fail_on, self.sent = fail_on, []

        def recv(self) -> object:
            if self.fail_on == "recv" or self.sent:
                raise ConnectionResetError(104, "Connection reset by peer")
            return [deposit("k1", "a", 500)]

        def send(self, answer: object) -> None:
            if self.fail_on == "send":
                raise BrokenPipeError(32, "Broken pipe")
            self.sent.append(answer)

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger(url, auto_open=True).open_account("a")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:  # the child ignores both (its server stops it): not this test process for good
        for fail_on in ("recv", "send", "second recv"):
            _serve(url, Killed(fail_on))  # type: ignore[arg-type]
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    ledger = Ledger(url, auto_open=True)
    assert ledger.check()["balanced"] and ledger.balance("a") == 500  # posted once, kept
    ledger.close()


def test_the_writer_runs_at_a_lower_priority_than_the_server(
    stores: tuple[Ledger, LedgerProcess],
) -> None:
    _, writer = stores
    writer.post_many([deposit("d", "a", 1_00)])
    assert writer._process is not None
    server = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, writer._process.pid) == min(19, server + WRITER_NICE)
