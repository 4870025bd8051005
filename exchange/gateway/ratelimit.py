"""Token-bucket rate limits (per API key, and per client address for requests without
one), and a cache that refuses replayed signatures."""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections import OrderedDict
from typing import Any, Final

from exchange.gateway.errors import ApiError
from exchange.reasons import Reason


class TokenBucket:
    """``rate`` requests per second on average, bursts up to ``burst``."""

    #: Takes between two sweeps of the buckets that have filled up again.
    SWEEP_EVERY = 4096

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._takes = 0

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token; return 0 if allowed, else the seconds to wait before retrying."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        self._takes += 1
        if self._takes % self.SWEEP_EVERY == 0:
            self._sweep(now)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def charge(self, key: str, now: float | None = None) -> float:
        """Take one token even from a bucket without one, down to a debt of ``burst``: for a
        request counted once it was served, or one that is refused but costs all the same.
        Return what :meth:`take` would have: 0 if there was a token for it, else the seconds
        until there is one."""
        now = time.monotonic() if now is None else now
        burst = float(self.burst)
        tokens, last = self._buckets.get(key, (burst, now))
        tokens = min(burst, tokens + (now - last) * self.rate)
        self._buckets[key] = (max(-burst, tokens - 1.0), now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def owed(self, key: str, now: float | None = None) -> float:
        """The seconds until ``key``'s bucket is out of debt (0 if it is not); nothing taken."""
        entry = self._buckets.get(key)
        if entry is None:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens = entry[0] + (now - entry[1]) * self.rate
        return max(0.0, -tokens / self.rate)

    def _sweep(self, now: float) -> None:
        """Forget the buckets that are full again: keyed by client address, one is made for
        every address that ever sent a request, and a full one is what a new key starts with."""
        full = float(self.burst)
        rate = self.rate
        for key in [k for k, (tokens, last) in self._buckets.items()
                    if tokens + (now - last) * rate >= full]:  # fmt: skip
            del self._buckets[key]

    def __len__(self) -> int:
        """How many keys have a bucket that is not known to be full."""
        return len(self._buckets)


#: The prefix length of the IPv6 network counted as one client address: a host given a /64
#: (the usual end-site assignment) could otherwise open connections from as many addresses.
IPV6_PREFIX: Final = 64


@functools.lru_cache(maxsize=4096)  # every request without a key asks
def address_of(host: str) -> str:
    """The client address ``host`` is counted under, for connections and rates: an IPv4
    address as it is (an IPv4-mapped IPv6 one as IPv4), an IPv6 address as its
    /:data:`IPV6_PREFIX` network; anything else (a Unix socket's empty host) as it is."""
    if ":" not in host:
        return host
    try:
        ip = ipaddress.IPv6Address(host.partition("%")[0])  # no zone: fe80::1%eth0
    except ValueError:
        return host
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))


def client_address(scope: Any) -> str:
    """The client address an ASGI request counts against (``""`` for none)."""
    client = scope.get("client")
    return address_of(client[0]) if client else ""


def address_refusal(limiter: TokenBucket, address: str, wait: float) -> ApiError:
    """The refusal of a request over its address's limit, to be tried in ``wait`` seconds."""
    return ApiError(
        Reason.RATE_LIMITED,
        f"more than {limiter.rate:g} requests a second from one address ({address}) that no "
        "API key's limit counts (unsigned, or not passing their signature): sign requests "
        "with a key, or slow down",
        {"Retry-After": str(max(1, math.ceil(wait)))},
    )


def charged(limiter: TokenBucket, scope: Any, refused: ApiError) -> ApiError:
    """``refused``, the refusal of credentials that failed, counted against the client
    address of ``scope`` (an ASGI request's or websocket's): past the address's rate, the
    address's refusal instead."""
    address = client_address(scope)
    wait = limiter.charge(address)
    return address_refusal(limiter, address, wait) if wait else refused


class ReplayCacheFull(ApiError):
    """Every signature an API key has used may still be sent again: none can be forgotten
    yet. Its request is refused (503 ``UNAVAILABLE``, nothing changed) until one can."""

    def __init__(self) -> None:
        super().__init__(
            Reason.UNAVAILABLE,
            "too many signed requests from this API key in the last minute to tell this one "
            "from a replay: send it again shortly",
            {"Retry-After": "1"},
        )


class ReplayCache:
    """Remember recent signatures, per API key, so a captured request cannot be sent twice.

    A signature is remembered for ``ttl_s``, longer than its timestamp stays inside the
    signing window, and never forgotten earlier. Each key has a share of ``per_key``
    signatures, which its rate limit keeps it below (the exchange sizes it so: burst plus
    rate times ``ttl_s``, plus a websocket ``auth`` per second of timestamp). A key that
    reaches it anyway gets :class:`ReplayCacheFull` for its own requests, never another
    key's: dropping one of its young signatures to make room would let that one be replayed.
    """

    def __init__(self, ttl_s: float = 65.0, per_key: int = 20_000) -> None:
        self.ttl_s = ttl_s
        self.per_key = per_key
        self._seen: dict[str, OrderedDict[str, float]] = {}
        self._added = 0

    def seen(self, signature: str, key: str, now: float | None = None) -> bool:
        """Record ``key``'s ``signature``; return whether it was already used in the window.

        Hex digits in either case are the same signature, so it is kept in lower case.
        """
        signature = signature.lower()
        now = time.monotonic() if now is None else now
        entries = self._seen.get(key)
        if entries is None:
            entries = self._seen[key] = OrderedDict()
        self._expire(entries, now)
        if signature in entries:
            return True
        if len(entries) >= self.per_key:
            raise ReplayCacheFull
        entries[signature] = now
        self._added += 1
        if self._added % 4096 == 0:  # now and then, forget the keys that went quiet
            for quiet in [k for k, e in self._seen.items() if not self._expire(e, now)]:
                del self._seen[quiet]
        return False

    def _expire(self, entries: OrderedDict[str, float], now: float) -> int:
        """Drop ``entries`` older than the window; return how many are left."""
        while entries:
            oldest, at = next(iter(entries.items()))
            if now - at <= self.ttl_s:
                break
            entries.pop(oldest)
        return len(entries)
