"""The cycle collector policy: freeze what survives full collections, reclaim now and then."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from exchange.collector import FreezingCollector


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def _cycle() -> Node:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


@pytest.fixture
def collector() -> Iterator[FreezingCollector]:
    made = FreezingCollector(reclaim_s=3600)
    made.install()
    try:
        yield made
    finally:
        made.uninstall()
        gc.collect()


def test_install_freezes_what_exists(collector: FreezingCollector) -> None:
    assert gc.get_freeze_count() > 1000  # the modules and functions loaded so far
    assert gc.callbacks.count(collector._on_collection) == 1
    collector.install()  # twice is once
    assert gc.callbacks.count(collector._on_collection) == 1


def test_survivors_of_a_full_collection_are_frozen_between_batches(
    collector: FreezingCollector,
) -> None:
    kept = [_cycle() for _ in range(500)]
    frozen = gc.get_freeze_count()
    collector.after_batch()  # no full collection yet: nothing to do
    assert gc.get_freeze_count() == frozen
    gc.collect()
    assert collector.full_collections == 1 and collector.last_full_ms > 0
    collector.after_batch()
    assert gc.get_freeze_count() >= frozen + 1000  # the 500 cycles, two nodes each
    assert collector.freezes == 1
    gc.collect()  # walks only what was made since, not ``kept``
    assert len(gc.get_objects(2)) < 1000
    assert kept


def test_a_frozen_cycle_is_freed_at_the_next_reclaim(collector: FreezingCollector) -> None:
    node = _cycle()
    alive = weakref.ref(node)
    gc.collect()
    collector.after_batch()  # frozen while still in use
    del node
    gc.collect()
    assert alive() is not None  # frozen garbage waits for a reclaim
    collector.reclaim_s = 0
    gc.collect(1)
    collector.after_batch()  # the reclaim: unfreeze, collect everything, freeze again
    assert alive() is None
    assert collector.reclaims == 1 and collector.reclaimed >= 2
    assert gc.get_freeze_count() > 1000
    assert collector.stats()["reclaims"] == 1


def test_survivors_of_a_middle_generation_collection_are_frozen_too(
    collector: FreezingCollector,
) -> None:
    kept = [_cycle() for _ in range(500)]
    frozen = gc.get_freeze_count()
    gc.collect(1)
    collector.after_batch()
    assert gc.get_freeze_count() >= frozen + 1000
    assert collector.full_collections == 0 and collector.freezes == 1
    assert kept


def test_acyclic_frozen_objects_are_freed_at_once(collector: FreezingCollector) -> None:
    node = Node()
    alive = weakref.ref(node)
    gc.collect()
    collector.after_batch()
    del node  # reference counting does not care about freezing
    assert alive() is None
