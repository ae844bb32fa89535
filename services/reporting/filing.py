"""County filing (DOMAIN §10, §13): a filing record per report, day and pooling area, and an alert when a county's
daily report of a day is not filed by the deadline (08:30) of the next day.

A filing names who filled the form in (填报人) and who approved it (审核人); `filed_at` is when the service recorded
it. Filing a report whose alert is open closes the alert (resolution `filed`). The background task (`run`) looks every
`check_seconds` at the days whose deadline has passed (the newest `lookback_days`) and at the months of the
institution indicators every `check_minutes`; its clock is the app's (`app.state.supervision.clock`), which tests set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date, datetime
from typing import Any

from services.reporting import alerts, indicators, rules
from services.reporting.alerts import Finding, Supervision
from services.reporting.domain import area_name
from shared.db import Database, Row, Sql, Unit, is_outage
from shared.events.envelope import BUSINESS_TZ
from shared.problems import Problem

log = logging.getLogger("yibao.reporting.filing")

_FILE = Sql("""
INSERT INTO filings (report, day, admdvs, filled_by, approved_by, note, filed_at, filed_by_role)
VALUES (:report, :day, :admdvs, :filled_by, :approved_by, :note, :filed_at, :role)
ON CONFLICT (report, day, admdvs) DO NOTHING
RETURNING report, day, admdvs, filled_by, approved_by, note, filed_at, filed_by_role
""")
_FILING = Sql("""
SELECT report, day, admdvs, filled_by, approved_by, note, filed_at, filed_by_role FROM filings
 WHERE report = :report AND day = :day AND admdvs = :admdvs
""")
_FILINGS_OF = Sql("""
SELECT report, day, admdvs, filled_by, approved_by, note, filed_at, filed_by_role FROM filings
 WHERE report = :report AND day = :day ORDER BY admdvs
""")
_UNFILED = Sql("""
SELECT a.admdvs FROM unnest(CAST(:areas AS text[])) AS a(admdvs)
 WHERE NOT EXISTS (SELECT 1 FROM filings f WHERE f.report = :report AND f.day = :day AND f.admdvs = a.admdvs)
""")
_OPEN_ALERT = Sql("SELECT alert_id FROM alerts WHERE alert_key = :alert_key AND status = 'open'")


def _finding(report: str, day: date, admdvs: str, deadline: datetime) -> Finding:
    return Finding(
        kind="filing",
        rule="filing.late",
        subject=f"{report}:{admdvs}",
        window_start=day,
        window_end=day,
        facts={
            "report": report,
            "date": day.isoformat(),
            "admdvs": admdvs,
            "area_name": area_name(admdvs),
            "deadline": deadline.isoformat(),
        },
        admdvs=admdvs,
    )


def _view(row: Row, deadline: datetime) -> dict[str, Any]:
    return {
        "report": row.report,
        "date": row.day.isoformat(),
        "admdvs": row.admdvs,
        "area_name": area_name(row.admdvs),
        "filled_by": row.filled_by,
        "approved_by": row.approved_by,
        "note": row.note,
        "filed_at": row.filed_at.astimezone(BUSINESS_TZ).isoformat(),
        "filed_by_role": row.filed_by_role,
        "deadline": deadline.isoformat(),
        "on_time": row.filed_at <= deadline,
    }


async def file_report(
    unit: Unit,
    supervision: Supervision,
    *,
    report: str,
    day: date,
    admdvs: str,
    filled_by: str,
    approved_by: str,
    note: str | None,
    role: str,
) -> tuple[dict[str, Any], bool]:
    """Record a filing (True: new). The same filing again answers the first; another one for the same report, day
    and area is 409 ALREADY_FILED. An open late-filing alert of it is closed."""
    policy = supervision.book.on(day)
    deadline = rules.filing_deadline(day, policy.filing.deadline)
    row = await unit.fetchrow(
        _FILE,
        report=report,
        day=day,
        admdvs=admdvs,
        filled_by=filled_by,
        approved_by=approved_by,
        note=note,
        filed_at=supervision.clock(),
        role=role,
    )
    if row is None:
        first = await unit.fetchrow(_FILING, report=report, day=day, admdvs=admdvs)
        if (first.filled_by, first.approved_by, first.note) == (filled_by, approved_by, note):
            return _view(first, deadline), False
        raise Problem(
            409,
            "ALREADY_FILED",
            f"{report} of {day} for {admdvs} was filed at {first.filed_at.isoformat()} by {first.filled_by}",
        )
    open_id = await unit.fetchval(_OPEN_ALERT, alert_key=_finding(report, day, admdvs, deadline).key)
    if open_id is not None:
        note_text = (
            f"filed at {row.filed_at.astimezone(BUSINESS_TZ).isoformat()} by {filled_by}, approved by {approved_by}"
        )
        await alerts.close(unit, supervision, open_id, resolution=alerts.FILED, note=note_text)
    return _view(row, deadline), True


async def filings(unit: Unit, supervision: Supervision, *, report: str, day: date) -> dict[str, Any]:
    """Every pooling area's filing of a report and day: filed (on time or late), or missing (due or not yet due)."""
    policy = supervision.book.on(day)
    deadline = rules.filing_deadline(day, policy.filing.deadline)
    now = supervision.clock()
    found = {row.admdvs: _view(row, deadline) for row in await unit.fetch(_FILINGS_OF, report=report, day=day)}
    items = []
    for admdvs in sorted(set(policy.filing.areas) | set(found)):
        if admdvs in found:
            items.append({**found[admdvs], "status": "filed" if found[admdvs]["on_time"] else "late"})
        else:
            status = "missing" if now >= deadline else "due"
            items.append(
                {
                    "report": report,
                    "date": day.isoformat(),
                    "admdvs": admdvs,
                    "area_name": area_name(admdvs),
                    "deadline": deadline.isoformat(),
                    "status": status,
                }
            )
    return {"report": report, "date": day.isoformat(), "deadline": deadline.isoformat(), "items": items}


async def check_filings(unit: Unit, supervision: Supervision, now: datetime, *, days: list[date] | None = None) -> int:
    """Raise an alert for every area whose report of a day past its deadline is not filed; returns how many."""
    latest = supervision.book.latest.filing
    raised = 0
    for day in days if days is not None else rules.days_due(now, at=latest.deadline, lookback=latest.lookback_days):
        policy = supervision.book.on(day)
        deadline = rules.filing_deadline(day, policy.filing.deadline)
        if now < deadline:
            continue
        for report in policy.filing.reports:
            for row in await unit.fetch(_UNFILED, areas=list(policy.filing.areas), report=report, day=day):
                finding = _finding(report, day, row.admdvs, deadline)
                if await alerts.raise_alert(unit, supervision, finding, version=policy.version) is not None:
                    raised += 1
    return raised


async def _once(db: Database, supervision: Supervision, *, months: bool) -> None:
    now = supervision.clock()
    async with db.begin() as unit:
        await check_filings(unit, supervision, now)
    if months:
        current = indicators.Month(rules.month_start(now.astimezone(BUSINESS_TZ).date()))
        for month in (indicators.Month(rules.previous_month(current.first)), current):
            async with db.begin() as unit:
                await indicators.evaluate_month(unit, supervision, month)


async def run(db: Database, supervision: Supervision) -> None:
    """The background checks: late filings every `check_seconds`, the indicators every `check_minutes`."""
    months_due = 0.0
    while True:
        latest = supervision.book.latest
        try:
            months = time.monotonic() >= months_due
            await _once(db, supervision, months=months)
            if months:
                months_due = time.monotonic() + latest.indicators.check_minutes * 60
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be away for a while: try again at the next round
            level = logging.INFO if is_outage(exc) else logging.ERROR
            log.log(level, "supervision checks skipped: %s: %s", type(exc).__name__, str(exc)[:200])
        await asyncio.sleep(latest.filing.check_seconds)
