"""The sequencer: one writer that numbers commands, journals them, then applies them.

Requests from REST and websocket connections are put on one queue. The sequencer takes
whatever is waiting (up to ``max_batch``), stamps each command with the clock, appends the
whole batch to the journal with one write and one fsync (group commit: while one batch is
being made durable and applied, the next one gathers), applies the commands to the state in
order, and only then answers the requests: nothing is acknowledged before it is durable. Each outcome
then fans out to the listeners (private streams, the ledger's write-behind queue), and each
batch, once applied, to the batch listeners (the market-data publisher).

A request is answered either through a future (:meth:`Sequencer.submit`, for code that
awaits) or through a callback run as soon as its command is applied
(:meth:`Sequencer.submit_nowait`, for the websocket, which answers many requests a batch
without a task or a future for each).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import threading
import time
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import orjson

from exchange.reasons import Reason
from exchange.sequencer.client_ids import ClientOrderIds
from exchange.sequencer.orders import OrderStore
from exchange.sequencer.state import ExchangeState, Outcome, Refused

#: 2: positions hold integer cost and realized P&L (1 held exact fractions; a version 1
#: snapshot still loads, its positions rounded as :func:`_whole_tick_positions` says).
#: 3: orders in an :class:`OrderStore`, closed ones in columns (1 and 2 held a dict of
#: objects; they still load, converted).
#: 4: client order ids in a compact table and arena (they load from older versions). Version
#: 3 could lack the fill that closed an order (the store moved the order into its columns
#: before the fill was added): it is passed over while an older snapshot or the whole
#: journal can rebuild the state, and loaded only when nothing else can.
SNAPSHOT_VERSION = 4
#: Snapshot versions that load but may be missing fills (see above).
LOSSY_VERSIONS = (3,)
#: Journal appends faster than this on average are written on the loop, not in a thread.
INLINE_APPEND_S = 0.001

log = logging.getLogger("cfx")


class Clock:
    """Where the sequencer gets time: the wall clock, or a simulated one moved by admins."""

    def __init__(self, simulated: bool) -> None:
        self.simulated = simulated

    def now(self, state: ExchangeState) -> int:
        if self.simulated:
            return state.now
        return max(time.time_ns(), state.now)


Answer = Callable[[Outcome], None]


class _Pending:
    """One request waiting for the sequencer: its command and whom to answer."""

    __slots__ = ("answer_to", "command", "future")

    def __init__(
        self,
        command: dict[str, Any],
        future: asyncio.Future[Outcome] | None,
        answer_to: Answer | None = None,
    ) -> None:
        self.command = command
        self.future = future
        self.answer_to = answer_to

    def answer(self, outcome: Outcome) -> None:
        if self.answer_to is not None:
            answer_to, self.answer_to = self.answer_to, None
            try:
                answer_to(outcome)
            except Exception:  # a connection that cannot take its answer must not stop us
                log.exception("answering a request failed")
        elif self.future is not None and not self.future.done():
            self.future.set_result(outcome)


Listener = Callable[[int, dict[str, Any], Outcome], None]
BatchListener = Callable[[], None]


class Sequencer:
    """Owns the :class:`ExchangeState`; the only code path that changes it."""

    def __init__(
        self, state: ExchangeState, journal: Any, clock: Clock, max_batch: int = 512
    ) -> None:
        self.state = state
        self.journal = journal
        self.clock = clock
        self.max_batch = max_batch
        self.listeners: list[Listener] = []
        #: Called once after each applied batch (after every command's listeners and answer).
        self.batch_listeners: list[BatchListener] = []
        self._queue: deque[_Pending] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.failed: Exception | None = None
        self._snapshot_writer: threading.Thread | None = None
        self._append_s = 0.0  #: moving average of a batch's journal append, seconds

    # -- recovery ------------------------------------------------------------------------
    def recover(self, at_most: int | None = None) -> dict[str, Any]:
        """Load the newest snapshot and replay the journal after it; return what was done.

        A snapshot whose data does not load is passed over for the one before it (or for
        none: a replay from the first record). With ``at_most``, no snapshot after that seq
        is used, so every command after ``at_most`` is replayed through the listeners.
        """
        started = time.perf_counter()
        after = 0
        unloadable: list[dict[str, Any]] = []
        lossy: tuple[int, bytes] | None = None
        used_lossy = False
        for seq, data in self.journal.snapshots(at_most):
            try:
                self.state = restore_state(data)
            except Exception as exc:  # a snapshot from another version, or damaged inside
                unloadable.append({"seq": seq, "reason": f"{type(exc).__name__}: {exc}"})
                if isinstance(exc, LossySnapshot) and lossy is None:
                    lossy = (seq, data)
                continue
            after = seq
            break
        else:
            if lossy is not None and getattr(self.journal, "first_seq", 1) > 1:
                # the journal no longer starts at record 1: a lossy snapshot beats none
                after, self.state = lossy[0], restore_state(lossy[1], lossy=True)
                used_lossy = True
                log.warning("recovered from snapshot %d, which may lack some fills", after)
        replayed = 0
        # the answers were given when the commands ran, and the ledger holds the postings
        # of the commands to ``at_most``: the replay leaves them out (ExchangeState.replaying)
        self.state.replaying, self.state.posted_to = True, at_most or 0
        try:
            for seq, payload in self.journal.replay(after):
                command = orjson.loads(payload)
                outcome = self._apply(seq, command)
                replayed += 1
                for listener in self.listeners:
                    listener(seq, command, outcome)
        finally:
            self.state.replaying, self.state.posted_to = False, 0
        return {
            "snapshot_seq": after,
            "unloadable_snapshots": unloadable,
            "lossy_snapshot": used_lossy,  # loaded one that may lack fills: nothing else could
            "replayed": replayed,
            "seconds": round(time.perf_counter() - started, 3),
            "recovery": getattr(self.journal, "recovery", None),
        }

    def _apply(self, seq: int, command: dict[str, Any]) -> Outcome:
        try:
            return self.state.apply(seq, command)
        except Refused as refused:
            # what ran before the refusal (scheduled events due by the command's time) stays
            outcome = refused.outcome or Outcome()
            outcome.reply = refused
            return outcome

    # -- running -------------------------------------------------------------------------
    def start(self) -> None:
        self._wakeup = asyncio.Event()
        if self._queue:
            self._wakeup.set()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sequencer")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.wait_for_snapshot(timeout=120)

    async def submit(self, command: dict[str, Any]) -> Outcome:
        """Sequence ``command``; return its outcome once durable, or raise :class:`Refused`."""
        if self.failed is not None:
            raise Refused(
                Reason.UNAVAILABLE, "the exchange cannot write its journal; try again later"
            )
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._put(_Pending(command, future))
        outcome = await future
        if isinstance(outcome.reply, Refused):
            raise outcome.reply
        return outcome

    def submit_nowait(self, command: dict[str, Any], answer: Answer) -> None:
        """Queue ``command``; call ``answer(outcome)`` once it is durable and applied.

        The outcome's ``reply`` is a :class:`Refused` when the command was refused. Raise
        :class:`Refused` at once if the sequencer has stopped taking commands.
        """
        if self.failed is not None:
            raise Refused(
                Reason.UNAVAILABLE, "the exchange cannot write its journal; try again later"
            )
        self._put(_Pending(command, None, answer))

    def _put(self, pending: _Pending) -> None:
        self._queue.append(pending)
        if self._wakeup is not None and not self._wakeup.is_set():
            self._wakeup.set()

    async def _next_batch(self) -> list[_Pending]:
        queue = self._queue
        while not queue:
            assert self._wakeup is not None
            self._wakeup.clear()
            await self._wakeup.wait()
        if len(queue) <= self.max_batch:
            batch = list(queue)
            queue.clear()
        else:
            batch = [queue.popleft() for _ in range(self.max_batch)]
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            now = self.clock.now(self.state)
            payloads = []
            accepted = []
            for pending in batch:
                pending.command["ts"] = now
                try:
                    payloads.append(orjson.dumps(pending.command))
                except TypeError as exc:  # e.g. an integer beyond 64 bits: refuse just this one
                    pending.answer(Outcome(reply=Refused(Reason.INVALID_REQUEST, str(exc))))
                    continue
                accepted.append(pending)
            batch = accepted
            if not batch:
                continue
            try:
                first = await self._append(loop, payloads)
            except Exception as exc:  # the journal refused: acknowledge nothing, change nothing
                if getattr(exc, "code", None) == "JOURNAL_BROKEN":
                    self._broken(exc, batch)
                    continue
                for pending in batch:
                    pending.answer(
                        Outcome(
                            reply=Refused(
                                Reason.JOURNAL_UNAVAILABLE,
                                f"the journal could not be written ({exc}); nothing was "
                                "done: retry later",
                            )
                        )
                    )
                self._batch_done()
                continue
            for offset, pending in enumerate(batch):
                seq = first + offset
                try:
                    outcome = self._apply(seq, pending.command)
                except Exception as exc:  # a bug: stop taking commands rather than diverge
                    self._fail(exc, batch[offset:])
                    raise
                for listener in self.listeners:
                    try:
                        listener(seq, pending.command, outcome)
                    except Exception:  # a projection failed; the command stands, answer it
                        log.exception("listener failed on seq %d", seq)
                pending.answer(outcome)
            self._batch_done()

    async def _append(self, loop: asyncio.AbstractEventLoop, payloads: list[bytes]) -> int:
        """Journal one batch; return its first seq.

        On a disk that syncs fast the write and fsync run right here: handing them to a
        thread and back costs more (two wake-ups, ~0.4 ms on an idle VM, against a 0.12 ms
        fsync). While appends take longer than :data:`INLINE_APPEND_S` on average, they run
        in a thread, so the loop goes on reading requests (the next batch) meanwhile.
        """
        started = time.perf_counter()
        if self._append_s < INLINE_APPEND_S:
            first, _ = self.journal.append_batch(payloads)
        else:
            first, _ = await loop.run_in_executor(None, self.journal.append_batch, payloads)
        self._append_s += 0.1 * (time.perf_counter() - started - self._append_s)
        return int(first)

    def _batch_done(self) -> None:
        for listener in self.batch_listeners:
            try:
                listener()
            except Exception:  # a projection failed; the batch stands
                log.exception("batch listener failed at seq %d", self.state.seq)

    def _broken(self, exc: Exception, batch: list[_Pending]) -> None:
        """The journal failed mid-write and could not cut the write back: the batch may be
        in it (and then runs after a restart), so it is neither acknowledged nor called
        undone; and nothing more is taken until a restart reopens the journal."""
        for pending in batch:
            pending.answer(Outcome(reply=Refused(
                Reason.JOURNAL_BROKEN,
                f"the journal failed while writing this command ({exc}); it may be carried "
                "out when the exchange restarts: check before sending it again",
            )))  # fmt: skip
        self._fail(exc, [])
        self._batch_done()

    def _fail(self, exc: Exception, pending: list[_Pending]) -> None:
        """Refuse everything from now on: the state may be half-changed by a failed command."""
        self.failed = exc
        unavailable = Outcome(
            reply=Refused(Reason.UNAVAILABLE, "the exchange stopped on an internal error")
        )
        pending.extend(self._queue)
        self._queue.clear()
        for item in pending:
            item.answer(unavailable)

    def snapshot(self) -> None:
        """Write a snapshot of the state at the last applied sequence number."""
        self.journal.write_snapshot(self.state.seq, snapshot_state(self.state))

    def snapshot_in_background(self) -> bool:
        """Snapshot the state as it is now from a forked process, without pausing.

        Serialising the state takes tens to hundreds of milliseconds and grows with it; in
        a child process (copy-on-write memory, as of the fork) it costs the sequencer only
        the fork itself (POSIX only). Returns False, writing nothing, while the previous
        snapshot is still being written.
        """
        if self._snapshot_writer is not None and self._snapshot_writer.is_alive():
            return False
        seq = self.state.seq
        state = self.state
        pid = self.journal.fork_snapshot(seq, lambda: snapshot_state(state))

        def reap() -> None:  # in a thread: waiting for the child must not block the loop
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            if code != 0:
                log.error("snapshot at seq %d not written (writer exit status %d)", seq, code)
                return
            try:
                self.journal.snapshot_forked(seq)
            except Exception:
                log.exception("old snapshots not pruned after seq %d", seq)

        self._snapshot_writer = threading.Thread(target=reap, name=f"snapshot-{seq}", daemon=True)
        self._snapshot_writer.start()
        return True

    def wait_for_snapshot(self, timeout: float | None = None) -> None:
        """Block until a snapshot being written in the background is done."""
        if self._snapshot_writer is not None:
            self._snapshot_writer.join(timeout)


def snapshot_state(state: ExchangeState) -> bytes:
    """Serialise the state: the engine in its own format, the rest pickled."""
    engine = state.engine
    state.engine = None  # type: ignore[assignment]
    try:
        body = pickle.dumps(state, protocol=5)
    finally:
        state.engine = engine
    return pickle.dumps({"version": SNAPSHOT_VERSION, "backend": engine.backend,
                         "engine": engine.snapshot(), "state": body})  # fmt: skip


class LossySnapshot(ValueError):
    """A snapshot of a version that may lack fills (:data:`LOSSY_VERSIONS`)."""


def restore_state(data: bytes, *, lossy: bool = False) -> ExchangeState:
    """Rebuild a state written by :func:`snapshot_state` (this version or an older one).

    A snapshot of a :data:`LOSSY_VERSIONS` version raises :class:`LossySnapshot`, unless
    ``lossy`` says to load it all the same.
    """
    from exchange.engine import Engine

    outer = pickle.loads(data)
    version = outer.get("version")
    if version in LOSSY_VERSIONS and not lossy:
        raise LossySnapshot(
            f"snapshot version {version} may lack the last fill of some closed orders"
        )
    if version not in (1, 2, *LOSSY_VERSIONS, SNAPSHOT_VERSION):
        raise ValueError(f"unsupported snapshot version {version}")
    state: ExchangeState = pickle.loads(outer["state"])
    if isinstance(state.orders, dict):  # before version 3: every order an object
        state.orders = OrderStore.of(state.orders.values())
    if isinstance(state.client_ids, dict):  # before version 4: a dict of (account, id) pairs
        state.client_ids = ClientOrderIds.of(state.client_ids.items())
    if version == 1:
        _whole_tick_positions(state)
    state.rebuild_bonds()  # before version 4 no bond was kept
    state.engine = Engine.restore(outer["engine"], backend=outer["backend"])
    return state


def _whole_tick_positions(state: ExchangeState) -> None:
    """Bring version 1's positions to this version: their cost and realized P&L were exact
    fractions. The cost is rounded half to even to a whole tick per lot and the difference
    moves into realized P&L, so ``realized - cost``, the trades' cash, stays exact."""
    for account in state.accounts.values():
        for position in account.positions.values():
            cost, realized = Fraction(position.cost), Fraction(position.realized)
            rounded = round(cost)
            position.cost, position.realized = rounded, round(realized - cost + rounded)
