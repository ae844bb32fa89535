"""Fraud patterns in the lines of a person's settlements (DOMAIN §13): the same examination twice within 7 days,
supply days of one drug above 90 + 14 in 90 days (stockpiling), an inpatient stay with days without a fee line (挂床).

The lines come from `settlement_lines` (the person's, of the codes concerned, near the days concerned: one statement
per rule for a whole run of settlements); a line counts while its settlement has no `reverse` move.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from services.reporting import rules
from services.reporting.alerts import MAX_EVIDENCE, Finding
from services.reporting.lines import LIVE_LINE, Line, Settled
from shared.db import Row, Sql, Unit
from shared.money import fmt
from shared.supervision import SupervisionPolicy

# The live lines of (person, code) pairs in a period (repeated examinations, supply days).
_LINES = Sql(f"""
SELECT l.psn_no, l.setl_id, l.feedetl_sn, l.med_list_codg, l.med_list_name, l.fee_day, l.pric, l.cnt, l.amount,
       l.days_supply, l.fixmedins_code
  FROM unnest(CAST(:psn_nos AS text[]), CAST(:codes AS text[])) AS x(psn_no, codg)
  JOIN settlement_lines l ON l.psn_no = x.psn_no AND l.med_list_codg = x.codg
 WHERE l.fee_day BETWEEN :first AND :last
   AND (NOT CAST(:exams AS boolean) OR l.category = 'examination')
   AND (NOT CAST(:supplies AS boolean) OR l.days_supply IS NOT NULL)
   AND {LIVE_LINE}
 ORDER BY l.fee_day, l.setl_id, l.feedetl_sn
""")


def _line_view(row: Row | Line) -> dict[str, Any]:
    return {
        "setl_id": getattr(row, "setl_id", None),
        "feedetl_sn": row.feedetl_sn,
        "med_list_codg": row.med_list_codg,
        "med_list_name": row.med_list_name,
        "fee_day": row.fee_day.isoformat(),
        "pric": fmt(row.pric),
        "cnt": format(row.cnt.normalize(), "f"),
        "amount": fmt(row.amount),
        "days_supply": row.days_supply,
    }


def idle_stay(settled: Settled, policy: SupervisionPolicy) -> list[Finding]:
    """挂床: an inpatient stay with `idle_stay_days` or more consecutive days without a fee line (judged only when its
    lines carry their times)."""
    if settled.med_type != "21" or settled.enddate is None:
        return []
    timed = [line for line in settled.lines if line.fee_ocur_time is not None]
    if not timed:
        return []
    run = rules.longest_idle_run(settled.begndate, settled.enddate, (line.fee_day for line in timed))
    if run is None or run[2] < policy.fraud.idle_stay_days:
        return []
    first, last, days = run
    return [
        Finding(
            kind="fraud",
            rule="fraud.idle_stay",
            subject=settled.mdtrt_id or settled.setl_id,
            window_start=settled.begndate,
            window_end=settled.enddate,
            facts={
                "psn_no": settled.psn_no,
                "mdtrt_id": settled.mdtrt_id,
                "setl_id": settled.setl_id,
                "begndate": settled.begndate.isoformat(),
                "enddate": settled.enddate.isoformat(),
                "idle_from": first.isoformat(),
                "idle_to": last.isoformat(),
                "idle_days": days,
                "limit": policy.fraud.idle_stay_days,
                "fee_days": sorted({line.fee_day.isoformat() for line in timed}),
                "lines": [_line_view(line) | {"setl_id": settled.setl_id} for line in timed[:MAX_EVIDENCE]],
            },
            psn_no=settled.psn_no,
            fixmedins_code=settled.fixmedins_code,
            admdvs=settled.fixmedins_admdvs,
            setl_ids=(settled.setl_id,),
        )
    ]


async def line_findings(unit: Unit, settled: list[Settled], policy: SupervisionPolicy) -> list[Finding]:
    """Repeated examinations and stockpiling: the persons' other lines of the same codes near these lines' days."""
    fraud = policy.fraud
    exams = [
        {(line.med_list_codg, line.fee_day) for line in x.lines if line.category == "examination"} for x in settled
    ]
    supplies = [{(line.med_list_codg, line.fee_day) for line in x.lines if line.days_supply} for x in settled]
    found: list[Finding] = []
    if any(exams):
        reach = timedelta(days=fraud.exam_window_days - 1)
        rows = await _lines_of(unit, settled, exams, first_back=reach, last_ahead=reach, exams=True)
        for x, mine in zip(settled, exams, strict=True):
            if mine:
                found += _repeated_exams(x, mine, rows.get(x.psn_no, []), reach)
    if any(supplies):
        back = timedelta(days=fraud.supply_window_days - 1)
        rows = await _lines_of(unit, settled, supplies, first_back=back, last_ahead=timedelta(0), exams=False)
        for x, mine in zip(settled, supplies, strict=True):
            if mine:
                found += _stockpiling(x, mine, rows.get(x.psn_no, []), policy)
    return found


async def _lines_of(
    unit: Unit,
    settled: list[Settled],
    wanted: list[set[tuple[str, date]]],
    *,
    first_back: timedelta,
    last_ahead: timedelta,
    exams: bool,
) -> dict[str, list[Row]]:
    """The live lines of each (person, code) wanted, around the wanted days, by person."""
    pairs = sorted({(x.psn_no, code) for x, mine in zip(settled, wanted, strict=True) for code, _ in mine})
    days = [day for mine in wanted for _, day in mine]
    rows = await unit.fetch(
        _LINES,
        psn_nos=[p for p, _ in pairs],
        codes=[c for _, c in pairs],
        first=min(days) - first_back,
        last=max(days) + last_ahead,
        exams=exams,
        supplies=not exams,
    )
    by_person: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_person[row.psn_no].append(row)
    return by_person


def _repeated_exams(settled: Settled, exams: set[tuple[str, date]], rows: list[Row], reach: timedelta) -> list[Finding]:
    by_code: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_code[row.med_list_codg].append(row)
    found = []
    for code, day in sorted(exams):
        others = [r for r in by_code[code] if r.setl_id != settled.setl_id and abs(r.fee_day - day) <= reach]
        if not others:
            continue
        nearest = min(others, key=lambda r: (abs(r.fee_day - day), r.fee_day))
        first, last = min(day, nearest.fee_day), max(day, nearest.fee_day)
        evidence = [r for r in by_code[code] if first <= r.fee_day <= last]
        facts = {
            "days_apart": (last - first).days,
            "window_days": reach.days + 1,
            "fixmedins_codes": sorted({r.fixmedins_code for r in evidence}),
        }
        found.append(_code_finding(settled, "fraud.repeat_exam", code, (first, last), evidence, facts))
    return found


def _stockpiling(
    settled: Settled, supplies: set[tuple[str, date]], rows: list[Row], policy: SupervisionPolicy
) -> list[Finding]:
    fraud = policy.fraud
    found = []
    for code, day in sorted(supplies):
        first, last = rules.window_ending(day, fraud.supply_window_days)
        inside = [r for r in rows if r.med_list_codg == code and first <= r.fee_day <= last]
        total = sum(int(r.days_supply) for r in inside)
        if total <= fraud.supply_max_days:
            continue
        facts = {"supply_days": total, "limit": fraud.supply_max_days, "window_days": fraud.supply_window_days}
        found.append(_code_finding(settled, "fraud.stockpiling", code, (first, last), inside, facts))
    return found


def _code_finding(
    settled: Settled, rule: str, code: str, window: tuple[date, date], evidence: list[Row], facts: dict[str, Any]
) -> Finding:
    """A fraud finding on one person's code over a sliding window, with the lines that show it."""
    return Finding(
        kind="fraud",
        rule=rule,
        subject=f"{settled.psn_no}|{code}",
        window_start=window[0],
        window_end=window[1],
        facts={
            "psn_no": settled.psn_no,
            "med_list_codg": code,
            "med_list_name": evidence[0].med_list_name,
            **facts,
            "lines": [_line_view(r) for r in evidence[:MAX_EVIDENCE]],
        },
        psn_no=settled.psn_no,
        fixmedins_code=settled.fixmedins_code,
        admdvs=settled.fixmedins_admdvs,
        setl_ids=tuple(dict.fromkeys(r.setl_id for r in evidence)),
        windowed=True,
    )


async def lines_hold(unit: Unit, alert: Row) -> bool:
    """Whether a repeated-examination or stockpiling alert still holds on the live lines of its window."""
    facts = alert.facts
    exams = alert.rule == "fraud.repeat_exam"
    rows = await unit.fetch(
        _LINES,
        psn_nos=[alert.psn_no],
        codes=[facts["med_list_codg"]],
        first=alert.window_start,
        last=alert.window_end,
        exams=exams,
        supplies=not exams,
    )
    if exams:
        return len({r.setl_id for r in rows}) >= 2
    return sum(int(r.days_supply) for r in rows) > int(facts["limit"])
