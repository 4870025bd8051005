"""Fixtures shared by the engine tests: every test runs on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exchange.engine import Engine

#: Both backends; the differential tests compare them, every other test runs on each.
BACKENDS = ["reference", "numba"]
#: Test books use a small ladder: prices 1..199.
N_TICKS = 200


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test."""
    return str(request.param)


@pytest.fixture
def engine(backend: str) -> Iterator[Engine]:
    """An engine of ``backend`` with two continuous books, 0 and 1, on small ladders.

    Its invariants are checked again when the test ends.
    """
    e = Engine(backend=backend)
    e.add_book(0, n_ticks=N_TICKS)
    e.add_book(1, n_ticks=N_TICKS)
    yield e
    e.check_invariants()
