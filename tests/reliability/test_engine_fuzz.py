"""Garbage command arrays through both engine backends: no crash, the same events, and a
rejected command leaves the books exactly as they were.

The differential suite in ``tests/engine`` drives well-typed streams; here every field may
take any value its dtype holds (unknown kinds, negative books, int64 extremes, flags and
enums out of range), mixed with plausible orders so that books fill and trades happen.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.engine import COMMAND_DTYPE, REJECTED, Engine

BOOKS = 3
I64 = st.sampled_from([-(2**63), -1, 0, 2**63 - 1, 2**62, 2**31, -(2**31)])
U8 = st.integers(0, 255)


def _field(
    plausible: st.SearchStrategy[int], extreme: st.SearchStrategy[int]
) -> st.SearchStrategy[int]:
    return st.one_of(plausible, plausible, plausible, extreme)


COMMAND = st.fixed_dictionaries(
    {
        "seq": st.integers(0, 2**40),
        "ts": st.integers(0, 2**62),
        "order_id": _field(st.integers(1, 40), I64),
        "account": _field(st.integers(1, 5), I64),
        "price": _field(st.integers(90, 110), I64 | st.integers(-5, 100_005)),
        "quantity": _field(st.integers(1, 20), I64 | st.integers(-3, 1_000_001)),
        "book": _field(st.integers(0, BOOKS - 1), st.integers(-(2**31), 2**31 - 1)),
        "kind": _field(st.integers(1, 4), U8),
        "side": _field(st.integers(0, 1), U8),
        "tif": _field(st.integers(0, 2), U8),
        "flags": _field(st.sampled_from([0, 0, 1, 2]), U8),
        "stp": _field(st.integers(0, 3), U8),
    }
)


def _engines() -> list[Engine]:
    engines = [Engine(backend="numba"), Engine(backend="reference")]
    for engine in engines:
        engine.add_book(0, 200, 0)
        engine.add_book(1, 200, 0)
        engine.add_book(2, 200, 1)  # a batch book
    return engines


@settings(
    max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
@given(st.lists(COMMAND, min_size=1, max_size=60))
def test_garbage_commands_match_on_both_backends_and_rejections_change_nothing(
    rows: list[dict[str, int]],
) -> None:
    engines = _engines()
    for row in rows:
        command = np.zeros(1, dtype=COMMAND_DTYPE)
        for name, value in row.items():
            command[name] = value
        before = [engine.snapshot() for engine in engines]
        out = [engine.process(command) for engine in engines]
        assert out[0].tobytes() == out[1].tobytes(), (row, out)
        assert len(out[0]) >= 1, "every command gets an outcome"
        if out[0][0]["kind"] == REJECTED:
            assert len(out[0]) == 1
            assert [engine.snapshot() for engine in engines] == before, row
        for engine in engines:
            engine.check_invariants()
    assert engines[0].snapshot() == engines[1].snapshot()


@settings(
    max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
@given(st.binary(min_size=COMMAND_DTYPE.itemsize, max_size=COMMAND_DTYPE.itemsize * 40))
def test_random_bytes_as_commands_match_on_both_backends(raw: bytes) -> None:
    usable = len(raw) - len(raw) % COMMAND_DTYPE.itemsize
    commands = np.frombuffer(raw[:usable], dtype=COMMAND_DTYPE).copy()
    engines = _engines()
    out = [engine.process(commands) for engine in engines]
    assert out[0].tobytes() == out[1].tobytes()
    assert engines[0].snapshot() == engines[1].snapshot()
