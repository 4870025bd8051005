"""Builders of the postings the clearing code will make, for tests: amounts in cents/hours."""

from __future__ import annotations

from exchange.ledger import Entry, Posting


def posting(
    key: str, kind: str, *lines: tuple[str, str, int], time: int = 0, memo: str = ""
) -> Posting:
    """Return a posting of ``lines``, leaving out zero amounts."""
    return Posting(key, kind, time, tuple(Entry(*line) for line in lines if line[2]), memo)


def deposit(key: str, owner: str, cents: int, time: int = 0) -> Posting:
    """Money in from the world to ``owner``'s available cash."""
    return posting(
        key, "deposit", ("world", "external", -cents), (owner, "available", cents), time=time
    )


def withdrawal(key: str, owner: str, cents: int, time: int = 0) -> Posting:
    """Money out of ``owner``'s available cash to the world."""
    return posting(
        key, "withdrawal", (owner, "available", -cents), ("world", "external", cents), time=time
    )


def margin_lock(key: str, owner: str, cents: int, time: int = 0) -> Posting:
    """Lock ``cents`` of available cash as margin."""
    return posting(
        key, "margin_lock", (owner, "available", -cents), (owner, "margin", cents), time=time
    )


def margin_release(key: str, owner: str, cents: int, time: int = 0) -> Posting:
    """Release ``cents`` of margin back to available cash."""
    return posting(
        key, "margin_release", (owner, "margin", -cents), (owner, "available", cents), time=time
    )


def trade(
    key: str,
    buyer: str,
    seller: str,
    *,
    fee_buyer: int,
    fee_seller: int,
    margin_buyer: int,
    margin_seller: int,
    time: int = 0,
) -> Posting:
    """One trade: both sides pay their fee (negative: a rebate) and lock margin: 5 lines."""
    return posting(
        key,
        "trade",
        (buyer, "available", -(fee_buyer + margin_buyer)),
        (buyer, "margin", margin_buyer),
        (seller, "available", -(fee_seller + margin_seller)),
        (seller, "margin", margin_seller),
        ("exchange", "fees", fee_buyer + fee_seller),
        time=time,
    )


def variation_margin(key: str, owner: str, cents: int, time: int = 0) -> Posting:
    """Mark to market: ``cents`` > 0 paid to ``owner`` by clearing, < 0 paid by ``owner``."""
    return posting(
        key,
        "variation_margin",
        ("exchange", "clearing", -cents),
        (owner, "available", cents),
        time=time,
    )


def escrow(key: str, owner: str, cents: int, time: int = 0) -> Posting:
    """Move a long's invoice from available cash into delivery escrow."""
    return posting(key, "escrow", (owner, "available", -cents), (owner, "escrow", cents), time=time)


def obligation(key: str, provider: str, consumer: str, hours: int, time: int = 0) -> Posting:
    """Record that ``provider`` owes ``consumer`` ``hours`` GPU-hours."""
    return posting(
        key,
        "delivery_obligation",
        (provider, "gpuh_owed", -hours),
        (consumer, "gpuh_owed", hours),
        time=time,
    )


def delivery(
    key: str, provider: str, consumer: str, hours: int, cents: int, time: int = 0
) -> Posting:
    """Pay ``cents`` from the consumer's escrow for ``hours`` delivered, discharging them."""
    return posting(
        key,
        "delivery_payment",
        (consumer, "escrow", -cents),
        (provider, "available", cents),
        (provider, "gpuh_owed", hours),
        (consumer, "gpuh_owed", -hours),
        (provider, "gpuh_delivered", -hours),
        (consumer, "gpuh_delivered", hours),
        time=time,
    )


def shortfall(
    key: str, provider: str, consumer: str, hours: int, refund: int, time: int = 0
) -> Posting:
    """Cancel ``hours`` not delivered and refund their ``refund`` cents from escrow."""
    return posting(
        key,
        "delivery_shortfall",
        (consumer, "escrow", -refund),
        (consumer, "available", refund),
        (provider, "gpuh_owed", hours),
        (consumer, "gpuh_owed", -hours),
        time=time,
    )


def penalty(
    key: str, provider: str, consumer: str, cents: int, cut: int = 0, time: int = 0
) -> Posting:
    """The provider pays ``cents``: ``cut`` to the exchange's penalties, the rest to the consumer."""
    return posting(
        key,
        "penalty",
        (provider, "available", -cents),
        (consumer, "available", cents - cut),
        ("exchange", "penalties", cut),
        time=time,
    )
