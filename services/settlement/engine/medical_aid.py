"""Medical aid 医疗救助 (`maf_pay`) and tilted aid 倾斜救助 (`tilt_aid_pay`) (DOMAIN §5)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from . import accumulators as acc
from .accumulators import Accumulators
from .model import OUTPATIENT, AidIdentity, TraceStep
from .money import ZERO, to_fen
from .policy import AidCategory, MedicalAidRule, TiltRule
from .trace import trace_step


@dataclass(frozen=True, slots=True)
class AidResult:
    amount: Decimal
    delta: tuple[tuple[str, Decimal], ...]
    trace: tuple[TraceStep, ...]


def choose_aid_category(
    *, identities: tuple[AidIdentity, ...], rule: MedicalAidRule
) -> tuple[AidCategory | None, tuple[str, ...]]:
    """Highest ratio; tie → lower deductible; then policy order. Returns (category, unknown categories): identities
    the policy names as carrying no aid (`without_aid`) are neither."""
    best: AidCategory | None = None
    unknown = []
    for identity in identities:
        category = rule.categories.get(identity.category)
        if category is None:
            if identity.category not in rule.without_aid:
                unknown.append(identity.category)
            continue
        if best is None or (-category.ratio, category.annual_deductible, category.order) < (
            -best.ratio,
            best.annual_deductible,
            best.order,
        ):
            best = category
    return best, tuple(unknown)


def settle_medical_aid(
    *,
    rule: MedicalAidRule,
    category: AidCategory,
    base: Decimal,
    pool: str,
    noncompliant_referral: bool,
    accumulators: Accumulators,
) -> AidResult:
    """(base − aid deductible still owed) × ratio, rounded once, cut to the outpatient or chronic+inpatient cap."""
    reduction = rule.noncompliant_referral_reduction if noncompliant_referral else ZERO
    ratio = max(ZERO, category.ratio - reduction)
    deductible_paid = accumulators[acc.AID_DEDUCTIBLE_PAID]
    owed = max(ZERO, category.annual_deductible - deductible_paid)
    applied = min(base, owed)
    exact = (base - applied) * ratio
    computed = to_fen(exact)
    if pool == OUTPATIENT:
        cap_key, cap, cap_parameter = acc.AID_OUTPATIENT_PAID, rule.outpatient_annual_cap, "outpatient_annual_cap"
    else:
        cap_key, cap = acc.AID_INPATIENT_PAID, rule.chronic_inpatient_annual_cap
        cap_parameter = "chronic_inpatient_annual_cap"
    paid_before = accumulators[cap_key]
    remaining = max(ZERO, cap - paid_before)
    maf = min(computed, remaining)

    delta = []
    if applied:
        delta.append((acc.AID_DEDUCTIBLE_PAID, applied))
    if maf:
        delta.append((cap_key, maf))
    step = trace_step(
        "medical_aid.maf_pay",
        "DOMAIN §5 aid = (in-scope − hifp − hifmi − aid deductible owed) × ratio, rounded, cut to the cap",
        amount=maf,
        category=category.name,
        parameter=f"medical_aid.categories.{category.name}",
        base=base,
        annual_deductible=category.annual_deductible,
        deductible_accumulator=acc.AID_DEDUCTIBLE_PAID,
        deductible_paid_before=deductible_paid,
        deductible_applied=applied,
        category_ratio=category.ratio,
        referral_reduction=reduction,
        ratio=ratio,
        exact=exact,
        rounded=computed,
        cap_parameter=f"medical_aid.{cap_parameter}",
        annual_cap=cap,
        accumulator=cap_key,
        paid_before=paid_before,
        cap_remaining=remaining,
    )
    return AidResult(amount=maf, delta=tuple(delta), trace=(step,))


def settle_tilt_aid(*, rule: TiltRule, remaining_burden: Decimal, accumulators: Accumulators) -> AidResult:
    """Of the yearly sum of remaining in-scope burdens, the part newly above the threshold × ratio, capped."""
    before = accumulators[acc.TILT_BURDEN]
    after = before + remaining_burden
    exact = (max(ZERO, after - rule.threshold) - max(ZERO, before - rule.threshold)) * rule.ratio
    computed = to_fen(exact)
    paid_before = accumulators[acc.TILT_PAID]
    remaining = None if rule.annual_cap is None else max(ZERO, rule.annual_cap - paid_before)
    tilt = computed if remaining is None else min(computed, remaining)

    delta = []
    if remaining_burden:
        delta.append((acc.TILT_BURDEN, remaining_burden))
    if tilt:
        delta.append((acc.TILT_PAID, tilt))
    step = trace_step(
        "medical_aid.tilt_aid_pay",
        "DOMAIN §5 tilted aid: yearly remaining in-scope burden above the threshold × ratio, cut to the cap",
        amount=tilt,
        parameter="medical_aid.tilt",
        remaining_burden=remaining_burden,
        accumulator=acc.TILT_BURDEN,
        burden_before=before,
        burden_after=after,
        threshold=rule.threshold,
        ratio=rule.ratio,
        exact=exact,
        rounded=computed,
        annual_cap="unlimited" if rule.annual_cap is None else rule.annual_cap,
        paid_before=paid_before,
        cap_remaining="unlimited" if remaining is None else remaining,
    )
    return AidResult(amount=tilt, delta=tuple(delta), trace=(step,))


def not_applicable(step: str, *, rule: str, **detail: object) -> AidResult:
    """A zero aid step that says why."""
    return AidResult(amount=ZERO, delta=(), trace=(trace_step(step, rule, amount=ZERO, **detail),))
