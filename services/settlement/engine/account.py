"""Personal account 个人账户 (`acct_pay`) and its monthly credit (DOMAIN §7)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .model import TraceStep
from .money import ZERO, to_fen
from .policy import Policy
from .trace import trace_step


@dataclass(frozen=True, slots=True)
class AccountResult:
    acct_pay: Decimal
    trace: TraceStep


def settle_account(
    *,
    requested: bool,
    balance: Decimal,
    personal_burden: Decimal,
    excluded: Decimal,
    covid_subsidised: bool,
    payer_psn_no: str | None,
) -> AccountResult:
    """Pay the personal burden up to the balance; never for excluded items nor a COVID-subsidised settlement."""
    payable = max(ZERO, personal_burden - excluded)
    if covid_subsidised:
        amount, reason = ZERO, "COVID-subsidised: finance pays the personal burden, no account"
    elif not requested:
        amount, reason = ZERO, "not requested (acct_used_flag false)"
    else:
        amount, reason = min(payable, max(ZERO, balance)), "pays the personal burden up to the balance"
    step = trace_step(
        "account.acct_pay",
        "DOMAIN §7 personal account",
        amount=amount,
        reason=reason,
        personal_burden=personal_burden,
        account_excluded=excluded,
        balance_before=balance,
        balance_after=balance - amount,
        payer_psn_no=payer_psn_no,
    )
    return AccountResult(acct_pay=amount, trace=step)


def monthly_account_credit(*, policy: Policy, psn_type: str, contribution_base: Decimal | None = None) -> Decimal:
    """Monthly credit: in-service = rate × contribution base (to the fen); retired = fixed amount."""
    if psn_type == "retired":
        return policy.account.retired_monthly_amount
    if psn_type == "in_service":
        if contribution_base is None or contribution_base < 0:
            raise ValueError("in-service credit needs a non-negative contribution_base")
        return to_fen(contribution_base * policy.account.in_service_monthly_rate)
    raise ValueError(f"psn_type {psn_type!r} has no account credit")
