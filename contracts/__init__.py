"""Instruments: products, symbols, contract specs, the listing calendar, exact prices.

Used everywhere in cfx; depends on nothing else in it. See docs/contracts.md.
"""

from contracts.calendar import ListingCalendar
from contracts.errors import (
    ContractError,
    InvalidAmount,
    InvalidPrice,
    InvalidQuantity,
    InvalidSpec,
    InvalidSymbol,
    UnknownProduct,
)
from contracts.prices import (
    DEFAULT_TICK_SIZE,
    MAX_AMOUNT,
    MAX_PRICE,
    MAX_QUANTITY,
    check_tick_size,
    decimal_places,
    format_cents,
    parse_quantity,
    to_cents,
    to_price,
    to_ticks,
)
from contracts.products import A100, H100, PRODUCTS, Product, get_product
from contracts.specs import (
    DEFAULT_BATCH_INTERVAL_S,
    DEFAULT_LAST_TRADE_OFFSET,
    DEFAULT_SETTLEMENT_GRACE,
    ContractSpec,
    ContractStatus,
    Mechanism,
    format_time,
    spec_for,
)
from contracts.symbols import (
    PeriodKind,
    Symbol,
    as_symbol,
    format_symbol,
    iso_weeks_in_year,
    parse_symbol,
)

__all__ = [
    "A100",
    "DEFAULT_BATCH_INTERVAL_S",
    "DEFAULT_LAST_TRADE_OFFSET",
    "DEFAULT_SETTLEMENT_GRACE",
    "DEFAULT_TICK_SIZE",
    "H100",
    "MAX_AMOUNT",
    "MAX_PRICE",
    "MAX_QUANTITY",
    "PRODUCTS",
    "ContractError",
    "ContractSpec",
    "ContractStatus",
    "InvalidAmount",
    "InvalidPrice",
    "InvalidQuantity",
    "InvalidSpec",
    "InvalidSymbol",
    "ListingCalendar",
    "Mechanism",
    "PeriodKind",
    "Product",
    "Symbol",
    "UnknownProduct",
    "as_symbol",
    "check_tick_size",
    "decimal_places",
    "format_cents",
    "format_symbol",
    "format_time",
    "get_product",
    "iso_weeks_in_year",
    "parse_quantity",
    "parse_symbol",
    "spec_for",
    "to_cents",
    "to_price",
    "to_ticks",
]
