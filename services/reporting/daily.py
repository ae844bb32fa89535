"""附件2, the daily report of COVID patients' settlements, and the day's totals for reconciliation."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.domain import DAILY_KEYS, DAILY_MONEY, DailyFigures, DailyKey, psn_burden
from services.reporting.models import settlement_moves as m
from shared.money import fmt

RECONCILED = ("medfee_sumamt", "fund_pay_sumamt", "fin_subsidy_pay", "psn_pay")


def _sum(column):
    return func.coalesce(func.sum(column), 0)


async def daily_figures(session: AsyncSession, *, day: date, cumulative: bool) -> dict[DailyKey, DailyFigures]:
    """Every row of 附件2 (zeros included) for one business day, or for everything up to it."""
    when = m.c.day <= day if cumulative else m.c.day == day
    query = (select(m.c.covid_status, m.c.origin, m.c.insutype, _sum(m.c.sign).label("persons"),
                    _sum(m.c.medfee_sumamt).label("medfee"), _sum(m.c.hifp_pay).label("hifp"),
                    _sum(m.c.hifmi_pay).label("hifmi"), _sum(m.c.maf_pay).label("maf"),
                    _sum(m.c.tilt_aid_pay).label("tilt"))
             .where(when, m.c.covid_status.is_not(None))
             .group_by(m.c.covid_status, m.c.origin, m.c.insutype))
    figures = {key: DailyFigures() for key in DAILY_KEYS}
    for row in await session.execute(query):
        key = DailyKey(row.covid_status, row.origin, row.insutype)
        if key not in figures:  # a status, origin or scheme the form has no row for
            continue
        medfee, hifp, hifmi, maf, tilt = (Decimal(v) for v in (row.medfee, row.hifp, row.hifmi, row.maf, row.tilt))
        figures[key] = DailyFigures(persons=int(row.persons), medfee_sumamt=medfee, hifp_pay=hifp, hifmi_pay=hifmi,
                                    maf_pay=maf, psn_burden=psn_burden(medfee=medfee, hifp=hifp, hifmi=hifmi,
                                                                       maf=maf, tilt_aid=tilt))
    return figures


def _figures_json(figures: DailyFigures) -> dict:
    return {"persons": figures.persons, **{name: fmt(getattr(figures, name)) for name in DAILY_MONEY}}


def daily_json(*, day: date, cumulative: bool, figures: dict[DailyKey, DailyFigures]) -> dict:
    """The CONTRACT shape: {date, unit, rows: [...], total: {...}} (money as "0.00" strings)."""
    total = sum(figures.values(), DailyFigures())
    rows = [{"case_status": k.case_status, "origin": k.origin, "insutype": k.insutype, **_figures_json(figures[k])}
            for k in DAILY_KEYS]
    return {"date": day.isoformat(), "unit": "yuan", "cumulative": cumulative,
            "filing_date": (day + timedelta(days=1)).isoformat(), "rows": rows, "total": _figures_json(total)}


async def day_totals(session: AsyncSession, *, day: date) -> dict:
    """All settlements of a business day net of that day's reversals (what settlement's /v1/totals says)."""
    row = (await session.execute(select(_sum(m.c.sign).label("count"),
                                        *[_sum(m.c[name]).label(name) for name in RECONCILED])
                                 .where(m.c.day == day))).one()
    return {"count": int(row.count), **{name: fmt(Decimal(row._mapping[name])) for name in RECONCILED}}
