"""Request and response bodies of the prepayment service (money as "12.50", dates as YYYY-MM-DD)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, model_validator

from services.prepayment.ledger import CODE_PATTERN
from shared import inputs
from shared.money import Money, PositiveMoneyIn

PrepaymentKind = Literal["annual_turnover", "covid_special", "monthly", "top_up"]
Payer = Literal["central", "provincial", "city", "county"]
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=CODE_PATTERN)]
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


def _date_text(value: object) -> object:
    """Dates only as `YYYY-MM-DD` text (no numbers, no times)."""
    if isinstance(value, date) or (isinstance(value, str) and len(value) == 10 and value[4] == value[7] == "-"):
        return value
    raise ValueError("a date is written YYYY-MM-DD")


def _in_range(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError("date must lie between 2000-01-01 and 2099-12-31")
    return value


Day = Annotated[date, BeforeValidator(_date_text), AfterValidator(_in_range)]
PositiveMoney = PositiveMoneyIn  # "0.01" and up, a plain decimal string (shared.money)


class Body(inputs.Body):
    """No extra fields, no text PostgreSQL cannot store."""


class PrepaymentIn(Body):
    fixmedins_code: Code
    kind: PrepaymentKind
    amount: PositiveMoney
    disbursed_on: Day


class ScheduleIn(Body):
    """A monthly prepayment plan: `months` payments of `amount`, on `day_of_month` from `first_month`."""

    fixmedins_code: Code
    amount: PositiveMoney
    first_month: str = Field(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$")
    months: int = Field(ge=1, le=24)
    day_of_month: int = Field(default=1, ge=1, le=28)


class AdvanceIn(Body):
    disbursed_on: Day


class RunDueIn(Body):
    on: Day | None = None


class ClearingIn(Body):
    period_start: Day
    period_end: Day
    fixmedins_code: Code | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ClearingIn:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


class BudgetIn(Body):
    year: int = Field(ge=2000, le=2099)
    amount: PositiveMoney


class PrepaymentOut(BaseModel):
    prepayment_id: str
    fixmedins_code: str
    kind: str
    amount: Money
    status: Literal["scheduled", "disbursed"]
    scheduled_on: date | None
    disbursed_on: date | None
    plan_id: str | None


class PlanOut(BaseModel):
    plan_id: str
    fixmedins_code: str
    prepayments: list[PrepaymentOut]


class DisbursedOut(BaseModel):
    on: date
    disbursed: list[PrepaymentOut]


class PositionOut(BaseModel):
    """net = fund_payable + acct_payable + subsidy_receivable − prepaid: above 0 the institution is still owed that
    much, below 0 it holds prepayments beyond its claims."""

    fixmedins_code: str
    prepaid: Money
    fund_payable: Money
    acct_payable: Money  # what the personal-account fund owes it (own and family payments made there)
    subsidy_receivable: Money
    net: Money


class AccountBalance(BaseModel):
    account: str
    balance: Money  # debits − credits: positive = debit balance, negative = credit balance


class TrialBalanceOut(BaseModel):
    debits: Money
    credits: Money
    accounts: list[AccountBalance]


class LineOut(BaseModel):
    account: str
    debit: Money
    credit: Money


class EntryOut(BaseModel):
    ref: str
    kind: str
    business_date: date
    fixmedins_code: str | None
    setl_id: str | None
    clearing_id: str | None
    memo: str
    lines: list[LineOut]


class EntriesOut(BaseModel):
    entries: list[EntryOut]


class SubsidyItem(BaseModel):
    setl_id: str
    fixmedins_code: str
    case_status: str
    amount: Money  # this level's final share
    setl_date: date | None
    advance_payer: str
    advanced: Money  # what this level advances to the hospital (the whole subsidy when it is the advance payer)
    recoverable: Money  # what the other levels owe it back (advanced − its own share)


class SubsidiesOut(BaseModel):
    payer: Payer
    total: Money
    advanced_total: Money
    recoverable_total: Money
    count: int
    truncated: bool
    items: list[SubsidyItem]


class ClearingOut(BaseModel):
    """net_due = carried_in + fund_payable − prepaid; paid = max(net_due, 0); carried_out = min(net_due, 0).
    The account fund's part on its own: acct_paid = max(acct_carried_in + acct_payable, 0), the rest carried;
    total_paid = paid + acct_paid."""

    clearing_id: str
    fixmedins_code: str
    period_start: date
    period_end: date
    carried_in: Money
    prepaid: Money
    fund_payable: Money
    net_due: Money
    paid: Money
    carried_out: Money
    acct_carried_in: Money
    acct_payable: Money
    acct_paid: Money
    acct_carried_out: Money
    total_paid: Money
    covid_fund_payable: Money  # of fund_payable, what COVID settlements' funds owe (accounted separately, DOMAIN §6)


class ClearingsOut(BaseModel):
    period_start: date
    period_end: date
    clearings: list[ClearingOut]


class BudgetOut(BaseModel):
    fixmedins_code: str
    year: int
    budget: Money
    used: Money  # fund payments of non-COVID settlements of that year, reversals netted
    covid_excluded: Money  # fund payments of COVID settlements, outside the budget
    ratio: str  # used / budget, 4 decimals
    status: Literal["ok", "warning", "exceeded"]


AdvancePayer = Literal["city", "county"]


class SubsidyPaymentIn(Body):
    """Finance pays its share: `payer` pays a hospital its COVID subsidy (`to_fixmedins_code`; the payer is the level
    that advanced it), or its share to the level that advanced it (`to_level`). `ref` names the payment: the same
    ref again answers the first payment."""

    payer: Payer
    to_fixmedins_code: Code | None = None
    to_level: AdvancePayer | None = None
    amount: PositiveMoney
    paid_on: Day
    ref: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:/-]+$")

    @model_validator(mode="after")
    def _one_receiver(self) -> SubsidyPaymentIn:
        if (self.to_fixmedins_code is None) == (self.to_level is None):
            raise ValueError("a payment goes either to_fixmedins_code (a hospital) or to_level (a finance level)")
        if self.to_level == self.payer:
            raise ValueError("a level does not pay itself")
        return self


class DayPayment(BaseModel):
    """A payment of finance as booked (SubsidyPaymentOut adds what was outstanding before and after it)."""

    ref: str
    payer: Payer
    to_fixmedins_code: str | None
    to_level: str | None
    amount: Money
    paid_on: date


class SubsidyPaymentOut(DayPayment):
    outstanding_before: Money  # what the payer owed this receiver before the payment
    outstanding_after: Money


class PayerPayments(BaseModel):
    payer: Payer
    count: int
    amount: Money


class DayPaymentsOut(BaseModel):
    """Finance's payments of one day (`paid_on`): totals in all and per payer level (every level, zeros too), and
    the payments themselves (`truncated`: more than the limit)."""

    date: date
    count: int
    amount: Money
    payers: list[PayerPayments]
    items: list[DayPayment]
    truncated: bool


class LevelPosition(BaseModel):
    """A finance level: advanced (to hospitals), recoverable (the other levels' shares of its advances), share_due
    (its shares of others' advances), paid (to hospitals and levels), received (from levels);
    outstanding = advanced + share_due − paid (what it still has to pay)."""

    level: Payer
    advanced: Money
    recoverable: Money
    share_due: Money
    paid: Money
    received: Money
    outstanding: Money


class InstitutionSubsidyPosition(BaseModel):
    fixmedins_code: str
    receivable: Money  # COVID subsidies owed to it (reversed settlements net out)
    paid: Money
    outstanding: Money


class SubsidyPositionsOut(BaseModel):
    levels: list[LevelPosition]
    institutions: list[InstitutionSubsidyPosition]
    truncated: bool


def stored_answer(model: type[BaseModel], row: Any, **computed: Any) -> dict[str, Any]:
    """What `model` answers of a stored row: each field from the row's column of that name (or from `computed`), as
    JSON values."""
    values = {name: computed[name] if name in computed else row[name] for name in model.model_fields}
    return model(**values).model_dump(mode="json")
