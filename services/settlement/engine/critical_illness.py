"""Critical illness insurance 大病保险 (`hifmi_pay`) over the yearly chronic + inpatient burden (DOMAIN §4)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from . import accumulators as acc
from .accumulators import Accumulators
from .model import TraceStep
from .money import ZERO, to_fen
from .policy import CriticalIllnessRule, Segment
from .trace import trace_step


@dataclass(frozen=True, slots=True)
class CriticalIllnessResult:
    hifmi_pay: Decimal
    delta: tuple[tuple[str, Decimal], ...]
    trace: tuple[TraceStep, ...]


def segmented_payment(excess: Decimal, *, segments: tuple[Segment, ...], bonus: Decimal) -> Decimal:
    """Exact payment for a yearly burden `excess` above the threshold, band by band."""
    if excess <= 0:
        return ZERO
    paid = ZERO
    left = excess
    for segment in segments:
        band = left if segment.width is None else min(left, segment.width)
        paid += band * (segment.ratio + bonus)
        left -= band
        if left <= 0:
            break
    return paid


def settle_critical_illness(
    *, rule: CriticalIllnessRule, burden: Decimal, accumulators: Accumulators, aid_tilt: bool
) -> CriticalIllnessResult:
    """Pay the part of the yearly burden newly above the threshold (exact difference, rounded once, capped)."""
    before = accumulators[acc.CRITICAL_ILLNESS_BURDEN]
    after = before + burden
    if aid_tilt:
        threshold, bonus, cap = rule.aid_threshold, rule.aid_ratio_bonus, rule.aid_annual_cap
        parameter = "critical_illness.aid_recipients"
    else:
        threshold, bonus, cap = rule.threshold, ZERO, rule.annual_cap
        parameter = "critical_illness"
    exact = segmented_payment(after - threshold, segments=rule.segments, bonus=bonus) - segmented_payment(
        before - threshold, segments=rule.segments, bonus=bonus
    )
    computed = to_fen(exact)
    paid_before = accumulators[acc.CRITICAL_ILLNESS_PAID]
    remaining = None if cap is None else max(ZERO, cap - paid_before)
    hifmi = computed if remaining is None else min(computed, remaining)

    delta = []
    if burden:
        delta.append((acc.CRITICAL_ILLNESS_BURDEN, burden))
    if hifmi:
        delta.append((acc.CRITICAL_ILLNESS_PAID, hifmi))
    step = trace_step(
        "critical_illness.hifmi_pay",
        "DOMAIN §4 yearly burden (in-scope − hifp) above the threshold, by segments; aid recipients: "
        "half threshold, +points, no cap",
        amount=hifmi,
        parameter=parameter,
        aid_tilt=aid_tilt,
        burden=burden,
        accumulator=acc.CRITICAL_ILLNESS_BURDEN,
        burden_before=before,
        burden_after=after,
        threshold=threshold,
        segments=" / ".join(f"{'rest' if s.width is None else s.width} at {s.ratio + bonus}" for s in rule.segments),
        exact=exact,
        rounded=computed,
        annual_cap="unlimited" if cap is None else cap,
        paid_before=paid_before,
        cap_remaining="unlimited" if remaining is None else remaining,
    )
    return CriticalIllnessResult(hifmi_pay=hifmi, delta=tuple(delta), trace=(step,))


def not_covered(*, pool: str) -> CriticalIllnessResult:
    """General outpatient pooling does not count toward critical illness."""
    step = trace_step(
        "critical_illness.hifmi_pay",
        "DOMAIN §3/§4 critical illness covers chronic + inpatient only; outpatient not counted",
        amount=ZERO,
        pool=pool,
    )
    return CriticalIllnessResult(hifmi_pay=ZERO, delta=(), trace=(step,))
