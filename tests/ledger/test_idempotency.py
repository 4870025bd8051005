"""Idempotency keys: a replay after a crash posts nothing twice; a reused key is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from exchange.ledger import DuplicateTransaction, Entry, Ledger, Posting, Receipt
from tests.ledger.conftest import UrlFactory
from tests.ledger.postings import deposit, margin_lock, trade


def journal(n: int) -> list[Posting]:
    """The postings of ``n`` trades between two funded traders, keyed like the sequencer's."""
    postings = [deposit("1:1", "b", 1_000_000), deposit("2:1", "s", 1_000_000)]
    for seq in range(3, n + 3):
        postings.append(
            trade(
                f"{seq}:1",
                "b",
                "s",
                fee_buyer=seq,
                fee_seller=1,
                margin_buyer=100,
                margin_seller=100,
                time=seq,
            )
        )
    return postings


def test_posting_the_same_keys_twice_leaves_one_copy(ledger: Ledger) -> None:
    ledger.open_account("b")
    ledger.open_account("s")
    first = ledger.post_many(journal(50))
    after_first = (ledger.trial_balance(), ledger.check()["counts"])
    again = ledger.post_many(journal(50))
    assert [r.id for r in again] == [r.id for r in first]
    assert all(r.replayed for r in again) and not any(r.replayed for r in first)
    assert (ledger.trial_balance(), ledger.check()["counts"]) == after_first
    assert ledger.check()["counts"]["transactions"] == 52


def test_a_replay_after_a_crash_posts_only_the_missing_tail(new_url: UrlFactory) -> None:
    url = new_url()
    postings = journal(30)
    with Ledger(url) as before_crash:
        before_crash.open_account("b")
        before_crash.open_account("s")
        before_crash.post_many(postings[:20])  # the write-behind got this far
    with Ledger(url) as after_crash:  # the journal replay regenerates every posting
        receipts = after_crash.post_many(postings)
        assert [r.replayed for r in receipts] == [True] * 20 + [False] * 12
        assert [r.id for r in receipts] == list(range(1, 33))
        reference = after_crash.trial_balance()
        assert after_crash.check()["balanced"]
    with Ledger(new_url()) as straight:
        straight.open_account("b")
        straight.open_account("s")
        straight.post_many(postings)
        assert straight.trial_balance() == reference


def test_a_key_twice_in_one_batch_is_posted_once(ledger: Ledger) -> None:
    ledger.open_account("a")
    receipts = ledger.post_many(
        [deposit("d", "a", 10), margin_lock("m", "a", 4), deposit("d", "a", 10)]
    )
    assert receipts == [Receipt(1, "d"), Receipt(2, "m"), Receipt(1, "d", replayed=True)]
    assert ledger.balances("a")["available"] == 6


def test_a_key_reused_with_other_content_is_refused(ledger: Ledger) -> None:
    ledger.open_account("a")
    ledger.post(deposit("d", "a", 10, time=1))
    for other in (deposit("d", "a", 11, time=1), deposit("d", "a", 10, time=2)):
        with pytest.raises(DuplicateTransaction) as raised:
            ledger.post(other)
        assert raised.value.details["transaction_id"] == 1
    with pytest.raises(DuplicateTransaction):
        ledger.post_many([margin_lock("m", "a", 1), margin_lock("m", "a", 2)])
    assert ledger.balances("a")["available"] == 10


def test_line_order_and_mapping_form_do_not_change_the_content(ledger: Ledger) -> None:
    ledger.open_account("a")
    ledger.post(deposit("d", "a", 10))
    swapped = Posting(
        "d", "deposit", 0, (Entry("a", "available", 10), Entry("world", "external", -10))
    )
    as_mapping = {
        "key": "d",
        "kind": "deposit",
        "time": 0,
        "lines": [["world", "external", -10], ["a", "available", 10]],
    }
    assert ledger.post(swapped) == Receipt(1, "d", replayed=True)
    assert ledger.post(as_mapping) == Receipt(1, "d", replayed=True)


def test_concurrent_writers_never_overdraw_nor_double_post(
    make_ledger: Callable[..., Ledger], store: str
) -> None:
    import threading

    first = make_ledger()
    first.open_account("a")
    first.post(deposit("d", "a", 1_000))
    url = first.engine.url.render_as_string(hide_password=False)
    writers = [Ledger(url) for _ in range(4)]
    errors: list[BaseException] = []

    def spend(ledger: Ledger, n: int) -> None:
        for i in range(60):
            try:
                ledger.post_many(
                    [margin_lock(f"lock-{i}", "a", 10), margin_lock(f"own-{n}-{i}", "a", 10)]
                )
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=spend, args=(w, n)) for n, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in writers:
        w.close()
    assert {type(e).__name__ for e in errors} <= {"InsufficientFunds"}
    check = first.check()
    assert check["balanced"], check
    balances = first.balances("a")
    assert balances["available"] >= 0 and balances["available"] + balances["margin"] == 1_000
    # every shared key posted once: the margin moved is 10 per distinct key
    assert balances["margin"] == 10 * (check["counts"]["transactions"] - 1)
