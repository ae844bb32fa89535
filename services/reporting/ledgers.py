"""附件3, the COVID case ledger, and 附件4, the special prepayments per pooling area (cutoff 17:00 the day
before the filing date)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.reporting.areas import Area, pattern, sql_filter
from services.reporting.domain import SPECIAL_KINDS, age_on, area_name, business_day, cutoff_for, ledger_person
from shared.db import Sql, Unit
from shared.events.envelope import BUSINESS_TZ
from shared.money import ZERO, fmt

MAX_LEDGER_ROWS = 20_000

# The case's inpatient stay, when the settlement of one is known (inpatients are settled at discharge): a stay of the
# person, not reversed, that had not ended before the diagnosis and began at most STAY_WINDOW days after it; at the
# case's hospital first, a COVID settlement first, the one beginning closest to the diagnosis.
STAY_WINDOW = 7
_LEDGER = Sql(f"""
SELECT c.case_id, c.psn_no, c.status, c.diagnosed_at, c.fixmedins_code, c.diagnosis, c.psn_name, c.gend, c.brdy,
       c.certno, c.insutype, c.insuplc_admdvs, i.fixmedins_name, stay.begndate AS admitted_on
  FROM covid_cases c
  LEFT JOIN institutions i ON i.fixmedins_code = c.fixmedins_code
  LEFT JOIN LATERAL (
       SELECT m.begndate FROM settlement_moves m
        WHERE m.psn_no = c.psn_no AND m.med_type = '21' AND m.kind = 'settle' AND m.begndate IS NOT NULL
          AND m.begndate <= CAST(c.diagnosed_at AT TIME ZONE 'Asia/Shanghai' AS date) + {STAY_WINDOW}
          AND coalesce(m.enddate, m.begndate) >= CAST(c.diagnosed_at AT TIME ZONE 'Asia/Shanghai' AS date)
          AND NOT EXISTS (SELECT 1 FROM settlement_moves r WHERE r.setl_id = m.setl_id AND r.kind = 'reverse')
        ORDER BY (m.fixmedins_code = c.fixmedins_code) DESC, (m.covid_status IS NOT NULL) DESC,
                 abs(m.begndate - CAST(c.diagnosed_at AT TIME ZONE 'Asia/Shanghai' AS date)), m.begndate
        LIMIT 1) stay ON true
 WHERE c.published IS TRUE AND c.status <> 'excluded' AND c.diagnosed_at <= :cutoff AND {sql_filter("i.admdvs")}
 ORDER BY c.diagnosed_at, c.case_id LIMIT :limit
""")
_HOSPITAL_AREAS = Sql(f"SELECT DISTINCT admdvs FROM institutions WHERE kind = 'hospital' AND {sql_filter('admdvs')}")
_SPECIAL_PREPAID = Sql(f"""
SELECT admdvs, kind, SUM(amount) AS amount, count(*) AS count
  FROM prepayments WHERE kind = ANY(CAST(:kinds AS text[])) AND effective_at <= :cutoff AND {sql_filter("admdvs")}
 GROUP BY admdvs, kind
""")


async def covid_ledger(unit: Unit, *, filing_date: date, unmasked: bool, area: Area | None = None) -> dict:
    """Officially published cases (not excluded) diagnosed up to the cutoff, oldest first.

    Status and publication are the newest the service knows; the name and ID number are masked
    unless the caller is admin (ledger_person). The admission date is that of the case's inpatient stay when its
    settlement is known (`admission_date_from: inpatient_stay`), else the day of the diagnosis.
    """
    cutoff = cutoff_for(filing_date)
    items = []
    for row in await unit.fetch(_LEDGER, cutoff=cutoff, limit=MAX_LEDGER_ROWS, area=pattern(area)):
        admitted = row.admitted_on or business_day(row.diagnosed_at)  # the stay's admission, else the diagnosis
        name, certno = ledger_person(psn_name=row.psn_name, certno=row.certno, unmasked=unmasked)
        item = {
            "case_id": row.case_id,
            "psn_name": name,
            "gend": row.gend,
            "age": age_on(row.brdy, admitted),
            "certno": certno,
            "diagnosis": row.diagnosis,
            "admission_date": admitted.isoformat(),
            "admission_date_from": "inpatient_stay" if row.admitted_on else "diagnosis",
            "diagnosed_at": row.diagnosed_at.astimezone(BUSINESS_TZ).isoformat(),
            "fixmedins_code": row.fixmedins_code,
            "fixmedins_name": row.fixmedins_name or row.fixmedins_code,
            "insutype": row.insutype,
            "insuplc_admdvs": row.insuplc_admdvs,
            "insuplc_name": area_name(row.insuplc_admdvs),
            "status": row.status,
        }
        if unmasked:
            item["psn_no"] = row.psn_no
        items.append(item)
    return {
        "date": filing_date.isoformat(),
        "cutoff": cutoff.isoformat(),
        "masked": not unmasked,
        "count": len(items),
        "items": items,
    }


async def prepayment_table(unit: Unit, *, filing_date: date, area: Area | None = None) -> dict:
    """Cumulative special prepayment (covid_special + top_up) per pooling area up to the cutoff.

    Every pooling area with a designated hospital or a prepayment has a row (zero rows included).
    """
    cutoff = cutoff_for(filing_date)
    areas: dict[str, dict] = {}

    def row_of(admdvs: str) -> dict:
        return areas.setdefault(
            admdvs,
            {
                "admdvs": admdvs,
                "area_name": area_name(admdvs),
                "amount": ZERO,
                "covid_special": ZERO,
                "top_up": ZERO,
                "count": 0,
            },
        )

    for row in await unit.fetch(_HOSPITAL_AREAS, area=pattern(area)):
        row_of(row.admdvs)
    for row in await unit.fetch(_SPECIAL_PREPAID, kinds=list(SPECIAL_KINDS), cutoff=cutoff, area=pattern(area)):
        entry = row_of(row.admdvs)
        entry[row.kind] += Decimal(row.amount)
        entry["amount"] += Decimal(row.amount)
        entry["count"] += int(row["count"])
    rows = [areas[k] for k in sorted(areas)]
    money = ("amount", "covid_special", "top_up")
    total = {**{k: sum((r[k] for r in rows), ZERO) for k in money}, "count": sum(r["count"] for r in rows)}
    return {
        "date": filing_date.isoformat(),
        "cutoff": cutoff.isoformat(),
        "unit": "yuan",
        "rows": [{**r, **{k: fmt(r[k]) for k in money}} for r in rows],
        "total": {**total, **{k: fmt(total[k]) for k in money}},
    }
