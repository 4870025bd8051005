"""The exchange's whole state and the one function that changes it.

:class:`ExchangeState` is deterministic and single-writer: :meth:`ExchangeState.apply` takes
one sequenced command (a dict, as journaled) and returns its :class:`Outcome`. Replaying the
journal's commands into a fresh state rebuilds exactly the same state, events and ledger
postings. Nothing here reads a clock or does I/O: time arrives in each command's ``ts``.

Money is integer cents, prices integer ticks, quantities integer GPU-hours.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from exchange.clearing.positions import Position, fee_cents, margin_cents, worst_case_quantity
from exchange.clearing.settlement import assign_deliveries, settlement_price
from exchange.engine import (
    ACCEPTED,
    ADD,
    AMEND,
    AMENDED,
    AUCTION,
    BATCH,
    BUY,
    CANCEL,
    CANCELLED,
    CONTINUOUS,
    EVENT_DTYPE,
    FOK,
    GTC,
    IOC,
    MARKET,
    POST_ONLY,
    REJECTED,
    SELL,
    STP_CANCEL_BOTH,
    STP_CANCEL_NEWEST,
    STP_CANCEL_OLDEST,
    STP_NONE,
    TRADE,
    Engine,
)
from exchange.reasons import Reason
from exchange.sequencer.client_ids import ClientOrderIds
from exchange.sequencer.orders import CancelReason, Order, OrderStore

NS = 1_000_000_000
DAY_NS = 86_400 * NS

SIDES = {"buy": BUY, "sell": SELL}
SIDE_NAMES = {BUY: "buy", SELL: "sell"}
TIFS = {"GTC": GTC, "IOC": IOC, "FOK": FOK}
STPS = {
    "none": STP_NONE,
    "cancel_newest": STP_CANCEL_NEWEST,
    "cancel_oldest": STP_CANCEL_OLDEST,
    "cancel_both": STP_CANCEL_BOTH,
}

# Where the fields sit in a row of ``events.tolist()``: reading the rows as plain ints once
# is much cheaper than reading numpy fields one by one.
_FIELD = {name: i for i, name in enumerate(EVENT_DTYPE.names or ())}
_KIND, _ORDER_ID, _MAKER_ORDER_ID = _FIELD["kind"], _FIELD["order_id"], _FIELD["maker_order_id"]
_ACCOUNT, _MAKER_ACCOUNT = _FIELD["account"], _FIELD["maker_account"]
_PRICE, _QUANTITY, _REASON = _FIELD["price"], _FIELD["quantity"], _FIELD["reason"]
#: An order's ``cancel_reason`` from the reason of the engine's CANCELLED event.
_CANCEL_REASONS: dict[int, CancelReason] = {
    Reason.CANCELLED_BY_USER: "user",
    Reason.SELF_TRADE: "self_trade",
    Reason.IOC_REMAINDER: "ioc_remainder",
    Reason.FOK_NOT_FILLED: "fok_not_filled",
    Reason.MARKET_NO_LIQUIDITY: "no_liquidity",
}


def _own(events: np.ndarray) -> np.ndarray:
    """A copy of the engine's events that outlives its next call.

    The same dtype, shape and bytes as ``events.copy()``, which is several times slower for
    the aligned structured dtype.
    """
    return np.frombuffer(bytearray(events.tobytes()), dtype=events.dtype)


#: Seconds a used request signature is remembered (the signing window is 30 s either way).
SIGNATURE_MEMORY_S = 65


def spending(signature: str, now_s: float) -> dict[str, Any]:
    """The fields a single-use request's command carries, ``sig`` and ``sig_at`` (the
    gateway's wall-clock second), for :meth:`ExchangeState.apply` to spend its signature."""
    return {"sig": signature.lower(), "sig_at": int(now_s)}


class Refused(Exception):
    """A command refused with a stable reason code; the state did not change."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        #: what the command's time ran before the refusal (scheduled events), if anything
        self.outcome: Outcome | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (Refused, (self.reason, self.message))


@dataclass
class Contract:
    """A listed contract as the exchange trades it (integers only)."""

    symbol: str
    product: str
    book: int
    delivery_start: int  # ns
    delivery_end: int  # ns
    last_trade_time: int  # ns
    tick_cents: int
    margin_bps: int
    band_bps: int
    maker_fee_bps: int
    taker_fee_bps: int
    reference: int  # ticks: last settlement price, else the product default
    mechanism: int = CONTINUOUS
    batch_interval_ns: int = 0
    status: str = "trading"
    halted: bool = False
    last_price: int | None = None
    final_price: int | None = None
    settlements: list[tuple[int, int]] = field(default_factory=list)  # (time ns, ticks)
    trades: list[tuple[int, int, int]] = field(default_factory=list)  # today's (ns, price, qty)

    @property
    def trading(self) -> bool:
        return self.status == "trading" and not self.halted

    @property
    def book_open(self) -> bool:
        """Whether the engine holds the contract's book: from listing until expiry removes it."""
        return self.status in ("listed", "trading")


@dataclass
class Account:
    account_id: int
    name: str
    role: str
    available: int = 0
    margin: int = 0
    escrow: int = 0
    disabled: bool = False
    positions: dict[str, Position] = field(default_factory=dict)
    open_buy: dict[str, int] = field(default_factory=dict)
    open_sell: dict[str, int] = field(default_factory=dict)
    open_orders: int = 0
    bond: int = 0  # cents of margin held for the penalty on GPU-hours still owed


@dataclass
class Delivery:
    delivery_id: int
    symbol: str
    provider: int
    consumer: int
    gpu_hours: int
    price: int  # ticks
    tick_cents: int
    status: str = "pending"
    attested: int = 0
    disputed: int = 0
    attestations: list[dict[str, Any]] = field(default_factory=list)
    disputes: list[dict[str, Any]] = field(default_factory=list)
    settle_at: int = 0

    @property
    def amount_cents(self) -> int:
        return self.gpu_hours * self.price * self.tick_cents


@dataclass
class Outcome:
    """What one command did: a reply for its sender, and what the rest of the pipeline needs."""

    reply: Any = None
    events: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (symbol, engine events)
    trades: list[dict[str, Any]] = field(default_factory=list)
    postings: list[dict[str, Any]] = field(default_factory=list)
    touched_accounts: set[int] = field(default_factory=set)
    ran: list[dict[str, Any]] = field(default_factory=list)  # scheduled events that ran


@dataclass
class Rules:
    """Exchange-wide rules; every default is documented in docs/clearing.md."""

    maker_fee_bps: int = 0
    taker_fee_bps: int = 10
    n_ticks: int = 100_000
    max_order_quantity: int = 100_000
    position_limit: int = 1_000_000
    max_open_orders: int = 1_000
    settlement_window_ns: int = 30 * 60 * NS
    grace_ns: int = 24 * 3600 * NS
    penalty_bps: int = 5_000  # of the shortfall's invoice value, paid by the provider
    #: Which rules apply. 1: orders are checked against cash when placed, and only
    #: then. 2: also margin calls at scheduled events, and an order that does not raise the
    #: account's requirement is accepted whatever its cash (docs/clearing.md); dead man's
    #: switches that fire together cancel in one pass, in order id order. 3: an order placed
    #: in a batch-auction contract applies its self-trade prevention to the account's own
    #: orders it crosses, when it arrives (docs/engine.md), so an auction never pairs them.
    #: 4: an attestation's period must be two ISO 8601 times inside the delivery window,
    #: ending by the time it is made (docs/clearing.md).
    #: A fresh state starts at 1 and the exchange raises it by a journaled ``rules``
    #: command, so a journal written before a version existed replays as it ran.
    risk_version: int = 1


#: The rules this build applies to new commands (:attr:`Rules.risk_version`).
RISK_VERSION = 4


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def listing(spec: Any, rules: Rules) -> dict[str, Any]:
    """The ``list`` command for a :class:`contracts.ContractSpec`."""
    return {
        "op": "list",
        "symbol": str(spec.symbol),
        "product": spec.product,
        "delivery_start": to_ns(spec.delivery_start),
        "delivery_end": to_ns(spec.delivery_end),
        "last_trade_time": to_ns(spec.last_trade_time),
        "tick_cents": spec.tick_cents,
        "margin_bps": spec.initial_margin_bps,
        "band_bps": spec.price_band_bps,
        "maker_fee_bps": rules.maker_fee_bps,
        "taker_fee_bps": rules.taker_fee_bps,
        "reference": spec.reference_price,
        "mechanism": str(spec.mechanism),
        "batch_interval_s": spec.batch_interval_s,
        "n_ticks": rules.n_ticks,
    }


def iso(ns: int) -> str:
    """Format nanoseconds since the epoch as ISO 8601 UTC with milliseconds."""
    dt = _EPOCH + timedelta(microseconds=ns // 1000)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_ns(dt: datetime) -> int:
    """Convert an aware datetime to integer nanoseconds since the epoch."""
    delta = dt - _EPOCH
    return (delta // timedelta(microseconds=1)) * 1000


class ExchangeState:
    """Everything the exchange knows; changed only by :meth:`apply`."""

    #: True while a journal is replayed into the state: :meth:`apply` then leaves out what
    #: only a live command's answer and the live feeds use (the order view of the reply,
    #: the copy of the engine's events for market data), and the ledger postings of the
    #: commands up to ``posted_to``, which the ledger already holds. Neither is part of the
    #: state: the same commands change it exactly as when they ran live.
    replaying = False
    posted_to = 0
    #: The sequence number of the command at whose scheduled events margin calls last ran
    #: (a class default: states from before it was kept run them at their next moment).
    _margin_called_at = -1
    #: Signatures of single-use requests already carried out, with the wall-clock second the
    #: gateway took each (``sig`` and ``sig_at`` in their commands), oldest first: journaled
    #: with the commands, so a restart still refuses a used one (a class default: states from
    #: before it was kept start with none).
    signatures: dict[str, int] | None = None

    def __init__(
        self, backend: str = "numba", rules: Rules | None = None, calendar: Any = None
    ) -> None:
        self.engine = Engine(backend=backend)
        self.rules = rules or Rules()
        self.calendar = calendar  # a contracts.ListingCalendar, or None to list by command only
        self.contracts: dict[str, Contract] = {}
        self.by_book: dict[int, str] = {}
        self.accounts: dict[int, Account] = {}
        self._armed_switches: dict[int, int] = {}  # dead man's switches: account -> deadline
        self.orders = OrderStore()
        self.client_ids = ClientOrderIds()
        self.deliveries: dict[int, Delivery] = {}
        self.api_keys: dict[str, int] = {}
        self.index: dict[str, list[tuple[int, int, str]]] = {}  # product -> (ns, ticks, symbol)
        self.deposits = 0
        self.withdrawals = 0
        self.now = 0
        self.seq = 0
        self.next_order_id = 1
        self.next_trade_id = 1
        self.next_account_id = 1
        self.next_delivery_id = 1
        self.next_book = 0
        self.next_settlement = 0  # ns of the next daily settlement (00:00 UTC)
        self._out: Outcome = Outcome()
        self._posting_index = 0

    def __getstate__(self) -> dict[str, Any]:
        """What a snapshot holds: everything but the last command's outcome."""
        state = self.__dict__.copy()
        state["_out"] = Outcome()
        state.pop("replaying", None)
        state.pop("posted_to", None)
        return state

    # -- the single entry point ---------------------------------------------------------
    def apply(self, seq: int, command: dict[str, Any]) -> Outcome:
        """Apply one sequenced command; raise :class:`Refused` having changed nothing."""
        self.seq = seq
        self._out = Outcome()
        self._posting_index = 0
        ts = int(command.get("ts", self.now))
        op = command["op"]
        if op != "advance" and ts > self.now:
            self._run_due(ts)
        handler = getattr(self, f"_op_{op}", None)
        try:
            if handler is None:
                raise Refused(Reason.INVALID_REQUEST, f"unknown command {op!r}")
            if "sig" in command:
                self._spend_signature(command["sig"], int(command["sig_at"]))
            self._out.reply = handler(command)
        except Refused as refused:
            # the command changed nothing, but the events due by its time did run: their
            # postings, trades and book changes must still reach the ledger and the feeds
            refused.outcome = self._out
            raise
        return self._out

    # -- helpers --------------------------------------------------------------------------
    def _spend_signature(self, signature: str, at: int) -> None:
        """Refuse a single-use request whose signature was already used; else remember it.

        A signature is kept :data:`SIGNATURE_MEMORY_S` seconds from when it was used, longer
        than its timestamp stays inside the signing window, so it is never forgotten while it
        could still pass; the times are the gateway's wall clock, as journaled.
        """
        used = self.signatures
        if used is None:
            used = self.signatures = {}
        while used:
            oldest = next(iter(used))
            if used[oldest] >= at - SIGNATURE_MEMORY_S:
                break
            del used[oldest]
        if signature in used:
            raise Refused(
                Reason.UNAUTHORIZED, "this signature was already used: sign every request afresh"
            )
        used[signature] = at

    def _post(self, kind: str, lines: list[tuple[str, str, int]], memo: str = "") -> None:
        """Queue one balanced ledger transaction: lines of (owner, sub-account, cents)."""
        if self.seq <= self.posted_to:  # replayed, and the ledger has it
            return
        lines = [line for line in lines if line[2] != 0]
        if not lines:
            return
        assert sum(amount for _, _, amount in lines) == 0, (kind, lines)
        self._posting_index += 1
        self._out.postings.append(
            {
                "key": f"{self.seq}:{self._posting_index}",
                "kind": kind,
                "time": self.now,
                "memo": memo,
                "lines": lines,
            }
        )

    def account(self, account_id: int) -> Account:
        acc = self.accounts.get(account_id)
        if acc is None:
            raise Refused(Reason.ACCOUNT_NOT_FOUND, f"account {account_id} does not exist")
        return acc

    def contract(self, symbol: str) -> Contract:
        contract = self.contracts.get(symbol)
        if contract is None:
            raise Refused(Reason.UNKNOWN_SYMBOL, f"no contract {symbol!r} is listed")
        return contract

    def requirement(self, acc: Account, extra: tuple[str, int, int] | None = None) -> int:
        """Initial margin on the account's worst case, optionally with one more order, plus
        the bond on the GPU-hours it still owes as a provider."""
        total = acc.bond
        positions, open_buy, open_sell = acc.positions, acc.open_buy, acc.open_sell
        symbols = {*positions, *open_buy, *open_sell}
        extra_symbol, extra_buys, extra_sells = extra or (None, 0, 0)
        if extra_symbol is not None:
            symbols.add(extra_symbol)
        for symbol in symbols:
            contract = self.contracts[symbol]
            if contract.status not in ("trading", "listed"):
                continue
            position = positions.get(symbol)
            buys = open_buy.get(symbol, 0)
            sells = open_sell.get(symbol, 0)
            if symbol == extra_symbol:
                buys += extra_buys
                sells += extra_sells
            quantity = worst_case_quantity(position.quantity if position else 0, buys, sells)
            if quantity:  # margin_cents(0, ...) is 0
                total += margin_cents(
                    quantity, contract.reference, contract.tick_cents, contract.margin_bps
                )
        return total

    def _remargin(self, acc: Account) -> None:
        """Lock or release cash so margin matches the requirement (as far as cash allows)."""
        target = min(self.requirement(acc), acc.available + acc.margin)
        delta = target - acc.margin
        if delta:
            owner = f"acct:{acc.account_id}"
            self._post("margin", [(owner, "available", -delta), (owner, "margin", delta)])
            acc.available -= delta
            acc.margin += delta
            self._out.touched_accounts.add(acc.account_id)

    # -- accounts ---------------------------------------------------------------------------
    def _op_create_account(self, cmd: dict[str, Any]) -> dict[str, Any]:
        role = cmd.get("role", "trader")
        if role not in ("trader", "provider"):
            raise Refused(Reason.INVALID_REQUEST, "role must be 'trader' or 'provider'")
        deposit = int(cmd.get("deposit") or 0)
        if deposit < 0:
            raise Refused(Reason.INVALID_AMOUNT, "a deposit must be positive")
        account_id = self.next_account_id
        self.next_account_id += 1
        self.accounts[account_id] = Account(account_id, str(cmd["name"]), role)
        if cmd.get("api_key"):
            self.api_keys[str(cmd["api_key"])] = account_id
        if deposit:
            self._deposit(self.accounts[account_id], deposit)
        return {"account_id": account_id}

    def _deposit(self, acc: Account, amount: int) -> None:
        if amount <= 0:
            raise Refused(Reason.INVALID_AMOUNT, "a deposit must be positive")
        self._post(
            "deposit",
            [("world", "external", -amount), (f"acct:{acc.account_id}", "available", amount)],
        )
        acc.available += amount
        self.deposits += amount
        self._remargin(acc)  # an account short of margin tops it up first
        self._out.touched_accounts.add(acc.account_id)

    def _op_deposit(self, cmd: dict[str, Any]) -> dict[str, Any]:
        acc = self.account(int(cmd["account_id"]))
        self._deposit(acc, int(cmd["amount"]))
        return self.account_view(acc.account_id)

    def _op_withdraw(self, cmd: dict[str, Any]) -> dict[str, Any]:
        acc = self.account(int(cmd["account_id"]))
        amount = int(cmd["amount"])
        if amount <= 0:
            raise Refused(Reason.INVALID_AMOUNT, "a withdrawal must be positive")
        free = acc.available - max(0, self.requirement(acc) - acc.margin)  # margin comes first
        if amount > free:
            free = max(0, free)
            raise Refused(
                Reason.INSUFFICIENT_FUNDS,
                f"only ${free // 100}.{free % 100:02d} is free of the margin the account needs",
            )
        self._post(
            "withdrawal",
            [(f"acct:{acc.account_id}", "available", -amount), ("world", "external", amount)],
        )
        acc.available -= amount
        self.withdrawals += amount
        self._out.touched_accounts.add(acc.account_id)
        return self.account_view(acc.account_id)

    def _op_cancel_after(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Arm (or with 0, disarm) the dead man's switch of an account."""
        acc = self.account(int(cmd["account_id"]))
        timeout_ns = int(cmd["timeout_ns"])
        if timeout_ns < 0:
            raise Refused(Reason.INVALID_REQUEST, "timeout_s must not be negative")
        armed = self._armed()
        if timeout_ns:
            armed[acc.account_id] = self.now + timeout_ns
        else:
            armed.pop(acc.account_id, None)
        return {
            "account_id": acc.account_id,
            "cancel_at": iso(armed[acc.account_id]) if timeout_ns else None,
        }

    def _op_kill_switch(self, cmd: dict[str, Any]) -> dict[str, Any]:
        acc = self.account(int(cmd["account_id"]))
        acc.disabled = bool(cmd["disabled"])
        if acc.disabled:
            self._cancel_where(lambda o: o.account == acc.account_id, "kill_switch")
        return {"account_id": acc.account_id, "disabled": acc.disabled}

    # -- contracts ----------------------------------------------------------------------------
    def _op_list(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """List a contract (from the calendar); idempotent."""
        symbol = cmd["symbol"]
        if symbol in self.contracts:
            return {"symbol": symbol}
        book = self.next_book
        self.next_book += 1
        mechanism = BATCH if cmd.get("mechanism") == "batch" else CONTINUOUS
        self.engine.add_book(book, int(cmd["n_ticks"]), mechanism)
        self.contracts[symbol] = Contract(
            symbol=symbol,
            product=cmd["product"],
            book=book,
            delivery_start=int(cmd["delivery_start"]),
            delivery_end=int(cmd["delivery_end"]),
            last_trade_time=int(cmd["last_trade_time"]),
            tick_cents=int(cmd["tick_cents"]),
            margin_bps=int(cmd["margin_bps"]),
            band_bps=int(cmd["band_bps"]),
            maker_fee_bps=int(cmd["maker_fee_bps"]),
            taker_fee_bps=int(cmd["taker_fee_bps"]),
            reference=int(cmd["reference"]),
            mechanism=mechanism,
            batch_interval_ns=int(cmd.get("batch_interval_s") or 0) * NS,
        )
        self.by_book[book] = symbol
        if self.next_settlement <= self.now:
            self.next_settlement = (self.now // DAY_NS + 1) * DAY_NS
        return {"symbol": symbol}

    def _list_calendar(self) -> None:
        """List every contract the calendar's rolling window holds now (idempotent)."""
        if self.calendar is None:
            return
        now = _EPOCH + timedelta(microseconds=self.now // 1000)
        for spec in self.calendar.listed_at(now):
            if str(spec.symbol) not in self.contracts:
                self._op_list(listing(spec, self.rules))

    def _op_halt(self, cmd: dict[str, Any]) -> dict[str, Any]:
        contract = self.contract(cmd["symbol"])
        if not contract.book_open:
            raise Refused(
                Reason.CONTRACT_NOT_TRADING,
                f"{contract.symbol} is {contract.status}: trading is over, it can be neither "
                "halted nor resumed",
            )
        contract.halted = bool(cmd["halted"])
        return {"symbol": contract.symbol, "halted": contract.halted}

    # -- orders ---------------------------------------------------------------------------------
    def _op_place(self, cmd: dict[str, Any]) -> dict[str, Any]:
        acc = self.account(int(cmd["account_id"]))
        client_order_id = cmd.get("client_order_id")
        if client_order_id is not None:
            existing = self.client_ids.get(acc.account_id, client_order_id, self.orders.owner)
            if existing is not None:
                return self.order_view(self.orders[existing]) | {"idempotent_replay": True}
        contract = self.contract(cmd["symbol"])
        if not contract.trading:
            raise Refused(
                Reason.CONTRACT_NOT_TRADING,
                f"{contract.symbol} is {'halted' if contract.halted else contract.status}",
            )
        if acc.disabled:
            raise Refused(Reason.ACCOUNT_DISABLED, "the account's kill switch is on")
        side = SIDES[cmd["side"]]
        quantity = int(cmd["quantity"])
        is_market = cmd["type"] == "market"
        price = 0 if is_market else int(cmd["price"])
        if quantity > self.rules.max_order_quantity:
            raise Refused(
                Reason.ORDER_TOO_LARGE,
                f"at most {self.rules.max_order_quantity} GPU-hours per order",
            )
        if acc.open_orders >= self.rules.max_open_orders:
            raise Refused(
                Reason.TOO_MANY_OPEN_ORDERS, f"at most {self.rules.max_open_orders} open orders"
            )
        if not is_market:
            self._check_band(contract, price)
        self._check_position_limit(acc, contract.symbol, side, quantity)
        extra = (contract.symbol, quantity if side == BUY else 0, quantity if side == SELL else 0)
        self._check_margin(acc, extra)

        order_id = self.next_order_id
        post_only = bool(cmd.get("post_only"))
        flags = (MARKET if is_market else 0) | (POST_ONLY if post_only else 0)
        time_in_force = cmd.get("time_in_force", "GTC")
        tif = TIFS[time_in_force]
        stp = STPS[cmd.get("self_trade_prevention", "cancel_newest")]
        # before version 3 a batch book left self-trade prevention out (the auction paired
        # an account's own crossing orders): such an order's mode never reaches the engine
        engine_stp = (
            stp if contract.mechanism != BATCH or self.rules.risk_version >= 3 else STP_NONE
        )
        events = self._own(self.engine.process_one(
            ADD, contract.book, order_id, acc.account_id, side, price, quantity, tif, flags,
            engine_stp, self.seq, self.now,
        ))  # fmt: skip
        if events["kind"][0] == REJECTED:
            reason = Reason(int(events[0]["reason"]))
            raise Refused(
                reason, _ENGINE_MESSAGES.get(reason, reason.name.lower().replace("_", " "))
            )
        self.next_order_id += 1
        order = Order(
            order_id=order_id,
            account=acc.account_id,
            symbol=contract.symbol,
            side=side,
            type=cmd["type"],
            price=price,
            quantity=quantity,
            time_in_force=time_in_force,
            post_only=post_only,
            client_order_id=client_order_id,
            created_at=self.now,
            stp=stp,
        )
        self.orders.add(order)
        if client_order_id is not None:
            self.client_ids.add(acc.account_id, client_order_id, order_id)
        self._track_open(order, +1)
        self._apply_events(contract, events)
        return self._reply(order)

    @staticmethod
    def _check_band(contract: Contract, price: int) -> None:
        """Refuse a limit price further from the reference price than the band allows."""
        if abs(price - contract.reference) > contract.reference * contract.band_bps // 10_000:
            raise Refused(
                Reason.PRICE_OUT_OF_BAND,
                f"price must lie within {contract.band_bps / 100:g}% of the reference price",
            )

    def _check_margin(self, acc: Account, extra: tuple[str, int, int]) -> None:
        """Refuse an order (``extra``: symbol, buys, sells) whose margin cash does not cover,
        unless (risk version 2) it does not raise the requirement: an order that closes a
        position is taken from an account short of cash."""
        need = self.requirement(acc, extra)
        if need > acc.available + acc.margin and (
            self.rules.risk_version < 2 or need > self.requirement(acc)
        ):
            raise Refused(
                Reason.INSUFFICIENT_MARGIN, "available cash does not cover the initial margin"
            )

    def _check_position_limit(self, acc: Account, symbol: str, side: int, more: int) -> None:
        """Refuse ``more`` GPU-hours of open orders on ``side`` past the position limit."""
        position = acc.positions.get(symbol)
        worst = worst_case_quantity(
            position.quantity if position else 0,
            acc.open_buy.get(symbol, 0) + (more if side == BUY else 0),
            acc.open_sell.get(symbol, 0) + (more if side == SELL else 0),
        )
        if worst > self.rules.position_limit:
            raise Refused(
                Reason.POSITION_LIMIT, f"position limit {self.rules.position_limit} GPU-hours"
            )

    def _track_open(self, order: Order, sign: int, quantity: int | None = None) -> None:
        acc = self.accounts[order.account]
        book = acc.open_buy if order.side == BUY else acc.open_sell
        q = order.remaining if quantity is None else quantity
        left = book.get(order.symbol, 0) + sign * q
        if left:
            book[order.symbol] = left
        else:
            book.pop(order.symbol, None)
        if quantity is None:
            acc.open_orders += sign

    def _apply_events(
        self, contract: Contract, events: np.ndarray, why: CancelReason = "user"
    ) -> None:
        """Turn engine events into order states, fills, positions and fees; an order the
        engine cancels as asked (not for a reason of its own) is cancelled for ``why``."""
        if not self.replaying:
            self._out.events.append((contract.symbol, events))
        accounts: set[int] = set()
        for row in events.tolist():
            kind = row[_KIND]
            if kind == TRADE:
                self._trade(
                    contract, row[_ORDER_ID], row[_MAKER_ORDER_ID], row[_PRICE], row[_QUANTITY]
                )
                accounts.add(row[_ACCOUNT])
                accounts.add(row[_MAKER_ACCOUNT])
            elif kind == CANCELLED:
                order = self.orders[row[_ORDER_ID]]
                self._track_open(order, -1)
                order.status = "cancelled"
                reason = row[_REASON]
                order.cancel_reason = (
                    why if reason == Reason.CANCELLED_BY_USER else _CANCEL_REASONS[reason]
                )
                self.orders.close(order)
                accounts.add(order.account)
            elif kind in (AMENDED, ACCEPTED):
                accounts.add(row[_ACCOUNT])
        for account_id in sorted(accounts):
            self._remargin(self.accounts[account_id])
            self._out.touched_accounts.add(account_id)

    def _trade(
        self, contract: Contract, taker_id: int, maker_id: int, price: int, quantity: int
    ) -> None:
        trade_id = self.next_trade_id
        self.next_trade_id += 1
        taker = self.orders[taker_id]
        maker = self.orders[maker_id]
        is_auction = contract.mechanism == BATCH
        for order, liquidity in ((taker, "taker"), (maker, "maker")):
            acc = self.accounts[order.account]
            self._track_open(order, -1, quantity)
            order.filled += quantity
            order.status = "filled" if order.filled == order.quantity else "partially_filled"
            order.fills.append(
                {
                    "trade_id": trade_id,
                    "price": price,
                    "quantity": quantity,
                    "liquidity": liquidity,
                    "time": self.now,
                }
            )
            if order.remaining == 0:  # last: a closed order is never changed again
                acc.open_orders -= 1
                self.orders.close(order)
            position = acc.positions.get(contract.symbol)
            if position is None:
                position = acc.positions[contract.symbol] = Position(mark_price=contract.reference)
            position.trade(quantity if order.side == BUY else -quantity, price)
            rate = (
                contract.taker_fee_bps
                if liquidity == "taker" or is_auction
                else contract.maker_fee_bps
            )
            fee = fee_cents(price * quantity * contract.tick_cents, rate)
            if fee:
                owner = f"acct:{acc.account_id}"
                # a fee is paid from available, then from margin (topped up again after
                # the trade as far as cash allows); a rebate goes to available
                from_available = min(fee, acc.available) if fee > 0 else fee
                from_margin = min(fee - from_available, acc.margin) if fee > 0 else 0
                self._post(
                    "fee",
                    [(owner, "available", -from_available), (owner, "margin", -from_margin),
                     ("exchange", "fees", from_available + from_margin)],
                    f"trade {trade_id}",
                )  # fmt: skip
                acc.available -= from_available
                acc.margin -= from_margin
        contract.last_price = price
        contract.trades.append((self.now, price, quantity))
        self._out.trades.append(
            {"symbol": contract.symbol, "trade_id": trade_id, "price": price, "quantity": quantity,
             "taker_side": SIDE_NAMES[taker.side], "time": self.now,
             "taker_order": taker.order_id, "maker_order": maker.order_id,
             "taker_account": taker.account, "maker_account": maker.account}
        )  # fmt: skip

    def _reply(self, order: Order) -> Any:
        """The order's view for the answer to a live command (``None`` in a replay)."""
        return None if self.replaying else self.order_view(order)

    def _own(self, events: np.ndarray) -> np.ndarray:
        """The engine's events as :meth:`_apply_events` takes them: a copy that outlives the
        engine's next call, for market data; in a replay the engine's own buffer, which
        :meth:`_apply_events` reads at once and keeps no reference to."""
        return events if self.replaying else _own(events)

    def _own_order(self, cmd: dict[str, Any]) -> Order:
        order = self.orders.get(int(cmd["order_id"]))
        if order is None or order.account != int(cmd["account_id"]):
            raise Refused(Reason.ORDER_NOT_FOUND, f"order {cmd['order_id']} not found")
        return order

    def _op_cancel(self, cmd: dict[str, Any]) -> dict[str, Any]:
        order = self._own_order(cmd)
        if order.remaining == 0:
            return self._reply(order)
        self._cancel_in_engine(order)
        return self._reply(order)

    def _cancel_in_engine(self, order: Order, why: CancelReason = "user") -> None:
        contract = self.contracts[order.symbol]
        events = self.engine.process_one(
            CANCEL,
            contract.book,
            order.order_id,
            order.account,
            0,
            0,
            0,
            0,
            0,
            0,
            self.seq,
            self.now,
        )
        self._apply_events(contract, self._own(events), why)

    def _op_cancel_all(self, cmd: dict[str, Any]) -> list[dict[str, Any]]:
        account = int(cmd["account_id"])
        symbol = cmd.get("symbol")
        self.account(account)
        cancelled = self._cancel_where(
            lambda o: o.account == account and (symbol is None or o.symbol == symbol)
        )
        return [self.order_view(o) for o in cancelled]

    def _cancel_where(self, predicate: Any, why: CancelReason = "user") -> list[Order]:
        """Cancel the open orders ``predicate`` picks, in order id order, for ``why``."""
        cancelled = []
        for order in self.orders.open():
            if order.remaining and predicate(order):
                self._cancel_in_engine(order, why)
                cancelled.append(order)
        return cancelled

    def _op_amend(self, cmd: dict[str, Any]) -> dict[str, Any]:
        order = self._own_order(cmd)
        if order.remaining == 0:
            raise Refused(Reason.ORDER_NOT_FOUND, f"order {order.order_id} is no longer open")
        contract = self.contracts[order.symbol]
        if not contract.trading:
            raise Refused(Reason.CONTRACT_NOT_TRADING, f"{contract.symbol} is not trading")
        price = int(cmd["price"]) if cmd.get("price") is not None else order.price
        quantity = int(cmd["quantity"]) if cmd.get("quantity") is not None else order.quantity
        if order.type == "market":
            raise Refused(Reason.INVALID_REQUEST, "market orders cannot be amended")
        if quantity > self.rules.max_order_quantity:
            raise Refused(
                Reason.ORDER_TOO_LARGE,
                f"at most {self.rules.max_order_quantity} GPU-hours per order",
            )
        new_remaining = quantity - order.filled
        if new_remaining <= 0:
            raise Refused(
                Reason.INVALID_QUANTITY, f"quantity must exceed the {order.filled} already filled"
            )
        self._check_band(contract, price)
        acc = self.accounts[order.account]
        delta = new_remaining - order.remaining
        if delta > 0:
            self._check_position_limit(acc, order.symbol, order.side, delta)
        extra = (
            order.symbol,
            delta if order.side == BUY else 0,
            delta if order.side == SELL else 0,
        )
        if delta > 0:
            self._check_margin(acc, extra)
        events = self._own(self.engine.process_one(
            AMEND, contract.book, order.order_id, order.account, order.side, price, new_remaining,
            0, 0, 0, self.seq, self.now,
        ))  # fmt: skip
        if events["kind"][0] == REJECTED:
            reason = Reason(int(events[0]["reason"]))
            raise Refused(
                reason, _ENGINE_MESSAGES.get(reason, reason.name.lower().replace("_", " "))
            )
        self._track_open(order, -1, order.remaining)
        order.price = price
        order.quantity = quantity
        self._track_open(order, +1, order.remaining)
        self._apply_events(contract, events)
        return self.order_view(order)

    # -- deliveries ----------------------------------------------------------------------------
    def _op_attest(self, cmd: dict[str, Any]) -> dict[str, Any]:
        delivery = self._delivery(cmd)
        if delivery.provider != int(cmd["account_id"]):
            raise Refused(Reason.NOT_PROVIDER, "only the delivery's provider may attest")
        if delivery.status != "pending":
            raise Refused(Reason.DELIVERY_NOT_OPEN, f"delivery is {delivery.status}")
        hours = int(cmd["gpu_hours"])
        if hours <= 0 or delivery.attested + hours > delivery.gpu_hours:
            raise Refused(
                Reason.ATTESTATION_EXCEEDS_OWED,
                f"{delivery.gpu_hours - delivery.attested} GPU-hours remain owed",
            )
        period = (cmd["period_start"], cmd["period_end"])  # as given, before version 4
        if self.rules.risk_version >= 4:
            period = self._check_period(delivery, cmd)
        owed = delivery.gpu_hours - delivery.attested
        delivery.attested += hours
        provider = self.accounts[delivery.provider]
        provider.bond -= self._penalty(delivery, owed) - self._penalty(delivery, owed - hours)
        self._remargin(provider)
        delivery.attestations.append(
            {"gpu_hours": hours, "period_start": period[0], "period_end": period[1],
             "evidence": cmd.get("evidence"), "time": self.now}
        )  # fmt: skip
        return self.delivery_view(delivery)

    def _check_period(self, delivery: Delivery, cmd: dict[str, Any]) -> tuple[str, str]:
        """Refuse an attestation whose period is not two ISO 8601 times with an offset, in
        order, inside the contract's delivery window and ending by now; return the period
        as the exchange writes times (UTC, milliseconds)."""
        times = []
        for name in ("period_start", "period_end"):
            try:
                at = datetime.fromisoformat(str(cmd[name]))
                if at.tzinfo is None:
                    raise ValueError("no offset")
                times.append(to_ns(at))
            except (ValueError, OverflowError):
                raise Refused(
                    Reason.ATTESTATION_PERIOD,
                    f"{name} must be an ISO 8601 time with its offset, e.g. 2026-12-07T13:00:00Z",
                ) from None
        start, end = times
        contract = self.contracts[delivery.symbol]
        last = min(contract.delivery_end, self.now)
        if not contract.delivery_start <= start < end <= last:
            raise Refused(
                Reason.ATTESTATION_PERIOD,
                f"the period must run forwards inside {iso(contract.delivery_start)} to "
                f"{iso(last)}: the delivery window, up to now",
            )
        return iso(start), iso(end)

    def _op_resolve(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Admin decision on a disputed delivery: ``provider_hours`` of the disputed hours
        were delivered and are paid to the provider; the rest go back to the consumer."""
        delivery = self.deliveries.get(int(cmd["delivery_id"]))
        if delivery is None:
            raise Refused(Reason.DELIVERY_NOT_FOUND, f"delivery {cmd['delivery_id']} not found")
        if delivery.status != "disputed":
            raise Refused(Reason.DELIVERY_NOT_OPEN, f"delivery is {delivery.status}, not disputed")
        hours = int(cmd["provider_hours"])
        if not 0 <= hours <= delivery.disputed:
            raise Refused(
                Reason.INVALID_REQUEST, f"provider_hours must lie in 0..{delivery.disputed}"
            )
        unit = delivery.price * delivery.tick_cents
        provider, consumer = self.accounts[delivery.provider], self.accounts[delivery.consumer]
        cons, prov = f"acct:{consumer.account_id}", f"acct:{provider.account_id}"
        pay = min(hours * unit, consumer.escrow)
        refund = min((delivery.disputed - hours) * unit, consumer.escrow - pay)
        memo = f"delivery {delivery.delivery_id} dispute"
        self._post("delivery_payment", [(cons, "escrow", -pay), (prov, "available", pay),
                                        *_hours_delivered(prov, cons, hours)], memo)  # fmt: skip
        self._post("delivery_refund", [(cons, "escrow", -refund), (cons, "available", refund),
                                       *_hours_forgone(prov, cons, delivery.disputed - hours)],
                   memo)  # fmt: skip
        consumer.escrow -= pay + refund
        provider.available += pay
        consumer.available += refund
        self._remargin(provider)
        self._remargin(consumer)
        delivery.status = "settled"
        self._out.touched_accounts.update({provider.account_id, consumer.account_id})
        return self.delivery_view(delivery)

    def _op_dispute(self, cmd: dict[str, Any]) -> dict[str, Any]:
        delivery = self._delivery(cmd)
        if delivery.consumer != int(cmd["account_id"]):
            raise Refused(Reason.NOT_CONSUMER, "only the delivery's consumer may dispute")
        if delivery.status != "pending":
            raise Refused(Reason.DELIVERY_NOT_OPEN, f"delivery is {delivery.status}")
        hours = int(cmd["gpu_hours"])
        if hours <= 0 or delivery.disputed + hours > delivery.attested:
            raise Refused(
                Reason.DISPUTE_EXCEEDS_ATTESTED, "a dispute cannot exceed the attested GPU-hours"
            )
        delivery.disputed += hours
        delivery.disputes.append(
            {"gpu_hours": hours, "reason": str(cmd.get("reason", "")), "time": self.now}
        )
        return self.delivery_view(delivery)

    def _delivery(self, cmd: dict[str, Any]) -> Delivery:
        delivery = self.deliveries.get(int(cmd["delivery_id"]))
        account = int(cmd["account_id"])
        if delivery is None or account not in (delivery.provider, delivery.consumer):
            raise Refused(Reason.DELIVERY_NOT_FOUND, f"delivery {cmd['delivery_id']} not found")
        return delivery

    # -- time and the schedule ------------------------------------------------------------------
    def _op_advance(self, cmd: dict[str, Any]) -> dict[str, Any]:
        target = int(cmd["to"])
        if target < self.now:
            raise Refused(Reason.CLOCK_BACKWARDS, "the clock cannot move backwards")
        self._run_due(target)
        return {"clock": iso(self.now), "ran": self._out.ran}

    def _op_auth(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """A websocket session's signed ``auth``: journaled so that its signature stays spent
        after a restart (:meth:`_spend_signature` ran on it); it changes nothing else."""
        return {}

    def _op_tick(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return {"clock": iso(self.now)}

    def _op_auction(self, cmd: dict[str, Any]) -> dict[str, Any]:
        contract = self.contract(cmd["symbol"])
        self._auction(contract)
        return {"symbol": contract.symbol}

    def next_due(self) -> int | None:
        """Time of the next scheduled event, or ``None``."""
        times = list(self._armed().values())
        if self.contracts:
            times.append(self.next_settlement)
        for c in self.contracts.values():
            if c.status == "trading":
                times.append(c.last_trade_time)
                if c.mechanism == BATCH and c.batch_interval_ns:
                    times.append((self.now // c.batch_interval_ns + 1) * c.batch_interval_ns)
            elif c.status in ("expired", "delivering"):
                times.append(
                    c.delivery_start
                    if c.status == "expired"
                    else c.delivery_end + self.rules.grace_ns
                )
        return min(times) if times else None

    def _run_due(self, until: int) -> None:
        """Run every scheduled event up to ``until`` in time order, then set the clock."""
        started = self.now
        if self.next_settlement <= self.now:
            self.next_settlement = (self.now // DAY_NS + 1) * DAY_NS
        while True:
            due = self.next_due()
            if due is None or due > until:
                break
            self.now = max(self.now, due)
            self._run_at(due)
        self.now = max(self.now, until)
        # Listing is idempotent but costs about a millisecond. The calendar's rolling windows
        # move only at 00:00 UTC, and every earlier move of the clock ended here with the
        # window listed: so list again only when the day changed (or on the first move).
        if started == 0 or self.now // DAY_NS != started // DAY_NS:
            self._list_calendar()

    def _armed(self) -> dict[int, int]:
        """The armed dead man's switches: account id -> deadline in ns."""
        armed: dict[int, int] | None = self.__dict__.get("_armed_switches")
        if armed is None:  # a state saved when each Account kept its own cancel_deadline
            armed = self._armed_switches = {
                a.account_id: deadline
                for a in self.accounts.values()
                if (deadline := a.__dict__.pop("cancel_deadline", 0))
            }
        return armed

    def _run_at(self, t: int) -> None:
        reported = len(self._out.ran)
        armed = self._armed()
        fired = sorted(i for i, at in armed.items() if at <= t)  # accounts, by id
        for account_id in fired:
            del armed[account_id]
        if self.rules.risk_version >= 2 and fired:
            # one pass over the open orders for all the switches that fire (in order id order)
            ids = set(fired)
            self._cancelled_by("cancel_after", t, fired, lambda o: o.account in ids)
        else:  # one account after the other, as journals before risk version 2 ran
            for account_id in fired:
                cancelled = self._cancel_where(
                    lambda o, a=account_id: o.account == a, "cancel_after"
                )
                self._out.ran.append({"event": "cancel_after", "account_id": account_id,
                                      "cancelled": len(cancelled), "time": iso(t)})  # fmt: skip
        for c in sorted(self.contracts.values(), key=lambda c: c.book):
            if (
                c.status == "trading"
                and not c.halted
                and c.mechanism == BATCH
                and c.batch_interval_ns
                and t % c.batch_interval_ns == 0
                and t < c.last_trade_time
            ):
                self._auction(c)
        for c in sorted(self.contracts.values(), key=lambda c: c.book):
            if c.status == "trading" and c.last_trade_time <= t:
                self._expire(c)
        if self.contracts and self.next_settlement <= t:
            self._daily_settlement()
            self.next_settlement += DAY_NS
            self._list_calendar()  # the rolling windows move at 00:00 UTC
        for c in sorted(self.contracts.values(), key=lambda c: c.book):
            if c.status == "expired" and c.delivery_start <= t:
                c.status = "delivering"
                self._out.ran.append(
                    {"event": "delivery_start", "symbol": c.symbol, "time": iso(t)}
                )
            elif c.status == "delivering" and c.delivery_end + self.rules.grace_ns <= t:
                self._settle_deliveries(c)
        # Margin calls, unless this moment changed nothing since the last ones: no command
        # ran in between, and no event here moved cash, positions, references or orders
        # (each event that can reports itself; an auction that matched nothing does not).
        # The calls then made already cancelled everything they would cancel now.
        if self.rules.risk_version >= 2 and (
            self.seq != self._margin_called_at or len(self._out.ran) > reported
        ):
            self._margin_calls(t)
            self._margin_called_at = self.seq

    def _margin_calls(self, t: int) -> None:
        """Cancel the orders that raise the margin of an account whose cash no longer
        covers it.

        Orders are checked against the account's cash when placed; after that its cash can
        fall (variation margin paid at a settlement, an invoice moved to escrow, a fee or a
        penalty) and its requirement rise (a new reference price). In each contract, the
        orders that raise its worst case beyond its position are cancelled: every order
        when it is flat; when long ``q``, the buys, and the sells too if together they
        exceed ``2q`` (filled, they would leave it shorter than it is long); when short, the
        same the other way. The requirement falls to the positions' own, and the orders
        :meth:`_check_margin` takes from an account short of cash are those left.
        """
        cancel: dict[tuple[int, str], tuple[int, ...]] = {}  # (account, symbol) -> sides
        called: list[int] = []
        for acc in sorted(self.accounts.values(), key=lambda a: a.account_id):
            if not acc.open_orders or self.requirement(acc) <= acc.available + acc.margin:
                continue
            calls = False
            for symbol in {*acc.open_buy, *acc.open_sell}:
                position = acc.positions.get(symbol)
                q = position.quantity if position is not None else 0
                # the sides whose orders, all filled, could leave a position bigger than q
                if q > 0:
                    sides: tuple[int, ...] = (
                        (BUY, SELL) if acc.open_sell.get(symbol, 0) > 2 * q else (BUY,)
                    )
                elif q < 0:
                    sides = (BUY, SELL) if acc.open_buy.get(symbol, 0) > -2 * q else (SELL,)
                else:
                    sides = (BUY, SELL)
                cancel[(acc.account_id, symbol)] = sides
                calls = calls or any(
                    (acc.open_buy if side == BUY else acc.open_sell).get(symbol, 0)
                    for side in sides
                )
            if calls:  # else it has no order that raises its requirement: nothing to do
                called.append(acc.account_id)
        if called:
            self._cancelled_by(
                "margin_call", t, called, lambda o: o.side in cancel.get((o.account, o.symbol), ())
            )

    def _cancelled_by(
        self, event: CancelReason, t: int, accounts: list[int], predicate: Any
    ) -> None:
        """Cancel the open orders ``predicate`` picks in one pass (in order id order), and
        report ``event`` with the count cancelled for each of ``accounts``, in their order."""
        counts = dict.fromkeys(accounts, 0)
        for order in self._cancel_where(predicate, event):
            counts[order.account] += 1
        for account_id in accounts:
            self._out.ran.append({"event": event, "account_id": account_id,
                                  "cancelled": counts[account_id], "time": iso(t)})  # fmt: skip

    def _op_rules(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Raise the risk rules' version (journaled, so a replay applies it where it ran)."""
        version = int(cmd["risk_version"])
        if not self.rules.risk_version <= version <= RISK_VERSION:
            raise Refused(
                Reason.INVALID_REQUEST,
                f"risk version {version}: this exchange runs {self.rules.risk_version} to "
                f"{RISK_VERSION}",
            )
        self.rules = replace(self.rules, risk_version=version)
        return {"risk_version": version}

    def _auction(self, contract: Contract) -> None:
        events = self.engine.process_one(
            AUCTION, contract.book, 0, 0, 0, 0, 0, 0, 0, 0, self.seq, self.now
        )
        trades = int((events["kind"] == TRADE).sum())
        self._apply_events(contract, self._own(events))
        if trades:  # an auction that matched nothing is left out: one every interval adds up
            self._out.ran.append({"event": "auction", "symbol": contract.symbol, "trades": trades,
                                  "time": iso(self.now)})  # fmt: skip

    def _settle_price(self, contract: Contract) -> int:
        bids, asks = self.engine.depth(contract.book, 1)
        prior = contract.settlements[-1][1] if contract.settlements else contract.reference
        price = settlement_price(
            contract.trades, self.now - self.rules.settlement_window_ns,
            bids[0][0] if bids else None, asks[0][0] if asks else None, contract.last_price, prior,
        )  # fmt: skip
        return prior if price is None else price

    def _mark(self, contract: Contract, price: int) -> None:
        """Mark every position in the contract to ``price``: variation margin moves in cash."""
        for acc in sorted(self.accounts.values(), key=lambda a: a.account_id):
            position = acc.positions.get(contract.symbol)
            if position is None:
                continue
            cents = position.mark(price) * contract.tick_cents
            if cents:
                owner = f"acct:{acc.account_id}"
                if cents < 0:
                    # pay from available first, then from locked margin
                    from_available = min(-cents, acc.available)
                    from_margin = -cents - from_available
                    from_margin = min(from_margin, acc.margin)
                    paid = from_available + from_margin
                    self._post(
                        "variation_margin",
                        [
                            (owner, "available", -from_available),
                            (owner, "margin", -from_margin),
                            ("exchange", "clearing", paid),
                        ],
                        contract.symbol,
                    )
                    acc.available -= from_available
                    acc.margin -= from_margin
                else:
                    self._post(
                        "variation_margin",
                        [("exchange", "clearing", -cents), (owner, "available", cents)],
                        contract.symbol,
                    )
                    acc.available += cents
                self._out.touched_accounts.add(acc.account_id)
        contract.settlements.append((self.now, price))
        contract.reference = price
        contract.trades = []

    def _daily_settlement(self) -> None:
        nearest: dict[str, Contract] = {}  # product -> its trading day contract delivered first
        for c in sorted(self.contracts.values(), key=lambda c: c.book):
            if c.status == "trading":
                price = self._settle_price(c)
                self._mark(c, price)
                self._out.ran.append(
                    {
                        "event": "daily_settlement",
                        "symbol": c.symbol,
                        "price": price,
                        "time": iso(self.now),
                    }
                )
                best = nearest.get(c.product)
                is_day = c.delivery_end - c.delivery_start == DAY_NS
                if is_day and (best is None or c.delivery_start < best.delivery_start):
                    nearest[c.product] = c
        for product in sorted(nearest):
            c = nearest[product]
            self.index.setdefault(product, []).append((self.now, c.reference, c.symbol))
        for acc in sorted(self.accounts.values(), key=lambda a: a.account_id):
            self._remargin(acc)

    def _expire(self, contract: Contract) -> None:
        """Stop trading, fix the final price, turn positions into delivery obligations."""
        price = self._settle_price(contract)  # clamped into the book as it stands
        self._cancel_where(lambda o: o.symbol == contract.symbol, "trading_ended")
        self.engine.remove_book(contract.book)  # empty now; its memory goes back
        self._mark(contract, price)
        contract.status = "expired"
        contract.final_price = price
        shorts: list[tuple[int, int]] = []
        longs: list[tuple[int, int]] = []
        for acc in sorted(self.accounts.values(), key=lambda a: a.account_id):
            position = acc.positions.get(contract.symbol)
            if position and position.quantity:
                (longs if position.quantity > 0 else shorts).append(
                    (acc.account_id, abs(position.quantity))
                )
        for acc in self.accounts.values():
            self._remargin(acc)
        # longs' invoices move into delivery escrow
        for account_id, quantity in longs:
            acc = self.accounts[account_id]
            invoice = quantity * price * contract.tick_cents
            self._release_all_margin(acc)
            owner = f"acct:{account_id}"
            moved = min(invoice, acc.available)
            self._post(
                "escrow", [(owner, "available", -moved), (owner, "escrow", moved)], contract.symbol
            )
            acc.available -= moved
            acc.escrow += moved
            self._remargin(acc)
        assigned: list[dict[str, int]] = []
        for short, long, hours in assign_deliveries(shorts, longs):
            delivery = Delivery(
                delivery_id=self.next_delivery_id, symbol=contract.symbol, provider=short, consumer=long,
                gpu_hours=hours, price=price, tick_cents=contract.tick_cents,
                settle_at=contract.delivery_end + self.rules.grace_ns,
            )  # fmt: skip
            self.next_delivery_id += 1
            self.deliveries[delivery.delivery_id] = delivery
            self._post(
                "delivery_obligation",
                [(f"acct:{short}", "gpuh_owed", -hours), (f"acct:{long}", "gpuh_owed", hours)],
                f"delivery {delivery.delivery_id}",
            )
            self.accounts[short].bond += self._penalty(delivery, hours)
            assigned.append({"delivery_id": delivery.delivery_id, "provider_account": short,
                             "consumer_account": long, "gpu_hours": hours})  # fmt: skip
        for acc in self.accounts.values():
            acc.positions.pop(contract.symbol, None)
        for account_id, _ in shorts:  # margin for the bond on the hours now owed
            self._remargin(self.accounts[account_id])
        self._out.ran.append(
            {
                "event": "expiry",
                "symbol": contract.symbol,
                "final_price": price,
                "time": iso(self.now),
            }
        )
        self._out.ran.append({"event": "delivery_assignment", "symbol": contract.symbol,
                              "deliveries": assigned, "time": iso(self.now)})  # fmt: skip

    def rebuild_bonds(self) -> None:
        """Set every provider's bond from its pending deliveries (for states from before
        bonds were kept: they load with none)."""
        for acc in self.accounts.values():
            acc.bond = 0
        for delivery in self.deliveries.values():
            if delivery.status == "pending":
                owed = delivery.gpu_hours - delivery.attested
                self.accounts[delivery.provider].bond += self._penalty(delivery, owed)

    def _penalty(self, delivery: Delivery, hours: int) -> int:
        """The penalty on ``hours`` of the delivery not delivered, rounded down to the cent."""
        return hours * delivery.price * delivery.tick_cents * self.rules.penalty_bps // 10_000

    def _release_all_margin(self, acc: Account) -> None:
        if acc.margin:
            owner = f"acct:{acc.account_id}"
            self._post("margin", [(owner, "margin", -acc.margin), (owner, "available", acc.margin)])
            acc.available += acc.margin
            acc.margin = 0

    def _settle_deliveries(self, contract: Contract) -> None:
        for delivery in sorted(self.deliveries.values(), key=lambda d: d.delivery_id):
            if delivery.symbol != contract.symbol or delivery.status != "pending":
                continue
            provider = self.accounts[delivery.provider]
            consumer = self.accounts[delivery.consumer]
            delivered = delivery.attested - delivery.disputed
            shortfall = delivery.gpu_hours - delivery.attested
            unit = delivery.price * delivery.tick_cents
            pay, refund = delivered * unit, shortfall * unit
            cons, prov = f"acct:{consumer.account_id}", f"acct:{provider.account_id}"
            escrow = min(consumer.escrow, pay + refund + delivery.disputed * unit)
            pay = min(pay, escrow)
            refund = min(refund, escrow - pay)
            memo = f"delivery {delivery.delivery_id}"
            self._post("delivery_payment", [(cons, "escrow", -pay), (prov, "available", pay),
                                            *_hours_delivered(prov, cons, delivered)], memo)  # fmt: skip
            self._post("delivery_refund", [(cons, "escrow", -refund), (cons, "available", refund),
                                           *_hours_forgone(prov, cons, shortfall)], memo)  # fmt: skip
            penalty = self._penalty(delivery, shortfall)
            provider.bond -= penalty  # the bond held for it goes to paying it
            consumer.escrow -= pay + refund
            provider.available += pay
            consumer.available += refund
            if penalty:
                self._release_all_margin(provider)
                paid = min(penalty, provider.available)
                self._post(
                    "penalty",
                    [(prov, "available", -paid), (cons, "available", paid)],
                    f"delivery {delivery.delivery_id}",
                )
                provider.available -= paid
                consumer.available += paid
            self._remargin(provider)
            self._remargin(consumer)
            delivery.status = "disputed" if delivery.disputed else "settled"
            self._out.touched_accounts.update({provider.account_id, consumer.account_id})
            self._out.ran.append(
                {
                    "event": "delivery_settlement",
                    "delivery_id": delivery.delivery_id,
                    "status": delivery.status,
                    "time": iso(self.now),
                }
            )
        if all(
            d.status != "pending" for d in self.deliveries.values() if d.symbol == contract.symbol
        ):
            contract.status = "settled"

    # -- views ------------------------------------------------------------------------------------
    def order_view(self, order: Order) -> dict[str, Any]:
        contract = self.contracts[order.symbol]
        return {
            "order_id": order.order_id,
            "client_order_id": order.client_order_id,
            "symbol": order.symbol,
            "side": SIDE_NAMES[order.side],
            "type": order.type,
            "price": order.price if order.type == "limit" else None,
            "quantity": order.quantity,
            "filled_quantity": order.filled,
            "remaining_quantity": order.remaining,
            "status": order.status,
            "time_in_force": order.time_in_force,
            "post_only": order.post_only,
            "created_at": order.created_at,
            "fills": list(order.fills),
            "cancel_reason": order.cancel_reason,
            "tick_cents": contract.tick_cents,
        }

    def account_view(self, account_id: int) -> dict[str, Any]:
        acc = self.account(account_id)
        return {
            "account_id": acc.account_id,
            "name": acc.name,
            "role": acc.role,
            "cash": acc.available + acc.margin,
            "available": acc.available,
            "margin_locked": acc.margin,
            "delivery_escrow": acc.escrow,
            "disabled": acc.disabled,
            "positions": self.positions_view(account_id),
        }

    def positions_view(self, account_id: int) -> list[dict[str, Any]]:
        acc = self.account(account_id)
        out = []
        for symbol in sorted(acc.positions):
            position = acc.positions[symbol]
            if position.quantity == 0:
                continue
            contract = self.contracts[symbol]
            mark = contract.last_price if contract.last_price is not None else contract.reference
            average = position.average_price()
            out.append(
                {"symbol": symbol, "quantity": position.quantity, "average_price": average,
                 "unrealized_pnl": (mark * position.quantity - position.cost) * contract.tick_cents,
                 "realized_pnl": position.realized * contract.tick_cents,
                 "tick_cents": contract.tick_cents}
            )  # fmt: skip
        return out

    def delivery_view(self, delivery: Delivery) -> dict[str, Any]:
        return {
            "delivery_id": delivery.delivery_id,
            "symbol": delivery.symbol,
            "provider_account": delivery.provider,
            "consumer_account": delivery.consumer,
            "gpu_hours": delivery.gpu_hours,
            "price": delivery.price,
            "tick_cents": delivery.tick_cents,
            "status": delivery.status,
            "attested_gpu_hours": delivery.attested,
            "disputed_gpu_hours": delivery.disputed,
            "attestations": list(delivery.attestations),
            "disputes": list(delivery.disputes),
        }

    def state_hash(self) -> str:
        """Digest of the engine and the clearing state, for replay checks."""
        h = hashlib.blake2b(digest_size=16)
        h.update(self.engine.snapshot())
        for acc in sorted(self.accounts.values(), key=lambda a: a.account_id):
            h.update(repr((acc.account_id, acc.available, acc.margin, acc.escrow, sorted(
                (s, p.quantity, p.flow, p.mark_quantity, p.mark_price) for s, p in acc.positions.items()))).encode())  # fmt: skip
        for order in self.orders.values():  # in order id order
            fills = [
                (f["trade_id"], f["price"], f["quantity"], f["liquidity"]) for f in order.fills
            ]
            h.update(
                repr(
                    (order.order_id, order.filled, order.status, order.price, order.quantity, fills)
                ).encode()
            )
        for d in sorted(self.deliveries.values(), key=lambda d: d.delivery_id):
            h.update(repr((d.delivery_id, d.gpu_hours, d.attested, d.disputed, d.status)).encode())
        h.update(
            repr(
                (self.now, self.next_order_id, self.next_trade_id, self.deposits, self.withdrawals)
            ).encode()
        )
        return h.hexdigest()


def _hours_delivered(provider: str, consumer: str, hours: int) -> list[tuple[str, str, int]]:
    """Ledger lines of GPU-hours handed over: the obligation met, the hours delivered."""
    return [(provider, "gpuh_owed", hours), (consumer, "gpuh_owed", -hours),
            (provider, "gpuh_delivered", -hours), (consumer, "gpuh_delivered", hours)]  # fmt: skip


def _hours_forgone(provider: str, consumer: str, hours: int) -> list[tuple[str, str, int]]:
    """Ledger lines of GPU-hours owed and not delivered: the obligation is closed."""
    return [(provider, "gpuh_owed", hours), (consumer, "gpuh_owed", -hours)]


_ENGINE_MESSAGES = {
    Reason.POST_ONLY_WOULD_TRADE: "a post-only order would have traded on arrival",
    Reason.PRICE_OFF_LADDER: "price outside the contract's price ladder",
    Reason.INVALID_QUANTITY: "quantity must be a positive whole number of GPU-hours",
    Reason.BATCH_ORDER_TYPE: "this contract trades in batch auctions: GTC limit orders only",
    Reason.INVALID_FLAGS: "post-only orders must be GTC limit orders",
    Reason.DUPLICATE_ORDER_ID: "duplicate order id",
}
