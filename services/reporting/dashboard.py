"""What the ops dashboard shows: a day's settlements and fund split, settlements per hour, COVID figures,
prepayment positions and finance subsidies as the events tell them."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.domain import SPECIAL_KINDS
from services.reporting.models import claims, covid_cases, institutions, persons, prepayments, subsidies
from services.reporting.models import settlement_moves as m
from shared.events.envelope import BUSINESS_TZ
from shared.money import ZERO, fmt

SPLIT = ("medfee_sumamt", "hifp_pay", "hifmi_pay", "maf_pay", "tilt_aid_pay", "fin_subsidy_pay", "acct_pay",
         "psn_cash_pay", "fund_pay_sumamt", "psn_pay")
MAX_SUBSIDY_ROWS = 200_000


def _sum(column):
    return func.coalesce(func.sum(column), 0)


async def _day(session: AsyncSession, day: date) -> dict:
    row = (await session.execute(select(_sum(m.c.sign).label("count"), *[_sum(m.c[k]).label(k) for k in SPLIT])
                                 .where(m.c.day == day))).one()
    covid = (await session.execute(select(_sum(m.c.sign).label("count"), _sum(m.c.medfee_sumamt).label("medfee"),
                                          _sum(m.c.fin_subsidy_pay).label("fin"))
                                   .where(m.c.day == day, m.c.covid_status.is_not(None)))).one()
    reversals = await session.scalar(select(func.count()).where(m.c.day == day, m.c.kind == "reverse"))
    return {"count": int(row.count), "reversals": int(reversals or 0),
            **{k: fmt(Decimal(row._mapping[k])) for k in SPLIT},
            "covid": {"count": int(covid.count), "medfee_sumamt": fmt(Decimal(covid.medfee)),
                      "fin_subsidy_pay": fmt(Decimal(covid.fin))}}


async def _per_hour(session: AsyncSession, day: date) -> list[dict]:
    hour = func.extract("hour", func.timezone(str(BUSINESS_TZ), m.c.at)).label("hour")
    rows = await session.execute(select(hour, _sum(m.c.sign).label("count"), _sum(m.c.medfee_sumamt).label("medfee"))
                                 .where(m.c.day == day).group_by(hour))
    hours = {int(r.hour): r for r in rows}
    return [{"hour": h, "count": int(hours[h].count) if h in hours else 0,
             "medfee_sumamt": fmt(Decimal(hours[h].medfee)) if h in hours else "0.00"} for h in range(24)]


async def _positions(session: AsyncSession) -> list[dict]:
    """Per institution: prepaid, fund payable and subsidy receivable so far (clearings are not events)."""
    book: dict[str, dict] = defaultdict(lambda: {"prepaid": ZERO, "special": ZERO, "fund_payable": ZERO,
                                                 "subsidy_receivable": ZERO})
    for row in await session.execute(select(prepayments.c.fixmedins_code, prepayments.c.kind,
                                            func.sum(prepayments.c.amount).label("amount"))
                                     .group_by(prepayments.c.fixmedins_code, prepayments.c.kind)):
        book[row.fixmedins_code]["prepaid"] += Decimal(row.amount)
        if row.kind in SPECIAL_KINDS:
            book[row.fixmedins_code]["special"] += Decimal(row.amount)
    for row in await session.execute(select(m.c.fixmedins_code, func.sum(m.c.fund_pay_sumamt).label("fund"))
                                     .group_by(m.c.fixmedins_code)):
        book[row.fixmedins_code]["fund_payable"] += Decimal(row.fund)
    signed = func.sum(case((subsidies.c.reversal, -subsidies.c.amount), else_=subsidies.c.amount))
    for row in await session.execute(select(subsidies.c.fixmedins_code, signed.label("amount"))
                                     .group_by(subsidies.c.fixmedins_code)):
        book[row.fixmedins_code]["subsidy_receivable"] += Decimal(row.amount)
    names = dict((await session.execute(select(institutions.c.fixmedins_code, institutions.c.fixmedins_name))).all())
    out = []
    for code in sorted(book):
        entry = book[code]
        net = entry["fund_payable"] + entry["subsidy_receivable"] - entry["prepaid"]
        out.append({"fixmedins_code": code, "fixmedins_name": names.get(code, code),
                    **{k: fmt(v) for k, v in entry.items()}, "net": fmt(net)})
    return out


async def _subsidies_by_payer(session: AsyncSession) -> dict:
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    rows = await session.execute(select(subsidies.c.shares, subsidies.c.reversal).limit(MAX_SUBSIDY_ROWS))
    for shares, reversal in rows:
        for entry in shares or []:
            totals[str(entry.get("payer"))] += (-1 if reversal else 1) * Decimal(str(entry.get("amount") or 0))
    return {payer: fmt(totals[payer]) for payer in ("central", "provincial", "city", "county")}


async def summary(session: AsyncSession, *, day: date) -> dict:
    """Everything the dashboard draws for one business day."""
    counts = {
        "institutions": await session.scalar(select(func.count()).select_from(institutions)),
        "persons": await session.scalar(select(func.count()).select_from(persons)),
        "covid_cases": await session.scalar(select(func.count()).select_from(covid_cases)
                                            .where(covid_cases.c.status != "excluded")),
        "claims": await session.scalar(select(func.count()).select_from(claims)),
    }
    return {"date": day.isoformat(), "unit": "yuan", "day": await _day(session, day),
            "per_hour": await _per_hour(session, day), "positions": await _positions(session),
            "subsidies_by_payer": await _subsidies_by_payer(session), "counts": counts}
