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
from typing import Any

from services.prepayment import store
from services.prepayment.schemas import BudgetOut
from shared.budget import BudgetThresholds, budget_status
from shared.db import Sql, Unit
from shared.events.topics import BUDGET_SET
from shared.problems import not_found

RATIO_PLACES = Decimal("0.0001")

# The row lock orders concurrent PUTs: versions follow commit order.
_SET = Sql("""
INSERT INTO budgets AS b (fixmedins_code, year, amount, version) VALUES (:code, :year, :amount, 1)
ON CONFLICT (fixmedins_code, year) DO UPDATE SET amount = EXCLUDED.amount, version = b.version + 1, updated_at = now()
RETURNING version
""")
_AMOUNT = Sql("SELECT amount FROM budgets WHERE fixmedins_code = :code AND year = :year")
_USED = Sql("""
SELECT coalesce(sum(fund_pay_sumamt) FILTER (WHERE covid_status IS NULL), 0) AS used,
       coalesce(sum(fund_pay_sumamt) FILTER (WHERE covid_status IS NOT NULL), 0) AS covid
  FROM settlements
 WHERE fixmedins_code = :code AND known AND reversed_on IS NULL AND setl_date BETWEEN :first_day AND :last_day
""")


def budget_use(budget: Decimal, used: Decimal, thresholds: BudgetThresholds) -> tuple[Decimal, str]:
    """(used / budget to 4 places, status): exceeded, warning or ok by the thresholds (exact comparisons)."""
    ratio = (used / budget).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)
    return ratio, budget_status(budget=budget, used=used, thresholds=thresholds)


async def put_budget(
    unit: Unit, code: str, *, year: int, amount: Decimal, thresholds: BudgetThresholds
) -> dict[str, Any]:
    """Set (or replace) an institution's budget for a year and announce it (`budget-set`) in the same transaction."""
    store.check_code_known(await store.institution_known(unit, code), code)
    version = await unit.fetchval(_SET, code=code, year=year, amount=amount)
    await unit.publish(
        topic=BUDGET_SET, key=code, payload={"fixmedins_code": code, "year": year, "amount": amount, "version": version}
    )
    return await get_budget(unit, code, year=year, thresholds=thresholds)


async def get_budget(unit: Unit, code: str, *, year: int, thresholds: BudgetThresholds) -> dict[str, Any]:
    amount = await unit.fetchval(_AMOUNT, code=code, year=year)
    if amount is None:
        raise not_found("budget of institution", f"{code} for {year}", "BUDGET_NOT_FOUND")
    use = await unit.fetchrow(_USED, code=code, first_day=date(year, 1, 1), last_day=date(year, 12, 31))
    ratio, status = budget_use(amount, use.used, thresholds)
    return BudgetOut(
        fixmedins_code=code,
        year=year,
        budget=amount,
        used=use.used,
        covid_excluded=use.covid,
        ratio=f"{ratio}",
        status=status,
    ).model_dump(mode="json")
