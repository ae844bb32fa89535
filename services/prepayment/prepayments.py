"""Prepayments to institutions: disbursed now, scheduled monthly, moved earlier, disbursed when due.

Every disbursement posts `prepayment:{id}` (Dr institution:{code}:prepaid / Cr bank:fund) and
records `prepayment-disbursed` in the outbox, in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.prepayment import postings, store
from services.prepayment.models import events, institutions, prepayments
from services.prepayment.schemas import PrepaymentIn, PrepaymentOut, ScheduleIn
from shared.events import add_event
from shared.events.topics import PREPAYMENT_DISBURSED
from shared.problems import Problem, invalid, not_found

PRODUCER = "prepayment"
MAX_DUE_BATCH = 500


def view(row) -> dict:
    return PrepaymentOut(prepayment_id=row.prepayment_id, fixmedins_code=row.fixmedins_code, kind=row.kind,
                         amount=row.amount, status=row.status, scheduled_on=row.scheduled_on,
                         disbursed_on=row.disbursed_on, plan_id=row.plan_id).model_dump(mode="json")


async def _institution(session: AsyncSession, code: str, *, allow_suspended: bool = False):
    """The local copy of an institution, or 422 UNKNOWN_INSTITUTION / INSTITUTION_SUSPENDED."""
    row = (await session.execute(select(institutions).where(institutions.c.fixmedins_code == code))).first()
    store.check_code_known(row is not None, code)
    if row.suspended and not allow_suspended:
        raise invalid("INSTITUTION_SUSPENDED", f"institution {code} is suspended", field="fixmedins_code")
    return row


async def _disburse(session: AsyncSession, row, *, disbursed_on: date, admdvs: str) -> dict:
    """Mark a prepayment disbursed, post it and announce it."""
    done = (await session.execute(
        update(prepayments).where(prepayments.c.prepayment_id == row.prepayment_id)
        .values(status="disbursed", disbursed_on=disbursed_on).returning(*prepayments.c))).one()
    await store.post(session, [postings.prepayment_entry(
        prepayment_id=done.prepayment_id, fixmedins_code=done.fixmedins_code, amount=done.amount,
        disbursed_on=disbursed_on, kind=done.kind)])
    await add_event(session, events.outbox, topic=PREPAYMENT_DISBURSED, key=done.fixmedins_code, producer=PRODUCER,
                    payload={"prepayment_id": done.prepayment_id, "fixmedins_code": done.fixmedins_code,
                             "kind": done.kind, "amount": done.amount, "disbursed_on": disbursed_on,
                             "scheduled_on": done.scheduled_on, "admdvs": admdvs})
    return view(done)


async def disburse(session: AsyncSession, body: PrepaymentIn) -> dict:
    """Pay a prepayment now (annual turnover in full, COVID special, a monthly one, a top-up)."""
    institution = await _institution(session, body.fixmedins_code)
    row = (await session.execute(insert(prepayments).values(
        prepayment_id=str(uuid.uuid4()), fixmedins_code=body.fixmedins_code, kind=body.kind, amount=body.amount,
        status="scheduled", scheduled_on=body.disbursed_on).returning(*prepayments.c))).one()
    return await _disburse(session, row, disbursed_on=body.disbursed_on, admdvs=institution.admdvs)


def plan_dates(first_month: str, months: int, day_of_month: int) -> list[date]:
    """The payment days of a monthly plan."""
    year, month = (int(part) for part in first_month.split("-"))
    days = []
    for _ in range(months):
        days.append(date(year, month, day_of_month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return days


async def schedule(session: AsyncSession, body: ScheduleIn) -> dict:
    """A monthly prepayment plan; each payment is disbursed on its day (or earlier, when advanced)."""
    await _institution(session, body.fixmedins_code)
    plan_id = str(uuid.uuid4())
    rows = (await session.execute(insert(prepayments).returning(*prepayments.c), [
        {"prepayment_id": str(uuid.uuid4()), "fixmedins_code": body.fixmedins_code, "kind": "monthly",
         "amount": body.amount, "status": "scheduled", "scheduled_on": day, "plan_id": plan_id}
        for day in plan_dates(body.first_month, body.months, body.day_of_month)])).all()
    return {"plan_id": plan_id, "fixmedins_code": body.fixmedins_code,
            "prepayments": sorted((view(row) for row in rows), key=lambda p: p["scheduled_on"])}


async def advance(session: AsyncSession, prepayment_id: str, disbursed_on: date) -> dict:
    """Disburse a scheduled prepayment earlier than planned (e.g. a week early during the epidemic)."""
    row = (await session.execute(select(prepayments).where(prepayments.c.prepayment_id == prepayment_id)
                                 .with_for_update())).first()
    if row is None:
        raise not_found("prepayment", prepayment_id, "PREPAYMENT_NOT_FOUND")
    if row.status != "scheduled":
        raise Problem(409, "PREPAYMENT_ALREADY_DISBURSED",
                      f"prepayment {prepayment_id} was disbursed on {row.disbursed_on}")
    if disbursed_on >= row.scheduled_on:
        raise invalid("NOT_EARLIER", f"disbursed_on must be before the scheduled day {row.scheduled_on}",
                      field="disbursed_on")
    institution = await _institution(session, row.fixmedins_code)
    return await _disburse(session, row, disbursed_on=disbursed_on, admdvs=institution.admdvs)


async def disburse_due(session: AsyncSession, on: date) -> list[dict]:
    """Disburse scheduled prepayments due on or before `on`, each on its scheduled day (bounded batch)."""
    rows = (await session.execute(
        select(prepayments).where(prepayments.c.status == "scheduled", prepayments.c.scheduled_on <= on)
        .order_by(prepayments.c.scheduled_on, prepayments.c.prepayment_id).limit(MAX_DUE_BATCH)
        .with_for_update(skip_locked=True))).all()
    done = []
    for row in rows:
        institution = await _institution(session, row.fixmedins_code, allow_suspended=True)
        done.append(await _disburse(session, row, disbursed_on=row.scheduled_on, admdvs=institution.admdvs))
    return done


async def get(session: AsyncSession, prepayment_id: str) -> dict:
    row = (await session.execute(select(prepayments).where(prepayments.c.prepayment_id == prepayment_id))).first()
    if row is None:
        raise not_found("prepayment", prepayment_id, "PREPAYMENT_NOT_FOUND")
    return view(row)


async def find(session: AsyncSession, *, fixmedins_code: str | None, status: str | None, limit: int) -> list[dict]:
    query = select(prepayments).order_by(prepayments.c.created_at, prepayments.c.prepayment_id).limit(limit)
    if fixmedins_code is not None:
        query = query.where(prepayments.c.fixmedins_code == fixmedins_code)
    if status is not None:
        query = query.where(prepayments.c.status == status)
    return [view(row) for row in (await session.execute(query)).all()]
