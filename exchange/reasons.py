"""Reason codes: one numbered enum for every refusal and cancellation in cfx.

Each pipeline stage owns a range, so a code says where an order was stopped:

- ``1000-1999`` gateway (malformed requests, authentication, rate limits)
- ``2000-2999`` risk (margin, limits, bands, halts)
- ``3000-3099`` matching engine rejections
- ``3100-3199`` matching engine cancellation reasons

Refusals are values, never exceptions: the engine writes a ``REJECTED`` or ``CANCELLED``
event carrying one of these codes. The names are the stable error codes of the public API.
"""

from __future__ import annotations

from enum import IntEnum


class Reason(IntEnum):
    """Why a command was rejected or an order cancelled."""

    NONE = 0

    # 1000-1999: gateway (the request never reached the sequencer, or named nothing)
    INVALID_REQUEST = 1001
    UNAUTHORIZED = 1002
    FORBIDDEN = 1003
    RATE_LIMITED = 1004
    PAYLOAD_TOO_LARGE = 1005
    NOT_FOUND = 1006
    UNKNOWN_SYMBOL = 1007
    UNKNOWN_PRODUCT = 1008
    ORDER_NOT_FOUND = 1009
    DELIVERY_NOT_FOUND = 1010
    ACCOUNT_NOT_FOUND = 1011
    INVALID_TICK = 1012
    INVALID_PRICE = 1013
    INVALID_AMOUNT = 1014
    TOO_MANY_OPEN_ORDERS = 1015
    TOO_MANY_SUBSCRIPTIONS = 1016
    CLOCK_NOT_SIMULATED = 1017
    CLOCK_BACKWARDS = 1018
    SLOW_CONSUMER = 1019
    UNAVAILABLE = 1020
    JOURNAL_UNAVAILABLE = 1021
    JOURNAL_BROKEN = 1022  # the command may be in the journal: it may run after a restart
    REQUEST_TIMEOUT = 1023  # the request did not arrive whole in time

    # 2000-2999: risk and clearing (checked before the book; the order changed nothing)
    INSUFFICIENT_MARGIN = 2001
    PRICE_OUT_OF_BAND = 2002
    POSITION_LIMIT = 2003
    ORDER_TOO_LARGE = 2004
    CONTRACT_NOT_TRADING = 2005
    ACCOUNT_DISABLED = 2006
    INSUFFICIENT_FUNDS = 2007
    NOT_PROVIDER = 2008
    NOT_CONSUMER = 2009
    ATTESTATION_EXCEEDS_OWED = 2010
    DISPUTE_EXCEEDS_ATTESTED = 2011
    DELIVERY_NOT_OPEN = 2012
    ATTESTATION_PERIOD = 2013  # not ISO 8601, or not inside the delivery window up to now

    # 3000-3099: matching engine rejections (the command changed nothing)
    INVALID_COMMAND = 3001
    UNKNOWN_BOOK = 3002
    INVALID_ORDER_ID = 3003
    DUPLICATE_ORDER_ID = 3004
    UNKNOWN_ORDER_ID = 3005
    INVALID_SIDE = 3006
    INVALID_TIF = 3007
    INVALID_FLAGS = 3008
    INVALID_STP = 3009
    INVALID_QUANTITY = 3010
    PRICE_OFF_LADDER = 3011
    POST_ONLY_WOULD_TRADE = 3012
    BATCH_ORDER_TYPE = 3013  # a batch-mode book takes GTC limit orders only

    # 3100-3199: why the engine cancelled (part of) an order
    CANCELLED_BY_USER = 3101
    IOC_REMAINDER = 3102
    FOK_NOT_FILLED = 3103
    SELF_TRADE = 3104
    MARKET_NO_LIQUIDITY = 3105

    @property
    def stage(self) -> str:
        """Name the pipeline stage that owns this code."""
        if self.value == 0:
            return "none"
        if self.value < 2000:
            return "gateway"
        if self.value < 3000:
            return "risk"
        return "matching"
