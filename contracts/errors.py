"""Errors raised by ``contracts``: each carries a stable ``code``.

The codes are names of :class:`exchange.reasons.Reason`, so the gateway can turn any of these
into an API error without a lookup table of its own.
"""

from __future__ import annotations


class ContractError(ValueError):
    """Refuse an input that names no valid product, symbol, price, amount or quantity."""

    code: str = "INVALID_REQUEST"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class UnknownProduct(ContractError):
    """Refuse a product code that is not one of :data:`contracts.PRODUCTS`."""

    code = "UNKNOWN_PRODUCT"


class InvalidSymbol(ContractError):
    """Refuse text that is not a valid contract symbol."""

    code = "UNKNOWN_SYMBOL"


class InvalidPrice(ContractError):
    """Refuse a price: ``INVALID_TICK`` when off the tick grid, else ``INVALID_PRICE``."""

    code = "INVALID_PRICE"


class InvalidAmount(ContractError):
    """Refuse a USD money amount."""

    code = "INVALID_AMOUNT"


class InvalidQuantity(ContractError):
    """Refuse a quantity of GPU-hours."""

    code = "INVALID_QUANTITY"


class InvalidSpec(ContractError):
    """Refuse contract terms that contradict each other or break a rule of the spec."""

    code = "INVALID_REQUEST"
