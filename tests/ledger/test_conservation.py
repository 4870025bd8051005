"""A hypothesis state machine: random postings against a plain Python model of the balances.

Deposits, withdrawals, margin locks and releases, trades with fees and rebates, variation
margin, escrow, delivery obligations, deliveries, shortfalls, penalties, batches mixing
them, replays, reused keys, unbalanced postings and restarts. After every step the ledger's
check passes, every balance equals the model's, and no cent or GPU-hour was created or
destroyed: all USD balances (the world's included) and all GPU-hour balances sum to zero,
and the USD inside the exchange is deposits minus withdrawals.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from exchange.ledger import (
    NON_NEGATIVE,
    PARTICIPANT_ACCOUNTS,
    SYSTEM_ACCOUNTS,
    DuplicateTransaction,
    InsufficientFunds,
    InvalidTransaction,
    Ledger,
    LedgerError,
    Posting,
    UnbalancedTransaction,
)
from tests.ledger import postings as make
from tests.ledger.conftest import UrlFactory

CENTS = st.integers(min_value=1, max_value=20_000)
#: What each participant deposits when it is opened.
FUNDING = 200_000
HOURS = st.integers(min_value=1, max_value=48)

Model = dict[tuple[str, str], int]


def content(posting: Posting) -> tuple[Any, ...]:
    """What makes two postings under one key the same posting."""
    return posting.kind, posting.time, posting.memo, sorted(posting.lines)


class LedgerMachine(RuleBasedStateMachine):
    """Drive a ledger and a dict of expected balances side by side."""

    new_url: ClassVar[UrlFactory]

    def __init__(self) -> None:
        super().__init__()
        self.url = self.new_url()
        self.ledger = Ledger(self.url)
        self.model: Model = {(o, n): 0 for o, names in SYSTEM_ACCOUNTS.items() for n in names}
        self.deposits = 0
        self.withdrawals = 0
        self.posted: dict[str, Posting] = {}
        self.owners: list[str] = []
        self.seq = 0

    def teardown(self) -> None:
        self.ledger.close()

    # -- helpers ------------------------------------------------------------------------------
    def key(self) -> str:
        self.seq += 1
        return f"{self.seq}:1"

    def expect(
        self, batch: list[Posting]
    ) -> type[LedgerError] | tuple[Model, int, int, dict[str, Posting]]:
        """Apply ``batch`` to a copy of the model: the new state, or the refusal expected."""
        model, deposits, withdrawals, posted = (
            dict(self.model),
            self.deposits,
            self.withdrawals,
            dict(self.posted),
        )
        for posting in batch:
            if len(posting.lines) < 2:
                return InvalidTransaction
            for asset in ("USD", "GPUH"):
                if (
                    sum(
                        n
                        for o, a, n in posting.lines
                        if PARTICIPANT_ACCOUNTS.get(a, "USD") == asset
                    )
                    != 0
                ):
                    return UnbalancedTransaction
            earlier = posted.get(posting.key)
            if earlier is not None:
                if content(earlier) != content(posting):
                    return DuplicateTransaction
                continue
            for owner, account, amount in posting.lines:
                model[owner, account] += amount
                if (owner, account) == ("world", "external"):
                    if posting.kind == "deposit":
                        deposits -= amount
                    else:
                        withdrawals += amount
            for owner, account, _ in posting.lines:
                if (
                    owner not in SYSTEM_ACCOUNTS
                    and account in NON_NEGATIVE
                    and model[owner, account] < 0
                ):
                    return InsufficientFunds
            posted[posting.key] = posting
        return model, deposits, withdrawals, posted

    def attempt(self, batch: list[Posting]) -> None:
        """Post ``batch``; it must succeed or fail exactly as the model says."""
        expected = self.expect(batch)
        if isinstance(expected, tuple):
            receipts = self.ledger.post_many(batch)
            fresh = [p.key for p in batch if p.key not in self.posted]
            assert [r.key for r in receipts] == [p.key for p in batch]
            assert sum(not r.replayed for r in receipts) == len(fresh)
            self.model, self.deposits, self.withdrawals, self.posted = expected
            return
        with pytest.raises(LedgerError) as raised:
            self.ledger.post_many(batch)
        if len(batch) == 1:
            assert isinstance(raised.value, expected), (raised.value, expected)

    def draw_owner(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(self.owners))

    def draw_posting(self, data: st.DataObject) -> Posting:
        """A posting of any everyday kind, between drawn owners, possibly one refused."""
        kind = data.draw(
            st.sampled_from(
                ["deposit", "withdrawal", "lock", "release", "trade", "vm", "escrow", "obligation",
                 "delivery", "shortfall", "penalty"]
            )
        )  # fmt: skip
        a, b = self.draw_owner(data), self.draw_owner(data)
        key = self.key()
        time = self.seq
        if kind == "deposit":
            return make.deposit(key, a, data.draw(CENTS), time)
        if kind == "withdrawal":
            return make.withdrawal(key, a, data.draw(CENTS), time)
        if kind == "lock":
            return make.margin_lock(key, a, data.draw(CENTS), time)
        if kind == "release":
            return make.margin_release(key, a, data.draw(CENTS), time)
        if kind == "trade":
            fees = st.integers(min_value=-100, max_value=1_000)
            return make.trade(
                key, a, b, fee_buyer=data.draw(fees), fee_seller=data.draw(fees),
                margin_buyer=data.draw(CENTS), margin_seller=data.draw(CENTS), time=time,
            )  # fmt: skip
        if kind == "vm":
            return make.variation_margin(key, a, data.draw(st.integers(-50_000, 50_000)), time)
        if kind == "escrow":
            return make.escrow(key, a, data.draw(CENTS), time)
        if kind == "obligation":
            return make.obligation(key, a, b, data.draw(HOURS), time)
        if kind == "delivery":
            return make.delivery(key, a, b, data.draw(HOURS), data.draw(CENTS), time)
        if kind == "shortfall":
            return make.shortfall(key, a, b, data.draw(HOURS), data.draw(CENTS), time)
        return make.penalty(key, a, b, data.draw(CENTS), data.draw(st.integers(0, 100)), time)

    # -- rules --------------------------------------------------------------------------------
    @initialize()
    def open_first_participants(self) -> None:
        for owner, role in (("t1", "trader"), ("t2", "trader"), ("p1", "provider")):
            self.open(owner, role)

    def open(self, owner: str, role: str) -> None:
        self.ledger.open_account(owner, role)
        self.owners.append(owner)
        self.model.update({(owner, name): 0 for name in PARTICIPANT_ACCOUNTS})
        # fund the newcomer, with some cash in escrow, so most postings can go through
        self.attempt([make.deposit(self.key(), owner, FUNDING, self.seq)])
        self.attempt([make.escrow(self.key(), owner, FUNDING // 4, self.seq)])

    @rule(role=st.sampled_from(["trader", "provider"]))
    def open_participant(self, role: str) -> None:
        if len(self.owners) < 6:
            self.open(f"{role[0]}{len(self.owners) + 1}", role)

    @rule(data=st.data())
    def post_one(self, data: st.DataObject) -> None:
        self.attempt([self.draw_posting(data)])

    @rule(data=st.data(), cents=st.integers(1, 100_000))
    def deposit(self, data: st.DataObject, cents: int) -> None:
        self.attempt([make.deposit(self.key(), self.draw_owner(data), cents, self.seq)])

    @rule(
        data=st.data(),
        extra=st.integers(0, 1),
        kind=st.sampled_from(["withdrawal", "margin_lock", "escrow"]),
    )
    def spend_everything(self, data: st.DataObject, extra: int, kind: str) -> None:
        """Spend exactly the available cash (allowed) or one cent more (refused)."""
        owner = self.draw_owner(data)
        cents = self.model[owner, "available"] + extra
        if cents:
            build = {
                "withdrawal": make.withdrawal,
                "margin_lock": make.margin_lock,
                "escrow": make.escrow,
            }[kind]
            self.attempt([build(self.key(), owner, cents, self.seq)])

    @rule(data=st.data(), n=st.integers(2, 8))
    def post_batch(self, data: st.DataObject, n: int) -> None:
        batch = [self.draw_posting(data) for _ in range(n)]
        with_replay = data.draw(st.booleans())
        if self.posted and with_replay:
            batch.insert(
                data.draw(st.integers(0, n)),
                data.draw(st.sampled_from(sorted(self.posted.values(), key=lambda p: p.key))),
            )
        self.attempt(batch)

    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        if self.posted:
            keys = data.draw(st.lists(st.sampled_from(sorted(self.posted)), min_size=1, max_size=5))
            self.attempt([self.posted[k] for k in keys])

    @rule(data=st.data())
    def reuse_a_key(self, data: st.DataObject) -> None:
        if self.posted:
            earlier = self.posted[data.draw(st.sampled_from(sorted(self.posted)))]
            self.attempt(
                [Posting(earlier.key, earlier.kind, earlier.time + 1, earlier.lines, earlier.memo)]
            )

    @rule(data=st.data(), cents=CENTS, off=st.integers(-3, 3).filter(bool))
    def unbalanced(self, data: st.DataObject, cents: int, off: int) -> None:
        owner = self.draw_owner(data)
        self.attempt(
            [
                make.posting(
                    self.key(),
                    "fee",
                    (owner, "available", -cents),
                    ("exchange", "fees", cents + off),
                )
            ]
        )

    @rule()
    def restart(self) -> None:
        self.ledger.close()
        self.ledger = Ledger(self.url)

    # -- invariants ---------------------------------------------------------------------------
    @invariant()
    def ledger_matches_the_model(self) -> None:
        check = self.ledger.check()
        assert check["balanced"], check
        assert self.ledger.trial_balance() == self.model
        assert (check["deposits"], check["withdrawals"]) == (self.deposits, self.withdrawals)
        assert check["held"] == self.deposits - self.withdrawals
        assert check["counts"]["transactions"] == len(self.posted)
        usd = sum(
            v for (o, a), v in self.model.items() if PARTICIPANT_ACCOUNTS.get(a, "USD") == "USD"
        )
        gpuh = sum(v for (o, a), v in self.model.items() if PARTICIPANT_ACCOUNTS.get(a) == "GPUH")
        assert (usd, gpuh) == (0, 0)


def test_no_cent_or_gpu_hour_is_created_or_destroyed(new_url: UrlFactory) -> None:
    class Machine(LedgerMachine):
        pass

    Machine.new_url = staticmethod(new_url)  # type: ignore[assignment]
    run_state_machine_as_test(
        Machine, settings=settings(max_examples=20, stateful_step_count=25, deadline=None)
    )
