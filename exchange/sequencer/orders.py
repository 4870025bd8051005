"""Every order the exchange has accepted: open ones as objects, closed ones in columns.

An exchange that acknowledges 20,000 orders a second accepts 72 million an hour, and every
one stays queryable by id, with its fills, for as long as the exchange runs. Kept as Python
objects (an :class:`Order` and a dict per fill) that is about 500 bytes an order: the state
grows by gigabytes an hour, and with it the snapshot's fork and pickling and the
collector's walks. A closed order never changes again, so :class:`OrderStore` keeps it as
one row of a numpy record array (81 bytes, and its ``client_order_id`` in a byte arena) and
its fills as rows of another (41 bytes each):

- **live**: orders that may still change (open, partially filled), as :class:`Order`
  objects, in order id order;
- **recent**: the last closed orders, still objects, until :data:`FLUSH_EVERY` of them are
  moved to the columns at once, as the next order is added (one array write per batch, not
  one per order);
- **columns**: closed orders in fixed-size chunks indexed by order id, and their fills in
  append-only chunks. No chunk is ever copied to grow: a new one is added.

Reading a closed order builds a fresh, equal :class:`Order`; nothing may change it, and the
state never does (a closed order takes no further event). What the store holds depends only
on the commands applied, so replays and snapshots see the same orders.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

#: Closed orders kept as objects before they are moved into the columns together.
FLUSH_EVERY = 1024
#: Rows per chunk of the closed-order and fill columns (a power of two).
CHUNK = 1 << 16
_SHIFT = CHUNK.bit_length() - 1

#: One closed order; ``order_id`` 0 marks a row no closed order has filled.
CLOSED_DTYPE = np.dtype(
    [
        ("order_id", "<i8"),
        ("account", "<i8"),
        ("price", "<i8"),
        ("quantity", "<i8"),
        ("filled", "<i8"),
        ("created_at", "<i8"),
        ("fill_start", "<i8"),
        ("client_at", "<i8"),  # where its client_order_id's UTF-8 bytes start in the arena
        ("n_fills", "<i4"),
        ("symbol", "<i4"),
        ("client_len", "<i2"),  # their length; -1: no client_order_id
        ("side", "i1"),
        ("type", "i1"),
        ("time_in_force", "i1"),
        ("status", "i1"),
        ("post_only", "i1"),
        ("stp", "i1"),
        ("cancel_reason", "i1"),  # index in CANCEL_REASONS; 0: not cancelled (or not known)
    ]
)
#: One fill of a closed order; ``maker`` is 1 for the maker side of the trade.
FILL_DTYPE = np.dtype(
    [
        ("trade_id", "<i8"),
        ("order_id", "<i8"),
        ("price", "<i8"),
        ("quantity", "<i8"),
        ("time", "<i8"),
        ("maker", "i1"),
    ]
)

_TYPES = ("limit", "market")
_TIFS = ("GTC", "IOC", "FOK")
_STATUSES = ("filled", "cancelled", "rejected", "open", "partially_filled")
_LIQUIDITY = ("taker", "maker")
#: Why an order was cancelled, as its ``cancel_reason`` says (docs/api.md, "Orders").
CancelReason = Literal[
    "user",
    "self_trade",
    "ioc_remainder",
    "fok_not_filled",
    "no_liquidity",
    "kill_switch",
    "cancel_after",
    "margin_call",
    "trading_ended",
]
#: The column's codes: 0 for none, then the reasons in that order.
CANCEL_REASONS: tuple[CancelReason | None, ...] = (None, *get_args(CancelReason))
_CANCEL_REASON_CODES = {name: i for i, name in enumerate(CANCEL_REASONS)}
_TYPE_CODES = {name: i for i, name in enumerate(_TYPES)}
_TIF_CODES = {name: i for i, name in enumerate(_TIFS)}
_STATUS_CODES = {name: i for i, name in enumerate(_STATUSES)}
_CLOSED = frozenset(("filled", "cancelled", "rejected"))
#: The same layouts as struct formats, to pack rows without numpy's per-row conversion.
_ROW = struct.Struct("<8q2ih7b")
_FILL = struct.Struct("<5qb")
assert _ROW.size == CLOSED_DTYPE.itemsize and _FILL.size == FILL_DTYPE.itemsize


@dataclass
class Order:
    order_id: int
    account: int
    symbol: str
    side: int
    type: str
    price: int  # ticks, 0 for market
    quantity: int
    time_in_force: str
    post_only: bool
    client_order_id: str | None
    created_at: int
    stp: int
    filled: int = 0
    status: str = "open"
    fills: list[dict[str, Any]] = field(default_factory=list)
    cancel_reason: CancelReason | None = None  # once cancelled

    @property
    def remaining(self) -> int:
        return (
            0 if self.status in ("filled", "cancelled", "rejected") else self.quantity - self.filled
        )


class OrderStore:
    """Orders by id: a mapping for lookups, plus the scans the exchange needs."""

    def __init__(self, flush_every: int = FLUSH_EVERY) -> None:
        self.flush_every = flush_every
        self._live: dict[int, Order] = {}
        self._recent: dict[int, Order] = {}
        self._rows: list[np.ndarray | None] = []  # chunk i: ids i * CHUNK .. (i + 1) * CHUNK - 1
        self._fills: list[np.ndarray] = []
        self._n_fills = 0
        self._fill_top: dict[int, int] = {}  # full fill chunk -> its highest trade id
        self._n_closed = 0  # orders in the columns
        self._symbols: list[str] = []
        self._symbol_ids: dict[str, int] = {}
        self._client_bytes = bytearray()  # the client_order_ids of orders in the columns

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "_client_order_ids" in state:  # as pickled before the arena: upgrade the rows
            self._upgrade(self.__dict__.pop("_client_order_ids"))
        for c, chunk in enumerate(self._rows):  # rows pickled before a column was added
            if chunk is not None and chunk.dtype != CLOSED_DTYPE:
                self._rows[c] = _widen(chunk)

    def _upgrade(self, client_order_ids: dict[int, str]) -> None:
        """Bring a store pickled with 64-byte rows and client ids in a dict to this layout."""
        self._fill_top = {}
        self._client_bytes = bytearray()
        for c, old in enumerate(self._rows):
            if old is not None:
                new = self._rows[c] = _widen(old)
                new["client_len"] = -1
        for order_id, client_order_id in sorted(client_order_ids.items()):
            data = client_order_id.encode()
            chunk = self._rows[order_id >> _SHIFT]
            assert chunk is not None
            chunk["client_at"][order_id & (CHUNK - 1)] = len(self._client_bytes)
            chunk["client_len"][order_id & (CHUNK - 1)] = len(data)
            self._client_bytes += data

    @classmethod
    def of(cls, orders: Iterable[Order]) -> OrderStore:
        """A store holding ``orders`` (given in order id order), closed ones in the columns."""
        store = cls()
        for order in orders:
            store.add(order)
            if order.remaining == 0:
                store.close(order)
        store.flush()
        return store

    # -- changes ---------------------------------------------------------------------------
    def add(self, order: Order) -> None:
        """Add a new order; its id must be higher than every id already here.

        This is where closed orders are moved into the columns, once enough wait: no command
        is then half-way through changing one (a trade closes an order and then records the
        fill on it, say), so nothing written to an order after its close is ever lost.
        """
        if len(self._recent) >= self.flush_every:
            self.flush()
        self._live[order.order_id] = order

    def close(self, order: Order) -> None:
        """Note that ``order`` (live) is closed: it will never change again."""
        del self._live[order.order_id]
        self._recent[order.order_id] = order

    def flush(self) -> None:
        """Move the recently closed orders into the columns."""
        if not self._recent:
            return
        rows, fills = [], []
        pack_row, pack_fill = _ROW.pack, _FILL.pack
        symbol_ids = self._symbol_ids
        start = self._n_fills
        clients: list[bytes] = []
        client_at = len(self._client_bytes)
        for o in self._recent.values():  # struct, not numpy: a third of the time per order
            order_id, n = o.order_id, len(o.fills)
            symbol = symbol_ids.get(o.symbol)
            if symbol is None:
                symbol = self._symbol_id(o.symbol)
            if o.client_order_id is None:
                at, length = 0, -1
            else:
                client = o.client_order_id.encode()
                at, length = client_at, len(client)
                clients.append(client)
                client_at += length
            rows.append(pack_row(
                order_id, o.account, o.price, o.quantity, o.filled, o.created_at, start, at, n,
                symbol, length, o.side, _TYPE_CODES[o.type], _TIF_CODES[o.time_in_force],
                _STATUS_CODES[o.status], o.post_only, o.stp, _CANCEL_REASON_CODES[o.cancel_reason],
            ))  # fmt: skip
            for f in o.fills:
                fills.append(pack_fill(f["trade_id"], order_id, f["price"], f["quantity"],
                                       f["time"], f["liquidity"] == "maker"))  # fmt: skip
            start += n
        self._client_bytes += b"".join(clients)
        table = np.frombuffer(b"".join(rows), dtype=CLOSED_DTYPE)
        ids = table["order_id"]
        chunks = ids >> _SHIFT
        first, last = int(chunks.min()), int(chunks.max())
        for c in range(first, last + 1):
            at = chunks == c
            self._rows_chunk(c)[ids[at] & (CHUNK - 1)] = table[at]
        if fills:
            self._append_fills(np.frombuffer(b"".join(fills), dtype=FILL_DTYPE))
        self._n_closed += len(table)
        self._recent.clear()

    def _rows_chunk(self, c: int) -> np.ndarray:
        while len(self._rows) <= c:
            self._rows.append(None)
        chunk = self._rows[c]
        if chunk is None:
            chunk = self._rows[c] = np.zeros(CHUNK, dtype=CLOSED_DTYPE)
        return chunk

    def _append_fills(self, fills: np.ndarray) -> None:
        done = 0
        while done < len(fills):
            at = self._n_fills & (CHUNK - 1)
            if at == 0 and len(self._fills) <= self._n_fills >> _SHIFT:
                self._fills.append(np.zeros(CHUNK, dtype=FILL_DTYPE))
            n = min(CHUNK - at, len(fills) - done)
            self._fills[self._n_fills >> _SHIFT][at : at + n] = fills[done : done + n]
            done += n
            self._n_fills += n

    def _symbol_id(self, symbol: str) -> int:
        i = self._symbol_ids.get(symbol)
        if i is None:
            i = self._symbol_ids[symbol] = len(self._symbols)
            self._symbols.append(symbol)
        return i

    # -- lookups ---------------------------------------------------------------------------
    def get(self, order_id: int, default: Order | None = None) -> Order | None:
        """The order with this id, or ``default``; a closed order comes back as a copy."""
        order = self._live.get(order_id)
        if order is not None:
            return order
        order = self._recent.get(order_id)
        if order is not None:
            return order
        row = self._row(order_id)
        return default if row is None else self._order(row)

    def __getitem__(self, order_id: int) -> Order:
        order = self.get(order_id)
        if order is None:
            raise KeyError(order_id)
        return order

    def __contains__(self, order_id: object) -> bool:
        if not isinstance(order_id, int | np.integer):
            return False
        order_id = int(order_id)
        return order_id in self._live or order_id in self._recent or self._row(order_id) is not None

    def __len__(self) -> int:
        return len(self._live) + len(self._recent) + self._n_closed

    def open(self) -> list[Order]:
        """The orders that are not closed, in order id order."""
        return list(self._live.values())

    def values(self) -> Iterator[Order]:
        """Every order, in order id order (closed ones as copies)."""
        objects = sorted((*self._live.values(), *self._recent.values()), key=lambda o: o.order_id)
        i = 0
        for chunk in self._rows:
            if chunk is None:
                continue
            for row in chunk[chunk["order_id"] != 0]:
                order_id = int(row["order_id"])
                while i < len(objects) and objects[i].order_id < order_id:
                    yield objects[i]
                    i += 1
                yield self._order(row)
        yield from objects[i:]

    def select(
        self,
        account: int,
        *,
        symbol: str | None = None,
        statuses: Iterable[str] | None = None,
        before: int | None = None,
    ) -> Iterator[Order]:
        """The orders of ``account``, newest first: only of ``symbol``, in ``statuses`` and
        with ids below ``before``, where given.

        The columns are filtered chunk by chunk with numpy and an order is built only when it
        is read, so taking the first few of an account with millions costs little.
        """
        wanted = None if statuses is None else frozenset(statuses)
        closed = wanted is None or not wanted.isdisjoint(_CLOSED)

        def keep(o: Order) -> bool:
            return (
                o.account == account
                and (symbol is None or o.symbol == symbol)
                and (wanted is None or o.status in wanted)
                and (before is None or o.order_id < before)
            )

        objects = [o for o in self._live.values() if keep(o)]
        if closed:
            objects.extend(o for o in self._recent.values() if keep(o))
        objects.sort(key=lambda o: -o.order_id)
        if not closed:
            return iter(objects)
        return heapq.merge(
            objects, self._select_rows(account, symbol, wanted, before), key=lambda o: -o.order_id
        )

    def _select_rows(
        self, account: int, symbol: str | None, wanted: frozenset[str] | None, before: int | None
    ) -> Iterator[Order]:
        symbol_id = None if symbol is None else self._symbol_ids.get(symbol)
        if symbol is not None and symbol_id is None:
            return
        codes = None if wanted is None else [_STATUS_CODES[s] for s in wanted if s in _CLOSED]
        last = len(self._rows) if before is None else min(len(self._rows), (before >> _SHIFT) + 1)
        for c in range(last - 1, -1, -1):
            chunk = self._rows[c]
            if chunk is None:
                continue
            used = (chunk["account"] == account) & (chunk["order_id"] != 0)
            if symbol_id is not None:
                used &= chunk["symbol"] == symbol_id
            if codes is not None:
                used &= np.isin(chunk["status"], codes)
            if before is not None:
                used &= chunk["order_id"] < before
            for row in chunk[used][::-1]:
                yield self._order(row)

    def fills_of(
        self, account: int, *, symbol: str | None = None, before: int | None = None, limit: int
    ) -> list[tuple[int, int, str, int, int, int, str, int]]:
        """The newest ``limit`` fills of ``account`` (of ``symbol``, with trade ids below
        ``before``, where given): ``(trade_id, order_id, symbol, side, price, quantity,
        liquidity, time)``, newest first.

        Both fills of a trade between two orders of the account stay on the same page, so a
        page can hold ``limit + 1`` fills; the next page starts below its last trade id.
        """
        rows = [
            (f["trade_id"], o.order_id, o.symbol, o.side, f["price"], f["quantity"],
             f["liquidity"], f["time"])
            for o in (*self._live.values(), *self._recent.values())
            if o.account == account and (symbol is None or o.symbol == symbol)
            for f in o.fills
            if before is None or f["trade_id"] < before
        ]  # fmt: skip
        symbol_id = None if symbol is None else self._symbol_ids.get(symbol, -1)
        names = self._symbols
        found: list[np.ndarray] = []  # trade ids from the columns, to skip older chunks
        oldest_on_page: int | None = None  # once limit + 1 are found: the lowest that counts
        for c in range(len(self._fills) - 1, -1, -1):  # newest chunk first
            if oldest_on_page is not None and self._fill_max(c) < oldest_on_page:
                continue  # all older than the page already found
            fills, accounts, symbols, sides = self._fill_chunk(c)
            used = accounts == account
            if symbol_id is not None:
                used &= symbols == symbol_id
            if before is not None:
                used &= fills["trade_id"] < before
            fills, symbols, sides = fills[used], symbols[used], sides[used]
            if len(fills) > limit + 1:  # only the newest can make the page
                newest = np.argsort(-fills["trade_id"], kind="stable")[: limit + 1]
                fills, symbols, sides = fills[newest], symbols[newest], sides[newest]
            found.append(fills["trade_id"])
            ids = np.concatenate(found)
            if len(ids) > limit:
                oldest_on_page = int(np.partition(ids, len(ids) - limit - 1)[-limit - 1])
            rows.extend(zip(
                fills["trade_id"].tolist(), fills["order_id"].tolist(),
                [names[i] for i in symbols.tolist()], sides.tolist(), fills["price"].tolist(),
                fills["quantity"].tolist(), [_LIQUIDITY[m] for m in fills["maker"].tolist()],
                fills["time"].tolist(), strict=True,
            ))  # fmt: skip
        rows.sort(key=lambda f: (-f[0], f[1]))
        if len(rows) > limit and rows[limit][0] == rows[limit - 1][0]:
            limit += 1  # a self-trade's two fills are never split across pages
        return rows[:limit]

    def _fill_columns(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Each chunk of column fills with its orders' account, symbol id and side."""
        for c in range(len(self._fills)):
            yield self._fill_chunk(c)

    def _fills_used(self, c: int) -> np.ndarray:
        """The rows of fill chunk ``c`` that hold fills."""
        return self._fills[c][: max(0, min(CHUNK, self._n_fills - c * CHUNK))]

    def _fill_chunk(self, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        fills = self._fills_used(c)
        ids = fills["order_id"]
        accounts = np.empty(len(fills), dtype=np.int64)
        symbols = np.empty(len(fills), dtype=np.int64)
        sides = np.empty(len(fills), dtype=np.int64)
        chunks = ids >> _SHIFT
        for r in np.unique(chunks).tolist():  # each order's row, chunk by chunk
            at = chunks == r
            rows = self._rows[r][ids[at] & (CHUNK - 1)]  # type: ignore[index]
            accounts[at], symbols[at], sides[at] = rows["account"], rows["symbol"], rows["side"]
        return fills, accounts, symbols, sides

    def _fill_max(self, c: int) -> int:
        """The highest trade id in fill chunk ``c`` (kept once the chunk is full)."""
        top = self._fill_top.get(c)
        if top is None:
            used = self._fills_used(c)
            top = int(used["trade_id"].max()) if len(used) else 0
            if len(used) == CHUNK:
                self._fill_top[c] = top
        return top

    def taker_fills(self) -> list[tuple[int, str, int, int, int, int]]:
        """Every trade once, from its taker's fill: ``(trade_id, symbol, price, quantity,
        taker side, time)``, in trade id order."""
        out = [
            (f["trade_id"], o.symbol, f["price"], f["quantity"], o.side, f["time"])
            for o in (*self._live.values(), *self._recent.values())
            for f in o.fills
            if f["liquidity"] == "taker"
        ]
        names = self._symbols
        for fills, _, symbols, sides in self._fill_columns():
            taker = fills["maker"] == 0
            fills, symbols, sides = fills[taker], symbols[taker], sides[taker]
            out.extend(zip(
                fills["trade_id"].tolist(), [names[i] for i in symbols.tolist()],
                fills["price"].tolist(), fills["quantity"].tolist(), sides.tolist(),
                fills["time"].tolist(), strict=True,
            ))  # fmt: skip
        out.sort()
        return out

    def account_of(self, order_id: int) -> int | None:
        """The account of the order with this id, or None, without building the order."""
        order = self._live.get(order_id) or self._recent.get(order_id)
        if order is not None:
            return order.account
        row = self._row(order_id)
        return None if row is None else int(row["account"])

    def owner(self, order_id: int) -> tuple[int, str | None]:
        """``(account, client_order_id)`` of an order that is here, without building it."""
        order = self._live.get(order_id) or self._recent.get(order_id)
        if order is not None:
            return order.account, order.client_order_id
        row = self._row(order_id)
        if row is None:
            raise KeyError(order_id)
        return int(row["account"]), self._client(int(row["client_at"]), int(row["client_len"]))

    def _client(self, at: int, length: int) -> str | None:
        return None if length < 0 else self._client_bytes[at : at + length].decode()

    def _row(self, order_id: int) -> np.void | None:
        c = order_id >> _SHIFT
        if order_id <= 0 or c >= len(self._rows):
            return None
        chunk = self._rows[c]
        if chunk is None:
            return None
        row = chunk[order_id & (CHUNK - 1)]
        return row if row["order_id"] else None

    def _order(self, row: np.void) -> Order:
        (order_id, account, price, quantity, filled, created_at, fill_start, client_at, n_fills,
         symbol, client_len, side, type_, tif, status, post_only, stp, why) = row.tolist()  # fmt: skip
        fills = []
        for at in range(fill_start, fill_start + n_fills):
            f = self._fills[at >> _SHIFT][at & (CHUNK - 1)]
            trade_id, _, fill_price, fill_quantity, ts, maker = f.tolist()
            fills.append({"trade_id": trade_id, "price": fill_price, "quantity": fill_quantity,
                          "liquidity": _LIQUIDITY[maker], "time": ts})  # fmt: skip
        return Order(
            order_id=order_id,
            account=account,
            symbol=self._symbols[symbol],
            side=side,
            type=_TYPES[type_],
            price=price,
            quantity=quantity,
            time_in_force=_TIFS[tif],
            post_only=bool(post_only),
            client_order_id=self._client(client_at, client_len),
            created_at=created_at,
            stp=stp,
            filled=filled,
            status=_STATUSES[status],
            fills=fills,
            cancel_reason=CANCEL_REASONS[why],
        )


def _widen(old: np.ndarray) -> np.ndarray:
    """A chunk of rows of an older layout in :data:`CLOSED_DTYPE` (new columns zero)."""
    new = np.zeros(len(old), dtype=CLOSED_DTYPE)
    for name in old.dtype.names or ():
        new[name] = old[name]
    return new
