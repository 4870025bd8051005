"""The sequencer: one writer that numbers commands, journals them, then applies them.

Requests from REST and websocket connections are put on one queue. The sequencer takes
whatever is waiting (up to ``max_batch``), stamps each command with the clock, appends the
whole batch to the journal with one fsync, applies the commands to the state in order, and
only then answers the requests: nothing is acknowledged before it is durable. Each outcome
then fans out to the market-data publisher and the ledger's write-behind queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from exchange.reasons import Reason
from exchange.sequencer.state import ExchangeState, Outcome, Refused

SNAPSHOT_VERSION = 1

log = logging.getLogger("cfx")


class Clock:
    """Where the sequencer gets time: the wall clock, or a simulated one moved by admins."""

    def __init__(self, simulated: bool) -> None:
        self.simulated = simulated

    def now(self, state: ExchangeState) -> int:
        if self.simulated:
            return state.now
        return max(time.time_ns(), state.now)


@dataclass
class _Pending:
    command: dict[str, Any]
    future: asyncio.Future[Outcome]


Listener = Callable[[int, dict[str, Any], Outcome], None]


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
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.failed: Exception | None = None

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
        for seq, data in self.journal.snapshots(at_most):
            try:
                self.state = restore_state(data)
            except Exception as exc:  # a snapshot from another version, or damaged inside
                unloadable.append({"seq": seq, "reason": f"{type(exc).__name__}: {exc}"})
                continue
            after = seq
            break
        replayed = 0
        for seq, payload in self.journal.replay(after):
            command = orjson.loads(payload)
            outcome = self._apply(seq, command)
            replayed += 1
            for listener in self.listeners:
                listener(seq, command, outcome)
        return {
            "snapshot_seq": after,
            "unloadable_snapshots": unloadable,
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
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sequencer")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, command: dict[str, Any]) -> Outcome:
        """Sequence ``command``; return its outcome once durable, or raise :class:`Refused`."""
        if self.failed is not None:
            raise Refused(
                Reason.UNAVAILABLE, "the exchange cannot write its journal; try again later"
            )
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(command, future))
        outcome = await future
        if isinstance(outcome.reply, Refused):
            raise outcome.reply
        return outcome

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            now = self.clock.now(self.state)
            payloads = []
            accepted = []
            for pending in batch:
                pending.command["ts"] = now
                try:
                    payloads.append(orjson.dumps(pending.command))
                except TypeError as exc:  # e.g. an integer beyond 64 bits: refuse just this one
                    pending.future.set_result(
                        Outcome(reply=Refused(Reason.INVALID_REQUEST, str(exc)))
                    )
                    continue
                accepted.append(pending)
            batch = accepted
            if not batch:
                continue
            try:
                first, _ = await loop.run_in_executor(None, self.journal.append_batch, payloads)
            except Exception as exc:  # the journal refused: acknowledge nothing, change nothing
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_result(
                            Outcome(
                                reply=Refused(
                                    Reason.JOURNAL_UNAVAILABLE,
                                    f"the journal could not be written ({exc}); nothing was "
                                    "done: retry later",
                                )
                            )
                        )
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
                if not pending.future.done():
                    pending.future.set_result(outcome)

    def _fail(self, exc: Exception, pending: list[_Pending]) -> None:
        """Refuse everything from now on: the state may be half-changed by a failed command."""
        self.failed = exc
        unavailable = Outcome(
            reply=Refused(Reason.UNAVAILABLE, "the exchange stopped on an internal error")
        )
        while not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for item in pending:
            if not item.future.done():
                item.future.set_result(unavailable)

    def snapshot(self) -> None:
        """Write a snapshot of the state at the last applied sequence number."""
        self.journal.write_snapshot(self.state.seq, snapshot_state(self.state))


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


def restore_state(data: bytes) -> ExchangeState:
    """Rebuild a state written by :func:`snapshot_state`."""
    from exchange.engine import Engine

    outer = pickle.loads(data)
    if outer.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"unsupported snapshot version {outer.get('version')}")
    state: ExchangeState = pickle.loads(outer["state"])
    state.engine = Engine.restore(outer["engine"], backend=outer["backend"])
    return state
