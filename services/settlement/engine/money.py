"""Money and ratios: Decimal only, rounded half-up to the fen at the points DOMAIN.md names."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
ONE = Decimal("1")

# Every engine computation runs in this context: enough digits that products of prices,
# quantities and ratios are exact, so rounding happens only where `to_fen` is called.
ENGINE_CONTEXT = Context(prec=50, rounding=ROUND_HALF_UP)


def to_fen(amount: Decimal) -> Decimal:
    """Round an exact amount half-up to the fen (0.01 yuan)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def format_amount(amount: Decimal) -> str:
    """Money as the contract's string with exactly two decimals ("1234.50")."""
    return str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


def format_ratio(ratio: Decimal) -> str:
    """A ratio with at least two decimals ("0.70", "0.675")."""
    if ratio == ratio.quantize(CENT):
        return str(ratio.quantize(CENT))
    return str(ratio.normalize())


def as_decimal(value: object, *, field: str) -> Decimal:
    """Coerce an input amount to Decimal; floats are refused (they are not exact)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{field}: use Decimal or str for money, not {type(value).__name__}")
    if isinstance(value, (int, str)):
        return Decimal(value)
    raise TypeError(f"{field}: expected Decimal, got {type(value).__name__}")
