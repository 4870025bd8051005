"""The state's cash movements, projected into the real ledger on both stores, always balance.

Random deposits, withdrawals, trades, daily settlements, expiries, attestations, disputes
and delivery settlements; after every step the postings go into the ledger and its check
must pass, and the ledger's balances must equal the state's, cent for cent.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.ledger import Ledger
from exchange.sequencer.state import Refused
from tests.sequencer.test_state import LISTING, SYMBOL, Exchange, ns

_steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("place"),
            st.integers(1, 3),
            st.sampled_from(["buy", "sell"]),
            st.integers(300, 400),
            st.integers(1, 30),
        ),
        st.tuples(st.just("money"), st.integers(1, 3), st.booleans(), st.integers(1, 30_000)),
        st.tuples(st.just("advance"), st.integers(1, 40)),
        st.tuples(st.just("attest"), st.integers(1, 4), st.integers(1, 10)),
        st.tuples(st.just("dispute"), st.integers(1, 4), st.integers(1, 10)),
        st.tuples(st.just("resolve"), st.integers(1, 4), st.integers(0, 10)),
    ),
    min_size=5,
    max_size=60,
)


def _command(step: tuple[Any, ...], now: int) -> dict[str, Any]:
    match step:
        case ("place", account, side, price, quantity):
            return {"op": "place", "account_id": account, "symbol": SYMBOL, "side": side, "type": "limit",
                    "price": price, "quantity": quantity}  # fmt: skip
        case ("money", account, deposit, amount):
            return {
                "op": "deposit" if deposit else "withdraw",
                "account_id": account,
                "amount": amount,
            }
        case ("advance", hours):
            return {"op": "advance", "to": now + hours * 3600 * 10**9}
        case ("attest", delivery, hours):
            return {"op": "attest", "account_id": 1, "delivery_id": delivery, "gpu_hours": hours,
                    "period_start": "a", "period_end": "b"}  # fmt: skip
        case ("dispute", delivery, hours):
            return {
                "op": "dispute",
                "account_id": 2,
                "delivery_id": delivery,
                "gpu_hours": hours,
                "reason": "x",
            }
        case ("resolve", delivery, hours):
            return {"op": "resolve", "delivery_id": delivery, "provider_hours": hours}
    raise AssertionError(step)


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_every_step_balances_in_the_ledger(
    store: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    counter = iter(range(10**6))

    def fresh_url() -> str:
        if store == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'ledger.db'}"
        from sqlalchemy import create_engine, make_url, text

        base = request.getfixturevalue("postgres_url")
        name = f"projection_{next(counter)}"
        engine = create_engine(base, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
        engine.dispose()
        return make_url(base).set(database=name).render_as_string(hide_password=False)

    @settings(max_examples=12 if store == "sqlite" else 6, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(steps=_steps)
    def run(steps: list[tuple[Any, ...]]) -> None:
        ex = Exchange()
        ex(
            op="list",
            ts=ns("2026-12-01T00:00:00"),
            **{k: v for k, v in LISTING.items() if k != "op"},
        )
        for i in range(3):
            ex(
                op="create_account",
                name=f"a{i}",
                role="provider" if i == 0 else "trader",
                deposit=50_000,
            )
        ledger = Ledger(fresh_url(), auto_open=True)
        try:
            posted = 0
            for step in steps:
                with contextlib.suppress(Refused):
                    ex(**_command(step, ex.state.now))
                ledger.post_many(ex.postings[posted:])
                posted = len(ex.postings)
                check = ledger.check()
                assert check["balanced"], check
            for account_id, acc in ex.state.accounts.items():
                balances = ledger.balances(f"acct:{account_id}")
                assert (balances["available"], balances["margin"], balances["escrow"]) == (
                    acc.available, acc.margin, acc.escrow)  # fmt: skip
        finally:
            ledger.close()

    run()
