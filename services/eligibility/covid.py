"""The COVID-19 case registry (先救治后备案): cases, their status, and what reaches the official ledger."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from services.eligibility import domain
from services.eligibility.domain import RuleViolation
from services.eligibility.schemas import CovidCaseIn, CovidCasePatch
from shared.db import Row, Sql, Unit
from shared.events.envelope import BUSINESS_TZ, now
from shared.events.topics import COVID_CASE_REGISTERED
from shared.logs import mask_certno, mask_name
from shared.problems import Problem, not_found

MAX_PAGE = 1000
FUTURE_SLACK = timedelta(hours=1)  # clocks of hospitals drift a little

_PERSON = Sql("SELECT * FROM persons WHERE psn_no = :psn_no")
_INSTITUTION_KNOWN = Sql("SELECT EXISTS (SELECT FROM institutions WHERE fixmedins_code = :code)")
_REGISTER = Sql("""
INSERT INTO covid_cases (case_id, psn_no, status, diagnosed_at, fixmedins_code, diagnosis, published)
VALUES (:case_id, :psn_no, :status, :diagnosed_at, :fixmedins_code, :diagnosis, :published) RETURNING *
""")
_LOCK_CASE = Sql("SELECT * FROM covid_cases WHERE case_id = :case_id FOR UPDATE")
_CASE = Sql("SELECT * FROM covid_cases WHERE case_id = :case_id")
_UPDATE = Sql("""
UPDATE covid_cases SET status = :status, published = :published, version = version + 1, updated_at = now()
WHERE case_id = :case_id RETURNING *
""")
# Each filter applies when given; the ledger's fields of the person come with each case.
_LIST = Sql("""
SELECT c.case_id, c.psn_no, c.status, c.diagnosed_at, c.fixmedins_code, c.diagnosis, c.published, c.version,
       p.psn_name, p.certno, p.gend, p.brdy, p.insutype, p.insuplc_admdvs
FROM covid_cases c JOIN persons p ON p.psn_no = c.psn_no
WHERE (CAST(:published AS boolean) IS NULL OR c.published = :published)
  AND (CAST(:status AS text) IS NULL OR c.status = :status)
  AND (CAST(:psn_no AS text) IS NULL OR c.psn_no = :psn_no)
  AND (CAST(:since AS timestamptz) IS NULL OR c.diagnosed_at >= :since)
  AND (CAST(:before AS timestamptz) IS NULL OR c.diagnosed_at < :before)
ORDER BY c.diagnosed_at, c.case_id
LIMIT :limit
""")


def _case_view(case: Row, person: Row, *, unmasked: bool) -> dict[str, Any]:
    """A case with the personal fields of the official ledger (附件3), masked unless admin."""
    return {
        "case_id": case.case_id,
        "psn_no": case.psn_no,
        "status": case.status,
        "diagnosed_at": case.diagnosed_at.astimezone(BUSINESS_TZ).isoformat(),
        "fixmedins_code": case.fixmedins_code,
        "diagnosis": case.diagnosis,
        "published": case.published,
        "version": case.version,
        "psn_name": person.psn_name if unmasked else mask_name(person.psn_name),
        "certno": person.certno if unmasked else mask_certno(person.certno),
        "gend": person.gend,
        "brdy": person.brdy.isoformat(),
        "insutype": person.insutype,
        "insuplc_admdvs": person.insuplc_admdvs,
    }


async def _announce(unit: Unit, case: Row, person: Row) -> None:
    """`covid-case-registered` (docs/events.md) on registration and on every later change of the case."""
    await unit.publish(topic=COVID_CASE_REGISTERED, key=case.psn_no, payload=_case_view(case, person, unmasked=True))


async def register_case(unit: Unit, body: CovidCaseIn) -> dict[str, Any]:
    """Register a case: a known person, diagnosed by a known institution, not in the future."""
    domain.check_case_status(body.status)
    if body.diagnosed_at > now() + FUTURE_SLACK:
        raise RuleViolation("DIAGNOSED_IN_FUTURE", "diagnosed_at is in the future", field="diagnosed_at")
    person = await unit.fetchrow(_PERSON, psn_no=body.psn_no)
    if person is None:
        raise RuleViolation("UNKNOWN_PERSON", f"person {body.psn_no} is not registered", field="psn_no")
    if not await unit.fetchval(_INSTITUTION_KNOWN, code=body.fixmedins_code):
        raise RuleViolation(
            "UNKNOWN_INSTITUTION", f"institution {body.fixmedins_code} is not registered", field="fixmedins_code"
        )
    case = await unit.fetchrow(
        _REGISTER,
        case_id=str(uuid.uuid4()),
        psn_no=body.psn_no,
        status=body.status,
        diagnosed_at=body.diagnosed_at,
        fixmedins_code=body.fixmedins_code,
        diagnosis=body.diagnosis,
        published=body.published,
    )
    await _announce(unit, case, person)
    return _case_view(case, person, unmasked=True)


async def update_case(unit: Unit, case_id: str, patch: CovidCasePatch) -> dict[str, Any]:
    """suspected → confirmed | excluded; published once set stays set."""
    case = await unit.fetchrow(_LOCK_CASE, case_id=case_id)
    if case is None:
        raise not_found("case", case_id, "CASE_NOT_FOUND")
    status, published = case.status, case.published
    if patch.status is not None and patch.status != case.status:
        domain.check_case_transition(case.status, patch.status)
        status = patch.status
    elif patch.status is not None:
        domain.check_case_status(patch.status)
    if patch.published is not None and patch.published != case.published:
        if case.published:
            raise Problem(409, "CASE_ALREADY_PUBLISHED", "a published case stays on the official ledger")
        published = True
    person = await unit.fetchrow(_PERSON, psn_no=case.psn_no)
    if (status, published) == (case.status, case.published):
        return _case_view(case, person, unmasked=True)
    case = await unit.fetchrow(_UPDATE, case_id=case_id, status=status, published=published)
    await _announce(unit, case, person)
    return _case_view(case, person, unmasked=True)


async def get_case(unit: Unit, case_id: str, *, unmasked: bool) -> dict[str, Any]:
    case = await unit.fetchrow(_CASE, case_id=case_id)
    if case is None:
        raise not_found("case", case_id, "CASE_NOT_FOUND")
    return _case_view(case, await unit.fetchrow(_PERSON, psn_no=case.psn_no), unmasked=unmasked)


def _business_midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), BUSINESS_TZ)


async def list_cases(
    unit: Unit,
    *,
    published: bool | None,
    until: date | None,
    since: date | None,
    status: str | None,
    psn_no: str | None,
    limit: int,
    unmasked: bool,
) -> dict[str, Any]:
    """Cases diagnosed in [since, until] (business days), oldest first."""
    if status is not None:
        domain.check_case_status(status)
    rows = await unit.fetch(
        _LIST,
        published=published,
        status=status,
        psn_no=psn_no,
        since=_business_midnight(since),
        before=_business_midnight(None if until is None else until + timedelta(days=1)),
        limit=min(limit, MAX_PAGE),
    )
    items = [_case_view(row, row, unmasked=unmasked) for row in rows]
    return {"items": items, "count": len(items)}
