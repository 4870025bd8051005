"""kill -9 at random moments under live order flow, restart after restart on one data dir.

Four bots place, amend and cancel orders on two contracts from threads, so trades happen;
the server is killed at a seeded random moment, restarted on the same data dir, and checked
against everything the bots were told before the next round begins.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

from tests.reliability.conftest import (
    Bot,
    account_cash,
    assert_ledger_matches,
    day_symbols,
    run_bots,
    start_server,
    stop_server,
    verify_acknowledged,
)

SEED = 20_261_201
KILLS = 10
#: A snapshot every 40 commands, so restarts load snapshots as well as replay the journal.
OPTIONS = ["--snapshot-every", "40"]


def test_kill_9_loop_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    data = tmp_path / "cfx"
    server = start_server(data, extra=OPTIONS)
    port = server.port
    symbols = day_symbols(server)[1:3]
    bots = [
        Bot(server.account(f"bot{i}"), f"bot{i}", symbols, random.Random(rng.random()))
        for i in range(4)
    ]
    figures: dict[str, Any] = {"kills": 0, "retried": 0}
    try:
        for _ in range(KILLS):
            stop = threading.Event()
            threads = run_bots(bots, stop)
            time.sleep(rng.uniform(0.3, 1.5))
            stop_server(server, kill=True)
            figures["kills"] += 1
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            server = start_server(data, port=port, extra=OPTIONS)
            found = verify_acknowledged(server, bots, symbols)
            figures["retried"] += found["retried"]
            figures["trades"] = found["trades"]
        seen = {bot.client.account_id: account_cash(bot.client) for bot in bots}
    finally:
        stop_server(server)
    assert_ledger_matches([bot.client for bot in bots], seen, f"sqlite:///{data / 'ledger.db'}")
    figures["orders"] = sum(len(bot.orders) for bot in bots)
    figures["requests"] = sum(bot.sent for bot in bots)
    print(f"kill loop: {figures}")
    assert figures["kills"] == KILLS and figures["trades"] > 0
