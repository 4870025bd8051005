"""Token-bucket rate limits per API key, and a cache that refuses replayed signatures."""

from __future__ import annotations

import time
from collections import OrderedDict

from exchange.gateway.errors import ApiError
from exchange.reasons import Reason


class TokenBucket:
    """``rate`` requests per second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token; return 0 if allowed, else the seconds to wait before retrying."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate


class ReplayCacheFull(ApiError):
    """Every remembered signature may still be sent again: none can be forgotten yet. The
    request is refused (503 ``UNAVAILABLE``, nothing changed) until one can."""

    def __init__(self) -> None:
        super().__init__(
            Reason.UNAVAILABLE,
            "too many signed requests in the last minute to tell this one from a replay: "
            "send it again shortly",
            {"Retry-After": "1"},
        )


class ReplayCache:
    """Remember recent signatures so a captured request cannot be sent twice.

    A signature is remembered for ``ttl_s``, longer than its timestamp stays inside the
    signing window, and never forgotten earlier: when ``max_entries`` signatures are all that
    young, :meth:`seen` raises :class:`ReplayCacheFull` rather than make room, since the one
    dropped could then be replayed. (Each API key adds at most its rate limit's worth a
    second, and a websocket ``auth`` one per second of timestamp.)
    """

    def __init__(self, ttl_s: float = 65.0, max_entries: int = 200_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen(self, signature: str, now: float | None = None) -> bool:
        """Record ``signature``; return whether it was already used inside the window.

        Hex digits in either case are the same signature, so it is kept in lower case.
        """
        signature = signature.lower()
        now = time.monotonic() if now is None else now
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at <= self.ttl_s:
                break
            self._seen.pop(oldest)
        if signature in self._seen:
            return True
        if len(self._seen) >= self.max_entries:
            raise ReplayCacheFull
        self._seen[signature] = now
        return False
