"""附件3, the COVID case ledger, and 附件4, the special prepayments per pooling area (cutoff 17:00 the day
before the filing date)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.domain import (SPECIAL_KINDS, age_on, area_name, business_day, cutoff_for, ledger_person)
from services.reporting.models import covid_cases as c
from services.reporting.models import institutions as i
from services.reporting.models import prepayments as p
from shared.events.envelope import BUSINESS_TZ
from shared.money import ZERO, fmt

MAX_LEDGER_ROWS = 20_000


async def covid_ledger(session: AsyncSession, *, filing_date: date, unmasked: bool) -> dict:
    """Officially published cases (not excluded) diagnosed up to the cutoff, oldest first.

    Status and publication are the newest the service knows; the name and ID number are masked
    unless the caller is admin (ledger_person).
    """
    cutoff = cutoff_for(filing_date)
    query = (select(c, i.c.fixmedins_name)
             .select_from(c.outerjoin(i, i.c.fixmedins_code == c.c.fixmedins_code))
             .where(c.c.published.is_(True), c.c.status != "excluded", c.c.diagnosed_at <= cutoff)
             .order_by(c.c.diagnosed_at, c.c.case_id).limit(MAX_LEDGER_ROWS))
    items = []
    for row in await session.execute(query):
        admitted = business_day(row.diagnosed_at)
        name, certno = ledger_person(psn_name=row.psn_name, certno=row.certno, unmasked=unmasked)
        item = {"case_id": row.case_id, "psn_name": name, "gend": row.gend, "age": age_on(row.brdy, admitted),
                "certno": certno, "diagnosis": row.diagnosis, "admission_date": admitted.isoformat(),
                "diagnosed_at": row.diagnosed_at.astimezone(BUSINESS_TZ).isoformat(),
                "fixmedins_code": row.fixmedins_code, "fixmedins_name": row.fixmedins_name or row.fixmedins_code,
                "insutype": row.insutype, "insuplc_admdvs": row.insuplc_admdvs,
                "insuplc_name": area_name(row.insuplc_admdvs), "status": row.status}
        if unmasked:
            item["psn_no"] = row.psn_no
        items.append(item)
    return {"date": filing_date.isoformat(), "cutoff": cutoff.isoformat(), "masked": not unmasked,
            "count": len(items), "items": items}


async def prepayment_table(session: AsyncSession, *, filing_date: date) -> dict:
    """Cumulative special prepayment (covid_special + top_up) per pooling area up to the cutoff.

    Every pooling area with a designated hospital or a prepayment has a row (zero rows included).
    """
    cutoff = cutoff_for(filing_date)
    query = (select(p.c.admdvs, p.c.kind, func.sum(p.c.amount).label("amount"), func.count().label("count"))
             .where(p.c.kind.in_(SPECIAL_KINDS), p.c.effective_at <= cutoff)
             .group_by(p.c.admdvs, p.c.kind))
    areas: dict[str, dict] = {}

    def area(admdvs: str) -> dict:
        return areas.setdefault(admdvs, {"admdvs": admdvs, "area_name": area_name(admdvs), "amount": ZERO,
                                         "covid_special": ZERO, "top_up": ZERO, "count": 0})

    for (admdvs,) in await session.execute(select(i.c.admdvs).where(i.c.kind == "hospital").distinct()):
        area(admdvs)
    for row in await session.execute(query):
        entry = area(row.admdvs)
        entry[row.kind] += Decimal(row.amount)
        entry["amount"] += Decimal(row.amount)
        entry["count"] += int(row.count)
    rows = [areas[k] for k in sorted(areas)]
    money = ("amount", "covid_special", "top_up")
    total = {**{k: sum((r[k] for r in rows), ZERO) for k in money}, "count": sum(r["count"] for r in rows)}
    return {"date": filing_date.isoformat(), "cutoff": cutoff.isoformat(), "unit": "yuan",
            "rows": [{**r, **{k: fmt(r[k]) for k in money}} for r in rows],
            "total": {**total, **{k: fmt(total[k]) for k in money}}}
