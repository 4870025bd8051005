"""The ledger: double-entry, append-only, in SQLite or PostgreSQL.

:class:`Ledger` opens (and migrates) a store, opens accounts, posts balanced transactions
in batches, answers balances and history, and proves its invariants with :meth:`check`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from exchange.ledger import statements as sql
from exchange.ledger.check import run_check
from exchange.ledger.errors import (
    AccountConflict,
    DuplicateTransaction,
    InsufficientFunds,
    InvalidAccount,
    UnknownAccount,
)
from exchange.ledger.models import ACCOUNT, BALANCE, LINE, TRANSACTION
from exchange.ledger.store import WRITE, current_revision, is_postgres, make_engine, migrate
from exchange.ledger.types import (
    MAX_OWNER,
    NON_NEGATIVE,
    PARTICIPANT_ACCOUNTS,
    SYSTEM_ACCOUNTS,
    Account,
    Asset,
    Checked,
    Entry,
    HistoryEntry,
    Posting,
    Receipt,
    Role,
    Transaction,
    check_posting,
)

#: Bound parameters per ``IN (...)`` list, under every backend's limit.
CHUNK = 900
#: Attempts at a batch that lost a race on a new key or account to a concurrent writer.
ATTEMPTS = 3

#: Assets as plain strings for the drivers (a dict lookup is cheaper than ``.value``).
_PLAIN = {asset: asset.value for asset in Asset}
_PARTICIPANT_ROLES = frozenset({Role.TRADER.value, Role.PROVIDER.value})
_AccountKey = tuple[str, str]


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class Ledger:
    """A double-entry ledger of USD cents and GPU-hours in one SQL database.

    ``url`` is ``sqlite:///path/ledger.db`` (the embedded default) or
    ``postgresql+psycopg://user@host/db``. Opening runs every pending migration, so a
    database written by an older cfx opens. With ``auto_open``, a posting naming a
    participant the ledger has not seen opens it (role ``trader``) instead of being refused
    with ``UNKNOWN_ACCOUNT``: for a ledger that projects a journal whose state machine
    already decided who exists.
    """

    def __init__(self, url: str, *, auto_open: bool = False, echo: bool = False) -> None:
        self.engine = make_engine(url, echo=echo)
        self.auto_open = auto_open
        self._postgres = is_postgres(self.engine)
        self._dialect = "postgresql" if self._postgres else "sqlite"
        self._writer = self.engine.execution_options(**{WRITE: True})
        self._ids: dict[_AccountKey, int] = {}
        self._sqlite_sql = {} if self._postgres else sql.sqlite_appends(self.engine.dialect)
        try:
            migrate(self.engine)
        except BaseException:
            self.engine.dispose()
            raise

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def revision(self) -> str | None:
        """The schema revision the database is at."""
        with self.engine.connect() as connection:
            return current_revision(connection)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- accounts -----------------------------------------------------------------------------
    def open_account(self, owner: str, role: Role | str = Role.TRADER) -> dict[str, Account]:
        """Open participant ``owner``'s sub-accounts (all at zero); return them by name.

        Opening an owner again with the same role returns its accounts; a different role,
        or a reserved owner (``exchange``, ``world``), raises :class:`AccountConflict`; a
        role other than trader or provider, or an owner name that is not 1 to 64
        characters, :class:`InvalidAccount`.
        """
        role = str(role)
        if role not in _PARTICIPANT_ROLES:
            raise InvalidAccount(f"a participant is a trader or a provider, not {role!r}")
        if type(owner) is not str or not 0 < len(owner) <= MAX_OWNER:
            raise InvalidAccount(f"owner must be a string of 1 to {MAX_OWNER} characters")
        if owner in SYSTEM_ACCOUNTS:
            raise AccountConflict(f"{owner!r} is reserved for the exchange's own accounts")
        with self._writer.begin() as connection:
            self._insert_participants(connection, {owner: role})
            accounts = self._load_accounts(connection, [owner])
        if any(account.role != role for account in accounts):
            raise AccountConflict(f"{owner!r} is already open as a {accounts[0].role}", owner=owner)
        self._ids.update({(a.owner, a.name): a.id for a in accounts})
        return {account.name: account for account in accounts}

    def accounts(self, owner: str | None = None) -> list[Account]:
        """Return every account, or ``owner``'s, in id order."""
        query = select(ACCOUNT).order_by(ACCOUNT.c.id)
        if owner is not None:
            query = query.where(ACCOUNT.c.owner == owner)
        with self.engine.connect() as connection:
            return [self._account(row) for row in connection.execute(query).mappings()]

    @staticmethod
    def _account(row: RowMapping) -> Account:
        return Account(row["id"], row["owner"], row["name"], Asset(row["asset"]), Role(row["role"]))

    def _load_accounts(self, connection: Connection, owners: Sequence[str]) -> list[Account]:
        found: list[Account] = []
        for chunk in _chunks(owners):
            rows = connection.execute(sql.ACCOUNTS_OF, {"owners": list(chunk)}).mappings()
            found.extend(self._account(row) for row in rows)
        return found

    def _insert_participants(self, connection: Connection, roles: Mapping[str, str]) -> None:
        """Insert the sub-accounts of ``roles``' owners that do not exist yet, and balances."""
        rows = [
            {"owner": owner, "name": name, "asset": asset.value, "role": role}
            for owner, role in roles.items()
            for name, asset in PARTICIPANT_ACCOUNTS.items()
        ]
        dialect_insert = pg_insert if self._postgres else sqlite_insert
        connection.execute(dialect_insert(ACCOUNT).on_conflict_do_nothing(), rows)
        for chunk in _chunks(list(roles)):
            missing = (
                select(ACCOUNT.c.id, ACCOUNT.c.asset, text("0"))
                .where(ACCOUNT.c.owner.in_(chunk))
                .where(
                    ~select(BALANCE.c.account_id)
                    .where(BALANCE.c.account_id == ACCOUNT.c.id)
                    .exists()
                )
                .order_by(ACCOUNT.c.id)
            )
            columns = ["account_id", "asset", "amount"]
            connection.execute(insert(BALANCE).from_select(columns, missing))

    def _resolve(self, connection: Connection, wanted: set[_AccountKey]) -> dict[_AccountKey, int]:
        """Return the id of every wanted ``(owner, name)``, opening participants if allowed."""
        ids = {key: self._ids[key] for key in wanted if key in self._ids}
        missing = wanted - ids.keys()
        if not missing:
            return ids
        owners = sorted({owner for owner, _ in missing})
        known = {(a.owner, a.name): a.id for a in self._load_accounts(connection, owners)}
        unopened = {owner for owner, name in missing if (owner, name) not in known}
        if unopened and self.auto_open:
            participants = {
                owner: Role.TRADER.value for owner in unopened if owner not in SYSTEM_ACCOUNTS
            }
            if participants:
                self._insert_participants(connection, participants)
                known = {(a.owner, a.name): a.id for a in self._load_accounts(connection, owners)}
        for key in missing:
            if key not in known:
                raise UnknownAccount(
                    f"no account {key[1]!r} of {key[0]!r}; open it first",
                    owner=key[0],
                    account=key[1],
                )
            ids[key] = known[key]
        return ids

    # -- posting ------------------------------------------------------------------------------
    def post(self, posting: Posting | Mapping[str, Any]) -> Receipt:
        """Post one transaction; see :meth:`post_many`."""
        return self.post_many([posting])[0]

    def post_many(self, postings: Iterable[Posting | Mapping[str, Any]]) -> list[Receipt]:
        """Post a batch of transactions in one database transaction; return their receipts.

        Each posting is a :class:`Posting` or a mapping with ``key``, ``kind``, ``time``,
        ``lines`` of ``(owner, account, amount)`` and an optional ``memo``. A key already
        posted with the same content is a replay: its receipt names the original and has
        ``replayed=True``, and nothing is written. The batch is all or nothing: if any
        posting is refused (:class:`LedgerError` with a ``code``), nothing is written.
        Postings apply in order, so a later one may spend what an earlier one brought.
        """
        checked = [check_posting(Posting.of(p)) for p in postings]
        if not checked:
            return []
        for attempt in range(ATTEMPTS):
            try:
                with self._writer.begin() as connection:
                    receipts, ids = self._post_checked(connection, checked)
            except IntegrityError:
                # a concurrent writer took a key or an account first: look again
                if attempt == ATTEMPTS - 1:
                    raise
                continue
            self._ids.update(ids)
            return receipts
        raise AssertionError("unreachable")

    def _post_checked(
        self, connection: Connection, checked: list[Checked]
    ) -> tuple[list[Receipt], dict[_AccountKey, int]]:
        # 1. replays: keys already stored, or repeated within the batch
        keys = list({c.posting.key: None for c in checked})
        rows = connection.execute(sql.STORED_KEYS[self._dialect], {"keys": self._array(keys)})
        stored: dict[str, tuple[int, str]] = {key: (id_, digest) for key, id_, digest in rows.all()}
        fresh: list[Checked] = []
        first: dict[str, Checked] = {}
        for c in checked:
            key = c.posting.key
            earlier = stored.get(key)
            if earlier is not None:
                if earlier[1] != c.digest:
                    raise DuplicateTransaction(
                        f"key {key!r} already names transaction {earlier[0]} with other content",
                        key=key,
                        transaction_id=earlier[0],
                    )
            elif key in first:
                if first[key].digest != c.digest:
                    raise DuplicateTransaction(
                        f"key {key!r} appears twice in the batch with different content", key=key
                    )
            else:
                first[key] = c
                fresh.append(c)
        if not fresh:
            return [Receipt(stored[c.posting.key][0], c.posting.key, True) for c in checked], {}

        # 2. accounts, then their balances, locked in account order
        ids = self._resolve(connection, {(o, a) for c in fresh for o, a, _ in c.posting.lines})
        touched = sorted(set(ids.values()))
        rows = connection.execute(sql.BALANCES[self._dialect], {"ids": self._array(touched)})
        balances: dict[int, int] = dict(rows.all())
        guarded = {
            id_: key
            for key, id_ in ids.items()
            if key[1] in NON_NEGATIVE and key[0] not in SYSTEM_ACCOUNTS
        }

        # 3. apply in order, no guarded balance ending a posting below zero; build the rows
        tx_ids = self._reserve_ids(connection, len(fresh))
        deltas: dict[int, int] = dict.fromkeys(touched, 0)
        tx_rows: list[tuple[Any, ...]] = []
        line_rows: list[tuple[Any, ...]] = []
        assigned: dict[str, int] = {}
        for tx_id, c in zip(tx_ids, fresh, strict=True):
            posting = c.posting
            assigned[posting.key] = tx_id
            tx_rows.append(
                (tx_id, posting.key, str(posting.kind), posting.time, posting.memo, c.digest)
            )
            line_ids = [ids[owner, account] for owner, account, _ in posting.lines]
            for n, (id_, (_, _, amount), asset) in enumerate(
                zip(line_ids, posting.lines, c.assets, strict=True)
            ):
                deltas[id_] += amount
                line_rows.append((tx_id, n, id_, _PLAIN[asset], amount))
            for id_ in line_ids:
                if id_ in guarded and balances[id_] + deltas[id_] < 0:
                    owner, account = guarded[id_]
                    raise InsufficientFunds(
                        f"{posting.kind} {posting.key!r} would take {owner}/{account} to "
                        f"{balances[id_] + deltas[id_]}",
                        key=posting.key,
                        owner=owner,
                        account=account,
                        shortfall=-(balances[id_] + deltas[id_]),
                    )

        # 4. append transactions and lines, move balances
        moves = [(delta, id_) for id_, delta in deltas.items() if delta]
        if self._postgres:
            self._append_postgres(connection, tx_rows, line_rows, moves)
        else:
            self._append_sqlite(connection, tx_rows, line_rows, moves)
        receipts = []
        for c in checked:
            key = c.posting.key
            if key in stored:
                receipts.append(Receipt(stored[key][0], key, True))
            else:
                receipts.append(Receipt(assigned[key], key, first[key] is not c))
        return receipts, ids

    def _append_sqlite(
        self,
        connection: Connection,
        tx_rows: list[tuple[Any, ...]],
        line_rows: list[tuple[Any, ...]],
        moves: list[tuple[int, int]],
    ) -> None:
        """Append with executemany: SQLite runs one prepared statement over all the rows.

        The statements are Core constructs compiled once; the rows go to the driver as
        tuples, skipping SQLAlchemy's per-row parameter processing (plain integers and
        strings need none).
        """
        compiled = self._sqlite_sql
        connection.exec_driver_sql(compiled["transaction"], tx_rows)
        connection.exec_driver_sql(compiled["line"], line_rows)
        if moves:
            connection.exec_driver_sql(compiled["move"], moves)

    @staticmethod
    def _append_postgres(
        connection: Connection,
        tx_rows: list[tuple[Any, ...]],
        line_rows: list[tuple[Any, ...]],
        moves: list[tuple[int, int]],
    ) -> None:
        """Append with one statement per table: the rows go as arrays, unnested by the server."""
        for statement, rows in (
            (sql.PG_INSERT_TRANSACTIONS, tx_rows),
            (sql.PG_INSERT_LINES, line_rows),
        ):
            columns = [list(column) for column in zip(*rows, strict=True)]
            connection.execute(statement, {f"c{i}": column for i, column in enumerate(columns)})
        if moves:
            deltas, ids = zip(*moves, strict=True)
            connection.execute(sql.PG_MOVE_BALANCES, {"ids": list(ids), "deltas": list(deltas)})

    def _array(self, values: list[Any]) -> Any:
        """Pass ``values`` as one parameter: a list for psycopg, JSON text for json_each."""
        return values if self._postgres else json.dumps(values)

    def _reserve_ids(self, connection: Connection, n: int) -> list[int]:
        """Reserve ``n`` new transaction ids, ascending."""
        if self._postgres:
            # concurrent writers may interleave: ids are unique and ascending, not contiguous
            query = text(
                "SELECT nextval(pg_get_serial_sequence('ledger_transaction', 'id')) "
                "FROM generate_series(1, :n)"
            )
            return sorted(int(i) for i in connection.execute(query, {"n": n}).scalars())
        # SQLite: this transaction holds the database's write lock (BEGIN IMMEDIATE)
        last = connection.execute(text("SELECT COALESCE(MAX(id), 0) FROM ledger_transaction"))
        first = int(last.scalar_one()) + 1
        return list(range(first, first + n))

    # -- reading ------------------------------------------------------------------------------
    def balance(self, owner: str, account: str = "available") -> int:
        """Return the balance of ``owner``'s ``account`` (cents or GPU-hours)."""
        query = (
            select(BALANCE.c.amount)
            .join(ACCOUNT, ACCOUNT.c.id == BALANCE.c.account_id)
            .where(ACCOUNT.c.owner == owner, ACCOUNT.c.name == account)
        )
        with self.engine.connect() as connection:
            amount = connection.execute(query).scalar_one_or_none()
        if amount is None:
            raise UnknownAccount(
                f"no account {account!r} of {owner!r}", owner=owner, account=account
            )
        return int(amount)

    def balances(self, owner: str) -> dict[str, int]:
        """Return every balance of ``owner`` by sub-account name; raise if it has none."""
        query = (
            select(ACCOUNT.c.name, BALANCE.c.amount)
            .join(BALANCE, BALANCE.c.account_id == ACCOUNT.c.id)
            .where(ACCOUNT.c.owner == owner)
            .order_by(ACCOUNT.c.id)
        )
        with self.engine.connect() as connection:
            found = {name: int(amount) for name, amount in connection.execute(query)}
        if not found:
            raise UnknownAccount(f"no accounts of {owner!r}", owner=owner)
        return found

    def trial_balance(self) -> dict[tuple[str, str], int]:
        """Return every account's balance by ``(owner, name)``, the exchange's included."""
        query = (
            select(ACCOUNT.c.owner, ACCOUNT.c.name, BALANCE.c.amount)
            .join(BALANCE, BALANCE.c.account_id == ACCOUNT.c.id)
            .order_by(ACCOUNT.c.id)
        )
        with self.engine.connect() as connection:
            return {(owner, name): int(amount) for owner, name, amount in connection.execute(query)}

    def transaction(self, key: str) -> Transaction | None:
        """Return the transaction posted under ``key`` with its lines, or ``None``."""
        with self.engine.connect() as connection:
            header = (
                connection.execute(select(TRANSACTION).where(TRANSACTION.c.key == key))
                .mappings()
                .one_or_none()
            )
            if header is None:
                return None
            rows = connection.execute(
                select(ACCOUNT.c.owner, ACCOUNT.c.name, LINE.c.amount)
                .join(ACCOUNT, ACCOUNT.c.id == LINE.c.account_id)
                .where(LINE.c.transaction_id == header["id"])
                .order_by(LINE.c.n)
            ).all()
        return Transaction(
            id=header["id"],
            key=header["key"],
            kind=header["kind"],
            time=header["time"],
            memo=header["memo"],
            lines=tuple(Entry(owner, name, amount) for owner, name, amount in rows),
        )

    def last_key(self) -> str | None:
        """Return the key of the transaction posted last, or ``None`` for an empty ledger.

        Transaction ids rise in posting order, so for a writer that posts in order (the
        exchange's, keyed ``"<seq>:<n>"``) everything up to this key is in the ledger.
        """
        query = select(TRANSACTION.c.key).order_by(TRANSACTION.c.id.desc()).limit(1)
        with self.engine.connect() as connection:
            key = connection.execute(query).scalar_one_or_none()
        return None if key is None else str(key)

    def history(
        self, owner: str, account: str | None = None, *, after: int = 0, limit: int = 1000
    ) -> list[HistoryEntry]:
        """Return ``owner``'s lines (or one account's) oldest first, after transaction ``after``.

        Page through a long history by passing the last entry's ``transaction_id`` as
        ``after``.
        """
        query = (
            select(
                TRANSACTION.c.id,
                TRANSACTION.c.key,
                TRANSACTION.c.kind,
                TRANSACTION.c.time,
                TRANSACTION.c.memo,
                ACCOUNT.c.name,
                LINE.c.asset,
                LINE.c.amount,
            )
            .select_from(LINE)
            .join(ACCOUNT, ACCOUNT.c.id == LINE.c.account_id)
            .join(TRANSACTION, TRANSACTION.c.id == LINE.c.transaction_id)
            .where(ACCOUNT.c.owner == owner, LINE.c.transaction_id > after)
            .order_by(LINE.c.transaction_id, LINE.c.n)
            .limit(limit)
        )
        if account is not None:
            query = query.where(ACCOUNT.c.name == account)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            HistoryEntry(id_, key, kind, time, memo, name, Asset(asset), amount)
            for id_, key, kind, time, memo, name, asset, amount in rows
        ]

    def check(self, limit: int = 100) -> dict[str, Any]:
        """Prove the invariants now, on one snapshot; ``result["balanced"]`` says if all hold.

        See :func:`exchange.ledger.check.run_check` for the shape of the result.
        """
        engine = self.engine
        if self._postgres:
            engine = engine.execution_options(isolation_level="REPEATABLE READ")
        with engine.begin() as connection:
            return run_check(connection, limit)
