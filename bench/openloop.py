"""Load loops that cannot hide a stall, and the latency accounting behind them.

Open loop: request ``i`` has an intended send time ``start + i / rate``, fixed before the
run. The loop sends each request at its time whether or not earlier ones were answered, and
its latency runs from the *intended* time to the answer. A server that stalls for 300 ms
therefore shows up in every request scheduled during the stall, not just in the one that
was in flight (coordinated omission: a closed loop that waits for each answer before
sending the next quietly stops offering load while the server is stuck, and records one
slow sample instead of hundreds). If the load generator itself falls behind, the late sends
are charged to latency too, so an overloaded client cannot flatter the server either.

Closed loop: ``in_flight`` workers, each sending the next request when the last is
answered; latency runs from the send. It finds the saturation throughput, not latency at a
given load.

Both loops take ``call(i) -> awaitable error code or None`` and return a :class:`Recorder`.
Requests intended during the warm-up are sent but not measured.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from hdrh.histogram import HdrHistogram

#: ``call(i)`` sends request ``i`` and returns ``None`` when it is acknowledged, else a code.
Call = Callable[[int], Awaitable[str | None]]
#: Percentiles every latency summary reports.
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
#: Width of the throughput-over-time buckets, seconds.
BUCKET_S = 0.25
_HIST_MAX_US = 3_600_000_000  # an hour


def latency_summary(hist: HdrHistogram) -> dict[str, int]:
    """p50, p90, p99, p99.9 and max of ``hist`` (microseconds)."""
    if hist.get_total_count() == 0:
        return {**{f"p{p:g}_us": 0 for p in PERCENTILES}, "max_us": 0}
    out = {f"p{p:g}_us": int(hist.get_value_at_percentile(p)) for p in PERCENTILES}
    out["max_us"] = int(hist.get_max_value())
    return out


class Recorder:
    """Latencies of the measured window; answers per time bucket for the whole run."""

    def __init__(self, start_ns: int, warmup_s: float, duration_s: float) -> None:
        self.start_ns = start_ns
        self.measure_from = start_ns + int(warmup_s * 1e9)
        self.measure_to = self.measure_from + int(duration_s * 1e9)
        self.duration_s = duration_s
        #: From the intended send time (open loop) or the send (closed loop).
        self.latency = HdrHistogram(1, _HIST_MAX_US, 3)
        #: From the actual send: what a naive client would report.
        self.service = HdrHistogram(1, _HIST_MAX_US, 3)
        self.sent = 0
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.answered_in_window = 0
        self.ok_in_window = 0
        self.buckets: Counter[int] = Counter()  # answers per BUCKET_S since start

    def record(self, intended_ns: int, sent_ns: int, done_ns: int, error: str | None) -> None:
        """Record one answer; only requests intended inside the measured window count."""
        self.buckets[int((done_ns - self.start_ns) / (BUCKET_S * 1e9))] += error is None
        if self.measure_from <= done_ns < self.measure_to:
            self.answered_in_window += 1
            self.ok_in_window += error is None
        if not self.measure_from <= intended_ns < self.measure_to:
            return
        self.sent += 1
        self.latency.record_value(max(1, (done_ns - intended_ns) // 1000))
        self.service.record_value(max(1, (done_ns - sent_ns) // 1000))
        if error is None:
            self.ok += 1
        else:
            self.errors[error] += 1

    def timeline(self) -> list[tuple[float, float]]:
        """``(seconds since start, acknowledged answers per second)`` per bucket."""
        if not self.buckets:
            return []
        last = max(self.buckets)
        return [(i * BUCKET_S, self.buckets.get(i, 0) / BUCKET_S) for i in range(last + 1)]

    def result(self, offered_per_s: float | None) -> dict[str, Any]:
        return {
            "offered_per_s": offered_per_s,
            "requests": self.sent,
            "ok": self.ok,
            "errors": dict(self.errors),
            "achieved_per_s": self.answered_in_window / self.duration_s,
            "ok_per_s": self.ok_in_window / self.duration_s,
            "latency": latency_summary(self.latency),
            "service_latency": latency_summary(self.service),
            "timeline": [[round(t, 3), v] for t, v in self.timeline()],
        }


async def open_loop(
    call: Call,
    rate: float,
    duration_s: float,
    warmup_s: float = 0.0,
    drain_s: float = 10.0,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> Recorder:
    """Send ``rate`` requests per second on a fixed schedule; latency from intended times.

    After the last send, answers are awaited for up to ``drain_s``; a request still
    unanswered then is recorded as ``TIMEOUT`` with its latency so far.
    """
    interval_ns = 1e9 / rate
    n = int(rate * (warmup_s + duration_s))
    start = clock() + 1_000_000
    recorder = Recorder(start, warmup_s, duration_s)
    pending: dict[asyncio.Task[None], int] = {}

    async def one(i: int, intended: int) -> None:
        sent = clock()
        try:
            error = await call(i)
        except Exception as exc:  # a broken connection is an answer too: a failed one
            error = f"EXC:{type(exc).__name__}"
        recorder.record(intended, sent, clock(), error)

    for i in range(n):
        intended = start + int(i * interval_ns)
        delay = intended - clock()
        if delay > 0:
            await asyncio.sleep(delay / 1e9)
        task = asyncio.create_task(one(i, intended))
        pending[task] = intended
        task.add_done_callback(pending.pop)
    if pending:
        await asyncio.wait(list(pending), timeout=drain_s)
    now = clock()
    for task, intended in list(pending.items()):
        task.cancel()
        recorder.record(intended, intended, now, "TIMEOUT")
    return recorder


async def closed_loop(
    call: Call,
    in_flight: int,
    duration_s: float,
    warmup_s: float = 0.0,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> Recorder:
    """Keep ``in_flight`` requests outstanding until the time is up; latency from the send."""
    start = clock()
    recorder = Recorder(start, warmup_s, duration_s)
    end = recorder.measure_to
    counter = iter(range(1 << 62))

    async def worker() -> None:
        while (sent := clock()) < end:
            try:
                error = await call(next(counter))
            except Exception as exc:
                error = f"EXC:{type(exc).__name__}"
            recorder.record(sent, sent, clock(), error)

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return recorder


#: Answers that mean the request was not carried out for want of capacity: the load was
#: not served. Other refusals (a cancel of an order that has just filled, a market order
#: into an empty book) are the exchange doing its work.
UNSERVED = frozenset({"RATE_LIMITED", "UNAVAILABLE", "TIMEOUT", "SLOW_CONSUMER"})


def served(point: dict[str, Any]) -> int:
    """Requests of a result that were acknowledged or refused on their merits."""
    errors: dict[str, int] = point.get("errors", {})
    unserved = sum(n for code, n in errors.items() if code in UNSERVED or code.startswith("EXC:"))
    return int(point.get("requests", 0)) - unserved


def holds(point: dict[str, Any], target_us: float, min_served: float = 0.99) -> bool:
    """Whether an open-loop point meets the target: p99 within it, and the load was served.

    Served means at least ``min_served`` of the measured requests were answered on their
    merits (see :data:`UNSERVED`): a server that answers fast with "rate limited" or not at
    all has not carried the load.
    """
    requests = point.get("requests", 0)
    if not requests:
        return False
    return bool(point["latency"]["p99_us"] <= target_us and served(point) / requests >= min_served)


def knee(points: list[dict[str, Any]], target_us: float) -> float | None:
    """The highest offered rate below which every rate held (see :func:`holds`), or ``None``.

    Points are open-loop results (median over repetitions), in any order. The walk goes up
    the offered rates and stops at the first that fails, so a lucky pass at a higher rate
    after a failure does not move the knee.
    """
    best = None
    for point in sorted(points, key=lambda p: p["offered_per_s"]):
        if not holds(point, target_us):
            break
        best = point["offered_per_s"]
    return best


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of repetitions, with min and max: throughput and every latency percentile.

    The median run's counts, errors and timeline are kept as they are (``median_run``).
    """
    keys = ("achieved_per_s", "ok_per_s")
    lat_keys = list(runs[0]["latency"])
    out: dict[str, Any] = {"offered_per_s": runs[0]["offered_per_s"], "repetitions": len(runs)}
    stats: dict[str, Callable[[list[Any]], Any]] = {
        "median": statistics.median,
        "min": min,
        "max": max,
    }
    for name, fn in stats.items():
        out[name] = {k: fn([r[k] for r in runs]) for k in keys} | {
            "latency": {k: fn([r["latency"][k] for r in runs]) for k in lat_keys}
        }
    ranked = sorted(runs, key=lambda r: r["latency"]["p99_us"])
    median_run = ranked[len(ranked) // 2]
    out["median_run"] = median_run
    # the figures the knee is judged on: median latency, the median run's counts
    out["requests"] = median_run["requests"]
    out["ok"] = median_run["ok"]
    out["errors"] = median_run["errors"]
    out["latency"] = out["median"]["latency"]
    return out
