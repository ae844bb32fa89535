"""Basic fund 统筹基金 (`hifp_pay`): deductible, ratio, annual cap of one pool (DOMAIN §3)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .accumulators import Accumulators
from .model import TraceStep
from .money import ZERO, to_fen
from .policy import PoolRule
from .trace import trace_step


@dataclass(frozen=True, slots=True)
class BasicFundResult:
    hifp_pay: Decimal
    deductible: Decimal  # act_pay_dedc
    ratio: Decimal  # pool_prop
    delta: tuple[tuple[str, Decimal], ...]
    trace: tuple[TraceStep, ...]


def settle_basic_fund(
    *,
    rule: PoolRule,
    inscope: Decimal,
    level: int | None,
    psn_type: str | None,
    accumulators: Accumulators,
    ratio_reduction: Decimal,
    reduction_reason: str | None,
) -> BasicFundResult:
    """(in-scope − deductible applied) × ratio, rounded once, then cut to the pool's remaining annual cap."""
    deductible = rule.deductible_for(level)
    if rule.deductible_accumulator is not None:  # annual, 累计补差
        paid_before = accumulators[rule.deductible_accumulator]
        owed = max(ZERO, deductible - paid_before)
        deductible_rule = "DOMAIN §3 annual deductible, 累计补差: this level's deductible − already paid this year"
    else:
        paid_before = None
        owed = deductible
        deductible_rule = "DOMAIN §3 inpatient deductible, per admission, by level"
    applied = min(inscope, owed)

    base_ratio = rule.ratio_for(psn_type=psn_type, level=level)
    ratio = max(ZERO, base_ratio - ratio_reduction)
    exact = (inscope - applied) * ratio
    computed = to_fen(exact)
    fund_paid_before = accumulators[rule.accumulator]
    remaining = max(ZERO, rule.annual_cap - fund_paid_before)
    hifp = min(computed, remaining)

    delta = []
    if rule.deductible_accumulator is not None and applied:
        delta.append((rule.deductible_accumulator, applied))
    if hifp:
        delta.append((rule.accumulator, hifp))
    steps = (
        trace_step(
            "basic_fund.deductible",
            deductible_rule,
            amount=applied,
            pool=rule.pool,
            parameter=f"{rule.path}.deductible" + (f".{level}" if level is not None else ""),
            level=level,
            deductible=deductible,
            accumulator=rule.deductible_accumulator,
            paid_before=paid_before,
            owed=owed,
            inscp_scp_amt=inscope,
        ),
        trace_step(
            "basic_fund.hifp_pay",
            "DOMAIN §3 fund = (in-scope − deductible) × ratio, rounded half-up, cut to the annual cap",
            amount=hifp,
            parameter=f"{rule.path}.ratio",
            psn_type=psn_type,
            level=level,
            base_ratio=base_ratio,
            ratio_reduction=ratio_reduction,
            reduction_reason=reduction_reason,
            ratio=ratio,
            exact=exact,
            rounded=computed,
            annual_cap=rule.annual_cap,
            accumulator=rule.accumulator,
            paid_before=fund_paid_before,
            cap_remaining=remaining,
        ),
    )
    return BasicFundResult(hifp_pay=hifp, deductible=applied, ratio=ratio, delta=tuple(delta), trace=steps)


def no_outpatient_pooling(*, reason: str, admission: tuple[object, object]) -> BasicFundResult:
    """An outpatient visit inside an admission: no pooling, no deductible counted."""
    begin, end = admission
    step = trace_step(
        "basic_fund.hifp_pay",
        "DOMAIN §3 no outpatient pooling during an admission",
        amount=ZERO,
        reason=reason,
        admission_date=begin,
        discharge_date=end,
    )
    return BasicFundResult(hifp_pay=ZERO, deductible=ZERO, ratio=ZERO, delta=(), trace=(step,))
