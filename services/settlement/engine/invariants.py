"""DOMAIN §12 invariants, checked on every result before it leaves the engine."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from .accumulators import Accumulators
from .errors import InvariantViolation
from .model import MONEY_FIELDS, Adjudication
from .money import CENT


def _fail(message: str, result: Adjudication) -> InvariantViolation:
    return InvariantViolation(f"{message} (psn_no {result.psn_no}, mdtrt_id {result.mdtrt_id})")


def check_invariants(result: Adjudication, *, before: Accumulators, caps: Mapping[str, Decimal | None]) -> None:
    """Raise InvariantViolation unless amounts are ≥ 0 and to the fen, identities hold and no cap is exceeded."""
    for name in MONEY_FIELDS:
        value = getattr(result, name)
        if value < 0:
            raise _fail(f"{name} is negative: {value}", result)
        if value != value.quantize(CENT):
            raise _fail(f"{name} is not to the fen: {value}", result)
    r = result
    paid = r.hifp_pay + r.hifmi_pay + r.maf_pay + r.tilt_aid_pay + r.fin_subsidy_pay + r.acct_pay + r.psn_cash_pay
    if r.medfee_sumamt != paid:
        raise _fail("medfee_sumamt != funds + subsidy + account + cash", r)
    if r.medfee_sumamt != r.fulamt_ownpay_amt + r.preselfpay_amt + r.inscp_scp_amt:
        raise _fail("medfee_sumamt != ownpay + preselfpay + in-scope", r)
    if r.psn_pay != r.acct_pay + r.psn_cash_pay:
        raise _fail("psn_pay != acct_pay + psn_cash_pay", r)
    if r.fund_pay_sumamt != r.hifp_pay + r.hifmi_pay + r.maf_pay + r.tilt_aid_pay:
        raise _fail("fund_pay_sumamt != hifp + hifmi + maf + tilt", r)
    if r.fund_pay_sumamt > r.inscp_scp_amt:
        raise _fail("funds pay more than the in-scope amount", r)
    if r.act_pay_dedc > r.inscp_scp_amt:
        raise _fail("deductible applied exceeds the in-scope amount", r)
    if r.balc < 0:
        raise _fail("account balance would become negative", r)
    if r.covid_status is not None and (r.psn_pay or r.acct_pay):
        raise _fail("a COVID-subsidised settlement leaves a personal share", r)
    if r.subsidy is not None and sum(a for _, a in r.subsidy.shares) != r.fin_subsidy_pay:
        raise _fail("subsidy shares do not add up", r)
    try:
        after = before.apply(r.accumulator_delta)
    except ValueError as exc:
        raise _fail(str(exc), r) from exc
    for key, change in r.accumulator_delta.items():
        if change < 0:
            raise _fail(f"accumulator {key} decreases in a settlement", r)
        cap = caps.get(key)
        if cap is not None and after[key] > cap:
            raise _fail(f"accumulator {key} = {after[key]} exceeds its cap {cap}", r)
