"""Two reads an HIS makes of the settlement's books: a person's accumulations of a year (人员累计信息查询 5206) and an
institution's settlement totals over a period (对总账 3201).

- Accumulations: the person-year's accumulators (deductible paid, fund paid per pool, critical illness, aid, tilted
  aid), their stable engine keys and amounts. An HIS or pharmacy key reads them only for a person its institution
  has seen (a visit, settlement, prescription or declared claim there), as the personal account (403
  PERSON_NOT_SEEN otherwise, the same whether the person exists or not).
- Totals: the institution's settlements that still stand (not reversed), settled in [begndate 00:00, enddate
  23:59:59] business time, of one insurance type, of the med types of one clearing type (11 outpatient: 11 and 14;
  21 inpatient; 41 pharmacy), of persons insured under an area (a city code, ending in 00, covers its counties).
  fund_pay_sumamt counts the funds and the COVID finance subsidy (everything the patient does not pay).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from services.settlement.runtime import Ctx
from shared.auth import Principal
from shared.db import Sql
from shared.events.envelope import BUSINESS_TZ
from shared.money import fmt
from shared.problems import Problem

CLEARING_MED_TYPES = {"11": ("11", "14"), "21": ("21",), "41": ("41",)}

_ACCUMULATIONS = Sql("""
SELECT (SELECT amounts FROM accumulators WHERE psn_no = :psn_no AND year = :year) AS amounts,
       (SELECT s.breakdown->>'insutype' FROM settlements s WHERE s.psn_no = :psn_no
         ORDER BY s.setl_time DESC LIMIT 1) AS insutype,
       CAST(:code AS text) IS NULL
    OR EXISTS (SELECT 1 FROM visits WHERE psn_no = :psn_no AND fixmedins_code = :code)
    OR EXISTS (SELECT 1 FROM settlements WHERE psn_no = :psn_no AND fixmedins_code = :code)
    OR EXISTS (SELECT 1 FROM prescriptions WHERE psn_no = :psn_no AND fixmedins_code = :code)
    OR EXISTS (SELECT 1 FROM claims WHERE psn_no = :psn_no AND fixmedins_code = :code) AS seen
""")
_TOTALS = Sql("""
SELECT count(*) AS count, coalesce(sum(medfee_sumamt), 0) AS medfee,
       coalesce(sum(fund_pay_sumamt + fin_subsidy_pay), 0) AS fund, coalesce(sum(acct_pay), 0) AS acct,
       coalesce(sum(psn_pay - acct_pay), 0) AS cash
  FROM settlements
 WHERE fixmedins_code = :code AND status = 'settled' AND setl_time >= :since AND setl_time < :until
   AND med_type = ANY(CAST(:med_types AS text[])) AND breakdown->>'insutype' = :insutype
   AND (event->>'insuplc_admdvs' = :area
        OR (right(:area, 2) = '00' AND left(event->>'insuplc_admdvs', 4) = left(:area, 4)))
""")


async def accumulations(ctx: Ctx, *, psn_no: str, year: int, principal: Principal) -> dict:
    """{psn_no, year, insutype, amounts: {key: "12.34"}} (insutype: of the person's latest settlement, if any)."""
    code = principal.fixmedins_code if principal.role in ("his", "pharmacy") else None
    async with ctx.db.connect() as unit:
        row = await unit.fetchrow(_ACCUMULATIONS, psn_no=psn_no, year=year, code=code)
    if not row.seen:
        raise Problem(
            403,
            "PERSON_NOT_SEEN",
            f"institution {code} has no visit, settlement or prescription of person {psn_no}",
        )
    amounts = row.amounts or {}
    return {
        "psn_no": psn_no,
        "year": year,
        "insutype": row.insutype,
        "amounts": {key: fmt(Decimal(value)) for key, value in sorted(amounts.items())},
    }


async def settlement_totals(
    ctx: Ctx,
    *,
    fixmedins_code: str,
    insutype: str,
    clr_type: str,
    area: str,
    begndate: date,
    enddate: date,
    principal: Principal,
) -> dict:
    """{count, medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay, …} of the institution's standing
    settlements in the window (an HIS or pharmacy key: its own institution only)."""
    if principal.role in ("his", "pharmacy"):
        principal.require_institution(fixmedins_code)
    if enddate < begndate:
        raise Problem(
            422,
            "INVALID_PERIOD",
            "enddate is before begndate",
            errors=[{"field": "enddate", "code": "INVALID_PERIOD", "detail": "before begndate"}],
        )
    since = datetime.combine(begndate, time(), tzinfo=BUSINESS_TZ)
    until = datetime.combine(enddate + timedelta(days=1), time(), tzinfo=BUSINESS_TZ)
    async with ctx.db.connect() as unit:
        row = await unit.fetchrow(
            _TOTALS,
            code=fixmedins_code,
            since=since,
            until=until,
            med_types=list(CLEARING_MED_TYPES[clr_type]),
            insutype=insutype,
            area=area,
        )
    return {
        "fixmedins_code": fixmedins_code,
        "insutype": insutype,
        "clr_type": clr_type,
        "setl_optins": area,
        "begndate": begndate.isoformat(),
        "enddate": enddate.isoformat(),
        "count": int(row.count),
        "medfee_sumamt": fmt(Decimal(row.medfee)),
        "fund_pay_sumamt": fmt(Decimal(row.fund)),
        "acct_pay": fmt(Decimal(row.acct)),
        "psn_cash_pay": fmt(Decimal(row.cash)),
    }
