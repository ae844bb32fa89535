"""Per-person, per-year accumulators: an immutable mapping of stable keys to Decimal."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping
from decimal import Decimal

from .money import ZERO

# Stable keys (stored by the settlement service; never rename).
OUTPATIENT_DEDUCTIBLE_PAID = "outpatient.deductible_paid"  # 11 + 41, 累计补差
OUTPATIENT_FUND_PAID = "outpatient.fund_paid"
CHRONIC_DEDUCTIBLE_PAID = "chronic.deductible_paid"
CHRONIC_FUND_PAID = "chronic.fund_paid"  # the shared chronic pool
INPATIENT_FUND_PAID = "inpatient.fund_paid"
CRITICAL_ILLNESS_BURDEN = "critical_illness.burden"
CRITICAL_ILLNESS_PAID = "critical_illness.paid"
AID_DEDUCTIBLE_PAID = "aid.deductible_paid"
AID_OUTPATIENT_PAID = "aid.outpatient_paid"  # 11 + 41
AID_INPATIENT_PAID = "aid.inpatient_paid"  # chronic + inpatient together
TILT_BURDEN = "tilt.burden"
TILT_PAID = "tilt.paid"


def chronic_disease_fund_paid(disease: str) -> str:
    """Key of a per-disease chronic pool (两病: hypertension, diabetes)."""
    return f"{CHRONIC_FUND_PAID}.{disease}"


def chronic_disease_deductible_paid(disease: str) -> str:
    """Key of a per-disease chronic deductible (0 in the reference policy, so never written there)."""
    return f"{CHRONIC_DEDUCTIBLE_PAID}.{disease}"


class Accumulators(Mapping[str, Decimal]):
    """Immutable mapping key → Decimal; a missing key reads as 0; zero entries are dropped.

    The same type serves as a delta: `before.apply(delta)`, and `-delta` reverses it.
    """

    __slots__ = ("_values",)

    _values: dict[str, Decimal]

    def __init__(self, values: Mapping[str, Decimal] | None = None) -> None:
        clean: dict[str, Decimal] = {}
        if values:
            for key, value in values.items():
                if not isinstance(key, str) or not isinstance(value, Decimal):
                    raise TypeError(f"accumulator {key!r}: expected str → Decimal")
                if value:
                    clean[key] = value
        object.__setattr__(self, "_values", clean)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Accumulators are immutable; use apply()")

    def __getitem__(self, key: str) -> Decimal:
        return self._values.get(key, ZERO)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def items(self) -> ItemsView[str, Decimal]:
        """Fast path over the stored (non-zero) entries."""
        return self._values.items()

    def keys(self) -> KeysView[str]:
        return self._values.keys()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Accumulators):
            return self._values == other._values
        if isinstance(other, Mapping):
            return self._values == {k: v for k, v in other.items() if v}
        return NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset(self._values.items()))

    def __neg__(self) -> Accumulators:
        return Accumulators({k: -v for k, v in self._values.items()})

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v}" for k, v in sorted(self._values.items()))
        return f"Accumulators({{{inner}}})"

    def negated(self) -> Accumulators:
        """The reversal delta."""
        return -self

    def apply(self, delta: Mapping[str, Decimal]) -> Accumulators:
        """Return the accumulators after adding `delta`; refuses to go below zero."""
        values = dict(self._values)
        for key, change in delta.items():
            new = values.get(key, ZERO) + change
            if new < 0:
                raise ValueError(f"accumulator {key} would become negative ({new})")
            values[key] = new
        return Accumulators(values)

    def to_strings(self) -> dict[str, str]:
        """For storage/JSON: key → decimal string."""
        return {k: str(v) for k, v in sorted(self._values.items())}
