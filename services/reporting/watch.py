"""Supervision when an event is applied (the live consumer only, not a rebuild): a new settlement runs the person,
fraud and price rules; a reversal looks again at the open alerts it may undo and withdraws those that no longer hold.

Both run in the event's transaction, in a savepoint: a rule that fails is logged and counted, and the event still
takes effect in the read models (a missed alert is better than a report that stops). Only a settlement new here
runs the rules (a repeated fact, e.g. a re-announcement, changes nothing), and an alert's key makes the same facts
raise nothing new.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date
from typing import Any

from prometheus_client import Counter

from services.reporting import alerts, person_watch, price_watch
from services.reporting.alerts import Finding, Supervision
from services.reporting.lines import Line, Settled
from shared.db import Sql, Unit, is_outage

log = logging.getLogger("yibao.reporting.watch")
FAILED = Counter("yibao_supervision_failures_total", "rule evaluations that failed (the event applied without)", ["at"])
RAISED = Counter("yibao_alerts_raised_total", "alerts raised", ["kind"])
WITHDRAWN = Counter("yibao_alerts_withdrawn_total", "alerts withdrawn after a reversal", ["kind"])

_NEEDS_EVIDENCE = ("high_cost.burden", "fraud.visit_frequency", "fraud.shared_credential")
_TOUCHED = Sql("""
SELECT alert_id, kind, rule, psn_no, fixmedins_code, window_start, window_end, facts, setl_ids FROM alerts
 WHERE status = 'open'
   AND (psn_no = ANY(CAST(:psn_nos AS text[])) OR setl_ids && CAST(:setl_ids AS varchar[]))
 ORDER BY alert_id
""")


def _day(value: Any) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


def settled_of(payload: dict[str, Any], lines: list[Line], *, setl_date: date) -> Settled:
    """What the rules read of a `settled` payload (already checked by the handler that applied it)."""
    return Settled(
        setl_id=str(payload["setl_id"]),
        mdtrt_id=payload.get("mdtrt_id"),
        psn_no=str(payload["psn_no"]),
        fixmedins_code=str(payload["fixmedins_code"]),
        fixmedins_admdvs=payload.get("fixmedins_admdvs"),
        insuplc_admdvs=payload.get("insuplc_admdvs"),
        med_type=str(payload["med_type"]),
        setl_date=setl_date,
        begndate=_day(payload.get("begndate")) or setl_date,
        enddate=_day(payload.get("enddate")),
        aid_categories=tuple(payload.get("aid_categories") or ()),
        lines=tuple(lines),
    )


async def _raise(unit: Unit, supervision: Supervision, finding: Finding, *, version: str, categories) -> None:
    if finding.rule in _NEEDS_EVIDENCE:
        if await alerts.standing(unit, finding):
            return
        finding = await person_watch.with_evidence(unit, finding, categories=categories)
    raised = await alerts.raise_alert(unit, supervision, finding, version=version)
    if raised is not None:
        RAISED.labels(finding.kind).inc()


async def after_settled(unit: Unit, supervision: Supervision, settled: list[Settled]) -> None:
    """The rules of settlements new here (a run of them: one statement per rule for all), each under the policy
    version in force on its date."""
    by_version: dict[str, list[Settled]] = defaultdict(list)
    for one in settled:
        by_version[supervision.book.on(one.setl_date).version].append(one)
    try:
        async with unit.savepoint():
            for group in by_version.values():
                policy = supervision.book.on(group[0].setl_date)
                findings = await person_watch.person_findings(unit, group, policy)
                findings += await price_watch.price_findings(unit, group, policy)
                for finding in findings:
                    await _raise(
                        unit, supervision, finding, version=policy.version, categories=policy.high_cost.categories
                    )
    except Exception as exc:
        if is_outage(exc):
            raise
        FAILED.labels("settled").inc()
        log.exception("supervision rules failed for %d settlements; the settlements are applied", len(settled))


async def after_reversed(unit: Unit, supervision: Supervision, reversed_: list[tuple[str, str]]) -> None:
    """Withdraw the open alerts of the persons, or naming the settlements, whose facts no longer hold."""
    if not reversed_:
        return
    try:
        async with unit.savepoint():
            rows = await unit.fetch(
                _TOUCHED, psn_nos=sorted({p for p, _ in reversed_}), setl_ids=sorted({s for _, s in reversed_})
            )
            for alert in rows:
                policy = supervision.book.on(alert.window_end)
                if alert.kind in ("high_cost", "fraud"):
                    holds = await person_watch.still_holds(unit, alert, policy)
                elif alert.kind == "price":
                    holds = await price_watch.still_holds(unit, alert)
                else:
                    continue  # indicators and filings are looked at again by their own checks
                if not holds:
                    which = ", ".join(s for p, s in reversed_ if p == alert.psn_no or s in alert.setl_ids)
                    note = f"settlement {which} was reversed: the facts no longer hold"
                    if await alerts.close(unit, supervision, alert.alert_id, resolution=alerts.WITHDRAWN, note=note):
                        WITHDRAWN.labels(alert.kind).inc()
    except Exception as exc:
        if is_outage(exc):
            raise
        FAILED.labels("reversed").inc()
        log.exception("supervision recheck failed for %d reversals; the reversals are applied", len(reversed_))
