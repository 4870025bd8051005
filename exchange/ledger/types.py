"""The ledger's vocabulary: assets, roles, sub-accounts, kinds, and the posting types.

A posting is a plain value: an idempotency key, a kind, a time (integer nanoseconds since
the Unix epoch, passed in, never read from a clock), a memo, and lines of
``(owner, account, amount)``. The asset of a line follows from its account's name, so a
posting can be checked for balance before it reaches the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from exchange.ledger.errors import InvalidTransaction, UnbalancedTransaction, UnknownAccount


class Asset(StrEnum):
    """What a line moves: US cents or whole GPU-hours, always integers."""

    USD = "USD"
    GPUH = "GPUH"


class Role(StrEnum):
    """Who owns an account: a participant (trader, provider), the exchange, or the world."""

    TRADER = "trader"
    PROVIDER = "provider"
    EXCHANGE = "exchange"
    WORLD = "world"


class Kind(StrEnum):
    """What a transaction is for; only deposits and withdrawals may touch ``external``."""

    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    MARGIN = "margin"
    MARGIN_LOCK = "margin_lock"
    MARGIN_RELEASE = "margin_release"
    TRADE = "trade"
    FEE = "fee"
    TRADE_FEE = "trade_fee"
    VARIATION_MARGIN = "variation_margin"
    ESCROW = "escrow"
    ESCROW_RELEASE = "escrow_release"
    DELIVERY_OBLIGATION = "delivery_obligation"
    DELIVERY_PAYMENT = "delivery_payment"
    DELIVERY_REFUND = "delivery_refund"
    DELIVERY_SHORTFALL = "delivery_shortfall"
    PENALTY = "penalty"


#: The owner name of the exchange's own accounts.
EXCHANGE = "exchange"
#: The owner name of the outside world, where deposits come from and withdrawals go.
WORLD = "world"
#: Sub-accounts every participant has, and the asset each holds.
PARTICIPANT_ACCOUNTS: dict[str, Asset] = {
    "available": Asset.USD,  # free cash: margins new orders, can be withdrawn
    "margin": Asset.USD,  # initial margin locked against positions and open orders
    "escrow": Asset.USD,  # delivery escrow: the invoice of GPU-hours bought, not yet paid out
    "gpuh_owed": Asset.GPUH,  # delivery obligations: < 0 owes hours, > 0 is owed hours
    "gpuh_delivered": Asset.GPUH,  # hours delivered: < 0 handed over, > 0 received
}
#: The exchange's accounts and the world's one account.
SYSTEM_ACCOUNTS: dict[str, dict[str, Asset]] = {
    EXCHANGE: {"fees": Asset.USD, "clearing": Asset.USD, "penalties": Asset.USD},
    WORLD: {"external": Asset.USD},
}
#: The role of each system owner.
SYSTEM_ROLES: dict[str, Role] = {EXCHANGE: Role.EXCHANGE, WORLD: Role.WORLD}
#: Participant sub-accounts that may never go below zero.
NON_NEGATIVE = frozenset({"available", "margin", "escrow"})
#: The longest owner name, sub-account name and idempotency key.
MAX_OWNER = 64
MAX_KEY = 128
MAX_MEMO = 4096
#: The largest magnitude of one line: far below 2**63 so sums of lines stay in int64.
MAX_AMOUNT = 2**53
#: The largest time (nanoseconds) a BIGINT holds.
MAX_TIME = 2**63 - 1

_KINDS = frozenset(k.value for k in Kind)
_EXTERNAL_KINDS = frozenset({Kind.DEPOSIT.value, Kind.WITHDRAWAL.value})


def asset_of(owner: str, account: str) -> Asset:
    """Return the asset ``account`` of ``owner`` holds; raise :class:`UnknownAccount`."""
    system = SYSTEM_ACCOUNTS.get(owner)
    names = system if system is not None else PARTICIPANT_ACCOUNTS
    asset = names.get(account)
    if asset is None:
        raise UnknownAccount(f"{owner!r} has no account {account!r}", owner=owner, account=account)
    return asset


class Entry(NamedTuple):
    """One line of a posting: ``amount`` (cents or GPU-hours, signed) on ``owner``'s ``account``."""

    owner: str
    account: str
    amount: int


@dataclass(frozen=True, slots=True)
class Posting:
    """One balanced transaction to post, named by its idempotency ``key``."""

    key: str
    kind: str
    time: int
    lines: tuple[Entry, ...]
    memo: str = ""

    @classmethod
    def of(cls, value: Posting | Mapping[str, Any]) -> Posting:
        """Return ``value`` as a :class:`Posting`; a mapping has ``key``, ``kind``, ``time``,
        ``lines`` of ``(owner, account, amount)`` and optionally ``memo``."""
        if isinstance(value, Posting):
            return value
        if not isinstance(value, Mapping):
            raise InvalidTransaction(f"a posting is a Posting or a mapping, not {type(value)}")
        try:
            lines = value["lines"]
            return cls(
                key=value["key"],
                kind=value["kind"],
                time=value["time"],
                lines=tuple(Entry(*line) for line in lines),
                memo=value.get("memo", ""),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidTransaction(f"malformed posting: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Checked:
    """A posting that passed every check the database is not needed for."""

    posting: Posting
    assets: tuple[Asset, ...]
    digest: str


def _bad(posting: Posting, message: str) -> InvalidTransaction:
    return InvalidTransaction(message, key=posting.key)


def check_posting(posting: Posting) -> Checked:
    """Validate ``posting`` on its own: shape, types, known accounts, balance per asset.

    Raise :class:`InvalidTransaction`, :class:`UnknownAccount` or
    :class:`UnbalancedTransaction`; return the line assets and the content digest.
    """
    key, kind, time, memo = posting.key, posting.kind, posting.time, posting.memo
    if type(key) is not str or not 0 < len(key) <= MAX_KEY:
        raise _bad(posting, f"key must be a string of 1 to {MAX_KEY} characters")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise _bad(posting, f"unknown kind {kind!r}")
    if type(time) is not int or not 0 <= time <= MAX_TIME:
        raise _bad(posting, "time must be a non-negative integer of nanoseconds")
    if type(memo) is not str or len(memo) > MAX_MEMO:
        raise _bad(posting, f"memo must be a string of at most {MAX_MEMO} characters")
    lines = posting.lines
    if len(lines) < 2:
        raise _bad(posting, "a transaction needs at least two lines")
    assets = []
    usd = gpuh = external = 0
    touches_world = False
    for owner, account, amount in lines:
        if type(owner) is not str or not 0 < len(owner) <= MAX_OWNER:
            raise _bad(posting, f"owner must be a string of 1 to {MAX_OWNER} characters")
        if type(amount) is not int or amount == 0 or not -MAX_AMOUNT <= amount <= MAX_AMOUNT:
            raise _bad(posting, f"amount must be a non-zero integer, |amount| <= 2**53: {amount!r}")
        # the fast path of asset_of, which raises UnknownAccount for a name it lacks
        asset = SYSTEM_ACCOUNTS.get(owner, PARTICIPANT_ACCOUNTS).get(account) or asset_of(
            owner, account
        )
        if asset is Asset.USD:
            usd += amount
            if account == "external":
                external += amount
                touches_world = True
        else:
            gpuh += amount
        assets.append(asset)
    if usd or gpuh:
        raise UnbalancedTransaction(
            f"lines sum to {usd} USD cents and {gpuh} GPU-hours, not zero",
            key=key,
            usd=usd,
            gpuh=gpuh,
        )
    if kind in _EXTERNAL_KINDS:
        if (kind == Kind.DEPOSIT and external >= 0) or (kind == Kind.WITHDRAWAL and external <= 0):
            raise _bad(posting, f"a {kind} moves money {'from' if kind == Kind.DEPOSIT else 'to'} "
                       "world/external")  # fmt: skip
    elif touches_world:
        raise _bad(posting, "only deposits and withdrawals may touch world/external")
    return Checked(posting, tuple(assets), digest(posting))


def digest(posting: Posting) -> str:
    """Return a fingerprint of the posting's content (not its key), lines in any order.

    The hashed text is unambiguous: kinds, account names and integers hold no separator,
    and the two free strings, memo and owner, are length-prefixed.
    """
    memo = posting.memo
    text = f"{posting.kind}\x1f{posting.time}\x1f{len(memo)}:{memo}" + "".join(
        [f"\x1e{len(o)}:{o}\x1f{a}\x1f{n}" for o, a, n in sorted(posting.lines)]
    )
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Receipt:
    """What :meth:`Ledger.post` returns: the transaction's id and whether it was a replay."""

    id: int
    key: str
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Account:
    """One sub-account: its id, owner, name, asset and the owner's role."""

    id: int
    owner: str
    name: str
    asset: Asset
    role: Role


@dataclass(frozen=True, slots=True)
class Transaction:
    """A posted transaction with all its lines, as stored."""

    id: int
    key: str
    kind: str
    time: int
    memo: str
    lines: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line on one of an owner's accounts, with its transaction's header."""

    transaction_id: int
    key: str
    kind: str
    time: int
    memo: str
    account: str
    asset: Asset
    amount: int


def entries(lines: Iterable[tuple[str, str, int]]) -> tuple[Entry, ...]:
    """Return ``lines`` as a tuple of :class:`Entry`."""
    return tuple(Entry(*line) for line in lines)
