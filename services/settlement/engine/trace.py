"""Building trace steps: every number with its rule, parameters and accumulators."""

from __future__ import annotations

from decimal import Decimal

from .model import TraceStep
from .money import ZERO


def trace_step(step: str, rule: str, *, amount: Decimal = ZERO, **detail: object) -> TraceStep:
    """A trace step; detail values become strings (Decimal as written, None "-", booleans "true"/"false")."""
    for key, value in detail.items():  # the kwargs dict is ours: convert in place
        detail[key] = "-" if value is None else "true" if value is True else "false" if value is False else str(value)
    return TraceStep(step, rule, amount, detail)  # type: ignore[arg-type]
