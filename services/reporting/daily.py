"""附件2, the daily report of COVID patients' settlements, and the day's totals for reconciliation."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from services.reporting.areas import Area, pattern, sql_filter
from services.reporting.domain import (
    DAILY_KEYS,
    DAILY_MONEY,
    FINANCE_LEVELS,
    DailyFigures,
    DailyKey,
    psn_burden,
)
from shared.db import Sql, Unit
from shared.money import fmt

RECONCILED = ("medfee_sumamt", "fund_pay_sumamt", "fin_subsidy_pay", "psn_pay")

_FIGURES = """
SELECT covid_status, origin, insutype, COALESCE(SUM(sign), 0) AS persons, COALESCE(SUM(medfee_sumamt), 0) AS medfee,
       COALESCE(SUM(hifp_pay), 0) AS hifp, COALESCE(SUM(hifmi_pay), 0) AS hifmi, COALESCE(SUM(maf_pay), 0) AS maf,
       COALESCE(SUM(tilt_aid_pay), 0) AS tilt
  FROM settlement_moves WHERE day {op} :day AND covid_status IS NOT NULL AND {area}
 GROUP BY covid_status, origin, insutype
"""
_DAY_FIGURES = Sql(_FIGURES.format(op="=", area=sql_filter("fixmedins_admdvs")))
_FIGURES_UP_TO = Sql(_FIGURES.format(op="<=", area=sql_filter("fixmedins_admdvs")))
_DAY_TOTALS = Sql(f"""
SELECT COALESCE(SUM(sign), 0) AS count, {", ".join(f"COALESCE(SUM({n}), 0) AS {n}" for n in RECONCILED)}
  FROM settlement_moves WHERE day = :day
""")


_ACCOUNTS = """
SELECT COALESCE(SUM(acct_pay), 0) AS acct_pay,
       COALESCE(SUM(acct_pay) FILTER (WHERE acct_payer_psn_no IS NOT NULL), 0) AS family_acct_pay,
       COALESCE(SUM(sign) FILTER (WHERE retail_purchase), 0) AS purchases,
       COALESCE(SUM(medfee_sumamt) FILTER (WHERE retail_purchase), 0) AS purchase_medfee,
       COALESCE(SUM(acct_pay) FILTER (WHERE retail_purchase), 0) AS purchase_acct_pay,
       COALESCE(SUM(psn_cash_pay) FILTER (WHERE retail_purchase), 0) AS purchase_cash_pay
  FROM settlement_moves WHERE day {op} :day AND {area}
"""
_DAY_ACCOUNTS = Sql(_ACCOUNTS.format(op="=", area=sql_filter("fixmedins_admdvs")))
_ACCOUNTS_UP_TO = Sql(_ACCOUNTS.format(op="<=", area=sql_filter("fixmedins_admdvs")))


# Every payer level, zeros included. A payment between levels has no pooling area: an area's report leaves it out.
_FINANCE = """
SELECT l.level AS payer, count(f.ref) AS count, COALESCE(SUM(f.amount), 0) AS amount
  FROM unnest(CAST(:levels AS text[])) WITH ORDINALITY AS l(level, n)
  LEFT JOIN finance_payments f ON f.payer = l.level AND f.paid_on {op} :day AND {area}
 GROUP BY l.level, l.n ORDER BY l.n
"""
_DAY_FINANCE = Sql(_FINANCE.format(op="=", area=sql_filter("f.admdvs")))
_FINANCE_UP_TO = Sql(_FINANCE.format(op="<=", area=sql_filter("f.admdvs")))


async def finance_payments(unit: Unit, *, day: date, cumulative: bool = False, area: Area | None = None) -> dict:
    """Finance's COVID subsidy payments of a day (`paid_on`; or everything up to it), in all and per payer level:
    {count, amount, payers: [{payer, count, amount}]} — what prepayment's /v1/subsidy-payments says of the same day.
    `area`: the payments to that area's hospitals only."""
    rows = await unit.fetch(
        _FINANCE_UP_TO if cumulative else _DAY_FINANCE, levels=list(FINANCE_LEVELS), day=day, area=pattern(area)
    )
    payers = [{"payer": row.payer, "count": int(row.count), "amount": Decimal(row.amount)} for row in rows]
    return {
        "count": sum(p["count"] for p in payers),
        "amount": fmt(sum((p["amount"] for p in payers), Decimal("0.00"))),
        "payers": [{**p, "amount": fmt(p["amount"])} for p in payers],
    }


async def account_totals(unit: Unit, *, day: date, cumulative: bool = False, area: Area | None = None) -> dict:
    """A business day's (or everything up to it) personal-account payments, own and family, and retail purchases
    (定点药店购药), net of reversals: {acct_pay, family_acct_pay, purchases: {count, medfee_sumamt, acct_pay,
    psn_cash_pay}} — what settlement's /v1/account-totals says of the same day."""
    row = await unit.fetchrow(_ACCOUNTS_UP_TO if cumulative else _DAY_ACCOUNTS, day=day, area=pattern(area))
    return {
        "acct_pay": fmt(Decimal(row.acct_pay)),
        "family_acct_pay": fmt(Decimal(row.family_acct_pay)),
        "purchases": {
            "count": int(row.purchases),
            "medfee_sumamt": fmt(Decimal(row.purchase_medfee)),
            "acct_pay": fmt(Decimal(row.purchase_acct_pay)),
            "psn_cash_pay": fmt(Decimal(row.purchase_cash_pay)),
        },
    }


async def daily_figures(
    unit: Unit, *, day: date, cumulative: bool, area: Area | None = None
) -> dict[DailyKey, DailyFigures]:
    """Every row of 附件2 (zeros included) for one business day, or for everything up to it; `area`: the settlements
    of the institutions of a pooling area only (county filing)."""
    figures = {key: DailyFigures() for key in DAILY_KEYS}
    for row in await unit.fetch(_FIGURES_UP_TO if cumulative else _DAY_FIGURES, day=day, area=pattern(area)):
        key = DailyKey(row.covid_status, row.origin, row.insutype)
        if key not in figures:  # a status, origin or scheme the form has no row for
            continue
        medfee, hifp, hifmi, maf, tilt = (Decimal(v) for v in (row.medfee, row.hifp, row.hifmi, row.maf, row.tilt))
        figures[key] = DailyFigures(
            persons=int(row.persons),
            medfee_sumamt=medfee,
            hifp_pay=hifp,
            hifmi_pay=hifmi,
            maf_pay=maf,
            psn_burden=psn_burden(medfee=medfee, hifp=hifp, hifmi=hifmi, maf=maf, tilt_aid=tilt),
        )
    return figures


def _figures_json(figures: DailyFigures) -> dict:
    return {"persons": figures.persons, **{name: fmt(getattr(figures, name)) for name in DAILY_MONEY}}


def daily_json(
    *,
    day: date,
    cumulative: bool,
    figures: dict[DailyKey, DailyFigures],
    accounts: dict | None = None,
    finance: dict | None = None,
) -> dict:
    """The CONTRACT shape: {date, unit, rows: [...], total: {...}} (money as "0.00" strings); `accounts`: the same
    day's personal-account payments and retail purchases (all patients, not only COVID: outside the form);
    `finance`: the day's COVID subsidy payments by finance (`finance_payments`, outside the form too)."""
    total = sum(figures.values(), DailyFigures())
    rows = [
        {"case_status": k.case_status, "origin": k.origin, "insutype": k.insutype, **_figures_json(figures[k])}
        for k in DAILY_KEYS
    ]
    return {
        "date": day.isoformat(),
        "unit": "yuan",
        "cumulative": cumulative,
        "filing_date": (day + timedelta(days=1)).isoformat(),
        "rows": rows,
        "total": _figures_json(total),
        **({"accounts": accounts} if accounts is not None else {}),
        **({"finance_payments": finance} if finance is not None else {}),
    }


async def daily_report(unit: Unit, *, day: date, cumulative: bool, area: Area | None) -> dict:
    """附件2 as the API answers it: the form's figures and, outside the form, the day's account payments and finance's
    subsidy payments."""
    figures = await daily_figures(unit, day=day, cumulative=cumulative, area=area)
    accounts = await account_totals(unit, day=day, cumulative=cumulative, area=area)
    finance = await finance_payments(unit, day=day, cumulative=cumulative, area=area)
    return daily_json(day=day, cumulative=cumulative, figures=figures, accounts=accounts, finance=finance)


async def day_totals(unit: Unit, *, day: date) -> dict:
    """All settlements of a business day net of that day's reversals (what settlement's /v1/totals says)."""
    row = await unit.fetchrow(_DAY_TOTALS, day=day)
    return {"count": int(row["count"]), **{name: fmt(Decimal(row[name])) for name in RECONCILED}}
