"""The websocket feed and order entry against a real server (SPEC section 4)."""

from __future__ import annotations

import asyncio
import time
import zlib
from typing import Any

import httpx
import orjson
import websockets

from exchange.gateway.auth import sign
from tests.gateway.conftest import Client, Server


def checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    text = (
        "B"
        + ",".join(f"{p}:{q}" for p, q in bids[:10])
        + "A"
        + ",".join(f"{p}:{q}" for p, q in asks[:10])
    )
    return zlib.crc32(text.encode())


class Book:
    """A client's copy of one book, kept from snapshot and updates."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.sequence = snapshot["sequence"]
        self.levels = {
            "buy": {p: q for p, q in snapshot["bids"]},
            "sell": {p: q for p, q in snapshot["asks"]},
        }
        assert checksum(*self.sides()) == snapshot["checksum"]

    def sides(self) -> tuple[list[list[str]], list[list[str]]]:
        bids = sorted(self.levels["buy"].items(), key=lambda pq: -float(pq[0]))
        asks = sorted(self.levels["sell"].items(), key=lambda pq: float(pq[0]))
        return [list(x) for x in bids], [list(x) for x in asks]

    def apply(self, update: dict[str, Any]) -> None:
        assert update["sequence"] == self.sequence + 1, "gap in the book feed"
        self.sequence = update["sequence"]
        for side, price, qty in update["changes"]:
            if qty == "0":
                self.levels[side].pop(price, None)
            else:
                self.levels[side][price] = qty
        assert checksum(*self.sides()) == update["checksum"]


async def _recv(ws: Any, timeout: float = 10.0) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def _until(ws: Any, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = await _recv(ws, max(0.1, deadline - time.monotonic()))
        if predicate(message):
            return message


def _text(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def _auth_message(client: Client) -> dict[str, Any]:
    ts = str(int(time.time()))
    return {
        "op": "auth",
        "key": client.key,
        "timestamp": ts,
        "signature": sign(client.secret, ts, "GET", "/v1/ws", b""),
    }


def test_feed_rebuilds_the_rest_book_without_gaps(server: Server, symbol: str) -> None:
    maker, taker = server.account("ws-maker"), server.account("ws-taker")

    async def run() -> tuple[Book, list[dict[str, Any]]]:
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(
                _text(
                    {"op": "subscribe", "id": 1, "channels": [f"book:{symbol}", f"trades:{symbol}"]}
                )
            )
            ack = await _until(ws, lambda m: m.get("op") == "ack")
            assert ack["id"] == 1
            book = Book(await _until(ws, lambda m: m.get("type") == "snapshot"))
            loop = asyncio.get_running_loop()
            for i in range(10):
                await loop.run_in_executor(None, maker.place, symbol, "sell", f"3.{40 + i}", 2 + i)
                await loop.run_in_executor(None, maker.place, symbol, "buy", f"2.{80 + i}", 1 + i)
            await loop.run_in_executor(None, taker.place, symbol, "buy", "3.45", 9)
            trades: list[dict[str, Any]] = []
            final = httpx.get(server.url + f"/v1/book/{symbol}?depth=100").json()
            expected = len(httpx.get(server.url + f"/v1/trades/{symbol}?limit=1000").json())
            assert expected > 0
            while book.sequence < final["sequence"] or len(trades) < expected:
                message = await _recv(ws)
                if message.get("channel") == "book":
                    book.apply(message)
                elif message.get("channel") == "trades":
                    trades.append(message)
            rest = httpx.get(server.url + f"/v1/book/{symbol}?depth=100").json()
            bids, asks = book.sides()
            assert (bids, asks) == (rest["bids"], rest["asks"])
            return book, trades

    _, trades = asyncio.run(run())
    rest_trades = httpx.get(server.url + f"/v1/trades/{symbol}?limit={len(trades)}").json()
    assert [t["trade_id"] for t in trades] == [t["trade_id"] for t in reversed(rest_trades)]
    assert all(t["price"] == r["price"] for t, r in zip(trades, reversed(rest_trades), strict=True))


def test_order_entry_over_the_websocket(server: Server, symbol: str) -> None:
    trader = server.account("ws-trader")

    async def run() -> None:
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(_text({"op": "place", "id": "x1", "symbol": symbol, "side": "buy", "type": "limit",
                                        "price": "2.00", "quantity": 1}))  # fmt: skip
            refused = await _until(ws, lambda m: m.get("id") == "x1")
            assert refused["op"] == "error" and refused["error"]["code"] == "UNAUTHORIZED"
            await ws.send(_text(_auth_message(trader) | {"id": "a"}))
            assert (await _until(ws, lambda m: m.get("id") == "a"))["op"] == "ack"
            await ws.send(_text({"op": "subscribe", "id": "s", "channels": ["orders", "fills"]}))
            await _until(ws, lambda m: m.get("id") == "s")
            await ws.send(_text({"op": "place", "id": 7, "symbol": symbol, "side": "buy", "type": "limit",
                                        "price": "2.00", "quantity": 3}))  # fmt: skip
            seen: dict[str, dict[str, Any]] = {}
            while len(seen) < 2:  # the private update may come before or after the ack
                message = await _recv(ws)
                if message.get("id") == 7:
                    seen["ack"] = message
                elif message.get("channel") == "orders":
                    seen["update"] = message
            ack = seen["ack"]
            assert ack["op"] == "ack" and ack["order"]["status"] == "open"
            assert seen["update"]["order_id"] == ack["order"]["order_id"]
            await ws.send(_text({"op": "cancel", "id": 8, "order_id": ack["order"]["order_id"]}))
            cancel = await _until(ws, lambda m: m.get("id") == 8)
            assert (cancel["order"]["status"], cancel["order"]["cancel_reason"]) == (
                "cancelled",
                "user",
            )
            # an IOC's unfilled rest, on the orders channel: the update says why it went
            await ws.send(_text({"op": "place", "id": 9, "symbol": symbol, "side": "buy", "type": "limit",
                                        "price": "2.00", "quantity": 1, "time_in_force": "IOC"}))  # fmt: skip
            update = await _until(
                ws, lambda m: m.get("channel") == "orders" and m["status"] == "cancelled"
                and m["cancel_reason"] != "user"
            )  # fmt: skip
            assert update["cancel_reason"] == "ioc_remainder"

    asyncio.run(run())


def test_what_follows_an_auth_waits_for_it_in_order(server: Server, symbol: str) -> None:
    """An auth is journaled before its ack; messages sent right behind it are handled after
    it, in the order sent, so a bot need not wait for the ack before its orders. Behind a
    refused auth they are refused as unauthenticated."""
    trader = server.account("ws-pipeliner")

    async def run() -> None:
        async with websockets.connect(server.ws_url) as ws:
            login = _auth_message(trader)
            order = {"op": "place", "symbol": symbol, "side": "buy", "type": "limit",
                     "price": "2.00", "quantity": 1}  # fmt: skip
            await ws.send(_text(login | {"id": "a"}))
            await ws.send(_text(order | {"id": "p1"}))
            await ws.send(_text({"op": "ping", "id": "q"}))
            await ws.send(_text(order | {"id": "p2"}))
            answers = {}
            while len(answers) < 4:
                message = await _until(ws, lambda m: m.get("id") in ("a", "p1", "q", "p2"))
                answers[message["id"]] = message
            # the auth first, the orders in the order sent (a pong needs no journal: it may
            # pass the first order's ack)
            order_seen = list(answers)
            assert order_seen[:1] == ["a"] and order_seen.index("p1") < order_seen.index("p2")
            assert [answers[i]["op"] for i in ("a", "p1", "q", "p2")] == [
                "ack",
                "ack",
                "pong",
                "ack",
            ]
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(_text(login | {"id": "again"}))  # the same signature: refused
            await ws.send(_text(order | {"id": "p3"}))
            refused = await _until(ws, lambda m: m.get("id") == "again")
            assert refused["error"]["code"] == "UNAUTHORIZED", refused
            behind = await _until(ws, lambda m: m.get("id") == "p3")
            assert behind["error"]["code"] == "UNAUTHORIZED", behind

    asyncio.run(run())
    placed = trader.request("GET", f"/v1/orders?symbol={symbol}").json()
    assert len(placed) == 2


def test_bad_frames_get_errors_and_keep_the_connection(server: Server) -> None:
    async def run() -> None:
        async with websockets.connect(server.ws_url) as ws:
            for frame in ("{", "[1]", '{"op": "dance"}', '{"op": "subscribe", "channels": "book"}',
                          '{"op": "subscribe", "channels": ["book:NOPE"]}', '{"op": "cancel", "order_id": 1}'):  # fmt: skip
                await ws.send(frame)
                reply = await _until(ws, lambda m: m.get("op") == "error")
                assert reply["error"]["code"] in (
                    "INVALID_REQUEST",
                    "UNKNOWN_SYMBOL",
                    "UNAUTHORIZED",
                )
            for frame, says in (("{", "unexpected end of data"),
                                ("[" * 2000 + "]" * 2000, "depth limit exceeded")):  # fmt: skip
                await ws.send(frame)
                reply = await _until(ws, lambda m: m.get("op") == "error")
                assert reply["error"]["message"].startswith(
                    f"the message is not valid JSON ({says}"
                )
            for bad_id in ('{"a": 1}', "true", "1.5", "[1]"):  # refused, not run unanswerable
                await ws.send(f'{{"op": "ping", "id": {bad_id}}}')
                reply = await _until(ws, lambda m: m.get("op") in ("error", "pong"))
                assert (reply["op"], reply["id"], reply["error"]["code"]) == (
                    "error", None, "INVALID_REQUEST"
                )  # fmt: skip
            for frame, says in (('{"op": "dance"}', "unknown op 'dance': one of auth, "),
                                ('{"id": 7}', 'a message needs an "op": one of auth, ')):  # fmt: skip
                await ws.send(frame)
                reply = await _until(ws, lambda m: m.get("op") == "error")
                assert reply["error"]["message"].startswith(says), reply
            await ws.send(b"\x00\x01binary")
            reply = await _until(ws, lambda m: m.get("op") == "error")
            assert reply["error"]["code"] == "INVALID_REQUEST"
            await ws.send(_text({"op": "ping", "id": 1}))
            assert (await _until(ws, lambda m: m.get("op") == "pong"))["id"] == 1

    asyncio.run(run())


def test_subscribing_again_to_a_book_sends_a_fresh_snapshot(server: Server, symbol: str) -> None:
    """SPEC section 4: a gap means resubscribe, so a subscribe to a book already subscribed
    starts it again from a snapshot."""

    async def run() -> None:
        async with websockets.connect(server.ws_url) as ws:
            for attempt in ("first", "again"):
                await ws.send(
                    _text({"op": "subscribe", "id": attempt, "channels": [f"book:{symbol}"]})
                )
                assert (await _until(ws, lambda m, a=attempt: m.get("id") == a))["op"] == "ack"
                snapshot = await _until(
                    ws, lambda m: m.get("channel") == "book" and m["type"] == "snapshot"
                )
                assert snapshot["symbol"] == symbol
                Book(snapshot)  # its checksum holds
            # a book named twice in one subscribe is subscribed once: one snapshot
            await ws.send(_text({"op": "subscribe", "id": "twice",
                                 "channels": [f"book:{symbol}", f"book:{symbol}"]}))  # fmt: skip
            await ws.send(_text({"op": "ping", "id": "after"}))
            seen = []
            while (message := await _recv(ws)).get("id") != "after":
                seen.append(message)
            assert sum(m.get("type") == "snapshot" for m in seen) == 1

    asyncio.run(run())


def test_private_fills_carry_side_and_liquidity(server: Server) -> None:
    contracts = httpx.get(server.url + "/v1/contracts").json()
    symbol = sorted(c["symbol"] for c in contracts if c["product"] == "A100")[-1]
    maker, taker = server.account("ws-fill-maker"), server.account("ws-fill-taker")

    async def run() -> None:
        async with websockets.connect(server.ws_url) as m, websockets.connect(server.ws_url) as t:
            for ws, who in ((m, maker), (t, taker)):
                await ws.send(_text(_auth_message(who) | {"id": "a"}))
                assert (await _until(ws, lambda x: x.get("id") == "a"))["op"] == "ack"
                await ws.send(_text({"op": "subscribe", "id": "s", "channels": ["fills"]}))
                await _until(ws, lambda x: x.get("id") == "s")
            rest = maker.place(symbol, "sell", "1.50", 2).json()
            await t.send(_text({"op": "place", "id": 1, "symbol": symbol, "side": "buy", "type": "limit",
                                "price": "1.50", "quantity": 2}))  # fmt: skip
            mine = await _until(t, lambda x: x.get("channel") == "fills")
            theirs = await _until(m, lambda x: x.get("channel") == "fills")
            assert (mine["side"], mine["liquidity"]) == ("buy", "taker")
            assert (theirs["side"], theirs["liquidity"], theirs["order_id"]) == (
                "sell",
                "maker",
                rest["order_id"],
            )
            assert mine["trade_id"] == theirs["trade_id"] and mine["price"] == "1.50"

    asyncio.run(run())


def test_positions_are_sent_when_they_change_only(server: Server) -> None:
    contracts = httpx.get(server.url + "/v1/contracts").json()
    symbol = sorted(c["symbol"] for c in contracts if c["product"] == "A100")[-2]
    maker, taker = server.account("ws-pos-maker"), server.account("ws-pos-taker")

    async def run() -> None:
        async with websockets.connect(server.ws_url) as ws:
            seen: list[list[tuple[str, int]]] = []

            async def reply(id: str) -> dict[str, Any]:
                """Read up to the reply to ``id``, keeping the positions messages on the way."""
                while True:
                    message = await _recv(ws, 10)
                    if message.get("channel") == "positions":
                        seen.append([(p["symbol"], p["quantity"]) for p in message["positions"]])
                    if message.get("id") == id:
                        return message

            await ws.send(_text(_auth_message(taker) | {"id": "a"}))
            assert (await reply("a"))["op"] == "ack"
            await ws.send(_text({"op": "subscribe", "id": "s", "channels": ["positions"]}))
            await reply("s")

            async def place(side: str, price: str, quantity: int) -> None:
                await ws.send(_text({"op": "place", "id": price, "symbol": symbol, "side": side,
                                     "type": "limit", "price": price, "quantity": quantity}))  # fmt: skip
                assert (await reply(price))["op"] == "ack"

            await place("buy", "1.40", 3)  # rests: no position, nothing changed
            maker.place(symbol, "sell", "1.45", 2)
            await place("buy", "1.45", 2)  # trades: long 2
            await place("buy", "1.30", 1)  # rests again: the positions did not change
            await ws.send(_text({"op": "subscribe", "id": "p", "channels": ["positions"]}))
            await reply("p")
            await ws.send(_text({"op": "subscribe", "id": "q", "channels": ["book:" + symbol]}))
            await reply("q")  # the positions sent after "p" came before this answer
            # on subscribing, the trade, and subscribing again: not for the resting orders
            assert seen == [[], [(symbol, 2)], [(symbol, 2)]]
            await ws.send(_text(_auth_message(maker) | {"id": "m"}))  # another account now
            await reply("m")
            await ws.send(_text({"op": "subscribe", "id": "r", "channels": ["book:" + symbol]}))
            await reply("r")
            assert seen[3:] == [[(symbol, -2)]]  # the maker's, sent at once

    asyncio.run(run())


def test_an_auth_timestamp_has_one_spelling(server: Server) -> None:
    """`+T`, `0T`, `T` in other digits, `T.0`: each would sign afresh what `T` signed."""
    trader = server.account("ws-spelling")

    async def run() -> None:
        async with websockets.connect(server.ws_url) as ws:
            now = str(int(time.time()))
            wide = "".join(chr(0xFF10 + int(d)) for d in now)  # fullwidth digits
            for n, spelling in enumerate(("+" + now, "0" + now, wide, now + ".0")):
                await ws.send(_text({"op": "auth", "id": n, "key": trader.key, "timestamp": spelling,
                                     "signature": sign(trader.secret, spelling, "GET", "/v1/ws", b"")}))  # fmt: skip
                refused = await _until(ws, lambda m, n=n: m.get("id") == n)
                assert refused["op"] == "error", spelling
                assert refused["error"]["code"] == "UNAUTHORIZED"
                assert "plain decimal digits" in refused["error"]["message"]
            await ws.send(_text(_auth_message(trader) | {"id": "ok"}))
            assert (await _until(ws, lambda m: m.get("id") == "ok"))["op"] == "ack"

    asyncio.run(run())


def test_a_frame_over_the_limit_is_closed_with_1009_not_reset(server: Server) -> None:
    """The server reads and drops the rest of a refused frame after its close frame, so a
    client still sending it reads the code instead of a connection reset."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    codes = []
    for frame in ["x" * 70_000, "[" * 100_000, b"\x00" * (8 << 20)] * 5:
        with connect(server.ws_url, max_size=None) as ws:
            try:
                ws.send(frame)
                ws.send('{"op": "ping", "id": 1}')
                while True:
                    ws.recv(timeout=30)
            except ConnectionClosed as closed:
                codes.append(closed.rcvd.code if closed.rcvd else None)
    assert codes == [1009] * 15
    assert httpx.get(server.url + "/v1/health").status_code == 200


def test_amend_cancel_all_and_cancel_after_over_the_websocket(server: Server, symbol: str) -> None:
    """The REST order operations over the websocket: the same checks, codes and answers."""
    trader = server.account("ws-amender")
    other = server.account("ws-other")
    theirs = other.place(symbol, "buy", "2.00", 1).json()["order_id"]

    async def run() -> None:
        async with websockets.connect(server.ws_url) as ws:

            async def ask(message: dict[str, Any]) -> dict[str, Any]:
                await ws.send(_text(message))
                return await _until(ws, lambda m: m.get("id") == message["id"])

            refused = await ask({"op": "amend", "id": "u", "order_id": theirs, "price": "2.01"})
            assert refused["error"]["code"] == "UNAUTHORIZED"
            assert (await ask(_auth_message(trader) | {"id": "a"}))["op"] == "ack"
            placed = []
            for i, price in enumerate(("2.00", "2.01")):
                ack = await ask({"op": "place", "id": f"p{i}", "symbol": symbol, "side": "buy",
                                 "type": "limit", "price": price, "quantity": 3})  # fmt: skip
                placed.append(ack["order"]["order_id"])

            ack = await ask({"op": "amend", "id": 1, "order_id": placed[0], "price": "2.02",
                             "quantity": 5})  # fmt: skip
            assert ack["op"] == "ack"
            assert (ack["order"]["price"], ack["order"]["quantity"]) == ("2.02", 5)
            assert ack["order"] == trader.request("GET", f"/v1/orders/{placed[0]}").json()
            for bad, code, says in (
                ({"order_id": placed[0]}, "INVALID_REQUEST", "give a new price"),
                ({"order_id": placed[0], "quantity": "5"}, "INVALID_REQUEST", "quantity: "),
                ({"order_id": placed[0], "price": 2.5}, "INVALID_REQUEST", "price: "),
                ({"order_id": placed[0], "size": 5}, "INVALID_REQUEST", "size: Extra inputs"),
                ({"price": "2.02"}, "INVALID_REQUEST", "order_id must be an integer"),
                ({"order_id": 0, "price": "2.02"}, "INVALID_REQUEST", f"from 1 to {2**63 - 1}"),
                ({"order_id": -1, "price": "2.02"}, "INVALID_REQUEST", f"from 1 to {2**63 - 1}"),
                ({"order_id": 2**63, "price": "2.02"}, "INVALID_REQUEST", f"from 1 to {2**63 - 1}"),
                ({"order_id": theirs, "price": "2.02"}, "ORDER_NOT_FOUND", f"order {theirs}"),
                ({"order_id": placed[0], "price": "9.99"}, "PRICE_OUT_OF_BAND", ""),
            ):
                reply = await ask({"op": "amend", "id": "bad"} | bad)
                assert reply["op"] == "error", (bad, reply)
                assert reply["error"]["code"] == code and says in reply["error"]["message"]
            assert trader.request("GET", f"/v1/orders/{placed[0]}").json() == ack["order"]
            # a cancel is DELETE /v1/orders/{order_id}: no body, so no other field
            reply = await ask({"op": "cancel", "id": "bad", "order_id": placed[0], "size": 5})
            assert reply["error"]["code"] == "INVALID_REQUEST", reply
            assert reply["error"]["message"] == "size: Extra inputs are not permitted"
            # a number beyond 64 bits (which orjson reads as a float) is no order id either
            await ws.send(f'{{"op": "amend", "id": "big", "order_id": {2**70}, "price": "2.02"}}')
            reply = await _until(ws, lambda m: m.get("id") == "big")
            assert reply["error"]["message"].endswith(f"from 1 to {2**63 - 1}"), reply
            for order_id in (0, -1, 2**63):  # as REST refuses DELETE /v1/orders/{order_id}
                reply = await ask({"op": "cancel", "id": "bad", "order_id": order_id})
                assert reply["error"]["code"] == "INVALID_REQUEST", reply
                rest = trader.request("DELETE", f"/v1/orders/{order_id}")
                assert (rest.status_code, rest.json()["error"]["code"]) == (400, "INVALID_REQUEST")
            assert trader.request("GET", f"/v1/orders/{placed[0]}").json() == ack["order"]

            armed = await ask({"op": "cancel_after", "id": 2, "timeout_s": 60})
            assert armed["account_id"] == trader.account_id and armed["cancel_at"].endswith("Z")
            for bad in ({"timeout_s": -1}, {"timeout_s": "60"}, {}, {"timeout_s": 1, "x": 1}):
                reply = await ask({"op": "cancel_after", "id": "bad"} | bad)
                assert reply["error"]["code"] == "INVALID_REQUEST", (bad, reply)
            disarmed = await ask({"op": "cancel_after", "id": 3, "timeout_s": 0})
            assert (disarmed["op"], disarmed["cancel_at"]) == ("ack", None)

            for bad, code in (({"symbol": "NOPE"}, "UNKNOWN_SYMBOL"),
                              ({"symbol": 5}, "INVALID_REQUEST"),
                              ({"side": "buy"}, "INVALID_REQUEST")):  # fmt: skip
                reply = await ask({"op": "cancel_all", "id": "bad"} | bad)
                assert reply["error"]["code"] == code, (bad, reply)
            cancelled = await ask({"op": "cancel_all", "id": 4, "symbol": symbol})
            assert sorted(o["order_id"] for o in cancelled["orders"]) == placed
            assert {(o["status"], o["cancel_reason"]) for o in cancelled["orders"]} == {
                ("cancelled", "user")
            }
            assert (await ask({"op": "cancel_all", "id": 5}))["orders"] == []

    asyncio.run(run())
    assert trader.request("GET", "/v1/orders?status=open").json() == []
    assert other.request("GET", f"/v1/orders/{theirs}").json()["status"] == "open"


def test_trades_of_every_symbol_and_a_subscribe_taken_whole(server: Server, symbol: str) -> None:
    """``trades:*`` carries every contract's trades; ``book:*`` is refused; a subscribe with
    one refused channel adds none of them."""
    contracts = httpx.get(server.url + "/v1/contracts").json()
    a100 = sorted(c["symbol"] for c in contracts if c["product"] == "A100")[-1]
    maker, taker = server.account("ws-star-maker"), server.account("ws-star-taker")

    async def run() -> None:
        async with websockets.connect(server.ws_url) as ws:

            async def ask(message: dict[str, Any]) -> dict[str, Any]:
                await ws.send(_text(message))
                return await _until(ws, lambda m: m.get("id") == message["id"])

            refused = await ask({"op": "subscribe", "id": 1, "channels": [f"trades:{symbol}", "book:NOPE"]})  # fmt: skip
            assert refused["error"]["code"] == "UNKNOWN_SYMBOL", refused
            for channels, says in ((["book:*"], "one symbol at a time"),
                                   (["trades:*", "candles:*"], "unknown channel 'candles:*'"),
                                   (["trades:*", "orders"], "authenticate before")):  # fmt: skip
                refused = await ask({"op": "subscribe", "id": 2, "channels": channels})
                assert says in refused["error"]["message"], refused
            acked = await ask({"op": "unsubscribe", "id": 3, "channels": []})
            assert acked["channels"] == []  # none of the refused subscribes added anything
            acked = await ask({"op": "subscribe", "id": 4, "channels": ["trades:*"]})
            assert acked["channels"] == ["trades:*"]
            for traded, price in ((symbol, "2.00"), (a100, "1.50")):
                assert maker.place(traded, "sell", price, 1).status_code == 201
                assert taker.place(traded, "buy", price, 1).status_code == 201
            seen: set[str] = set()
            while seen != {symbol, a100}:
                trade = await _until(ws, lambda m: m.get("channel") == "trades")
                seen.add(trade["symbol"])

    asyncio.run(run())
