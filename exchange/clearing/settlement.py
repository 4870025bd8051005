"""Settlement prices and delivery assignment: the rules users rely on (docs/clearing.md)."""

from __future__ import annotations


def settlement_price(
    trades: list[tuple[int, int, int]],
    window_start_ns: int,
    best_bid: int | None,
    best_ask: int | None,
    last_price: int | None,
    prior: int | None,
) -> int | None:
    """Return the daily settlement price in ticks.

    ``trades`` are ``(time_ns, price, quantity)``. The price is the volume-weighted average of
    the trades at or after ``window_start_ns`` (rounded half up to a tick); with none, the
    last trade price, else the prior settlement price, clamped to the best bid and ask.
    """
    window = [(p, q) for t, p, q in trades if t >= window_start_ns]
    if window:
        volume = sum(q for _, q in window)
        value = sum(p * q for p, q in window)
        return (2 * value + volume) // (2 * volume)
    base = last_price if last_price is not None else prior
    if base is None:
        return None
    if best_bid is not None and base < best_bid:
        base = best_bid
    if best_ask is not None and base > best_ask:
        base = best_ask
    return base


def assign_deliveries(
    shorts: list[tuple[int, int]], longs: list[tuple[int, int]]
) -> list[tuple[int, int, int]]:
    """Pair short accounts (providers) with long accounts (consumers).

    ``shorts`` and ``longs`` are ``(account, quantity)`` with equal totals. Each short's
    quantity is split across the longs pro rata to what each is still owed (after the
    shorts before it), rounding down, and the
    remaining hours go one at a time to the largest remainders (ties: lower account id),
    so every long receives exactly its position. Returns ``(short, long, hours)`` with
    ``hours > 0``, ordered by short then long account. The rule is deterministic.
    """
    shorts = sorted(shorts)
    longs = sorted(longs)
    total = sum(q for _, q in longs)
    if total != sum(q for _, q in shorts):
        raise ValueError("short and long quantities differ")
    if total == 0:
        return []
    need = {account: quantity for account, quantity in longs}
    out: list[tuple[int, int, int]] = []
    for short, quantity in shorts:
        open_longs = [(a, q) for a, q in longs if need[a] > 0]
        remaining_total = sum(need[a] for a, _ in open_longs)
        share = {a: quantity * need[a] // remaining_total for a, _ in open_longs}
        rest = quantity - sum(share.values())
        by_remainder = sorted(
            open_longs, key=lambda aq: (-(quantity * need[aq[0]] % remaining_total), aq[0])
        )
        for a, _ in by_remainder:
            if rest == 0:
                break
            if share[a] < need[a]:
                share[a] += 1
                rest -= 1
        for a, _ in open_longs:
            if share[a]:
                need[a] -= share[a]
                out.append((short, a, share[a]))
    return out
