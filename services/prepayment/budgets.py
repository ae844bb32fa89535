"""Global budget (总额预算) per institution and year, and how much of it the funds have used.

Used = fund payments (fund_pay_sumamt) of the institution's settlements dated in that year,
reversed settlements left out. COVID settlements (covid_status not null) are outside the
budget (DOMAIN §6) and only shown as `covid_excluded`. When use is flagged (warning, exceeded)
is policy: deploy/policy/budget.toml, read at start-up (the reporting service reads the same file).

Setting a budget records `budget-set` in the outbox in the same transaction, with a `version`
that grows with every change of that institution's year, so consumers keep the newest.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.prepayment import store
from services.prepayment.models import budgets, events, settlements
from services.prepayment.prepayments import PRODUCER
from services.prepayment.schemas import BudgetOut
from shared.budget import BudgetThresholds, budget_status
from shared.events import add_event
from shared.events.topics import BUDGET_SET
from shared.problems import not_found

RATIO_PLACES = Decimal("0.0001")


def budget_use(budget: Decimal, used: Decimal, thresholds: BudgetThresholds) -> tuple[Decimal, str]:
    """(used / budget to 4 places, status): exceeded, warning or ok by the thresholds (exact comparisons)."""
    ratio = (used / budget).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)
    return ratio, budget_status(budget=budget, used=used, thresholds=thresholds)


async def put_budget(session: AsyncSession, code: str, *, year: int, amount: Decimal,
                     thresholds: BudgetThresholds) -> dict:
    """Set (or replace) an institution's budget for a year and announce it (`budget-set`) in the same transaction."""
    store.check_code_known(await store.institution_known(session, code), code)
    stmt = insert(budgets).values(fixmedins_code=code, year=year, amount=amount, version=1)
    version = await session.scalar(stmt.on_conflict_do_update(
        index_elements=["fixmedins_code", "year"],
        set_={"amount": amount, "version": budgets.c.version + 1, "updated_at": func.now()},
    ).returning(budgets.c.version))  # the row lock orders concurrent PUTs: versions follow commit order
    await add_event(session, events.outbox, topic=BUDGET_SET, key=code, producer=PRODUCER,
                    payload={"fixmedins_code": code, "year": year, "amount": amount, "version": version})
    return await get_budget(session, code, year=year, thresholds=thresholds)


async def get_budget(session: AsyncSession, code: str, *, year: int, thresholds: BudgetThresholds) -> dict:
    amount = await session.scalar(select(budgets.c.amount).where(budgets.c.fixmedins_code == code,
                                                                 budgets.c.year == year))
    if amount is None:
        raise not_found("budget of institution", f"{code} for {year}", "BUDGET_NOT_FOUND")
    s = settlements
    used, covid = (await session.execute(
        select(func.coalesce(func.sum(case((s.c.covid_status.is_(None), s.c.fund_pay_sumamt), else_=0)), 0),
               func.coalesce(func.sum(case((s.c.covid_status.is_not(None), s.c.fund_pay_sumamt), else_=0)), 0))
        .where(s.c.fixmedins_code == code, s.c.known.is_(True), s.c.reversed_on.is_(None),
               s.c.setl_date >= date(year, 1, 1), s.c.setl_date <= date(year, 12, 31)))).one()
    used, covid = Decimal(used), Decimal(covid)
    ratio, status = budget_use(amount, used, thresholds)
    return BudgetOut(fixmedins_code=code, year=year, budget=amount, used=used, covid_excluded=covid,
                     ratio=f"{ratio}", status=status).model_dump(mode="json")
