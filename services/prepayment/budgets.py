"""Global budget (总额预算) per institution and year, and how much of it the funds have used.

Used = fund payments (fund_pay_sumamt) of the institution's settlements dated in that year,
reversed settlements left out. COVID settlements (covid_status not null) are outside the
budget (DOMAIN §6) and only shown as `covid_excluded`.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.prepayment import store
from services.prepayment.models import budgets, settlements
from services.prepayment.schemas import BudgetOut
from shared.problems import not_found

WARNING_RATIO = Decimal("0.80")
RATIO_PLACES = Decimal("0.0001")


def budget_use(budget: Decimal, used: Decimal) -> tuple[Decimal, str]:
    """(used / budget to 4 places, status): exceeded at ≥ 100 %, warning at ≥ 80 %, else ok (exact comparisons)."""
    ratio = (used / budget).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)
    if used >= budget:
        return ratio, "exceeded"
    if used >= budget * WARNING_RATIO:
        return ratio, "warning"
    return ratio, "ok"


async def put_budget(session: AsyncSession, code: str, *, year: int, amount: Decimal) -> dict:
    """Set (or replace) an institution's budget for a year."""
    store.check_code_known(await store.institution_known(session, code), code)
    stmt = insert(budgets).values(fixmedins_code=code, year=year, amount=amount)
    await session.execute(stmt.on_conflict_do_update(index_elements=["fixmedins_code", "year"],
                                                     set_={"amount": amount, "updated_at": func.now()}))
    return await get_budget(session, code, year=year)


async def get_budget(session: AsyncSession, code: str, *, year: int) -> dict:
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
    ratio, status = budget_use(amount, used)
    return BudgetOut(fixmedins_code=code, year=year, budget=amount, used=used, covid_excluded=covid,
                     ratio=f"{ratio}", status=status).model_dump(mode="json")
