"""The numba engine against the reference engine: identical events, byte for byte.

Hypothesis drives both backends with the same random command streams, including invalid
commands of every kind, and compares their events, snapshots and depth after every batch;
a state machine also restores engines from snapshots mid-stream and checks the book rules
against a small Python model built from the events alone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

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
    COMMAND_DTYPE,
    CONTINUOUS,
    FOK,
    GTC,
    IOC,
    MARKET,
    MAX_QUANTITY,
    OPEN_CONTINUOUS,
    POST_ONLY,
    PRO_RATA,
    REJECTED,
    SELL,
    TRADE,
    UNCROSSED,
    Engine,
)

from .conftest import BACKENDS, N_TICKS
from .flows import BOOKS, flow_engine, random_flow
from .helpers import ALL, level_totals

#: Books of the hypothesis tests: 0 and 1 continuous, 2 in batch mode; 7 is never added.
CONTINUOUS_BOOKS = (0, 1)
BATCH_BOOK = 2
#: The outcome event each command kind must write first.
OUTCOMES = {ADD: {ACCEPTED, REJECTED}, CANCEL: {CANCELLED, REJECTED},
            AMEND: {AMENDED, REJECTED}, AUCTION: {UNCROSSED, REJECTED}}  # fmt: skip


def _twins() -> list[Engine]:
    engines = []
    for backend in BACKENDS:
        engine = Engine(backend=backend)
        for book in CONTINUOUS_BOOKS:
            engine.add_book(book, n_ticks=N_TICKS)
        engine.add_book(BATCH_BOOK, n_ticks=N_TICKS, mechanism=BATCH)
        engines.append(engine)
    return engines


def _run(engine: Engine, cmds: np.ndarray, mode: str) -> np.ndarray:
    """Process ``cmds`` as one batch, as a view of the engine's buffer, or one by one."""
    if mode == "batch":
        return engine.process(cmds)
    if mode == "view":
        return engine.process(cmds, copy=False).copy()
    names = COMMAND_DTYPE.names or ()
    out = [engine.process_one(**{n: int(c[n]) for n in names}).copy() for c in cmds]
    return np.concatenate(out) if out else engine.process(cmds[:0])


def _compare(engines: list[Engine]) -> None:
    """Both engines are internally consistent and hold the same books."""
    for engine in engines:
        engine.check_invariants()
    reference, compiled = engines
    assert compiled.snapshot() == reference.snapshot()
    for book, _, _ in reference.books():
        assert compiled.depth(book, ALL) == reference.depth(book, ALL)
    assert compiled.books() == reference.books()


def _check_outcomes(cmds: np.ndarray, events: np.ndarray) -> None:
    """Every command wrote exactly one outcome event, first, of the kind its kind allows."""
    firsts = np.flatnonzero(np.r_[True, events["seq"][1:] != events["seq"][:-1]])
    assert events["seq"][firsts].tolist() == cmds["seq"].tolist()
    for cmd, ev in zip(cmds, events[firsts], strict=True):
        allowed = OUTCOMES.get(int(cmd["kind"]), {REJECTED})
        assert int(ev["kind"]) in allowed
    outcome_kinds = np.isin(events["kind"], [ACCEPTED, REJECTED, AMENDED, UNCROSSED])
    cancels = (events["kind"] == CANCELLED) & (events["reason"] == 3101)  # CANCELLED_BY_USER
    assert int(outcome_kinds.sum() + cancels.sum()) == len(cmds)


# -- random command streams -----------------------------------------------------------
#: Mostly valid fields; :func:`_twist` makes about one command in six invalid or extreme.
_raw_command = st.tuples(
    st.sampled_from([ADD] * 6 + [CANCEL] * 2 + [AMEND] * 2 + [AUCTION]),  # kind
    st.sampled_from([0, 0, 0, 1, BATCH_BOOK, BATCH_BOOK]),  # book
    st.integers(0, 19),  # how the order id is chosen
    st.integers(1, 3),  # account
    st.sampled_from([BUY, SELL]),  # side
    st.integers(95, 105),  # price
    st.integers(1, 20),  # quantity
    st.sampled_from([GTC, GTC, GTC, GTC, IOC, FOK]),  # tif
    st.sampled_from([0, 0, 0, 0, 0, 0, POST_ONLY, POST_ONLY, MARKET]),  # flags
    st.sampled_from([0, 0, 1, 2, 3]),  # stp
    st.integers(0, 49),  # twist
)


def _twist(c: dict[str, int], twist: int) -> None:
    """Spoil or stretch one field of a command, by ``twist`` (most values change nothing)."""
    q, p = c["quantity"], c["price"]
    if twist == 34:
        c["kind"] = (0, 5, 255)[q % 3]
    elif twist == 35:
        c["book"] = (7, -1)[q % 2]
    elif twist == 36:
        c["side"] = (2, 255)[q % 2]
    elif twist == 37:
        c["tif"] = (3, 255)[q % 2]
    elif twist == 38:
        c["flags"] = (POST_ONLY | MARKET, 16, 255)[q % 3]
    elif twist == 39:
        c["stp"] = (4, 255)[q % 2]
    elif twist == 40:
        c["quantity"] = (0, -1, MAX_QUANTITY + 1)[p % 3]
    elif twist == 41:
        c["quantity"] = MAX_QUANTITY
    elif twist == 42:
        c["price"] = (0, -1, N_TICKS)[q % 3]
    elif twist == 43:
        c["price"] = (1, N_TICKS - 1)[q % 2]
    elif twist == 44 and c["kind"] == AUCTION:
        c["flags"] |= OPEN_CONTINUOUS


def _build(raw: list[tuple[int, ...]]) -> np.ndarray:
    """Turn drawn tuples into commands.

    An ADD mostly takes a fresh id, sometimes an old one, 0 or a negative id. A CANCEL or
    AMEND mostly names one of the last few GTC orders, in its book and by its owner (unless
    the drawn account is 3), sometimes an unknown, 0 or negative id; a third of the amends
    keep the order's price and change its size by at most one lot, to exercise keeping and
    losing queue priority. An AUCTION's flags are PRO_RATA or none; most auctions are
    held in the batch book.
    """
    names = COMMAND_DTYPE.names or ()
    cmds = np.zeros(len(raw), dtype=COMMAND_DTYPE)
    issued: list[int] = []
    gtc: list[int] = []  # GTC limit orders, which may rest
    placed: dict[int, tuple[int, int, int, int]] = {}  # id -> book, account, price, quantity
    next_id = 1
    for i, (kind, book, how, account, side, price, qty, tif, flags, stp, twist) in enumerate(raw):
        if how == 16:
            order_id = 0
        elif how == 17:
            order_id = -next_id
        elif how == 18 and kind != ADD:
            order_id = next_id + 1_000
        elif (kind == ADD and how < 15) or not issued:
            order_id, next_id = next_id, next_id + 1
        elif kind == ADD or how >= 15:
            order_id = issued[-1 - how * 7 % len(issued)]
        else:
            pool = gtc or issued
            order_id = pool[-1 - how % min(len(pool), 6)]
        if kind == ADD and order_id > 0:
            issued.append(order_id)
            placed.setdefault(order_id, (book, account, price, qty))
            if tif == GTC and not flags & MARKET:
                gtc.append(order_id)
        elif kind in (CANCEL, AMEND) and order_id in placed:
            book, owner, placed_price, placed_qty = placed[order_id]
            if account < 3:
                account = owner
            if kind == AMEND and how % 3 == 0:
                price, qty = placed_price, max(placed_qty + qty % 3 - 1, 1)
            if kind == CANCEL and account == owner and order_id in gtc:
                gtc.remove(order_id)
        elif kind == AUCTION:
            flags = PRO_RATA if flags else 0
            book = BATCH_BOOK if book == 0 else book
        c = {"seq": i + 1, "ts": 1_000 * i, "order_id": order_id, "account": account,
             "price": price, "quantity": qty, "book": book, "kind": kind, "side": side,
             "tif": tif, "flags": flags, "stp": stp}  # fmt: skip
        _twist(c, twist)
        cmds[i] = tuple(c[n] for n in names)
    return cmds


#: Streams of 1 to 300 commands; the length is drawn first so long streams are common.
_streams = st.integers(1, 300).flatmap(
    lambda n: st.lists(_raw_command, min_size=n, max_size=n).map(_build)
)
_batches = st.lists(
    st.tuples(st.integers(1, 60), st.sampled_from(["batch", "batch", "view", "one"])),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(cmds=_streams, batches=_batches)
def test_backends_agree_on_any_command_stream(
    cmds: np.ndarray, batches: list[tuple[int, str]]
) -> None:
    engines = _twins()
    start = 0
    for k in range(len(cmds)):
        if start >= len(cmds):
            break
        size, mode = batches[k % len(batches)]
        chunk = cmds[start : start + size]
        start += size
        expected = _run(engines[0], chunk, mode)
        got = _run(engines[1], chunk, mode)
        assert got.dtype == expected.dtype
        assert got.tobytes() == expected.tobytes()
        _check_outcomes(chunk, expected)
        _compare(engines)


def test_backends_agree_on_a_long_flow() -> None:
    """20,000 commands over four books and eight accounts, in batches of random size."""
    flow = random_flow(seed=20_240_601, n=20_000, books=BOOKS, accounts=8)
    engines = [flow_engine(backend) for backend in BACKENDS]
    sizes = np.random.default_rng(7).integers(1, 800, size=len(flow)).tolist()
    start = 0
    for size in sizes:
        if start >= len(flow):
            break
        chunk = flow[start : start + size]
        start += size
        expected, got = (e.process(chunk) for e in engines)
        assert got.tobytes() == expected.tobytes(), f"batch at command {start - size}"
        _check_outcomes(chunk, expected)
        _compare(engines)
    assert len(engines[0].resting_orders()) > 0


# -- a state machine with a model -----------------------------------------------------
@dataclass
class _Order:
    """What the events say about one order."""

    book: int
    side: int
    price: int
    open: int
    #: The seq of the command that gave the order its place in the queue.
    since: int


class TwinEngines(RuleBasedStateMachine):
    """Both backends under the same commands, checked against a model built from events."""

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.engines = _twins()
        self.model: dict[int, _Order] = {}
        self.owner: dict[int, int] = {}
        self.seq = 0
        self.next_id = 1
        self.net = 0  # accepted + amended - cancelled - 2 * traded, from the events

    # -- driving ----------------------------------------------------------------------
    def _send(self, **fields: int) -> np.ndarray:
        self.seq += 1
        cmd = np.zeros(1, dtype=COMMAND_DTYPE)
        cmd["seq"], cmd["ts"] = self.seq, 10 * self.seq
        for name, value in fields.items():
            cmd[name] = value
        expected, got = (e.process(cmd) for e in self.engines)
        assert got.tobytes() == expected.tobytes()
        _check_outcomes(cmd, expected)
        for ev in expected:
            self._apply(ev)
        return expected

    def _apply(self, ev: np.void) -> None:
        kind, order_id, quantity = int(ev["kind"]), int(ev["order_id"]), int(ev["quantity"])
        if kind == ACCEPTED:
            assert order_id not in self.model or self.model[order_id].open == 0
            self.model[order_id] = _Order(int(ev["book"]), int(ev["side"]), int(ev["price"]),
                                          quantity, self.seq)  # fmt: skip
            self.net += quantity
        elif kind == TRADE:
            taker, maker = self.model[order_id], self.model[int(ev["maker_order_id"])]
            assert taker.side != maker.side and taker.book == maker.book
            taker.open -= quantity
            maker.open -= quantity
            assert (int(ev["remaining"]), int(ev["maker_remaining"])) == (taker.open, maker.open)
            self.net -= 2 * quantity
        elif kind == CANCELLED:
            order = self.model[order_id]
            assert quantity == order.open > 0
            order.open = 0
            self.net -= quantity
        elif kind == AMENDED:
            order = self.model[order_id]
            price = int(ev["price"])
            if price != order.price or quantity > order.open:
                order.since = self.seq
            self.net += quantity - order.open
            order.price, order.open = price, quantity

    # -- rules ------------------------------------------------------------------------
    def _add(self, **fields: int) -> int:
        order_id, self.next_id = self.next_id, self.next_id + 1
        self.owner[order_id] = fields["account"]
        self._send(kind=ADD, order_id=order_id, **fields)
        return order_id

    @rule(
        target=orders,
        book=st.sampled_from([0, 0, 1, BATCH_BOOK]),
        account=st.integers(1, 3),
        side=st.sampled_from([BUY, SELL]),
        distance=st.integers(-2, 8),
        quantity=st.integers(1, 20),
        post_only=st.booleans(),
        stp=st.integers(0, 3),
    )
    def rest(self, book: int, account: int, side: int, distance: int, quantity: int,
             post_only: bool, stp: int) -> int:  # fmt: skip
        """A GTC order a few ticks away from 100 (or just across it), to build up the book;
        post-only where the book is continuous."""
        price = 100 - distance if side == BUY else 100 + distance
        flags = POST_ONLY if post_only and book != BATCH_BOOK else 0
        return self._add(book=book, account=account, side=side, price=price,
                         quantity=quantity, flags=flags, stp=stp)  # fmt: skip

    @rule(
        target=orders,
        book=st.sampled_from([0, 0, 1, BATCH_BOOK]),
        account=st.integers(1, 3),
        side=st.sampled_from([BUY, SELL]),
        price=st.integers(92, 108),
        quantity=st.integers(1, 30),
        tif=st.sampled_from([GTC, IOC, FOK]),
        flags=st.sampled_from([0, 0, 0, MARKET, POST_ONLY]),
        stp=st.integers(0, 3),
    )
    def take(self, book: int, account: int, side: int, price: int, quantity: int, tif: int,
             flags: int, stp: int) -> int:  # fmt: skip
        """Any order, often crossing: limit or market, GTC, IOC or FOK."""
        if flags == POST_ONLY:
            tif = GTC
        return self._add(book=book, account=account, side=side, price=price, quantity=quantity,
                         tif=tif, flags=flags, stp=stp)  # fmt: skip

    @rule(order_id=orders, by_owner=st.sampled_from([True, True, True, False]))
    def cancel(self, order_id: int, by_owner: bool) -> None:
        book = self.model[order_id].book if order_id in self.model else 0
        account = self.owner[order_id] if by_owner else 4
        self._send(kind=CANCEL, book=book, order_id=order_id, account=account)

    @rule(
        order_id=orders,
        keep_price=st.booleans(),
        price=st.integers(92, 108),
        quantity=st.integers(1, 20),
    )
    def amend(self, order_id: int, keep_price: bool, price: int, quantity: int) -> None:
        """Change an order's price, or keep it and change its open quantity by a little."""
        book = 0
        if order_id in self.model:
            order = self.model[order_id]
            book = order.book
            if keep_price:
                price, quantity = order.price or 100, max(order.open + quantity % 3 - 1, 1)
        self._send(kind=AMEND, book=book, order_id=order_id, account=self.owner[order_id],
                   price=price, quantity=quantity)  # fmt: skip

    def _batch_book_crossed(self) -> bool:
        bids, asks = self.engines[0].depth(BATCH_BOOK, 1)
        return bool(bids and asks and bids[0][0] >= asks[0][0])

    @precondition(_batch_book_crossed)
    @rule(flags=st.sampled_from([0] * 5 + [PRO_RATA] * 5 + [OPEN_CONTINUOUS]))
    def auction(self, flags: int) -> None:
        """Uncross the batch book when it has crossed (rarely opening it for good)."""
        events = self._send(kind=AUCTION, book=BATCH_BOOK, flags=flags)
        assert int(events[0]["kind"]) == UNCROSSED
        bids, asks = self.engines[0].depth(BATCH_BOOK, 1)
        assert not bids or not asks or bids[0][0] < asks[0][0]

    @precondition(lambda self: self.engines[0].depth(1, 1) == ([], []))
    @rule()
    def remove_and_reopen_empty_book(self) -> None:
        """Remove book 1 (as the exchange does at expiry) and open it again, empty."""
        for engine in self.engines:
            n_ticks = dict((b, n) for b, n, _ in engine.books())[1]
            engine.remove_book(1)
            assert 1 not in [b for b, _, _ in engine.books()]
            engine.add_book(1, n_ticks, CONTINUOUS)

    @precondition(lambda self: self.seq > 0)
    @rule(source=st.sampled_from(BACKENDS))
    def snapshot_and_restore(self, source: str) -> None:
        """Replace both engines by restores of one's snapshot; they must carry on alike."""
        data = self.engines[BACKENDS.index(source)].snapshot()
        self.engines = [Engine.restore(data, backend=backend) for backend in BACKENDS]
        assert [e.snapshot() for e in self.engines] == [data, data]

    # -- invariants -------------------------------------------------------------------
    @invariant()
    def engines_agree(self) -> None:
        _compare(self.engines)

    @invariant()
    def continuous_books_never_cross(self) -> None:
        for engine in self.engines:
            for book, _, mechanism in engine.books():
                bids, asks = engine.depth(book, 1)
                if mechanism == CONTINUOUS and bids and asks:
                    assert bids[0][0] < asks[0][0]

    @invariant()
    def levels_are_the_sums_of_their_orders(self) -> None:
        for engine in self.engines:
            totals = level_totals(engine)
            for book, _, _ in engine.books():
                assert engine.depth(book, ALL) == totals[book]

    @invariant()
    def queues_are_fifo_and_match_the_model(self) -> None:
        resting = self.engines[0].resting_orders()
        assert resting.tolist() == self.engines[1].resting_orders().tolist()
        queues: dict[tuple[int, int, int], list[int]] = defaultdict(list)
        for row in resting:
            order_id = int(row["order_id"])
            model = self.model[order_id]
            assert (model.book, model.side, model.price, model.open) == (
                int(row["book"]), int(row["side"]), int(row["price"]), int(row["remaining"])
            )  # fmt: skip
            queues[(model.book, model.side, model.price)].append(model.since)
        for since in queues.values():
            assert since == sorted(since) and len(set(since)) == len(since)
        open_orders = {i for i, o in self.model.items() if o.open > 0}
        assert open_orders == {int(i) for i in resting["order_id"]}

    @invariant()
    def quantity_is_conserved(self) -> None:
        # accepted + amended - traded (both sides) - cancelled == what rests
        resting = self.engines[0].resting_orders()
        assert self.net == int(resting["remaining"].sum())


TwinEngines.TestCase.settings = settings(max_examples=60, stateful_step_count=100, deadline=None)
test_twin_engines = TwinEngines.TestCase
