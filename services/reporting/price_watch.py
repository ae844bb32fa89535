"""Price and sales watch of the watched goods (DOMAIN §13): the catalogue's `watched` codes (antigen kits, the COVID
drugs, fever / cough / cold OTC drugs, masks).

- Alerts: a settled unit price above its monitoring cap (the policy's `price.caps`), or above rise_ratio × the median
  unit price of the same code at the same institution over the previous baseline_days days (with at least
  baseline_min_lines lines in that baseline). One alert per code, institution and day.
- Reports: the day's unit prices per code and institution, and the day's sales of the watched goods per pharmacy and
  district (pharmacy settlements and retail purchases), net of reversals.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from services.reporting import rules
from services.reporting.alerts import Finding
from services.reporting.areas import Area, pattern, sql_filter
from services.reporting.domain import area_name
from services.reporting.lines import LIVE_LINE, Line, Settled
from shared.db import Row, Sql, Unit
from shared.money import ZERO, fmt
from shared.supervision import SupervisionPolicy

# The median of each (code, day)'s baseline at one institution: the two middle prices (percentile_disc of both
# orders), exactly; `n` the lines in it.
_BASELINE = Sql(f"""
SELECT x.codg, x.code, x.day, count(l.setl_id) AS n,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY l.pric) AS low,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY l.pric DESC) AS high
  FROM unnest(CAST(:codes AS text[]), CAST(:institutions AS text[]), CAST(:days AS date[])) AS x(codg, code, day)
  LEFT JOIN settlement_lines l
    ON l.watched AND l.med_list_codg = x.codg AND l.fixmedins_code = x.code
   AND l.fee_day >= x.day - CAST(:baseline_days AS int) AND l.fee_day < x.day AND {LIVE_LINE}
 GROUP BY x.codg, x.code, x.day
""")
_DAY_HIGH = Sql(f"""
SELECT max(l.pric) FROM settlement_lines l
 WHERE l.watched AND l.med_list_codg = :codg AND l.fixmedins_code = :fixmedins_code AND l.fee_day = :day
   AND {LIVE_LINE}
""")
_PRICES = Sql(f"""
SELECT l.med_list_codg, max(l.med_list_name) AS name, l.fixmedins_code, max(l.fixmedins_admdvs) AS admdvs,
       max(l.fixmedins_kind) AS kind, count(*) AS lines, sum(l.cnt) AS quantity, sum(l.amount) AS amount,
       min(l.pric) AS low, max(l.pric) AS high
  FROM settlement_lines l
 WHERE l.watched AND l.fee_day = :day AND {sql_filter("l.fixmedins_admdvs")} AND {LIVE_LINE}
 GROUP BY l.med_list_codg, l.fixmedins_code
 ORDER BY l.med_list_codg, l.fixmedins_code
""")
_SALES = Sql(f"""
SELECT l.fixmedins_admdvs AS admdvs, l.fixmedins_code, l.med_list_codg, max(l.med_list_name) AS name,
       count(DISTINCT l.setl_id) AS settlements, sum(l.cnt) AS quantity, sum(l.amount) AS amount,
       bool_or(l.retail_purchase) AS purchases
  FROM settlement_lines l
 WHERE l.watched AND l.fixmedins_kind = 'pharmacy' AND l.fee_day = :day AND {sql_filter("l.fixmedins_admdvs")}
   AND {LIVE_LINE}
 GROUP BY l.fixmedins_admdvs, l.fixmedins_code, l.med_list_codg
 ORDER BY l.fixmedins_admdvs, l.fixmedins_code, l.med_list_codg
""")
_NAMES = Sql(
    "SELECT fixmedins_code, fixmedins_name FROM institutions WHERE fixmedins_code = ANY(CAST(:codes AS text[]))"
)


def _highest(settled: list[Settled]) -> dict[tuple[str, str, date], tuple[Settled, Line]]:
    """Per (institution, code, day), the watched line with the highest unit price, and its settlement."""
    top: dict[tuple[str, str, date], tuple[Settled, Line]] = {}
    for one in settled:
        for line in one.lines:
            if line.watched:
                key = (one.fixmedins_code, line.med_list_codg, line.fee_day)
                if key not in top or line.pric > top[key][1].pric:
                    top[key] = (one, line)
    return top


def _finding(settled: Settled, line: Line, rule: str, facts: dict[str, Any]) -> Finding:
    return Finding(
        kind="price",
        rule=rule,
        subject=f"{line.med_list_codg}@{settled.fixmedins_code}",
        window_start=line.fee_day,
        window_end=line.fee_day,
        facts={
            "med_list_codg": line.med_list_codg,
            "med_list_name": line.med_list_name,
            "fixmedins_code": settled.fixmedins_code,
            "day": line.fee_day.isoformat(),
            "pric": fmt(line.pric),
            "setl_id": settled.setl_id,
            "feedetl_sn": line.feedetl_sn,
            **facts,
        },
        fixmedins_code=settled.fixmedins_code,
        admdvs=settled.fixmedins_admdvs,
        setl_ids=(settled.setl_id,),
    )


async def price_findings(unit: Unit, settled: list[Settled], policy: SupervisionPolicy) -> list[Finding]:
    """The price rules for the watched lines of settlements just applied (one statement for their baselines)."""
    top = _highest(settled)
    if not top:
        return []
    watch = policy.price
    found = []
    for (_, code, _), (one, line) in sorted(top.items(), key=lambda item: item[0]):
        cap = watch.caps.get(code)
        if cap is not None and rules.above_cap(line.pric, cap):
            found.append(_finding(one, line, "price.cap", {"cap": fmt(cap), "threshold": fmt(cap)}))
    keys = sorted(top)
    rows = await unit.fetch(
        _BASELINE,
        institutions=[i for i, _, _ in keys],
        codes=[c for _, c, _ in keys],
        days=[d for _, _, d in keys],
        baseline_days=watch.baseline_days,
    )
    for row in rows:
        if int(row.n) < watch.baseline_min_lines:
            continue
        one, line = top[(row.code, row.codg, row.day)]
        middle = rules.median(Decimal(row.low), Decimal(row.high))
        threshold = rules.rise_threshold(middle, watch.rise_ratio)
        if line.pric > threshold:
            facts = {
                "median": f"{middle:.3f}",
                "rise_ratio": f"{watch.rise_ratio}",
                "threshold": f"{threshold:.4f}",
                "baseline_lines": int(row.n),
                "baseline_from": (line.fee_day - timedelta(days=watch.baseline_days)).isoformat(),
                "baseline_to": (line.fee_day - timedelta(days=1)).isoformat(),
            }
            found.append(_finding(one, line, "price.rise", facts))
    return found


async def still_holds(unit: Unit, alert: Row) -> bool:
    """Whether a price alert still holds: a live line of its code at its institution that day above its threshold."""
    facts = alert.facts
    high = await unit.fetchval(
        _DAY_HIGH, codg=facts["med_list_codg"], fixmedins_code=alert.fixmedins_code, day=alert.window_start
    )
    return high is not None and Decimal(high) > Decimal(facts["threshold"])


async def _names(unit: Unit, codes: set[str]) -> dict[str, str]:
    rows = await unit.fetch(_NAMES, codes=sorted(codes))
    return {row.fixmedins_code: row.fixmedins_name for row in rows}


async def watched_prices(unit: Unit, *, day: date, area: Area | None, policy: SupervisionPolicy) -> dict[str, Any]:
    """The day's unit prices of the watched goods per code and institution (lowest, average, highest)."""
    rows = await unit.fetch(_PRICES, day=day, area=pattern(area))
    names = await _names(unit, {row.fixmedins_code for row in rows})
    items = []
    for row in rows:
        quantity = Decimal(row.quantity)
        cap = policy.price.caps.get(row.med_list_codg)
        items.append(
            {
                "med_list_codg": row.med_list_codg,
                "med_list_name": row.name,
                "fixmedins_code": row.fixmedins_code,
                "fixmedins_name": names.get(row.fixmedins_code, row.fixmedins_code),
                "fixmedins_kind": row.kind,
                "admdvs": row.admdvs,
                "lines": int(row.lines),
                "quantity": format(quantity.normalize(), "f"),
                "amount": fmt(Decimal(row.amount)),
                "lowest_pric": fmt(Decimal(row.low)),
                "average_pric": fmt(Decimal(row.amount) / quantity) if quantity else None,
                "highest_pric": fmt(Decimal(row.high)),
                "cap": None if cap is None else fmt(cap),
                "above_cap": cap is not None and Decimal(row.high) > cap,
            }
        )
    return {"date": day.isoformat(), "area": None if area is None else area.to_json(), "items": items}


async def watched_sales(unit: Unit, *, day: date, area: Area | None) -> dict[str, Any]:
    """The day's sales of the watched goods at pharmacies, per pharmacy and code, with totals per district."""
    rows = await unit.fetch(_SALES, day=day, area=pattern(area))
    names = await _names(unit, {row.fixmedins_code for row in rows})
    districts: dict[str, dict[str, Any]] = defaultdict(lambda: {"quantity": ZERO, "amount": ZERO, "pharmacies": set()})
    items = []
    for row in rows:
        district = districts[row.admdvs or ""]
        district["quantity"] += Decimal(row.quantity)
        district["amount"] += Decimal(row.amount)
        district["pharmacies"].add(row.fixmedins_code)
        items.append(
            {
                "admdvs": row.admdvs,
                "area_name": area_name(row.admdvs),
                "fixmedins_code": row.fixmedins_code,
                "fixmedins_name": names.get(row.fixmedins_code, row.fixmedins_code),
                "med_list_codg": row.med_list_codg,
                "med_list_name": row.name,
                "settlements": int(row.settlements),
                "quantity": format(Decimal(row.quantity).normalize(), "f"),
                "amount": fmt(Decimal(row.amount)),
            }
        )
    return {
        "date": day.isoformat(),
        "unit": "yuan",
        "area": None if area is None else area.to_json(),
        "items": items,
        "districts": [
            {
                "admdvs": code,
                "area_name": area_name(code),
                "pharmacies": len(totals["pharmacies"]),
                "quantity": format(totals["quantity"].normalize(), "f"),
                "amount": fmt(totals["amount"]),
            }
            for code, totals in sorted(districts.items())
        ],
    }
