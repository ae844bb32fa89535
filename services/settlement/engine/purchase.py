"""Retail purchase at a designated pharmacy 定点药店购药 (med_type 41 without a prescription, DOMAIN §7).

The personal account (the buyer's own, or a family member's) pays the lines it may pay — codes the catalogue has
in force on the day and does not mark `account_excluded` — up to its balance; everything else is cash. No pool, no
aid, no deductible and no cap is touched: the accumulators do not change.
"""

from __future__ import annotations

from .accumulators import Accumulators
from .adjudicate import classify_step, in_engine_context, policy_in_force
from .catalogue import Catalogue, classify_lines, entry_on, line_date
from .eligibility import same_city
from .errors import ClaimError
from .invariants import check_invariants
from .model import Adjudication, Claim, EligibilitySnapshot, SettlementWarning, Violation
from .money import ZERO
from .policy import Policy
from .trace import trace_step
from .validation import TOO_MANY_LINES

RETAIL = "retail"  # the "pool" of a retail purchase: none
NOT_IN_CATALOGUE = "NOT_IN_CATALOGUE"  # warning: a code the account may not pay because the catalogue lacks it
ACCOUNT_EXCLUDED = "ACCOUNT_EXCLUDED"  # warning: a catalogue item the account never pays


@in_engine_context
def adjudicate_purchase(
    *, claim: Claim, eligibility: EligibilitySnapshot, policy: Policy, catalogue: Catalogue
) -> Adjudication:
    """What the account and the buyer pay for a retail purchase, with trace. Pure.

    `claim.account_balance` is the paying account's balance (the buyer's, or the family member's named in
    `claim.acct_payer_psn_no`)."""
    if claim.med_type != "41" or claim.prescriber is not None:
        raise ClaimError("a retail purchase is med_type 41 without a prescription", code="NOT_A_RETAIL_PURCHASE")
    if claim.institution.kind != "pharmacy":
        raise ClaimError(f"{claim.institution.code} is not a designated pharmacy", code="NOT_A_PHARMACY")
    on = claim.begin_date
    trace = [policy_in_force(policy, on, dated="the purchase date")]
    classified = classify_lines(
        lines=claim.lines,
        catalogue=catalogue,
        default_preselfpay_prop=policy.default_preselfpay_prop,
        covid=False,
        max_days_supply=policy.prescription.max_days_supply,
        on=on,
    )
    medfee = classified.medfee_sumamt
    warnings: list[SettlementWarning] = [w for w in classified.warnings if w.code != "CLASS_NOT_DECLARED"]
    trace.append(classify_step(claim, classified))

    payable = excluded = unknown = lapsed = ZERO
    payable_lines = 0
    for line, line_result in zip(claim.lines, classified.lines, strict=True):
        entry, not_in_force = entry_on(catalogue, line.med_list_codg, line_date(line, on))
        if entry is not None and not entry.account_excluded:
            payable += line_result.amount
            payable_lines += 1
        elif entry is not None:
            excluded += line_result.amount
            warnings.append(
                SettlementWarning(
                    ACCOUNT_EXCLUDED,
                    f"{line.med_list_codg}: the personal account may not pay it; cash",
                    line.feedetl_sn,
                )
            )
        else:
            if not_in_force:
                lapsed += line_result.amount
            else:
                unknown += line_result.amount
            warnings.append(
                SettlementWarning(
                    NOT_IN_CATALOGUE,
                    f"{line.med_list_codg}: not in the catalogue on {line_date(line, on).isoformat()}; cash",
                    line.feedetl_sn,
                )
            )
    trace.append(
        trace_step(
            "purchase.account_payable",
            "DOMAIN §7 retail purchase: the account pays catalogue items in force that are not account_excluded",
            amount=payable,
            lines_payable=payable_lines,
            account_excluded=excluded,
            not_in_catalogue=unknown,
            catalogue_entry_not_in_force=lapsed,
        )
    )
    trace.append(
        trace_step(
            "purchase.funds",
            "DOMAIN §7 retail purchase: no pool, no aid, no deductible or cap is touched",
            amount=ZERO,
            hifp_pay=ZERO,
            hifmi_pay=ZERO,
            maf_pay=ZERO,
            tilt_aid_pay=ZERO,
            fin_subsidy_pay=ZERO,
        )
    )
    balance = claim.account_balance
    acct = min(payable, max(ZERO, balance))
    payer = claim.acct_payer_psn_no or eligibility.psn_no
    trace.append(
        trace_step(
            "account.acct_pay",
            "DOMAIN §7 personal account: pays the payable lines up to the balance",
            amount=acct,
            account_payable=payable,
            balance_before=balance,
            balance_after=balance - acct,
            payer_psn_no=payer,
            family_payment=claim.acct_payer_psn_no is not None,
        )
    )
    cash = medfee - acct
    trace.append(
        trace_step(
            "cash.psn_cash_pay",
            "DOMAIN §12 cash is the remainder: medfee − account (lines it may not pay, and beyond the balance)",
            amount=cash,
            beyond_balance=payable - acct,
            not_payable=medfee - payable,
        )
    )
    violations: list[Violation] = list(classified.violations)
    if len(claim.lines) > policy.max_lines_per_claim:
        violations.insert(
            0, Violation(TOO_MANY_LINES, f"{len(claim.lines)} lines; at most {policy.max_lines_per_claim}")
        )
    result = Adjudication(
        psn_no=eligibility.psn_no,
        insutype=eligibility.insutype,
        med_type="41",
        pool=RETAIL,
        year=on.year,
        medfee_sumamt=medfee,
        fulamt_ownpay_amt=classified.fulamt_ownpay_amt,
        preselfpay_amt=classified.preselfpay_amt,
        inscp_scp_amt=classified.inscp_scp_amt,
        act_pay_dedc=ZERO,
        pool_prop=ZERO,
        hifp_pay=ZERO,
        hifmi_pay=ZERO,
        maf_pay=ZERO,
        tilt_aid_pay=ZERO,
        fin_subsidy_pay=ZERO,
        fund_pay_sumamt=ZERO,
        psn_pay=medfee,
        acct_pay=acct,
        psn_cash_pay=cash,
        balc=balance - acct,
        covid_status=None,
        offsite=not same_city(claim.institution.admdvs, eligibility.insuplc_admdvs),
        aid_category=None,
        acct_payer_psn_no=claim.acct_payer_psn_no,
        mdtrt_id=claim.mdtrt_id,
        policy_version=policy.version,
        warnings=tuple(warnings),
        violations=tuple(violations),
        trace=tuple(trace),
        accumulator_delta=Accumulators({}),
        subsidy=None,
        lines=classified.lines,
    )
    check_invariants(result, before=Accumulators({}), caps={})
    return result
