"""Request and response bodies of the prepayment service (money as "12.50", dates as YYYY-MM-DD)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from services.prepayment.ledger import CODE_PATTERN
from shared.money import Money

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


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("amount must be above 0.00")
    return value


Day = Annotated[date, BeforeValidator(_date_text), AfterValidator(_in_range)]
PositiveMoney = Annotated[Money, AfterValidator(_positive)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrepaymentIn(Body):
    fixmedins_code: Code
    kind: PrepaymentKind
    amount: PositiveMoney
    disbursed_on: Day


class ScheduleIn(Body):
    """A monthly prepayment plan: `months` payments of `amount`, on `day_of_month` from `first_month`."""

    fixmedins_code: Code
    amount: PositiveMoney
    first_month: str = Field(pattern=r"^20\d\d-(0[1-9]|1[0-2])$")
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
    """net = fund_payable + subsidy_receivable − prepaid: above 0 the institution is still owed that much,
    below 0 it holds prepayments beyond its claims."""

    fixmedins_code: str
    prepaid: Money
    fund_payable: Money
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
    """net_due = carried_in + fund_payable − prepaid; paid = max(net_due, 0); carried_out = min(net_due, 0)."""

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
