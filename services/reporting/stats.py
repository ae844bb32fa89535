"""两病 monthly statistics and the yearly institution indicators, from the settlement moves and the budgets."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from services.reporting.areas import Area, pattern, sql_filter
from services.reporting.domain import TWO_DISEASES, share
from shared.budget import BudgetThresholds, budget_status
from shared.db import Sql, Unit
from shared.money import ZERO, fmt

AID_SELF_PAY_LIMIT = Decimal("0.10")  # DOMAIN §5: indicator, not a rule

_IN_MONTH = f"day >= :first AND day < :following AND two_disease IS NOT NULL AND {sql_filter('fixmedins_admdvs')}"
_DISEASE_FIGURES = Sql(f"""
SELECT two_disease, COALESCE(SUM(sign), 0) AS visits, COALESCE(SUM(medfee_sumamt), 0) AS medfee,
       COALESCE(SUM(hifp_pay), 0) AS hifp, COALESCE(SUM(fund_pay_sumamt), 0) AS fund
  FROM settlement_moves WHERE {_IN_MONTH} GROUP BY two_disease
""")
# A beneficiary: a person whose settlements of the month outnumber their reversals (per disease, and overall).
_BENEFICIARIES = Sql(f"""
SELECT two_disease, count(*) AS n
  FROM (SELECT two_disease, psn_no FROM settlement_moves WHERE {_IN_MONTH}
         GROUP BY two_disease, psn_no HAVING SUM(sign) > 0) AS per_person
 GROUP BY two_disease
""")
_ANY_BENEFICIARIES = Sql(f"""
SELECT count(*)
  FROM (SELECT psn_no FROM settlement_moves WHERE {_IN_MONTH} GROUP BY psn_no HAVING SUM(sign) > 0) AS anyone
""")
_BUDGETS = Sql("SELECT fixmedins_code, amount FROM budgets WHERE year = :year")
_INSTITUTIONS = Sql("""
SELECT fixmedins_code, fixmedins_name, affiliation, kind, admdvs FROM institutions
 WHERE fixmedins_code = ANY(CAST(:codes AS text[]))
""")
# Per institution, over the year and the one before: this year's figures, last year's, and the budget's use.
_THIS_YEAR = "m.day >= :start AND m.day < :year_end"
_AID_INPATIENT = "m.aid_category IS NOT NULL AND m.med_type = '21'"
_INDICATORS = Sql(f"""
SELECT m.fixmedins_code, max(i.fixmedins_name) AS name, max(m.fixmedins_affiliation) AS affiliation,
       max(m.fixmedins_kind) AS kind,
       COALESCE(SUM(CASE WHEN {_THIS_YEAR} THEN m.sign ELSE 0 END), 0) AS count,
       COALESCE(SUM(CASE WHEN {_THIS_YEAR} THEN m.medfee_sumamt ELSE 0 END), 0) AS medfee,
       COALESCE(SUM(CASE WHEN {_THIS_YEAR} THEN m.fulamt_ownpay_amt ELSE 0 END), 0) AS outside,
       COALESCE(SUM(CASE WHEN {_THIS_YEAR} AND {_AID_INPATIENT} THEN m.inscp_scp_amt ELSE 0 END), 0) AS aid_inscp,
       COALESCE(SUM(CASE WHEN {_THIS_YEAR} AND {_AID_INPATIENT}
                         THEN m.inscp_scp_amt - m.hifp_pay - m.hifmi_pay - m.maf_pay - m.tilt_aid_pay
                         ELSE 0 END), 0) AS aid_self,
       COALESCE(SUM(CASE WHEN m.day < :start THEN m.sign ELSE 0 END), 0) AS prev_count,
       COALESCE(SUM(CASE WHEN m.day < :start THEN m.medfee_sumamt ELSE 0 END), 0) AS prev_medfee,
       COALESCE(SUM(CASE WHEN m.setl_date >= :start AND m.setl_date < :year_end AND m.covid_status IS NULL
                         THEN m.fund_pay_sumamt ELSE 0 END), 0) AS budget_used
  FROM settlement_moves m LEFT JOIN institutions i ON i.fixmedins_code = m.fixmedins_code
 WHERE m.day >= :prev AND m.day < :year_end AND {sql_filter("m.fixmedins_admdvs")}
 GROUP BY m.fixmedins_code ORDER BY m.fixmedins_code
""")


def month_bounds(month: str) -> tuple[date, date]:
    """'2024-03' → (2024-03-01, 2024-04-01)."""
    first = date(int(month[:4]), int(month[5:7]), 1)
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first, following


async def two_diseases(unit: Unit, *, month: str, area: Area | None = None) -> dict:
    """Beneficiaries, visits, total cost and fund paid per disease for a month (reversals net out)."""
    first, following = month_bounds(month)
    rows = {
        d: {
            "disease": d,
            "beneficiaries": 0,
            "visits": 0,
            "medfee_sumamt": ZERO,
            "hifp_pay": ZERO,
            "fund_pay_sumamt": ZERO,
        }
        for d in TWO_DISEASES
    }
    where = pattern(area)
    for row in await unit.fetch(_DISEASE_FIGURES, first=first, following=following, area=where):
        if row.two_disease in rows:
            rows[row.two_disease].update(
                visits=int(row.visits),
                medfee_sumamt=Decimal(row.medfee),
                hifp_pay=Decimal(row.hifp),
                fund_pay_sumamt=Decimal(row.fund),
            )
    for row in await unit.fetch(_BENEFICIARIES, first=first, following=following, area=where):
        if row.two_disease in rows:
            rows[row.two_disease]["beneficiaries"] = int(row.n)
    total_persons = await unit.fetchval(_ANY_BENEFICIARIES, first=first, following=following, area=where)
    money = ("medfee_sumamt", "hifp_pay", "fund_pay_sumamt")
    total = {
        "beneficiaries": int(total_persons or 0),
        "visits": sum(r["visits"] for r in rows.values()),
        **{k: sum((r[k] for r in rows.values()), ZERO) for k in money},
    }
    return {
        "month": month,
        "unit": "yuan",
        "rows": [{**r, **{k: fmt(r[k]) for k in money}} for r in rows.values()],
        "total": {**total, **{k: fmt(total[k]) for k in money}},
    }


def _ratio(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.4f}"


# An institution with a budget for the year but no settlement moves in the two years looked at.
_NO_MOVES = {
    "count": 0,
    "medfee": 0,
    "outside": 0,
    "aid_inscp": 0,
    "aid_self": 0,
    "prev_count": 0,
    "prev_medfee": 0,
    "budget_used": 0,
}


def _budget_use(budget: Decimal | None, used: Decimal, thresholds: BudgetThresholds) -> dict:
    """The budget (budget-set), the share of it used and its status; all None without a budget."""
    if budget is None:
        return {"budget": None, "budget_ratio": None, "budget_status": None}
    return {
        "budget": fmt(budget),
        "budget_ratio": _ratio(share(used, budget)),
        "budget_status": budget_status(budget=budget, used=used, thresholds=thresholds),
    }


async def _budgets(unit: Unit, year: int) -> dict[str, Decimal]:
    return {row.fixmedins_code: Decimal(row.amount) for row in await unit.fetch(_BUDGETS, year=year)}


async def _without_moves(unit: Unit, codes: list[str], area: Area | None = None) -> list[SimpleNamespace]:
    """Rows like the indicator query's for institutions that only have a budget (of the area, when one is given)."""
    known = {row.fixmedins_code: row for row in await unit.fetch(_INSTITUTIONS, codes=codes)}
    if area is not None:
        codes = [code for code in codes if code in known and area.covers(known[code].admdvs)]
    return [
        SimpleNamespace(
            fixmedins_code=code,
            name=getattr(known.get(code), "fixmedins_name", None),
            affiliation=getattr(known.get(code), "affiliation", None),
            kind=getattr(known.get(code), "kind", None),
            **_NO_MOVES,
        )
        for code in codes
    ]


async def indicators(unit: Unit, *, year: int, thresholds: BudgetThresholds, area: Area | None = None) -> dict:
    """Per institution: aid recipients' in-scope self-pay share in county hospitals (≤ 10 %), outside-catalogue
    share, cost per settlement against the year before, and the year's non-COVID fund use against its global
    budget (budget-set), flagged by the thresholds of deploy/policy/budget.toml."""
    start, year_end, prev = date(year, 1, 1), date(year + 1, 1, 1), date(year - 1, 1, 1)
    budgets = await _budgets(unit, year)
    rows: list = list(await unit.fetch(_INDICATORS, start=start, year_end=year_end, prev=prev, area=pattern(area)))
    missing = sorted(set(budgets) - {row.fixmedins_code for row in rows})
    if missing:
        rows = sorted(rows + await _without_moves(unit, missing, area), key=lambda row: row.fixmedins_code)
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
        items.append(
            {
                "fixmedins_code": row.fixmedins_code,
                "fixmedins_name": row.name or row.fixmedins_code,
                "affiliation": row.affiliation,
                "settlements": count,
                "medfee_sumamt": fmt(Decimal(row.medfee)),
                "outside_catalogue_amt": fmt(Decimal(row.outside)),
                "outside_catalogue_share": _ratio(share(Decimal(row.outside), Decimal(row.medfee))),
                "aid_inpatient_inscp_amt": fmt(Decimal(row.aid_inscp)) if county else None,
                "aid_inpatient_self_pay_amt": fmt(Decimal(row.aid_self)) if county else None,
                "aid_self_pay_share": _ratio(aid_share),
                "aid_self_pay_ok": None if aid_share is None else aid_share <= AID_SELF_PAY_LIMIT,
                "cost_per_settlement": fmt(per_visit) if per_visit is not None else None,
                "cost_per_settlement_prev_year": fmt(prev_per_visit) if prev_per_visit is not None else None,
                "cost_growth": _ratio(growth),
                "budget_used": fmt(used),
                **_budget_use(budgets.get(row.fixmedins_code), used, thresholds),
            }
        )
    overall = share(county_self, county_inscp)
    return {
        "year": year,
        "unit": "yuan",
        "aid_self_pay_limit": _ratio(AID_SELF_PAY_LIMIT),
        "budget_thresholds": {"warning": _ratio(thresholds.warning), "exceeded": _ratio(thresholds.exceeded)},
        "county_aid_self_pay": {
            "inscp_amt": fmt(county_inscp),
            "self_pay_amt": fmt(county_self),
            "share": _ratio(overall),
            "ok": None if overall is None else overall <= AID_SELF_PAY_LIMIT,
        },
        "items": [it for it in items if it["settlements"] or it["budget_used"] != "0.00" or it["budget"]],
    }
