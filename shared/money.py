"""Money: Decimal inside, a string with exactly two decimals outside.

Request fields take money only as a plain decimal string (CONTRACT: money is a JSON string): ASCII digits, a
leading minus only where a negative is allowed, at most two decimals, at most MAX_AMOUNT. `１２.００`, `1_000.00`,
`+5.00`, `1e3`, ` 5.00` and JSON numbers are refused. One definition for every service:

- `MoneyIn` (may be negative; the domain decides what a negative means), `NonNegativeMoneyIn`, `PositiveMoneyIn`:
  fields of request bodies;
- `Money`: answers and values built in code (a Decimal, or an int), sums up to MAX_TOTAL, serialised as "12.50";
  text is read as strictly as a request's.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

FEN = Decimal("0.01")
ZERO = Decimal("0.00")
MAX_AMOUNT = Decimal("1000000000.00")  # one amount of a request
MAX_TOTAL = Decimal("9999999999999999.99")  # an amount of an answer (a sum): the widest column, NUMERIC(18, 2)
MAX_QUANTITY = Decimal("1000000")

_SIGNED = re.compile(r"-?[0-9]{1,20}(?:\.[0-9]{1,2})?")  # re's [0-9] is ASCII only (\d would take ４ and ٤)
_UNSIGNED = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,2})?")
_QUANTITY = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?")
_MONEY_TEXT = 'money is a JSON string like "12.50": ASCII digits, at most two decimals'


def to_fen(value: Decimal) -> Decimal:
    """Round half-up to the fen."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def fmt(value: Decimal) -> str:
    """The wire form: '1234.50'."""
    return f"{to_fen(value):.2f}"


def _checked(amount: Decimal, limit: Decimal = MAX_AMOUNT) -> Decimal:
    if not amount.is_finite():
        raise ValueError("amount must be finite")
    if abs(amount) > limit:  # before quantize, which fails on huge exponents
        raise ValueError(f"amount out of range (at most {limit})")
    if amount != amount.quantize(FEN):
        raise ValueError("amount has more than two decimals")
    return amount.quantize(FEN)


def parse_money(value: Any, *, signed: bool = True, minimum: Decimal | None = None, answer: bool = False) -> Decimal:
    """An amount from a plain decimal string, or a Decimal built in code.

    `signed`: a leading minus is allowed; `minimum`: the smallest amount accepted (FEN for a positive field);
    `answer`: a value of an answer (a sum up to MAX_TOTAL; an int built in code is fine too)."""
    limit = MAX_TOTAL if answer else MAX_AMOUNT
    if isinstance(value, Decimal):
        amount = _checked(value, limit)
    elif isinstance(value, str):
        if not (_SIGNED if signed else _UNSIGNED).fullmatch(value):
            raise ValueError(_MONEY_TEXT + ("" if signed else ", no sign"))
        amount = _checked(Decimal(value), limit)
    elif answer and isinstance(value, int) and not isinstance(value, bool):
        amount = _checked(Decimal(value), limit)
    else:
        raise ValueError(_MONEY_TEXT + " (not a JSON number)")
    if minimum is not None and amount < minimum:
        raise ValueError(f"amount must be at least {minimum}")
    return amount


def _parse_answer_money(value: Any) -> Decimal:
    return parse_money(value, answer=True)


def _parse_money_in(value: Any) -> Decimal:
    return parse_money(value)


def _parse_non_negative(value: Any) -> Decimal:
    return parse_money(value, signed=False)


def _parse_positive(value: Any) -> Decimal:
    return parse_money(value, signed=False, minimum=FEN)


def parse_quantity(value: Any) -> Decimal:
    """A count or ratio: a JSON number or a plain decimal string, not negative, at most four decimals."""
    if isinstance(value, bool):
        raise ValueError("not a quantity")
    if isinstance(value, float):
        value = repr(value)  # the shortest text that reads back as the same float
        if not _QUANTITY.fullmatch(value):  # 1e-05, inf, nan, negative
            raise ValueError("quantity out of range (at most 4 decimals, below 1,000,000, not negative)")
    elif isinstance(value, str):
        if not _QUANTITY.fullmatch(value):
            raise ValueError('a quantity is a number or a string like "1.5": ASCII digits, no sign')
    elif not isinstance(value, (int, Decimal)):
        raise ValueError("not a quantity")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError("not a decimal quantity") from None
    if not amount.is_finite() or not 0 <= amount <= MAX_QUANTITY or int(amount.as_tuple().exponent) < -4:
        raise ValueError("quantity out of range (at most 4 decimals, below 1,000,000, not negative)")
    return amount


_MONEY_SCHEMA = WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]{1,10}(\.[0-9]{1,2})?$", "example": "12.50"})
_UNSIGNED_SCHEMA = WithJsonSchema({"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$", "example": "12.50"})
_SERIALISE = PlainSerializer(fmt, return_type=str)

Money = Annotated[Decimal, BeforeValidator(_parse_answer_money), _SERIALISE, _MONEY_SCHEMA]
"""A money value of an answer: a Decimal (or an int) built in code, or plain text; serialises as "12.50"."""

MoneyIn = Annotated[Decimal, BeforeValidator(_parse_money_in), _SERIALISE, _MONEY_SCHEMA]
"""A money field of a request: "12.50", "-3.00"; the domain rule decides what a negative means."""

NonNegativeMoneyIn = Annotated[Decimal, BeforeValidator(_parse_non_negative), _SERIALISE, _UNSIGNED_SCHEMA]
"""A money field of a request that cannot be negative: "0.00", "12.50" (no sign at all)."""

PositiveMoneyIn = Annotated[Decimal, BeforeValidator(_parse_positive), _SERIALISE, _UNSIGNED_SCHEMA]
"""A money field of a request above zero: "0.01" and up."""

Quantity = Annotated[
    Decimal,
    BeforeValidator(parse_quantity),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}]}
    ),
]
"""A count or ratio: accepts "1.5" or 1.5, at most four decimals, not negative."""
