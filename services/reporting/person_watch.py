"""The rules about one person across their settlements (DOMAIN §13): 防返贫 high cost, visit frequency, one
credential at several institutions on one day — and, through line_watch.py, the patterns in the lines.

They run when settlements of the person are applied, on the person's rows of the read models (indexed by person): one
statement for a whole run of settlements. A settlement counts while it has no `reverse` move. `still_holds` says
whether an open alert still holds after a reversal.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from services.reporting import line_watch, rules
from services.reporting.alerts import MAX_EVIDENCE, Finding
from services.reporting.lines import LIVE_MOVE, Settled
from shared.db import Row, Sql, Unit
from shared.money import fmt
from shared.supervision import SupervisionPolicy

# What the person rules need of each settlement of a batch, in one statement: per settlement, over the person's live
# settlements, the burden and whether a watched identity was held in its year, the outpatient visits begun in the
# window ending on its visit day, the institutions on its settlement day.
_PERSONS = Sql(f"""
SELECT x.i, f.burden, f.held, f.visits, f.institutions
  FROM unnest(CAST(:psn_nos AS text[]), CAST(:setl_dates AS date[]), CAST(:days AS date[]),
              CAST(:year_firsts AS date[]), CAST(:year_lasts AS date[]), CAST(:visit_froms AS date[]))
       WITH ORDINALITY AS x(psn_no, setl_date, day, year_first, year_last, visit_from, i)
 CROSS JOIN LATERAL (
   SELECT COALESCE(SUM(s.psn_pay) FILTER (WHERE s.setl_date BETWEEN x.year_first AND x.year_last), 0) AS burden,
          COALESCE(bool_or(s.aid_categories && CAST(:categories AS varchar[]))
                   FILTER (WHERE s.setl_date BETWEEN x.year_first AND x.year_last), false) AS held,
          count(*) FILTER (WHERE s.med_type = ANY(CAST(:visit_types AS text[]))
                             AND s.begndate BETWEEN x.visit_from AND x.day) AS visits,
          count(DISTINCT s.fixmedins_code) FILTER (WHERE s.setl_date = x.setl_date) AS institutions
     FROM settlement_moves s
    WHERE s.psn_no = x.psn_no AND s.kind = 'settle'
      AND s.setl_date BETWEEN LEAST(x.year_first, x.visit_from) AND GREATEST(x.year_last, x.day + 7)
      AND {LIVE_MOVE}) f
 ORDER BY x.i
""")
# The settlements behind an alert (evidence): the person's live settlements of a period.
_SETTLEMENTS = Sql(f"""
SELECT s.setl_id, s.setl_date, s.begndate, s.med_type, s.fixmedins_code, s.medfee_sumamt, s.psn_pay,
       s.aid_categories
  FROM settlement_moves s
 WHERE s.psn_no = :psn_no AND s.kind = 'settle' AND s.setl_date BETWEEN :first AND :last
   AND (CAST(:visit_types AS text[]) IS NULL OR (s.med_type = ANY(CAST(:visit_types AS text[]))
                                                 AND s.begndate BETWEEN :first AND :last))
   AND (CAST(:positive AS boolean) IS NULL OR s.psn_pay > 0)
   AND {LIVE_MOVE}
 ORDER BY s.setl_date, s.setl_id
 LIMIT {MAX_EVIDENCE}
""")
_LIVE_SETTLEMENT = Sql(
    "SELECT NOT EXISTS (SELECT 1 FROM settlement_moves WHERE setl_id = :setl_id AND kind = 'reverse') "
    "AND EXISTS (SELECT 1 FROM settlement_moves WHERE setl_id = :setl_id AND kind = 'settle')"
)


def _settlement_view(row: Row) -> dict[str, Any]:
    return {
        "setl_id": row.setl_id,
        "setl_date": row.setl_date.isoformat(),
        "begndate": row.begndate.isoformat() if row.begndate else None,
        "med_type": row.med_type,
        "fixmedins_code": row.fixmedins_code,
        "medfee_sumamt": fmt(row.medfee_sumamt),
        "psn_pay": fmt(row.psn_pay),
    }


async def _settlements(
    unit: Unit, psn_no: str, first: date, last: date, *, visits: tuple[str, ...] | None = None, positive: bool = False
) -> list[dict[str, Any]]:
    rows = await unit.fetch(
        _SETTLEMENTS,
        psn_no=psn_no,
        first=first,
        last=last,
        visit_types=list(visits) if visits else None,
        positive=True if positive else None,
    )
    return [_settlement_view(row) for row in rows]


def _facts_params(settled: list[Settled], policy: SupervisionPolicy) -> dict[str, Any]:
    years = [rules.year_of(x.setl_date) for x in settled]
    return {
        "psn_nos": [x.psn_no for x in settled],
        "setl_dates": [x.setl_date for x in settled],
        "days": [x.begndate for x in settled],
        "year_firsts": [first for first, _ in years],
        "year_lasts": [last for _, last in years],
        "visit_froms": [rules.window_ending(x.begndate, policy.fraud.visit_window_days)[0] for x in settled],
        "categories": sorted(policy.high_cost.categories),
        "visit_types": list(rules.OUTPATIENT_VISITS),
    }


async def person_findings(unit: Unit, settled: list[Settled], policy: SupervisionPolicy) -> list[Finding]:
    """Every person rule's findings for settlements just applied (one statement for all of them, one per kind of
    line rule); raise_alert keeps quiet the ones raised already."""
    if not settled:
        return []
    rows = await unit.fetch(_PERSONS, **_facts_params(settled, policy))
    found: list[Finding] = []
    for one, facts in zip(settled, rows, strict=True):
        found += _person_rules(one, facts, policy)
        found += line_watch.idle_stay(one, policy)
    found += await line_watch.line_findings(unit, settled, policy)
    return found


def _person_rules(settled: Settled, facts: Row, policy: SupervisionPolicy) -> list[Finding]:
    """High cost, visit frequency, one credential at several institutions: from the person statement's row."""
    fraud = policy.fraud
    year_first, year_last = rules.year_of(settled.setl_date)
    visit_from, _ = rules.window_ending(settled.begndate, fraud.visit_window_days)
    found: list[Finding] = []
    if facts.held:
        burden = Decimal(facts.burden)
        for threshold in rules.thresholds_reached(burden, policy.high_cost.thresholds):
            found.append(
                Finding(
                    kind="high_cost",
                    rule="high_cost.burden",
                    subject=f"{settled.psn_no}|{fmt(threshold)}",
                    window_start=year_first,
                    window_end=year_last,
                    facts={
                        "psn_no": settled.psn_no,
                        "year": settled.setl_date.year,
                        "threshold": fmt(threshold),
                        "burden": fmt(burden),
                    },
                    psn_no=settled.psn_no,
                    admdvs=settled.insuplc_admdvs,
                )
            )
    if settled.med_type in rules.OUTPATIENT_VISITS and int(facts.visits) > fraud.visit_max:
        found.append(
            Finding(
                kind="fraud",
                rule="fraud.visit_frequency",
                subject=settled.psn_no,
                window_start=visit_from,
                window_end=settled.begndate,
                facts={"psn_no": settled.psn_no, "visits": int(facts.visits), "limit": fraud.visit_max},
                psn_no=settled.psn_no,
                fixmedins_code=settled.fixmedins_code,
                admdvs=settled.fixmedins_admdvs,
                windowed=True,
            )
        )
    if int(facts.institutions) >= fraud.institutions_per_day:
        found.append(
            Finding(
                kind="fraud",
                rule="fraud.shared_credential",
                subject=settled.psn_no,
                window_start=settled.setl_date,
                window_end=settled.setl_date,
                facts={
                    "psn_no": settled.psn_no,
                    "day": settled.setl_date.isoformat(),
                    "institutions": int(facts.institutions),
                    "limit": fraud.institutions_per_day,
                },
                psn_no=settled.psn_no,
                fixmedins_code=settled.fixmedins_code,
                admdvs=settled.fixmedins_admdvs,
            )
        )
    return found


async def with_evidence(unit: Unit, finding: Finding, *, categories: frozenset[str]) -> Finding:
    """A person finding with the settlements behind it (queried only for a finding about to be raised)."""
    psn_no = finding.psn_no or ""
    first, last = finding.window_start, finding.window_end
    if finding.rule == "high_cost.burden":
        rows = await unit.fetch(_SETTLEMENTS, psn_no=psn_no, first=first, last=last, visit_types=None, positive=None)
        held = sorted({c for row in rows for c in row.aid_categories or ()} & set(categories))
        found = [_settlement_view(row) for row in rows if row.psn_pay > 0][:MAX_EVIDENCE]
    elif finding.rule == "fraud.visit_frequency":
        found = await _settlements(unit, psn_no, first, last, visits=rules.OUTPATIENT_VISITS)
    elif finding.rule == "fraud.shared_credential":
        found = await _settlements(unit, psn_no, first, last)
    else:
        return finding
    facts = {**finding.facts, "settlements": found}
    if finding.rule == "high_cost.burden":
        facts["aid_categories"] = held
    if finding.rule == "fraud.shared_credential":
        facts["fixmedins_codes"] = sorted({s["fixmedins_code"] for s in found})
    return replace(finding, facts=facts, setl_ids=tuple(s["setl_id"] for s in found))


async def _person_facts(unit: Unit, psn_no: str, first: date, last: date, policy: SupervisionPolicy) -> Row:
    """The person statement over a period: burden and a watched identity held in it, visits begun in it,
    institutions on `last`."""
    rows = await unit.fetch(
        _PERSONS,
        psn_nos=[psn_no],
        setl_dates=[last],
        days=[last],
        year_firsts=[first],
        year_lasts=[last],
        visit_froms=[first],
        categories=sorted(policy.high_cost.categories),
        visit_types=list(rules.OUTPATIENT_VISITS),
    )
    return rows[0]


async def still_holds(unit: Unit, alert: Row, policy: SupervisionPolicy) -> bool:
    """Whether an open person alert's facts still hold on the live settlements (after a reversal)."""
    facts, rule = alert.facts, alert.rule
    first, last = alert.window_start, alert.window_end
    if rule == "high_cost.burden":
        row = await _person_facts(unit, alert.psn_no, first, last, policy)
        return bool(row.held) and Decimal(row.burden) >= Decimal(facts["threshold"])
    if rule == "fraud.visit_frequency":
        row = await _person_facts(unit, alert.psn_no, first, last, policy)
        return int(row.visits) > int(facts["limit"])
    if rule == "fraud.shared_credential":
        row = await _person_facts(unit, alert.psn_no, first, last, policy)
        return int(row.institutions) >= int(facts["limit"])
    if rule == "fraud.idle_stay":
        return bool(await unit.fetchval(_LIVE_SETTLEMENT, setl_id=facts["setl_id"]))
    if rule in ("fraud.repeat_exam", "fraud.stockpiling"):
        return await line_watch.lines_hold(unit, alert)
    return True
