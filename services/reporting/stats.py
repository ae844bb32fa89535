"""两病 monthly statistics and the yearly institution indicators, from the settlement moves and the budgets."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.domain import TWO_DISEASES, share
from services.reporting.models import budgets as b
from services.reporting.models import institutions as i
from services.reporting.models import settlement_moves as m
from shared.budget import BudgetThresholds, budget_status
from shared.money import ZERO, fmt

AID_SELF_PAY_LIMIT = Decimal("0.10")  # DOMAIN §5: indicator, not a rule


def _sum(column):
    return func.coalesce(func.sum(column), 0)


def month_bounds(month: str) -> tuple[date, date]:
    """'2024-03' → (2024-03-01, 2024-04-01)."""
    first = date(int(month[:4]), int(month[5:7]), 1)
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first, following


async def two_diseases(session: AsyncSession, *, month: str) -> dict:
    """Beneficiaries, visits, total cost and fund paid per disease for a month (reversals net out)."""
    first, following = month_bounds(month)
    in_month = and_(m.c.day >= first, m.c.day < following, m.c.two_disease.is_not(None))
    figures = (select(m.c.two_disease, _sum(m.c.sign).label("visits"), _sum(m.c.medfee_sumamt).label("medfee"),
                      _sum(m.c.hifp_pay).label("hifp"), _sum(m.c.fund_pay_sumamt).label("fund"))
               .where(in_month).group_by(m.c.two_disease))
    per_person = (select(m.c.two_disease, m.c.psn_no).where(in_month).group_by(m.c.two_disease, m.c.psn_no)
                  .having(func.sum(m.c.sign) > 0).subquery())
    beneficiaries = select(per_person.c.two_disease, func.count().label("n")).group_by(per_person.c.two_disease)
    anyone = (select(m.c.psn_no).where(in_month).group_by(m.c.psn_no).having(func.sum(m.c.sign) > 0).subquery())
    rows = {d: {"disease": d, "beneficiaries": 0, "visits": 0, "medfee_sumamt": ZERO, "hifp_pay": ZERO,
                "fund_pay_sumamt": ZERO} for d in TWO_DISEASES}
    for row in await session.execute(figures):
        if row.two_disease in rows:
            rows[row.two_disease].update(visits=int(row.visits), medfee_sumamt=Decimal(row.medfee),
                                         hifp_pay=Decimal(row.hifp), fund_pay_sumamt=Decimal(row.fund))
    for row in await session.execute(beneficiaries):
        if row.two_disease in rows:
            rows[row.two_disease]["beneficiaries"] = int(row.n)
    total_persons = await session.scalar(select(func.count()).select_from(anyone))
    money = ("medfee_sumamt", "hifp_pay", "fund_pay_sumamt")
    total = {"beneficiaries": int(total_persons or 0), "visits": sum(r["visits"] for r in rows.values()),
             **{k: sum((r[k] for r in rows.values()), ZERO) for k in money}}
    return {"month": month, "unit": "yuan",
            "rows": [{**r, **{k: fmt(r[k]) for k in money}} for r in rows.values()],
            "total": {**total, **{k: fmt(total[k]) for k in money}}}


def _ratio(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.4f}"


# An institution with a budget for the year but no settlement moves in the two years looked at.
_NO_MOVES = {"count": 0, "medfee": 0, "outside": 0, "aid_inscp": 0, "aid_self": 0, "prev_count": 0,
             "prev_medfee": 0, "budget_used": 0}


def _budget_use(budget: Decimal | None, used: Decimal, thresholds: BudgetThresholds) -> dict:
    """The budget (budget-set), the share of it used and its status; all None without a budget."""
    if budget is None:
        return {"budget": None, "budget_ratio": None, "budget_status": None}
    return {"budget": fmt(budget), "budget_ratio": _ratio(share(used, budget)),
            "budget_status": budget_status(budget=budget, used=used, thresholds=thresholds)}


async def _budgets(session: AsyncSession, year: int) -> dict[str, Decimal]:
    query = select(b.c.fixmedins_code, b.c.amount).where(b.c.year == year)
    return {row.fixmedins_code: Decimal(row.amount) for row in await session.execute(query)}


async def _without_moves(session: AsyncSession, codes: list[str]) -> list[SimpleNamespace]:
    """Rows like the indicator query's for institutions that only have a budget."""
    query = (select(i.c.fixmedins_code, i.c.fixmedins_name, i.c.affiliation, i.c.kind)
             .where(i.c.fixmedins_code.in_(codes)))
    known = {row.fixmedins_code: row for row in await session.execute(query)}
    return [SimpleNamespace(fixmedins_code=code, name=getattr(known.get(code), "fixmedins_name", None),
                            affiliation=getattr(known.get(code), "affiliation", None),
                            kind=getattr(known.get(code), "kind", None), **_NO_MOVES) for code in codes]


async def indicators(session: AsyncSession, *, year: int, thresholds: BudgetThresholds) -> dict:
    """Per institution: aid recipients' in-scope self-pay share in county hospitals (≤ 10 %), outside-catalogue
    share, cost per settlement against the year before, and the year's non-COVID fund use against its global
    budget (budget-set), flagged by the thresholds of deploy/policy/budget.toml."""
    start, end, prev = date(year, 1, 1), date(year + 1, 1, 1), date(year - 1, 1, 1)
    this_year = and_(m.c.day >= start, m.c.day < end)
    aid_inpatient = and_(m.c.aid_category.is_not(None), m.c.med_type == "21")
    self_paid = m.c.inscp_scp_amt - m.c.hifp_pay - m.c.hifmi_pay - m.c.maf_pay - m.c.tilt_aid_pay
    budget_year = and_(m.c.setl_date >= start, m.c.setl_date < end, m.c.covid_status.is_(None))
    query = (select(
        m.c.fixmedins_code, func.max(i.c.fixmedins_name).label("name"),
        func.max(m.c.fixmedins_affiliation).label("affiliation"), func.max(m.c.fixmedins_kind).label("kind"),
        _sum(case((this_year, m.c.sign), else_=0)).label("count"),
        _sum(case((this_year, m.c.medfee_sumamt), else_=0)).label("medfee"),
        _sum(case((this_year, m.c.fulamt_ownpay_amt), else_=0)).label("outside"),
        _sum(case((and_(this_year, aid_inpatient), m.c.inscp_scp_amt), else_=0)).label("aid_inscp"),
        _sum(case((and_(this_year, aid_inpatient), self_paid), else_=0)).label("aid_self"),
        _sum(case((m.c.day < start, m.c.sign), else_=0)).label("prev_count"),
        _sum(case((m.c.day < start, m.c.medfee_sumamt), else_=0)).label("prev_medfee"),
        _sum(case((budget_year, m.c.fund_pay_sumamt), else_=0)).label("budget_used"))
        .select_from(m.outerjoin(i, i.c.fixmedins_code == m.c.fixmedins_code))
        .where(m.c.day >= prev, m.c.day < end).group_by(m.c.fixmedins_code).order_by(m.c.fixmedins_code))
    budgets = await _budgets(session, year)
    rows = list(await session.execute(query))
    missing = sorted(set(budgets) - {row.fixmedins_code for row in rows})
    if missing:
        rows = sorted(rows + await _without_moves(session, missing), key=lambda row: row.fixmedins_code)
    items = []
    county_inscp = county_self = ZERO
    for row in rows:
        county = row.affiliation == "county" and row.kind != "pharmacy"
        count, prev_count = int(row.count), int(row.prev_count)
        per_visit = Decimal(row.medfee) / count if count else None
        prev_per_visit = Decimal(row.prev_medfee) / prev_count if prev_count else None
        growth = share(per_visit - prev_per_visit, prev_per_visit) if per_visit and prev_per_visit else None
        aid_share = share(Decimal(row.aid_self), Decimal(row.aid_inscp)) if county else None
        if county:
            county_inscp += Decimal(row.aid_inscp)
            county_self += Decimal(row.aid_self)
        used = Decimal(row.budget_used)
        items.append({
            "fixmedins_code": row.fixmedins_code, "fixmedins_name": row.name or row.fixmedins_code,
            "affiliation": row.affiliation, "settlements": count, "medfee_sumamt": fmt(Decimal(row.medfee)),
            "outside_catalogue_amt": fmt(Decimal(row.outside)),
            "outside_catalogue_share": _ratio(share(Decimal(row.outside), Decimal(row.medfee))),
            "aid_inpatient_inscp_amt": fmt(Decimal(row.aid_inscp)) if county else None,
            "aid_inpatient_self_pay_amt": fmt(Decimal(row.aid_self)) if county else None,
            "aid_self_pay_share": _ratio(aid_share),
            "aid_self_pay_ok": None if aid_share is None else aid_share <= AID_SELF_PAY_LIMIT,
            "cost_per_settlement": fmt(per_visit) if per_visit is not None else None,
            "cost_per_settlement_prev_year": fmt(prev_per_visit) if prev_per_visit is not None else None,
            "cost_growth": _ratio(growth),
            "budget_used": fmt(used), **_budget_use(budgets.get(row.fixmedins_code), used, thresholds),
        })
    overall = share(county_self, county_inscp)
    return {"year": year, "unit": "yuan", "aid_self_pay_limit": _ratio(AID_SELF_PAY_LIMIT),
            "budget_thresholds": {"warning": _ratio(thresholds.warning), "exceeded": _ratio(thresholds.exceeded)},
            "county_aid_self_pay": {"inscp_amt": fmt(county_inscp), "self_pay_amt": fmt(county_self),
                                    "share": _ratio(overall),
                                    "ok": None if overall is None else overall <= AID_SELF_PAY_LIMIT},
            "items": [it for it in items if it["settlements"] or it["budget_used"] != "0.00" or it["budget"]]}
