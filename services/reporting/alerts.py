"""Supervision alerts (DOMAIN §13): one model for every kind, raised once per rule, subject and window.

- `raise_alert`: a finding becomes an alert unless its key is there already (the same facts never raise twice). A
  windowed rule (visits in 30 days, repeated examinations …) also stays quiet while an alert of the same rule and
  subject covers an overlapping window. An alert the service withdrew is raised again when its facts hold again.
- `withdraw`: the service closes an open alert whose facts no longer hold (a reversal), or that was answered (a late
  filing), with resolution `withdrawn` / `filed` by `system`.
- `resolve`: a person records what was done (`helped` 化解, `confirmed`, `dismissed`, `corrected`, `referred`).
Each change writes `alert-raised` / `alert-resolved` to the outbox in the same transaction and, once committed, shows
on the live feed (no person number there).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.reporting.areas import Area, pattern, sql_filter
from services.reporting.feed import Feed
from shared.db import Row, Sql, Unit
from shared.events.envelope import BUSINESS_TZ, Envelope
from shared.events.topics import ALERT_RAISED, ALERT_RESOLVED
from shared.money import fmt
from shared.problems import Problem, not_found
from shared.supervision import SupervisionBook

KINDS = ("high_cost", "price", "fraud", "indicator", "filing")
RESOLUTIONS = ("helped", "confirmed", "dismissed", "corrected", "referred")  # what a person records
WITHDRAWN = "withdrawn"  # the service: the facts no longer hold
FILED = "filed"  # the service: the late report was filed
SYSTEM = "system"
MAX_EVIDENCE = 50  # settlements or lines named in an alert's facts


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule found: enough to raise an alert (the key is rule + subject + window)."""

    kind: str
    rule: str
    subject: str
    window_start: date
    window_end: date
    facts: dict[str, Any]
    psn_no: str | None = None
    fixmedins_code: str | None = None
    admdvs: str | None = None
    setl_ids: tuple[str, ...] = ()
    windowed: bool = False  # a sliding window: quiet while an alert of an overlapping window stands

    @property
    def key(self) -> str:
        return f"{self.rule}|{self.subject}|{self.window_start.isoformat()}|{self.window_end.isoformat()}"


@dataclass
class Supervision:
    """What the rules and the alert routes need: the policy versions, the live feed and the clock."""

    book: SupervisionBook
    clock: Callable[[], datetime]
    feed: Feed | None = None


_COLUMNS = (
    "alert_id, alert_key, kind, rule, rule_version, subject, window_start, window_end, status, raised_at, "
    "raised_count, psn_no, fixmedins_code, admdvs, facts, setl_ids, resolution, note, amount, resolved_by, "
    "resolved_at"
)
_RAISE = Sql(f"""
INSERT INTO alerts (alert_id, alert_key, kind, rule, rule_version, subject, window_start, window_end, status,
                    raised_at, psn_no, fixmedins_code, admdvs, facts, setl_ids, updated_at)
VALUES (:alert_id, :alert_key, :kind, :rule, :rule_version, :subject, :window_start, :window_end, 'open',
        :raised_at, :psn_no, :fixmedins_code, :admdvs, CAST(:facts AS jsonb), CAST(:setl_ids AS text[]), :raised_at)
ON CONFLICT (alert_key) DO UPDATE SET
  status = 'open', raised_at = EXCLUDED.raised_at, raised_count = alerts.raised_count + 1,
  rule_version = EXCLUDED.rule_version, facts = EXCLUDED.facts, setl_ids = EXCLUDED.setl_ids,
  resolution = NULL, note = NULL, amount = NULL, resolved_by = NULL, resolved_at = NULL, updated_at = EXCLUDED.raised_at
 WHERE alerts.status = 'resolved' AND alerts.resolution = '{WITHDRAWN}'
RETURNING {_COLUMNS}
""")
_OVERLAPPING = Sql(f"""
SELECT alert_id FROM alerts
 WHERE rule = :rule AND subject = :subject AND window_end >= :window_start AND window_start <= :window_end
   AND NOT (status = 'resolved' AND resolution = '{WITHDRAWN}')
 LIMIT 1
""")
_CLOSE = Sql(f"""
UPDATE alerts SET status = 'resolved', resolution = :resolution, note = :note, resolved_by = '{SYSTEM}',
                  resolved_at = :at, updated_at = :at
 WHERE alert_id = :alert_id AND status = 'open'
RETURNING {_COLUMNS}
""")
_LOCK = Sql(f"SELECT {_COLUMNS} FROM alerts WHERE alert_id = :alert_id FOR UPDATE")
_RESOLVE = Sql(f"""
UPDATE alerts SET status = 'resolved', resolution = :resolution, note = :note, amount = :amount,
                  resolved_by = :resolved_by, resolved_at = :at, updated_at = :at
 WHERE alert_id = :alert_id
RETURNING {_COLUMNS}
""")
_GET = Sql(f"SELECT {_COLUMNS} FROM alerts WHERE alert_id = :alert_id")


def _alert_id() -> str:
    return "A" + secrets.token_hex(10).upper()


def view(row: Row) -> dict[str, Any]:
    """An alert as the API answers it (CONTRACT "(supervision)")."""
    return {
        "alert_id": row.alert_id,
        "kind": row.kind,
        "rule": row.rule,
        "rule_version": row.rule_version,
        "raised_at": row.raised_at.astimezone(BUSINESS_TZ).isoformat(),
        "status": row.status,
        "psn_no": row.psn_no,
        "fixmedins_code": row.fixmedins_code,
        "admdvs": row.admdvs,
        "subject": row.subject,
        "window": {"start": row.window_start.isoformat(), "end": row.window_end.isoformat()},
        "facts": row.facts,
        "setl_ids": list(row.setl_ids),
        "raised_count": row.raised_count,
        "resolution": row.resolution,
        "note": row.note,
        "amount": None if row.amount is None else fmt(row.amount),
        "resolved_by": row.resolved_by,
        "resolved_at": None if row.resolved_at is None else row.resolved_at.astimezone(BUSINESS_TZ).isoformat(),
    }


def _event_key(row: Row) -> str:
    return str(row.psn_no or row.fixmedins_code or row.admdvs or row.alert_id)


def _raised_payload(row: Row) -> dict[str, Any]:
    body = view(row)
    for name in ("resolution", "note", "amount", "resolved_by", "resolved_at"):
        body.pop(name)
    return body


def _resolved_payload(row: Row) -> dict[str, Any]:
    return {
        name: value
        for name, value in view(row).items()
        if name
        in (
            "alert_id",
            "kind",
            "rule",
            "rule_version",
            "status",
            "psn_no",
            "fixmedins_code",
            "admdvs",
            "subject",
            "resolution",
            "note",
            "amount",
            "resolved_by",
            "resolved_at",
        )
    }


async def _announce(unit: Unit, supervision: Supervision, topic: str, row: Row) -> None:
    """The alert's event in the outbox (this transaction) and, once committed, on the live feed."""
    payload = _raised_payload(row) if topic == ALERT_RAISED else _resolved_payload(row)
    event: Envelope = await unit.publish(topic=topic, key=_event_key(row), payload=payload)
    feed = supervision.feed
    if feed is not None:
        unit.after_commit(lambda: feed.publish(event))


_STANDING = Sql(f"""
SELECT EXISTS (SELECT 1 FROM alerts WHERE alert_key = :alert_key
                  AND NOT (status = 'resolved' AND resolution = '{WITHDRAWN}'))
""")


async def standing(unit: Unit, finding: Finding) -> bool:
    """Whether an alert stands for the finding already (its key; for a sliding window, any overlapping one)."""
    if finding.windowed:
        covered = await unit.fetchval(
            _OVERLAPPING,
            rule=finding.rule,
            subject=finding.subject,
            window_start=finding.window_start,
            window_end=finding.window_end,
        )
        return covered is not None
    return bool(await unit.fetchval(_STANDING, alert_key=finding.key[:300]))


async def raise_alert(unit: Unit, supervision: Supervision, finding: Finding, *, version: str) -> dict | None:
    """Raise `finding` (or raise again a withdrawn alert of the same key); None when it stands already."""
    if finding.windowed and await standing(unit, finding):
        return None
    row = await unit.fetchrow(
        _RAISE,
        alert_id=_alert_id(),
        alert_key=finding.key[:300],
        kind=finding.kind,
        rule=finding.rule,
        rule_version=version,
        subject=finding.subject[:200],
        window_start=finding.window_start,
        window_end=finding.window_end,
        raised_at=supervision.clock(),
        psn_no=finding.psn_no,
        fixmedins_code=finding.fixmedins_code,
        admdvs=finding.admdvs,
        facts=finding.facts,
        setl_ids=list(dict.fromkeys(finding.setl_ids))[:MAX_EVIDENCE],
    )
    if row is None:
        return None
    await _announce(unit, supervision, ALERT_RAISED, row)
    return view(row)


async def close(unit: Unit, supervision: Supervision, alert_id: str, *, resolution: str, note: str) -> dict | None:
    """The service closes an open alert (withdrawn: its facts no longer hold; filed: the late report came)."""
    row = await unit.fetchrow(
        _CLOSE, alert_id=alert_id, resolution=resolution, note=note[:2000], at=supervision.clock()
    )
    if row is None:
        return None
    await _announce(unit, supervision, ALERT_RESOLVED, row)
    return view(row)


async def resolve(
    unit: Unit,
    supervision: Supervision,
    alert_id: str,
    *,
    resolution: str,
    note: str,
    amount: Decimal | None,
    role: str,
) -> dict[str, Any]:
    """A person's resolution of an open alert; the same resolution again answers the alert as it is (a retry)."""
    row = await unit.fetchrow(_LOCK, alert_id=alert_id)
    if row is None:
        raise not_found("alert", alert_id, "ALERT_NOT_FOUND")
    if row.status == "resolved":
        if row.resolution == resolution and row.note == note and row.amount == amount:
            return view(row)
        raise Problem(
            409,
            "ALERT_ALREADY_RESOLVED",
            f"alert {alert_id} was resolved already ({row.resolution} by {row.resolved_by})",
        )
    row = await unit.fetchrow(
        _RESOLVE,
        alert_id=alert_id,
        resolution=resolution,
        note=note,
        amount=amount,
        resolved_by=role,
        at=supervision.clock(),
    )
    await _announce(unit, supervision, ALERT_RESOLVED, row)
    return view(row)


async def get(unit: Unit, alert_id: str) -> dict[str, Any]:
    row = await unit.fetchrow(_GET, alert_id=alert_id)
    if row is None:
        raise not_found("alert", alert_id, "ALERT_NOT_FOUND")
    return view(row)


_WHERE = f"""
 WHERE (CAST(:kind AS text) IS NULL OR kind = :kind)
   AND (CAST(:status AS text) IS NULL OR status = :status)
   AND (CAST(:rule AS text) IS NULL OR rule = :rule)
   AND (CAST(:psn_no AS text) IS NULL OR psn_no = :psn_no)
   AND (CAST(:fixmedins_code AS text) IS NULL OR fixmedins_code = :fixmedins_code)
   AND {sql_filter("admdvs")}
"""
_LIST = Sql(f"SELECT {_COLUMNS} FROM alerts {_WHERE} ORDER BY raised_at DESC, alert_id LIMIT :limit OFFSET :offset")
_COUNT = Sql(f"SELECT count(*) FROM alerts {_WHERE}")
_OPEN_BY_KIND = Sql("SELECT kind, count(*) AS n FROM alerts WHERE status = 'open' GROUP BY kind")


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """The query of GET /v1/alerts."""

    kind: str | None = None
    status: str | None = None
    rule: str | None = None
    psn_no: str | None = None
    fixmedins_code: str | None = None
    area: Area | None = None

    def params(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status,
            "rule": self.rule,
            "psn_no": self.psn_no,
            "fixmedins_code": self.fixmedins_code,
            "area": pattern(self.area),
        }


async def list_alerts(unit: Unit, where: AlertFilter, *, limit: int, offset: int) -> dict[str, Any]:
    """The alerts matching the filter, newest first, a page of them and how many match."""
    rows = await unit.fetch(_LIST, **where.params(), limit=limit, offset=offset)
    count = await unit.fetchval(_COUNT, **where.params())
    return {"items": [view(row) for row in rows], "count": count, "limit": limit, "offset": offset}


async def open_counts(unit: Unit) -> dict[str, int]:
    """Open alerts per kind (every kind named, 0 when none)."""
    counts = {row.kind: int(row.n) for row in await unit.fetch(_OPEN_BY_KIND)}
    return {kind: counts.get(kind, 0) for kind in KINDS}
