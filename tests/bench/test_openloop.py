"""The open-loop scheduler's accounting: a stall shows in every request scheduled during it."""

from __future__ import annotations

import asyncio
import time

from bench.openloop import closed_loop, combine, holds, knee, open_loop, served

RATE = 200.0  # requests per second: one every 5 ms
STALL_AT_S = 0.5
STALL_S = 0.3


class StalledServer:
    """Answers one request at a time in 1 ms, but stalls once for ``STALL_S``."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.start = time.perf_counter()
        self.stalled = False

    async def call(self, i: int) -> str | None:
        async with self.lock:
            if not self.stalled and time.perf_counter() - self.start >= STALL_AT_S:
                self.stalled = True
                await asyncio.sleep(STALL_S)
            await asyncio.sleep(0.001)
        return None


def test_open_loop_charges_the_stall_to_every_request_scheduled_during_it() -> None:
    async def main() -> tuple[int, int, int]:
        server = StalledServer()
        recorder = await open_loop(server.call, RATE, duration_s=1.0, warmup_s=0.0)
        slow = sum(
            count
            for value, count in (
                (v.value_iterated_to, v.count_at_value_iterated_to)
                for v in recorder.latency.get_recorded_iterator()
            )
            if value >= 50_000
        )
        return recorder.sent, slow, recorder.latency.get_max_value()

    sent, slow, max_us = asyncio.run(main())
    assert sent == RATE * 1.0
    # Requests intended in the first 250 ms of the 300 ms stall cannot be answered before it
    # ends, so each waited at least 50 ms from its intended time: about 50 of them.
    assert slow >= 0.8 * RATE * (STALL_S - 0.05)
    # the request in flight when the stall began waited for all of it
    assert max_us >= STALL_S * 1e6 * 0.9


def slow_count(hist: object, at_least_us: int) -> int:
    return sum(
        v.count_at_value_iterated_to
        for v in hist.get_recorded_iterator()  # type: ignore[attr-defined]
        if v.value_iterated_to >= at_least_us
    )


def test_a_load_generator_that_falls_behind_is_charged_too() -> None:
    async def call(i: int) -> str | None:
        if i == 0:  # the client itself freezes for 50 ms: nothing else is sent meanwhile
            time.sleep(0.05)
        return None

    recorder = asyncio.run(open_loop(call, 1000.0, duration_s=0.1))
    # requests intended in the first 30 ms went out at least 20 ms late: charged to latency
    assert slow_count(recorder.latency, 20_000) >= 30
    # from the actual send only the frozen request itself looks slow
    assert slow_count(recorder.service, 20_000) == 1


def test_closed_loop_records_the_stall_once_per_request_in_flight() -> None:
    async def main() -> int:
        server = StalledServer()
        recorder = await closed_loop(server.call, in_flight=1, duration_s=1.0)
        return sum(
            v.count_at_value_iterated_to
            for v in recorder.latency.get_recorded_iterator()
            if v.value_iterated_to >= 50_000
        )

    # with one request in flight nothing else was sent during the stall: one slow sample
    # (allowing for the odd scheduling hiccup of a busy machine)
    assert 1 <= asyncio.run(main()) <= 3


def test_unanswered_requests_are_timeouts_with_their_latency_so_far() -> None:
    async def main() -> dict[str, int]:
        async def never(i: int) -> str | None:
            await asyncio.sleep(3600)
            return None

        recorder = await open_loop(never, 100.0, duration_s=0.1, drain_s=0.2)
        return dict(recorder.errors) | {"min_us": recorder.latency.get_min_value()}

    result = asyncio.run(main())
    assert result["TIMEOUT"] == 10
    assert result["min_us"] >= 150_000


def test_warm_up_requests_are_sent_but_not_measured() -> None:
    calls: list[int] = []

    async def call(i: int) -> str | None:
        calls.append(i)
        return None

    recorder = asyncio.run(open_loop(call, 100.0, duration_s=0.2, warmup_s=0.1))
    assert len(calls) == 30
    assert recorder.sent == 20


def point(rate: float, p99_ms: float, requests: int = 1000, **errors: int) -> dict:
    return {
        "offered_per_s": rate,
        "requests": requests,
        "ok": requests - sum(errors.values()),
        "errors": errors,
        "latency": {"p99_us": int(p99_ms * 1000)},
    }


def test_knee_is_the_highest_rate_before_the_first_miss() -> None:
    points = [point(500, 2), point(1000, 4), point(2000, 12), point(4000, 8)]
    assert knee(points, 10_000) == 1000
    assert knee(list(reversed(points)), 10_000) == 1000  # order does not matter
    assert knee([point(500, 11)], 10_000) is None
    assert knee(points, 20_000) == 4000
    assert knee([], 10_000) is None


def test_a_fast_refusal_for_want_of_capacity_is_not_a_served_load() -> None:
    limited = point(1000, 1, RATE_LIMITED=500)
    assert not holds(limited, 10_000)
    assert knee([point(500, 1), limited], 10_000) == 500
    # refusals on the merits (an order already filled) are the exchange doing its work
    assert holds(point(1000, 1, ORDER_NOT_FOUND=300), 10_000)
    assert served(point(1000, 1, TIMEOUT=1, **{"EXC:ConnectionError": 2})) == 997


def test_combine_takes_medians_and_spread_of_repetitions() -> None:
    runs = [
        point(1000, p99, requests=1000) | {"achieved_per_s": a, "ok_per_s": a}
        for p99, a in ((3, 990.0), (9, 1000.0), (5, 995.0))
    ]
    combined = combine(runs)
    assert combined["median"]["latency"]["p99_us"] == 5000
    assert combined["min"]["latency"]["p99_us"] == 3000
    assert combined["max"]["latency"]["p99_us"] == 9000
    assert combined["median"]["ok_per_s"] == 995.0
    assert combined["median_run"]["latency"]["p99_us"] == 5000
