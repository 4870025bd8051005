"""A day contract from first trade to settled delivery, in exact cents, posting by posting.

24 H100-hours traded at $3.50 (taker fee 0.10%, rounded up to the cent; maker fee zero;
initial margin 10%), marked at $3.60, expired at $3.60, 20 of 24 hours delivered; the
provider pays a penalty of 50% of the shortfall's value.
"""

from __future__ import annotations

from exchange.ledger import Ledger
from tests.ledger.postings import (
    delivery,
    deposit,
    escrow,
    margin_release,
    obligation,
    penalty,
    shortfall,
    trade,
    variation_margin,
    withdrawal,
)

HOUR = 3_600 * 10**9


def cash(ledger: Ledger, owner: str) -> tuple[int, int, int]:
    """(available, margin, escrow) of ``owner`` in cents."""
    b = ledger.balances(owner)
    return b["available"], b["margin"], b["escrow"]


def hours(ledger: Ledger, owner: str) -> tuple[int, int]:
    """(owed, delivered) GPU-hours of ``owner``."""
    b = ledger.balances(owner)
    return b["gpuh_owed"], b["gpuh_delivered"]


def test_a_day_contract_from_trade_to_settled_delivery(ledger: Ledger) -> None:
    ledger.open_account("provider", "provider")
    ledger.open_account("consumer", "trader")
    ledger.post_many([deposit("1:1", "provider", 500_00), deposit("2:1", "consumer", 500_00)])

    # the consumer lifts the provider's offer: notional $84.00, taker fee 8.4 -> 9 cents
    ledger.post(
        trade(
            "3:1",
            "consumer",
            "provider",
            fee_buyer=9,
            fee_seller=0,
            margin_buyer=8_40,
            margin_seller=8_40,
            time=HOUR,
        )
    )
    assert cash(ledger, "consumer") == (491_51, 8_40, 0)
    assert cash(ledger, "provider") == (491_60, 8_40, 0)
    assert ledger.balance("exchange", "fees") == 9

    # daily settlement at $3.60: the long gains 24 x $0.10, the short pays it
    ledger.post_many(
        [variation_margin("4:1", "provider", -2_40), variation_margin("4:2", "consumer", 2_40)]
    )
    assert cash(ledger, "consumer")[0] == 493_91
    assert cash(ledger, "provider")[0] == 489_20
    assert ledger.balance("exchange", "clearing") == 0

    # expiry: margins released, the long's invoice (24 x $3.60) escrowed, hours owed
    ledger.post_many(
        [
            margin_release("5:1", "provider", 8_40),
            margin_release("5:2", "consumer", 8_40),
            escrow("5:3", "consumer", 86_40),
            obligation("5:4", "provider", "consumer", 24),
        ]
    )
    assert cash(ledger, "consumer") == (415_91, 0, 86_40)
    assert cash(ledger, "provider") == (497_60, 0, 0)
    assert hours(ledger, "provider") == (-24, 0)
    assert hours(ledger, "consumer") == (24, 0)

    # delivery settles: 20 hours paid, 4 refunded, penalty 50% of 4 x $3.60
    ledger.post_many(
        [
            delivery("6:1", "provider", "consumer", 20, 72_00),
            shortfall("6:2", "provider", "consumer", 4, 14_40),
            penalty("6:3", "provider", "consumer", 7_20),
        ]
    )
    assert cash(ledger, "consumer") == (437_51, 0, 0)
    assert cash(ledger, "provider") == (562_40, 0, 0)
    assert hours(ledger, "provider") == (0, -20)
    assert hours(ledger, "consumer") == (0, 20)
    assert 437_51 + 562_40 + 9 == 1_000_00

    ledger.post_many([withdrawal("7:1", "consumer", 437_51), withdrawal("7:2", "provider", 562_40)])
    check = ledger.check()
    assert check["balanced"], check
    assert (check["deposits"], check["withdrawals"], check["held"]) == (1_000_00, 999_91, 9)
    assert check["totals"] == {"USD": 0, "GPUH": 0}
    assert check["counts"] == {"transactions": 14, "lines": 37, "accounts": 14}
    assert ledger.trial_balance() == {
        ("exchange", "fees"): 9,
        ("exchange", "clearing"): 0,
        ("exchange", "penalties"): 0,
        ("world", "external"): -9,
        **{("provider", name): value for name, value in zip(
            ("available", "margin", "escrow", "gpuh_owed", "gpuh_delivered"), (0, 0, 0, 0, -20), strict=True
        )},
        **{("consumer", name): value for name, value in zip(
            ("available", "margin", "escrow", "gpuh_owed", "gpuh_delivered"), (0, 0, 0, 0, 20), strict=True
        )},
    }  # fmt: skip
    statement = [(e.key, e.account, e.amount) for e in ledger.history("consumer", "available")]
    assert statement == [
        ("2:1", "available", 500_00),
        ("3:1", "available", -8_49),
        ("4:2", "available", 2_40),
        ("5:2", "available", 8_40),
        ("5:3", "available", -86_40),
        ("6:2", "available", 14_40),
        ("6:3", "available", 7_20),
        ("7:1", "available", -437_51),
    ]
    assert sum(amount for _, _, amount in statement) == 0
