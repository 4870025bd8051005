"""The client order id table answers as a dict of (account, client_order_id) pairs would."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.sequencer import client_ids
from exchange.sequencer.client_ids import ClientOrderIds, digest

_pairs = st.lists(
    st.tuples(st.integers(1, 4), st.text(min_size=1, max_size=8)), max_size=300, unique=True
)


def _check(pairs: list[tuple[int, str]], probes: list[tuple[int, str]]) -> None:
    table = ClientOrderIds(cells=4)
    model: dict[tuple[int, str], int] = {}
    owners: dict[int, tuple[int, str]] = {}
    for order_id, (account, client) in enumerate(pairs, start=1):
        assert table.get(account, client, owners.__getitem__) is None
        table.add(account, client, order_id)
        model[(account, client)] = order_id
        owners[order_id] = (account, client)
    assert len(table) == len(model)
    for loaded in (table, pickle.loads(pickle.dumps(table))):
        for (account, client), order_id in model.items():
            assert loaded.get(account, client, owners.__getitem__) == order_id
        for account, client in probes:
            assert loaded.get(account, client, owners.__getitem__) == model.get((account, client))


@settings(max_examples=100, deadline=None)
@given(_pairs, st.lists(st.tuples(st.integers(1, 5), st.text(max_size=8)), max_size=30))
def test_the_table_answers_as_a_dict(
    pairs: list[tuple[int, str]], probes: list[tuple[int, str]]
) -> None:
    _check(pairs, probes)


@settings(max_examples=50, deadline=None)
@given(_pairs, st.lists(st.tuples(st.integers(1, 5), st.text(max_size=8)), max_size=30))
def test_pairs_whose_digests_clash_are_told_apart(
    pairs: list[tuple[int, str]], probes: list[tuple[int, str]]
) -> None:
    with pytest.MonkeyPatch.context() as patch:  # three digests for every pair there is
        patch.setattr(client_ids, "digest", lambda account, client: 1 + (account + len(client)) % 3)
        _check(pairs, probes)


def test_the_digest_is_the_same_in_every_process_and_never_empty() -> None:
    assert digest(7, "sdk-0123456789abcdef") == 4_204_679_604_530_589_058
    assert all(0 < digest(a, c) < 2**63 for a in range(50) for c in ("", "x", "é" * 64))
    assert digest(1, "23") != digest(12, "3")  # the account and the id stay apart
