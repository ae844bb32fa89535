"""Institution warnings (seed 002, DOMAIN §13): monthly indicators per hospital against the policy's thresholds.

Per hospital and month (settlements by their settlement date, reversals netted on the same date): cost per outpatient
visit and per inpatient stay with their growth over the same month a year earlier, the personal share
(psn_pay ÷ medfee), the examination share, the out-of-catalogue (class C) share, the essential-drug share of drug cost
by level; and, for county hospitals, aid recipients' inpatient self-pay share of the year so far (≤ 10 %, and not
above the previous year's). A hospital with fewer settlements in the month than `min_settlements` is not judged.

`evaluate_month` raises an alert per indicator that fails (once per hospital, indicator and month — the aid share
once per year) and withdraws the open ones of that month that pass now (a reversal changed the figures). The service
runs it for the current and the previous month every `check_minutes`; `POST /v1/alerts/checks` runs it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from services.reporting import alerts, rules
from services.reporting.alerts import Finding, Supervision
from services.reporting.areas import Area, pattern, sql_filter
from shared.db import Row, Sql, Unit
from shared.money import fmt
from shared.supervision import SupervisionPolicy

_VISIT = "m.med_type IN ('11', '14')"
_STAY = "m.med_type = '21'"
_AID_STAY = "m.med_type = '21' AND m.aid_category IS NOT NULL"
_MONTH = Sql(f"""
SELECT m.fixmedins_code, max(i.fixmedins_name) AS name, max(m.fixmedins_kind) AS kind,
       max(m.fixmedins_level) AS level, max(m.fixmedins_affiliation) AS affiliation,
       max(m.fixmedins_admdvs) AS admdvs,
       COALESCE(SUM(m.sign), 0) AS settlements, COALESCE(SUM(m.medfee_sumamt), 0) AS medfee,
       COALESCE(SUM(m.psn_pay), 0) AS psn_pay, COALESCE(SUM(m.fulamt_ownpay_amt), 0) AS outside,
       COALESCE(SUM(m.exam_amt), 0) AS exam, COALESCE(SUM(m.drug_amt), 0) AS drug,
       COALESCE(SUM(m.essential_drug_amt), 0) AS essential,
       COALESCE(SUM(m.sign) FILTER (WHERE {_VISIT}), 0) AS visits,
       COALESCE(SUM(m.medfee_sumamt) FILTER (WHERE {_VISIT}), 0) AS visit_medfee,
       COALESCE(SUM(m.sign) FILTER (WHERE {_STAY}), 0) AS stays,
       COALESCE(SUM(m.medfee_sumamt) FILTER (WHERE {_STAY}), 0) AS stay_medfee
  FROM settlement_moves m LEFT JOIN institutions i ON i.fixmedins_code = m.fixmedins_code
 WHERE m.setl_date >= :first AND m.setl_date < :following AND {sql_filter("m.fixmedins_admdvs")}
 GROUP BY m.fixmedins_code
""")
_AID = Sql(f"""
SELECT m.fixmedins_code,
       COALESCE(SUM(m.inscp_scp_amt) FILTER (WHERE {_AID_STAY}), 0) AS inscp,
       COALESCE(SUM(m.inscp_scp_amt - m.hifp_pay - m.hifmi_pay - m.maf_pay - m.tilt_aid_pay)
                FILTER (WHERE {_AID_STAY}), 0) AS burden
  FROM settlement_moves m
 WHERE m.setl_date >= :first AND m.setl_date < :following AND m.fixmedins_affiliation = 'county'
   AND {sql_filter("m.fixmedins_admdvs")}
 GROUP BY m.fixmedins_code
""")
_AID_RULE = "indicator.aid_self_pay_share"
_OPEN_OF = Sql(f"""
SELECT alert_id, rule, subject, window_start, window_end FROM alerts
 WHERE kind = 'indicator' AND status = 'open'
   AND ((rule <> '{_AID_RULE}' AND window_start = :first) OR (rule = '{_AID_RULE}' AND window_start = :year_first))
""")


@dataclass(frozen=True, slots=True)
class Month:
    first: date

    @property
    def following(self) -> date:
        return rules.next_month(self.first)

    @property
    def last(self) -> date:
        return self.following - timedelta(days=1)

    @property
    def text(self) -> str:
        return f"{self.first:%Y-%m}"

    def year_before(self) -> Month:
        return Month(date(self.first.year - 1, self.first.month, 1))


def month_of(text: str) -> Month:
    return Month(date(int(text[:4]), int(text[5:7]), 1))


def _per(amount: Decimal, count: int) -> Decimal | None:
    return amount / count if count > 0 else None


def _share_item(name: str, value: Decimal | None, threshold: Decimal, *, below: bool = False) -> dict[str, Any]:
    flagged = value is not None and (value < threshold if below else value > threshold)
    return {"indicator": name, "value": rules.ratio_text(value), "threshold": str(threshold), "flagged": flagged}


def judge(row: Row, before: Row | None, aid: tuple[Decimal | None, Decimal | None], policy: SupervisionPolicy) -> dict:
    """One hospital's month: its indicators, each with its value, threshold and whether it fails."""
    limits = policy.indicators
    medfee = Decimal(row.medfee)
    visits, stays = int(row.visits), int(row.stays)
    per_visit = _per(Decimal(row.visit_medfee), visits)
    per_stay = _per(Decimal(row.stay_medfee), stays)
    prev_visit = _per(Decimal(before.visit_medfee), int(before.visits)) if before is not None else None
    prev_stay = _per(Decimal(before.stay_medfee), int(before.stays)) if before is not None else None
    growth_visit = rules.share(per_visit - prev_visit, prev_visit) if per_visit and prev_visit else None
    growth_stay = rules.share(per_stay - prev_stay, prev_stay) if per_stay and prev_stay else None
    level = int(row.level) if row.level in (1, 2, 3) else None
    drug = Decimal(row.drug)
    items = [
        _share_item("cost_growth_outpatient", growth_visit, limits.growth_max),
        _share_item("cost_growth_inpatient", growth_stay, limits.growth_max),
        _share_item("self_pay_share", rules.share(Decimal(row.psn_pay), medfee), limits.self_pay_max),
        _share_item("exam_share", rules.share(Decimal(row.exam), medfee), limits.exam_share_max),
        _share_item("outside_catalogue_share", rules.share(Decimal(row.outside), medfee), limits.outside_catalogue_max),
    ]
    if level is not None:
        essential = rules.share(Decimal(row.essential), drug)
        items.append(_share_item("essential_drug_share", essential, limits.essential_min[level], below=True))
    year_share, previous_share = aid
    if row.affiliation == "county" and year_share is not None:
        item = _share_item("aid_self_pay_share", year_share, limits.aid_self_pay_max)
        item["previous_year"] = rules.ratio_text(previous_share)
        item["flagged"] = item["flagged"] or (previous_share is not None and year_share > previous_share)
        items.append(item)
    return {
        "fixmedins_code": row.fixmedins_code,
        "fixmedins_name": row.name or row.fixmedins_code,
        "level": level,
        "affiliation": row.affiliation,
        "admdvs": row.admdvs,
        "settlements": int(row.settlements),
        "judged": int(row.settlements) >= limits.min_settlements,
        "medfee_sumamt": fmt(medfee),
        "cost_per_outpatient_visit": None if per_visit is None else fmt(per_visit),
        "cost_per_outpatient_visit_year_before": None if prev_visit is None else fmt(prev_visit),
        "cost_per_inpatient_stay": None if per_stay is None else fmt(per_stay),
        "cost_per_inpatient_stay_year_before": None if prev_stay is None else fmt(prev_stay),
        "indicators": items,
    }


async def _aid_shares(unit: Unit, month: Month, area: str | None) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    """County hospitals: aid recipients' inpatient self-pay share of the month's year (as far as it is known, so that
    every month of a year judges it alike), and of the whole previous year."""
    year_first = date(month.first.year, 1, 1)
    year_end = date(month.first.year + 1, 1, 1)
    now = {r.fixmedins_code: r for r in await unit.fetch(_AID, first=year_first, following=year_end, area=area)}
    before = {
        r.fixmedins_code: r
        for r in await unit.fetch(_AID, first=date(year_first.year - 1, 1, 1), following=year_first, area=area)
    }
    shares = {}
    for code, row in now.items():
        prev = before.get(code)
        shares[code] = (
            rules.share(Decimal(row.burden), Decimal(row.inscp)),
            rules.share(Decimal(prev.burden), Decimal(prev.inscp)) if prev is not None else None,
        )
    return shares


async def month_indicators(unit: Unit, *, month: Month, area: Area | None, policy: SupervisionPolicy) -> dict:
    """Every hospital's indicators of a month (the report behind the institution warnings)."""
    where = pattern(area)
    rows = await unit.fetch(_MONTH, first=month.first, following=month.following, area=where)
    earlier = month.year_before()
    before = {
        r.fixmedins_code: r
        for r in await unit.fetch(_MONTH, first=earlier.first, following=earlier.following, area=where)
    }
    aid = await _aid_shares(unit, month, where)
    items = [
        judge(row, before.get(row.fixmedins_code), aid.get(row.fixmedins_code, (None, None)), policy)
        for row in sorted(rows, key=lambda r: r.fixmedins_code)
        if row.kind == "hospital"
    ]
    return {
        "month": month.text,
        "rule_version": policy.version,
        "area": None if area is None else area.to_json(),
        "min_settlements": policy.indicators.min_settlements,
        "items": items,
    }


def findings_of(report: dict, month: Month) -> list[Finding]:
    """An alert per failing indicator of a judged hospital."""
    found = []
    for item in report["items"]:
        for indicator in item["indicators"]:
            yearly = f"indicator.{indicator['indicator']}" == _AID_RULE  # the year's share: any month judges it alike
            if not indicator["flagged"] or not (item["judged"] or yearly):
                continue
            first = date(month.first.year, 1, 1) if yearly else month.first
            last = date(month.first.year, 12, 31) if yearly else month.last
            found.append(
                Finding(
                    kind="indicator",
                    rule=f"indicator.{indicator['indicator']}",
                    subject=item["fixmedins_code"],
                    window_start=first,
                    window_end=last,
                    facts={
                        "fixmedins_code": item["fixmedins_code"],
                        "fixmedins_name": item["fixmedins_name"],
                        "level": item["level"],
                        "month": month.text,
                        "settlements": item["settlements"],
                        **indicator,
                    },
                    fixmedins_code=item["fixmedins_code"],
                    admdvs=item["admdvs"],
                )
            )
    return found


async def evaluate_month(unit: Unit, supervision: Supervision, month: Month) -> dict[str, int]:
    """Raise the month's failing indicators; withdraw its open indicator alerts that pass now."""
    policy = supervision.book.on(month.first)
    report = await month_indicators(unit, month=month, area=None, policy=policy)
    found = findings_of(report, month)
    raised = 0
    for finding in found:
        if await alerts.raise_alert(unit, supervision, finding, version=policy.version) is not None:
            raised += 1
    failing = {finding.key for finding in found}
    withdrawn = 0
    for row in await unit.fetch(_OPEN_OF, first=month.first, year_first=date(month.first.year, 1, 1)):
        key = f"{row.rule}|{row.subject}|{row.window_start.isoformat()}|{row.window_end.isoformat()}"
        if key in failing:
            continue
        note = f"the figures of {month.text} no longer fail this indicator"
        if await alerts.close(unit, supervision, row.alert_id, resolution=alerts.WITHDRAWN, note=note):
            withdrawn += 1
    return {"raised": raised, "withdrawn": withdrawn}
