"""The COVID-19 case registry (先救治后备案): cases, their status, and what reaches the official ledger."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility import domain
from services.eligibility.domain import RuleViolation
from services.eligibility.models import covid_cases, events, institutions, persons
from services.eligibility.persons import PRODUCER
from services.eligibility.schemas import CovidCaseIn, CovidCasePatch
from shared.events import add_event
from shared.events.envelope import BUSINESS_TZ, now
from shared.events.topics import COVID_CASE_REGISTERED
from shared.logs import mask_certno, mask_name
from shared.problems import Problem, not_found

MAX_PAGE = 1000
FUTURE_SLACK = timedelta(hours=1)  # clocks of hospitals drift a little


def _case_view(case, person, *, unmasked: bool) -> dict:
    """A case with the personal fields of the official ledger (附件3), masked unless admin."""
    return {
        "case_id": case.case_id, "psn_no": case.psn_no, "status": case.status,
        "diagnosed_at": case.diagnosed_at.astimezone(BUSINESS_TZ).isoformat(),
        "fixmedins_code": case.fixmedins_code, "diagnosis": case.diagnosis, "published": case.published,
        "version": case.version,
        "psn_name": person.psn_name if unmasked else mask_name(person.psn_name),
        "certno": person.certno if unmasked else mask_certno(person.certno),
        "gend": person.gend, "brdy": person.brdy.isoformat(), "insutype": person.insutype,
        "insuplc_admdvs": person.insuplc_admdvs,
    }


async def _person(session: AsyncSession, psn_no: str):
    return (await session.execute(select(persons).where(persons.c.psn_no == psn_no))).first()


async def _announce(session: AsyncSession, case, person) -> None:
    """`covid-case-registered` (docs/events.md) on registration and on every later change of the case."""
    await add_event(session, events.outbox, topic=COVID_CASE_REGISTERED, key=case.psn_no, producer=PRODUCER,
                    payload=_case_view(case, person, unmasked=True))


async def register_case(session: AsyncSession, body: CovidCaseIn) -> dict:
    """Register a case: a known person, diagnosed by a known institution, not in the future."""
    domain.check_case_status(body.status)
    if body.diagnosed_at > now() + FUTURE_SLACK:
        raise RuleViolation("DIAGNOSED_IN_FUTURE", "diagnosed_at is in the future", field="diagnosed_at")
    person = await _person(session, body.psn_no)
    if person is None:
        raise RuleViolation("UNKNOWN_PERSON", f"person {body.psn_no} is not registered", field="psn_no")
    known = await session.scalar(select(institutions.c.fixmedins_code)
                                 .where(institutions.c.fixmedins_code == body.fixmedins_code))
    if known is None:
        raise RuleViolation("UNKNOWN_INSTITUTION", f"institution {body.fixmedins_code} is not registered",
                            field="fixmedins_code")
    case = (await session.execute(covid_cases.insert().values(
        case_id=str(uuid.uuid4()), psn_no=body.psn_no, status=body.status, diagnosed_at=body.diagnosed_at,
        fixmedins_code=body.fixmedins_code, diagnosis=body.diagnosis, published=body.published)
        .returning(*covid_cases.c))).one()
    await _announce(session, case, person)
    return _case_view(case, person, unmasked=True)


async def update_case(session: AsyncSession, case_id: str, patch: CovidCasePatch) -> dict:
    """suspected → confirmed | excluded; published once set stays set."""
    case = (await session.execute(select(covid_cases).where(covid_cases.c.case_id == case_id)
                                  .with_for_update())).first()
    if case is None:
        raise not_found("case", case_id, "CASE_NOT_FOUND")
    values: dict = {}
    if patch.status is not None and patch.status != case.status:
        domain.check_case_transition(case.status, patch.status)
        values["status"] = patch.status
    elif patch.status is not None:
        domain.check_case_status(patch.status)
    if patch.published is not None and patch.published != case.published:
        if case.published:
            raise Problem(409, "CASE_ALREADY_PUBLISHED", "a published case stays on the official ledger")
        values["published"] = True
    person = await _person(session, case.psn_no)
    if not values:
        return _case_view(case, person, unmasked=True)
    case = (await session.execute(update(covid_cases).where(covid_cases.c.case_id == case_id)
                                  .values(**values, version=covid_cases.c.version + 1, updated_at=func.now())
                                  .returning(*covid_cases.c))).one()
    await _announce(session, case, person)
    return _case_view(case, person, unmasked=True)


async def get_case(session: AsyncSession, case_id: str, *, unmasked: bool) -> dict:
    case = (await session.execute(select(covid_cases).where(covid_cases.c.case_id == case_id))).first()
    if case is None:
        raise not_found("case", case_id, "CASE_NOT_FOUND")
    return _case_view(case, await _person(session, case.psn_no), unmasked=unmasked)


async def list_cases(session: AsyncSession, *, published: bool | None, until: date | None, since: date | None,
                     status: str | None, psn_no: str | None, limit: int, unmasked: bool) -> dict:
    """Cases diagnosed in [since, until] (business days), oldest first."""
    query = select(covid_cases, persons).join(persons, persons.c.psn_no == covid_cases.c.psn_no)
    if published is not None:
        query = query.where(covid_cases.c.published == published)
    if status is not None:
        domain.check_case_status(status)
        query = query.where(covid_cases.c.status == status)
    if psn_no is not None:
        query = query.where(covid_cases.c.psn_no == psn_no)
    if since is not None:
        query = query.where(covid_cases.c.diagnosed_at >= datetime.combine(since, time(), BUSINESS_TZ))
    if until is not None:
        query = query.where(covid_cases.c.diagnosed_at < datetime.combine(until + timedelta(days=1), time(),
                                                                          BUSINESS_TZ))
    rows = (await session.execute(query.order_by(covid_cases.c.diagnosed_at, covid_cases.c.case_id)
                                  .limit(min(limit, MAX_PAGE)))).all()
    items = []
    for row in rows:
        mapping = row._mapping
        case = _Row({c.name: mapping[covid_cases.c[c.name]] for c in covid_cases.c})
        person = _Row({c.name: mapping[persons.c[c.name]] for c in persons.c})
        items.append(_case_view(case, person, unmasked=unmasked))
    return {"items": items, "count": len(items)}


class _Row:
    """Attribute access over a dict (a joined row split into its two tables)."""

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)
