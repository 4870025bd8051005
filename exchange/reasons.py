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
