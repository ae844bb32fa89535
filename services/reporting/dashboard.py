"""What the ops dashboard shows: a day's settlements and fund split, settlements per hour, COVID figures,
prepayment positions and finance subsidies as the events tell them."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from services.reporting.domain import SPECIAL_KINDS
from shared.db import Sql, Unit
from shared.events.envelope import BUSINESS_TZ
from shared.money import ZERO, fmt

SPLIT = (
    "medfee_sumamt",
    "hifp_pay",
    "hifmi_pay",
    "maf_pay",
    "tilt_aid_pay",
    "fin_subsidy_pay",
    "acct_pay",
    "psn_cash_pay",
    "fund_pay_sumamt",
    "psn_pay",
)
MAX_SUBSIDY_ROWS = 200_000

_DAY = Sql(f"""
SELECT COALESCE(SUM(sign), 0) AS count, {", ".join(f"COALESCE(SUM({k}), 0) AS {k}" for k in SPLIT)},
       COALESCE(SUM(sign) FILTER (WHERE covid_status IS NOT NULL), 0) AS covid_count,
       COALESCE(SUM(medfee_sumamt) FILTER (WHERE covid_status IS NOT NULL), 0) AS covid_medfee,
       COALESCE(SUM(fin_subsidy_pay) FILTER (WHERE covid_status IS NOT NULL), 0) AS covid_fin,
       count(*) FILTER (WHERE kind = 'reverse') AS reversals
  FROM settlement_moves WHERE day = :day
""")
_PER_HOUR = Sql("""
SELECT EXTRACT(hour FROM timezone(:tz, at)) AS hour, COALESCE(SUM(sign), 0) AS count,
       COALESCE(SUM(medfee_sumamt), 0) AS medfee
  FROM settlement_moves WHERE day = :day GROUP BY 1
""")
_PREPAID = Sql("SELECT fixmedins_code, kind, SUM(amount) AS amount FROM prepayments GROUP BY fixmedins_code, kind")
_FUND_PAYABLE = Sql(
    "SELECT fixmedins_code, SUM(fund_pay_sumamt) AS fund, SUM(acct_pay) AS acct FROM settlement_moves "
    "GROUP BY fixmedins_code"
)
_SUBSIDY_RECEIVABLE = Sql("""
SELECT fixmedins_code, SUM(CASE WHEN reversal THEN -amount ELSE amount END) AS amount
  FROM subsidies GROUP BY fixmedins_code
""")
_NAMES = Sql("SELECT fixmedins_code, fixmedins_name FROM institutions")
_SHARES = Sql("SELECT shares, reversal FROM subsidies LIMIT :limit")
_COUNTS = Sql("""
SELECT (SELECT count(*) FROM institutions) AS institutions, (SELECT count(*) FROM persons) AS persons,
       (SELECT count(*) FROM covid_cases WHERE status <> 'excluded') AS covid_cases,
       (SELECT count(*) FROM claims) AS claims
""")


async def _day(unit: Unit, day: date) -> dict:
    row = await unit.fetchrow(_DAY, day=day)
    return {
        "count": int(row["count"]),
        "reversals": int(row["reversals"]),
        **{k: fmt(Decimal(row[k])) for k in SPLIT},
        "covid": {
            "count": int(row["covid_count"]),
            "medfee_sumamt": fmt(Decimal(row["covid_medfee"])),
            "fin_subsidy_pay": fmt(Decimal(row["covid_fin"])),
        },
    }


async def _per_hour(unit: Unit, day: date) -> list[dict]:
    hours = {int(r["hour"]): r for r in await unit.fetch(_PER_HOUR, tz=str(BUSINESS_TZ), day=day)}
    return [
        {
            "hour": h,
            "count": int(hours[h]["count"]) if h in hours else 0,
            "medfee_sumamt": fmt(Decimal(hours[h]["medfee"])) if h in hours else "0.00",
        }
        for h in range(24)
    ]


async def _positions(unit: Unit) -> list[dict]:
    """Per institution: prepaid, fund payable, account payable (personal-account payments made there) and subsidy
    receivable so far (clearings are not events)."""
    book: dict[str, dict] = defaultdict(
        lambda: {
            "prepaid": ZERO,
            "special": ZERO,
            "fund_payable": ZERO,
            "subsidy_receivable": ZERO,
            "acct_payable": ZERO,
        }
    )
    for row in await unit.fetch(_PREPAID):
        book[row.fixmedins_code]["prepaid"] += Decimal(row.amount)
        if row.kind in SPECIAL_KINDS:
            book[row.fixmedins_code]["special"] += Decimal(row.amount)
    for row in await unit.fetch(_FUND_PAYABLE):
        book[row.fixmedins_code]["fund_payable"] += Decimal(row.fund)
        book[row.fixmedins_code]["acct_payable"] += Decimal(row.acct)
    for row in await unit.fetch(_SUBSIDY_RECEIVABLE):
        book[row.fixmedins_code]["subsidy_receivable"] += Decimal(row.amount)
    names = {row.fixmedins_code: row.fixmedins_name for row in await unit.fetch(_NAMES)}
    out = []
    for code in sorted(book):
        entry = book[code]
        net = entry["fund_payable"] + entry["acct_payable"] + entry["subsidy_receivable"] - entry["prepaid"]
        out.append(
            {
                "fixmedins_code": code,
                "fixmedins_name": names.get(code, code),
                **{k: fmt(v) for k, v in entry.items()},
                "net": fmt(net),
            }
        )
    return out


async def _subsidies_by_payer(unit: Unit) -> dict:
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for row in await unit.fetch(_SHARES, limit=MAX_SUBSIDY_ROWS):
        for entry in row.shares or []:
            totals[str(entry.get("payer"))] += (-1 if row.reversal else 1) * Decimal(str(entry.get("amount") or 0))
    return {payer: fmt(totals[payer]) for payer in ("central", "provincial", "city", "county")}


async def summary(unit: Unit, *, day: date) -> dict:
    """Everything the dashboard draws for one business day."""
    counts = dict((await unit.fetchrow(_COUNTS)).items())
    return {
        "date": day.isoformat(),
        "unit": "yuan",
        "day": await _day(unit, day),
        "per_hour": await _per_hour(unit, day),
        "positions": await _positions(unit),
        "subsidies_by_payer": await _subsidies_by_payer(unit),
        "counts": counts,
    }
