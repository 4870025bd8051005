"""The sequencer journals before it applies: replaying the journal rebuilds the same state."""

from __future__ import annotations

import asyncio
import pickle
import random
from pathlib import Path
from typing import Any

import pytest

from contracts import ListingCalendar
from exchange.journal import Journal
from exchange.reasons import Reason
from exchange.sequencer.loop import Clock, Sequencer
from exchange.sequencer.state import NS, ExchangeState, Refused

START = 1_796_083_200 * NS  # 2026-12-01T00:00:00Z


def _sequencer(directory: Path, backend: str) -> Sequencer:
    state = ExchangeState(backend=backend, calendar=ListingCalendar())
    return Sequencer(state, Journal(directory), Clock(simulated=True))


async def _drive(seq: Sequencer, seed: int, n: int, snapshot_at: int | None = None) -> list[Any]:
    rng = random.Random(seed)
    seq.start()
    replies: list[Any] = []
    await seq.submit({"op": "advance", "to": START})
    for name in ("a", "b", "c"):
        await seq.submit(
            {"op": "create_account", "name": name, "deposit": 1_000_000, "api_key": f"k-{name}"}
        )
    symbols = sorted(seq.state.contracts)
    for i in range(n):
        r = rng.random()
        if r < 0.6:
            command = {"op": "place", "account_id": rng.randint(1, 3), "symbol": rng.choice(symbols[:3]),
                       "side": rng.choice(["buy", "sell"]), "type": "limit", "price": rng.randint(140, 160),
                       "quantity": rng.randint(1, 20), "time_in_force": rng.choice(["GTC", "GTC", "IOC"])}  # fmt: skip
        elif r < 0.85:
            command = {
                "op": "cancel",
                "account_id": rng.randint(1, 3),
                "order_id": rng.randint(1, i + 1),
            }
        else:
            command = {"op": "advance", "to": seq.state.now + rng.randint(1, 6) * 3600 * NS}
        try:
            outcome = await seq.submit(command)
            replies.append(outcome.reply)
        except Refused as refused:
            replies.append(refused.reason)
        if snapshot_at is not None and i == snapshot_at:
            seq.snapshot()
    await seq.stop()
    return replies


@pytest.mark.parametrize("backend", ["reference", "numba"])
@pytest.mark.parametrize("with_snapshot", [False, True])
def test_recovery_rebuilds_the_identical_state(
    tmp_path: Path, backend: str, with_snapshot: bool
) -> None:
    live = _sequencer(tmp_path, backend)
    asyncio.run(_drive(live, seed=7, n=400, snapshot_at=150 if with_snapshot else None))
    expected = live.state.state_hash()
    live.journal.close()

    again = _sequencer(tmp_path, backend)
    report = again.recover()
    assert again.state.state_hash() == expected
    assert report["snapshot_seq"] == (0 if not with_snapshot else report["snapshot_seq"])
    if with_snapshot:
        assert report["snapshot_seq"] > 0
    again.journal.close()


def test_same_commands_give_the_same_state_on_both_backends(tmp_path: Path) -> None:
    hashes = []
    for backend in ("reference", "numba"):
        seq = _sequencer(tmp_path / backend, backend)
        asyncio.run(_drive(seq, seed=11, n=300))
        hashes.append(seq.state.state_hash())
        seq.journal.close()
    assert hashes[0] == hashes[1]


def test_a_snapshot_that_may_lack_fills_is_passed_over_while_the_journal_can_replay(
    tmp_path: Path,
) -> None:
    state = ExchangeState(backend="numba", calendar=ListingCalendar())
    live = Sequencer(state, Journal(tmp_path, segment_bytes=4096), Clock(simulated=True))
    asyncio.run(_drive(live, seed=5, n=400, snapshot_at=300))
    expected = live.state.state_hash()
    seq, data = live.journal.latest_snapshot()  # type: ignore[misc]
    outer = pickle.loads(data)
    outer["version"] = 3  # as written before fills were added ahead of the close
    live.journal.write_snapshot(seq, pickle.dumps(outer))
    live.journal.close()

    again = Sequencer(ExchangeState(backend="numba", calendar=ListingCalendar()),
                      Journal(tmp_path, segment_bytes=4096), Clock(simulated=True))  # fmt: skip
    report = again.recover()
    assert (report["snapshot_seq"], report["lossy_snapshot"]) == (0, False)  # a full replay
    assert "LossySnapshot" in report["unloadable_snapshots"][0]["reason"]
    assert again.state.state_hash() == expected
    assert again.journal.compact(seq)  # now the journal cannot replay from its first record
    again.journal.close()

    last = Sequencer(ExchangeState(backend="numba", calendar=ListingCalendar()),
                     Journal(tmp_path, segment_bytes=4096), Clock(simulated=True))  # fmt: skip
    report = last.recover()
    assert (report["snapshot_seq"], report["lossy_snapshot"]) == (seq, True)
    assert last.state.state_hash() == expected
    last.journal.close()


def test_a_snapshot_taken_right_after_a_refused_command_loads(tmp_path: Path) -> None:
    live = _sequencer(tmp_path, "reference")

    async def refuse_last() -> None:
        live.start()
        await live.submit({"op": "advance", "to": START})
        with pytest.raises(Refused):
            await live.submit({"op": "deposit", "account_id": 9, "amount": 5})
        await live.stop()

    asyncio.run(refuse_last())
    assert isinstance(pickle.loads(pickle.dumps(Refused(Reason.INVALID_AMOUNT, "no"))), Refused)
    live.snapshot()
    expected = live.state.state_hash()
    live.journal.close()
    again = _sequencer(tmp_path, "reference")
    report = again.recover()
    assert (report["snapshot_seq"], report["unloadable_snapshots"]) == (2, [])
    assert again.state.state_hash() == expected
    again.journal.close()
