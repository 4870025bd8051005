"""Error responses: ``{"error": {"code": "SNAKE_CASE_CODE", "message": "..."}}`` with a 4xx."""

from __future__ import annotations

from typing import Any

from exchange.reasons import Reason

#: HTTP status per reason code; anything not listed is a 400.
STATUS: dict[Reason, int] = {
    Reason.UNAUTHORIZED: 401,
    Reason.FORBIDDEN: 403,
    Reason.NOT_FOUND: 404,
    Reason.UNKNOWN_SYMBOL: 404,
    Reason.UNKNOWN_PRODUCT: 404,
    Reason.ORDER_NOT_FOUND: 404,
    Reason.DELIVERY_NOT_FOUND: 404,
    Reason.ACCOUNT_NOT_FOUND: 404,
    Reason.PAYLOAD_TOO_LARGE: 413,
    Reason.REQUEST_TIMEOUT: 408,
    Reason.RATE_LIMITED: 429,
    Reason.CONTRACT_NOT_TRADING: 409,
    Reason.DELIVERY_NOT_OPEN: 409,
    Reason.CLOCK_NOT_SIMULATED: 409,
    Reason.CLOCK_BACKWARDS: 409,
    Reason.INSUFFICIENT_MARGIN: 422,
    Reason.INSUFFICIENT_FUNDS: 422,
    Reason.POST_ONLY_WOULD_TRADE: 422,
    Reason.PRICE_OUT_OF_BAND: 422,
    Reason.POSITION_LIMIT: 422,
    Reason.ORDER_TOO_LARGE: 422,
    Reason.TOO_MANY_OPEN_ORDERS: 422,
    Reason.ACCOUNT_DISABLED: 403,
    Reason.NOT_PROVIDER: 403,
    Reason.NOT_CONSUMER: 403,
    Reason.UNAVAILABLE: 503,
    Reason.JOURNAL_UNAVAILABLE: 503,
    Reason.JOURNAL_BROKEN: 503,
}


class ApiError(Exception):
    """A refusal the gateway answers with a 4xx (or 503) and a stable code."""

    def __init__(self, reason: Reason, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return STATUS.get(self.reason, 400)

    def body(self) -> dict[str, Any]:
        return error_body(self.reason, self.message)


def error_body(reason: Reason, message: str) -> dict[str, Any]:
    return {"error": {"code": reason.name, "message": message}}
