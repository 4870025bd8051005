"""The replay cache: a signature is refused a second time for as long as it could be sent."""

from __future__ import annotations

import pytest

from exchange.gateway.errors import ApiError
from exchange.gateway.ratelimit import ReplayCache, ReplayCacheFull, TokenBucket
from exchange.reasons import Reason


def test_a_signature_is_refused_again_in_either_case_until_its_window_passes() -> None:
    cache = ReplayCache(ttl_s=65.0)
    assert cache.seen("AB" * 32, "k", now=0.0) is False
    assert cache.seen("ab" * 32, "k", now=65.0) is True
    assert cache.seen("ab" * 32, "k", now=130.5) is False  # too old to pass the timestamp check


def test_a_full_share_refuses_its_keys_new_signatures_rather_than_forget_young_ones() -> None:
    cache = ReplayCache(ttl_s=65.0, per_key=3)
    for n in range(3):
        assert cache.seen(f"{n:064x}", "busy", now=float(n)) is False
    with pytest.raises(ReplayCacheFull) as full:
        cache.seen("f" * 64, "busy", now=10.0)
    assert isinstance(full.value, ApiError) and full.value.reason is Reason.UNAVAILABLE
    assert full.value.status == 503 and full.value.headers == {"Retry-After": "1"}
    assert all(cache.seen(f"{n:064x}", "busy", now=10.0) for n in range(3))  # none was dropped
    assert cache.seen("f" * 64, "other", now=10.0) is False  # another key is not held up
    assert cache.seen("f" * 64, "busy", now=65.5) is False  # the first one aged out: room again
    assert cache.seen("f" * 64, "busy", now=66.0) is True


def test_keys_that_went_quiet_are_forgotten() -> None:
    cache = ReplayCache(ttl_s=65.0)
    cache.seen("a" * 64, "quiet", now=0.0)
    for n in range(4096):
        cache.seen(f"{n:064x}", "busy", now=100.0)
    assert "quiet" not in cache._seen and "busy" in cache._seen


def test_the_timestamp_window_is_30_seconds_either_way_whatever_the_fraction() -> None:
    """SPEC section 6: more than 30 s away is refused. Both sides count whole seconds, so
    -30 passes as +30 does, at any point of the server's second, and +-31 fail."""
    from exchange.gateway.auth import MAX_SKEW_S, sign, verify

    assert MAX_SKEW_S == 30
    for fraction in (0.0, 0.05, 0.5, 0.95):
        now = 1_796_083_200 + fraction
        for skew, fresh in ((-30, True), (30, True), (0, True), (-31, False), (31, False)):
            ts = str(1_796_083_200 + skew)
            signature = sign("secret", ts, "GET", "/v1/account", b"")
            problem = verify("secret", ts, "GET", "/v1/account", b"", signature, now)
            assert (problem is None) is fresh, (fraction, skew, problem)


def test_buckets_that_filled_up_again_are_forgotten() -> None:
    """One bucket per client address: those of addresses gone quiet do not pile up."""
    bucket = TokenBucket(rate=10.0, burst=20)
    assert bucket.take("quiet", now=0.0) == 0.0
    assert [bucket.take("busy", now=0.0) > 0 for _ in range(25)] == [False] * 20 + [True] * 5
    for n in range(TokenBucket.SWEEP_EVERY - 27):
        bucket.take(f"10.0.{n // 256}.{n % 256}", now=0.0)
    assert len(bucket) == TokenBucket.SWEEP_EVERY - 25
    assert bucket.take("busy", now=1.0) == 0.0  # the sweep, a second later: 10 tokens back
    assert len(bucket) == 1  # every other bucket is full again, and forgotten
    assert bucket.take("quiet", now=1.0) == 0.0  # which is how a new one starts


def test_a_request_counted_once_served_may_run_the_bucket_into_debt() -> None:
    bucket = TokenBucket(rate=10.0, burst=2)
    assert bucket.owed("a", now=0.0) == 0.0  # no bucket yet: a full one
    assert [bucket.charge("a", now=0.0) for _ in range(2)] == [0.0, 0.0]
    assert bucket.charge("a", now=0.0) == pytest.approx(0.1)  # one token owed: 0.1 s
    assert bucket.take("a", now=0.0) == pytest.approx(0.2)  # a take waits for a whole token
    for _ in range(10):
        bucket.charge("a", now=0.0)
    assert bucket.owed("a", now=0.0) == pytest.approx(0.2)  # the debt stops at a burst
    assert bucket.owed("a", now=0.15) == pytest.approx(0.05)
    assert bucket.owed("a", now=0.3) == 0.0 and bucket.take("a", now=0.3) == 0.0
