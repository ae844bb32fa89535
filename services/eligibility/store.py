"""Eligibility's unit-of-work functions: each writes its rows and its events in one transaction."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility.models import events, institutions
from services.eligibility.schemas import InstitutionIn
from shared.events import add_event
from shared.events.topics import INSTITUTION_CHANGED
from shared.problems import Problem, not_found

PRODUCER = "eligibility"


def institution_payload(row) -> dict:
    """The institution as other services see it in `institution-changed`."""
    return {"fixmedins_code": row.fixmedins_code, "fixmedins_name": row.fixmedins_name, "kind": row.kind,
            "level": row.level, "affiliation": row.affiliation, "admdvs": row.admdvs,
            "suspended": row.suspended, "version": row.version}


async def register_institution(session: AsyncSession, body: InstitutionIn) -> tuple[dict, bool]:
    """Create an institution; the same body again is a no-op, a different one a 409."""
    row = (await session.execute(
        insert(institutions).values(**body.model_dump()).on_conflict_do_nothing()
        .returning(*institutions.c))).first()
    if row is None:
        existing = (await session.execute(
            select(institutions).where(institutions.c.fixmedins_code == body.fixmedins_code))).one()
        if any(getattr(existing, k) != v for k, v in body.model_dump().items()):
            raise Problem(409, "INSTITUTION_EXISTS",
                          f"institution {body.fixmedins_code} exists with other attributes")
        return institution_payload(existing), False
    payload = institution_payload(row)
    await add_event(session, events.outbox, topic=INSTITUTION_CHANGED, key=row.fixmedins_code,
                    payload=payload, producer=PRODUCER)
    return payload, True


async def set_suspended(session: AsyncSession, code: str, suspended: bool) -> dict:
    """Suspend (or resume) an institution's designation."""
    row = (await session.execute(
        update(institutions).where(institutions.c.fixmedins_code == code)
        .values(suspended=suspended, version=institutions.c.version + 1, updated_at=func.now())
        .returning(*institutions.c))).first()
    if row is None:
        raise not_found("institution", code, "INSTITUTION_NOT_FOUND")
    payload = institution_payload(row)
    await add_event(session, events.outbox, topic=INSTITUTION_CHANGED, key=code, payload=payload,
                    producer=PRODUCER)
    return payload


async def get_institution(session: AsyncSession, code: str) -> dict:
    row = (await session.execute(select(institutions).where(institutions.c.fixmedins_code == code))).first()
    if row is None:
        raise not_found("institution", code, "INSTITUTION_NOT_FOUND")
    return institution_payload(row)
