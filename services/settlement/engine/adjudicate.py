"""Orchestration: one pass from claim to funds, patient share, trace and accumulator delta."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal, localcontext
from functools import wraps
from typing import ParamSpec, TypeVar

from . import accumulators as acc
from .account import settle_account
from .accumulators import Accumulators
from .basic_fund import no_outpatient_pooling, settle_basic_fund
from .catalogue import Catalogue, Classified, classify_lines
from .covid import covid_status as find_covid_status
from .covid import covid_subsidy
from .critical_illness import not_covered, settle_critical_illness
from .eligibility import aid_identities_for, chronic_qualification_on, offsite_registration, same_city, same_province
from .errors import ClaimError
from .invariants import check_invariants
from .medical_aid import choose_aid_category, not_applicable, settle_medical_aid, settle_tilt_aid
from .model import (
    CHRONIC,
    INPATIENT,
    OUTPATIENT,
    Adjudication,
    Claim,
    EligibilitySnapshot,
    SettlementWarning,
    TraceStep,
)
from .money import ENGINE_CONTEXT, ZERO
from .policy import Policy, PoolRule, SchemeRules
from .trace import trace_step
from .validation import claim_violations, max_days_supply_for
from .visits import admission_covering, rule_date

# Warning codes of this step.
CHRONIC_NOT_QUALIFIED = "CHRONIC_NOT_QUALIFIED"
OUTPATIENT_DURING_ADMISSION = "OUTPATIENT_DURING_ADMISSION"
AID_CATEGORY_UNKNOWN = "AID_CATEGORY_UNKNOWN"

P = ParamSpec("P")
R = TypeVar("R")


def in_engine_context(compute: Callable[P, R]) -> Callable[P, R]:
    """`compute` run in the engine's decimal context (exact products; rounding only where `to_fen` is called)."""

    @wraps(compute)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with localcontext(ENGINE_CONTEXT):
            return compute(*args, **kwargs)

    return run


def policy_in_force(policy: Policy, on: date, *, dated: str) -> TraceStep:
    """The trace step of the policy applied; POLICY_NOT_IN_FORCE unless it is in force on `on` (`dated` says which
    day that is)."""
    if not policy.in_force_on(on):
        raise ClaimError(f"policy {policy.version} is not in force on {on.isoformat()}", code="POLICY_NOT_IN_FORCE")
    return trace_step(
        "policy",
        f"policy in force for the insured pooling area on {dated}",
        amount=ZERO,
        version=policy.version,
        source=policy.source,
        rule_date=on,
        year=on.year,
    )


def classify_step(claim: Claim, classified: Classified, **detail: object) -> TraceStep:
    """The trace step of DOMAIN §2: the lines' amounts by class."""
    return trace_step(
        "classify",
        "DOMAIN §2 line = price × quantity to the fen; A in scope; B first self-pay per line; C self-paid",
        amount=classified.medfee_sumamt,
        lines=len(claim.lines),
        fulamt_ownpay_amt=classified.fulamt_ownpay_amt,
        preselfpay_amt=classified.preselfpay_amt,
        inscp_scp_amt=classified.inscp_scp_amt,
        **detail,
    )


def _select_pool(
    *, claim: Claim, eligibility: EligibilitySnapshot, scheme: SchemeRules, warnings: list[SettlementWarning]
) -> tuple[str, PoolRule, int | None]:
    """(effective med_type, pool rule, level that prices it)."""
    med_type = claim.med_type
    if med_type == "21":
        return med_type, scheme.inpatient, claim.institution.level
    level = claim.institution.level
    if med_type == "41":
        if claim.prescriber is None:
            raise ClaimError("pharmacy claim (41) needs the prescribing hospital", code="PRESCRIBER_REQUIRED")
        level = claim.prescriber.level
    if med_type == "14" or (med_type == "41" and claim.chronic_disease is not None):
        disease = claim.chronic_disease
        qualified = chronic_qualification_on(eligibility=eligibility, disease=disease, on=claim.begin_date)
        if disease is not None and qualified is not None:
            return med_type, scheme.chronic_per_disease.get(disease, scheme.chronic), level
        warnings.append(
            SettlementWarning(
                CHRONIC_NOT_QUALIFIED,
                f"no chronic qualification for {disease or '-'} on {claim.begin_date.isoformat()}; "
                "settled as general outpatient",
            )
        )
        if med_type == "14":
            med_type = "11"
    return med_type, scheme.outpatient, level


def _offsite_reduction(
    *, claim: Claim, eligibility: EligibilitySnapshot, offsite: bool, covid: bool, policy: Policy
) -> tuple[Decimal, str | None]:
    """Points taken off the basic ratio, and why: unregistered off-site only, never for COVID."""
    if not offsite:
        return ZERO, None
    admdvs = claim.institution.admdvs
    registration = offsite_registration(eligibility=eligibility, institution_admdvs=admdvs, on=claim.begin_date)
    if registration is not None:
        return ZERO, f"off-site, registered for {registration.mdtrtarea_admdvs}: local rules"
    if covid and policy.covid.offsite_reduction_exempt:
        return ZERO, "off-site unregistered, COVID: never reduced (covid.offsite_reduction_exempt)"
    return policy.offsite_unregistered_reduction, "off-site without registration (offsite.unregistered_ratio_reduction)"


@in_engine_context
def adjudicate(
    *,
    claim: Claim,
    eligibility: EligibilitySnapshot,
    accumulators: Accumulators,
    policy: Policy,
    catalogue: Catalogue,
) -> Adjudication:
    """Compute what each fund and the patient pay for `claim`, with trace and accumulator delta. Pure."""
    on = rule_date(claim)
    trace = [policy_in_force(policy, on, dated="the rule date")]
    scheme = policy.scheme(eligibility.insutype)
    institution = claim.institution
    insuplc = eligibility.insuplc_admdvs
    covid = find_covid_status(claim.diagnoses, policy.covid)
    warnings: list[SettlementWarning] = []

    # DOMAIN §2 classification
    classified = classify_lines(
        lines=claim.lines,
        catalogue=catalogue,
        default_preselfpay_prop=policy.default_preselfpay_prop,
        covid=covid is not None,
        max_days_supply=max_days_supply_for(claim=claim, eligibility=eligibility, policy=policy),
        on=claim.begin_date,
    )
    warnings.extend(classified.warnings)
    inscope = classified.inscp_scp_amt
    medfee = classified.medfee_sumamt
    trace.append(classify_step(claim, classified, default_preselfpay_prop=policy.default_preselfpay_prop))

    # DOMAIN §3 pool, off-site, basic fund
    med_type, rule, level = _select_pool(claim=claim, eligibility=eligibility, scheme=scheme, warnings=warnings)
    pool = rule.pool
    offsite = not same_city(institution.admdvs, insuplc)
    reduction, reason = _offsite_reduction(
        claim=claim, eligibility=eligibility, offsite=offsite, covid=covid is not None, policy=policy
    )
    trace.append(
        trace_step(
            "pool",
            "DOMAIN §3 pools: outpatient (11 + 41), chronic (14), inpatient (21)",
            amount=inscope,
            declared_med_type=claim.med_type,
            med_type=med_type,
            pool=pool,
            parameter=rule.path,
            level=level,
            covid_status=covid,
            institution_admdvs=institution.admdvs,
            insuplc_admdvs=insuplc,
            offsite=offsite,
        )
    )
    admission = admission_covering(claim.begin_date, claim.admissions) if pool == OUTPATIENT else None
    if admission is not None:
        warnings.append(
            SettlementWarning(
                OUTPATIENT_DURING_ADMISSION,
                f"visit {claim.begin_date.isoformat()} is inside the admission from {admission[0].isoformat()}; "
                "no outpatient pooling",
            )
        )
        basic = no_outpatient_pooling(reason=OUTPATIENT_DURING_ADMISSION, admission=admission)
    else:
        basic = settle_basic_fund(
            rule=rule,
            inscope=inscope,
            level=level,
            psn_type=eligibility.psn_type,
            accumulators=accumulators,
            ratio_reduction=reduction,
            reduction_reason=reason,
        )
    trace.extend(basic.trace)
    hifp = basic.hifp_pay

    # DOMAIN §5 identities (window: visit date; admission: admission or discharge date)
    dates = (claim.begin_date, claim.end_date) if med_type == "21" and claim.end_date else (claim.begin_date,)
    identities = aid_identities_for(eligibility=eligibility, dates=dates)
    category, unknown = choose_aid_category(identities=identities, rule=policy.medical_aid)
    for name in unknown:
        warnings.append(
            SettlementWarning(AID_CATEGORY_UNKNOWN, f"aid category {name!r} is not in policy {policy.version}")
        )

    # DOMAIN §4 critical illness
    critical_rule = policy.critical_illness
    aid_tilt = any(i.category in critical_rule.aid_categories for i in identities)
    if pool in (CHRONIC, INPATIENT):
        critical = settle_critical_illness(
            rule=critical_rule, burden=inscope - hifp, accumulators=accumulators, aid_tilt=aid_tilt
        )
    else:
        critical = not_covered(pool=pool)
    trace.extend(critical.trace)
    hifmi = critical.hifmi_pay

    # DOMAIN §5 medical aid and tilted aid
    if category is not None:
        aid = settle_medical_aid(
            rule=policy.medical_aid,
            category=category,
            base=inscope - hifp - hifmi,
            pool=pool,
            noncompliant_referral=med_type == "21" and not claim.referral_compliant,
            accumulators=accumulators,
        )
    else:
        aid = not_applicable(
            "medical_aid.maf_pay", rule="DOMAIN §5 no aid identity covers the visit", identities=len(identities)
        )
    trace.extend(aid.trace)
    maf = aid.amount
    in_province = same_province(institution.admdvs, insuplc)
    if category is not None and med_type == "21" and claim.referral_compliant and in_province:
        tilt = settle_tilt_aid(
            rule=policy.medical_aid.tilt, remaining_burden=inscope - hifp - hifmi - maf, accumulators=accumulators
        )
    else:
        tilt = not_applicable(
            "medical_aid.tilt_aid_pay",
            rule="DOMAIN §5 tilted aid: aid recipients' inpatient stays, compliant referral, in province",
            aid_recipient=category is not None,
            med_type=med_type,
            referral_compliant=claim.referral_compliant,
            in_province=in_province,
        )
    trace.extend(tilt.trace)
    tilt_pay = tilt.amount
    fund_total = hifp + hifmi + maf + tilt_pay

    # DOMAIN §6 COVID finance subsidy, DOMAIN §7 personal account
    subsidy = None
    fin = ZERO
    if covid is not None:
        fin = medfee - fund_total
        subsidy, step = covid_subsidy(
            status=covid, amount=fin, institution=institution, insuplc_admdvs=insuplc, rule=policy.covid
        )
        trace.append(step)
    psn_pay = medfee - fund_total - fin
    account = settle_account(
        requested=claim.acct_used_flag,
        balance=claim.account_balance,
        personal_burden=psn_pay,
        excluded=classified.account_excluded_amt,
        covid_subsidised=covid is not None,
        payer_psn_no=claim.acct_payer_psn_no or eligibility.psn_no,
    )
    trace.append(account.trace)
    acct = account.acct_pay
    cash = psn_pay - acct
    trace.append(
        trace_step(
            "cash.psn_cash_pay",
            "DOMAIN §12 cash is the remainder: medfee − funds − subsidy − account",
            amount=cash,
        )
    )

    delta: dict[str, Decimal] = {}
    for key, change in (*basic.delta, *critical.delta, *aid.delta, *tilt.delta):
        delta[key] = delta.get(key, ZERO) + change
    result = Adjudication(
        psn_no=eligibility.psn_no,
        insutype=eligibility.insutype,
        med_type=med_type,
        pool=pool,
        year=on.year,
        medfee_sumamt=medfee,
        fulamt_ownpay_amt=classified.fulamt_ownpay_amt,
        preselfpay_amt=classified.preselfpay_amt,
        inscp_scp_amt=inscope,
        act_pay_dedc=basic.deductible,
        pool_prop=basic.ratio,
        hifp_pay=hifp,
        hifmi_pay=hifmi,
        maf_pay=maf,
        tilt_aid_pay=tilt_pay,
        fin_subsidy_pay=fin,
        fund_pay_sumamt=fund_total,
        psn_pay=psn_pay,
        acct_pay=acct,
        psn_cash_pay=cash,
        balc=claim.account_balance - acct,
        covid_status=covid,
        offsite=offsite,
        aid_category=category.name if category is not None else None,
        acct_payer_psn_no=claim.acct_payer_psn_no,
        mdtrt_id=claim.mdtrt_id,
        policy_version=policy.version,
        warnings=tuple(warnings),
        violations=(*claim_violations(claim=claim, policy=policy), *classified.violations),
        trace=tuple(trace),
        accumulator_delta=Accumulators(delta),
        subsidy=subsidy,
        lines=classified.lines,
    )
    caps = {
        rule.accumulator: rule.annual_cap,
        acc.AID_OUTPATIENT_PAID: policy.medical_aid.outpatient_annual_cap,
        acc.AID_INPATIENT_PAID: policy.medical_aid.chronic_inpatient_annual_cap,
        acc.TILT_PAID: policy.medical_aid.tilt.annual_cap,
        acc.CRITICAL_ILLNESS_PAID: None if aid_tilt else critical_rule.annual_cap,
    }
    check_invariants(result, before=accumulators, caps=caps)
    return result
