"""Money: Decimal inside, a string with exactly two decimals outside."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

FEN = Decimal("0.01")
ZERO = Decimal("0.00")
MAX_AMOUNT = Decimal("1000000000.00")


def to_fen(value: Decimal) -> Decimal:
    """Round half-up to the fen."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def fmt(value: Decimal) -> str:
    """The wire form: '1234.50'."""
    return f"{to_fen(value):.2f}"


def _parse_money(value: Any) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError('money must be a string like "12.50" (not a JSON number)')
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError("not a decimal amount") from None
    else:
        raise ValueError('money must be a string like "12.50"')
    if not amount.is_finite():
        raise ValueError("amount must be finite")
    if abs(amount) > MAX_AMOUNT:  # before quantize, which fails on huge exponents
        raise ValueError("amount out of range")
    if amount != amount.quantize(FEN):
        raise ValueError("amount has more than two decimals")
    return amount.quantize(FEN)


def _parse_quantity(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("not a quantity")
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("not a decimal quantity") from None
    if not amount.is_finite() or abs(amount) > Decimal("1000000") or int(amount.as_tuple().exponent) < -4:
        raise ValueError("quantity out of range (at most 4 decimals, below 1,000,000)")
    return amount


Money = Annotated[Decimal, BeforeValidator(_parse_money), PlainSerializer(fmt, return_type=str)]
"""A money field: accepts "12.50" (or an integer), serialises as "12.50"."""

Quantity = Annotated[Decimal, BeforeValidator(_parse_quantity), PlainSerializer(str, return_type=str)]
"""A count or ratio: accepts "1.5" or 1.5, at most four decimals."""
