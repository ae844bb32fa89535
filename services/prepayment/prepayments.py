"""Prepayments to institutions: disbursed now, scheduled monthly, moved earlier, disbursed when due.

Every disbursement posts `prepayment:{id}` (Dr institution:{code}:prepaid / Cr bank:fund) and
records `prepayment-disbursed` in the outbox, in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from services.prepayment import postings, store
from services.prepayment.schemas import PrepaymentIn, PrepaymentOut, ScheduleIn, stored_answer
from shared.db import Row, Sql, Unit
from shared.events.topics import PREPAYMENT_DISBURSED
from shared.problems import Problem, invalid, not_found

MAX_DUE_BATCH = 500

_INSTITUTION = Sql("SELECT suspended, admdvs FROM institutions WHERE fixmedins_code = :code")
_ADD = Sql("""
INSERT INTO prepayments (prepayment_id, fixmedins_code, kind, amount, status, scheduled_on)
VALUES (:prepayment_id, :code, :kind, :amount, 'scheduled', :scheduled_on)
RETURNING *
""")
_ADD_PLAN = Sql("""
INSERT INTO prepayments (prepayment_id, fixmedins_code, kind, amount, status, scheduled_on, plan_id)
SELECT p.id, CAST(:code AS text), 'monthly', CAST(:amount AS numeric), 'scheduled', p.day, CAST(:plan_id AS text)
  FROM unnest(CAST(:ids AS text[]), CAST(:days AS date[])) AS p(id, day)
RETURNING *
""")
_DISBURSED = Sql("""
UPDATE prepayments SET status = 'disbursed', disbursed_on = :disbursed_on WHERE prepayment_id = :prepayment_id
RETURNING *
""")
_GET = Sql("SELECT * FROM prepayments WHERE prepayment_id = :prepayment_id")
_HOLD = Sql("SELECT * FROM prepayments WHERE prepayment_id = :prepayment_id FOR UPDATE")
# Replicas skip the rows another one holds.
_DUE = Sql("""
SELECT * FROM prepayments WHERE status = 'scheduled' AND scheduled_on <= :on
 ORDER BY scheduled_on, prepayment_id LIMIT :limit
   FOR UPDATE SKIP LOCKED
""")
_FIND = Sql("""
SELECT * FROM prepayments
 WHERE (CAST(:code AS text) IS NULL OR fixmedins_code = :code) AND (CAST(:status AS text) IS NULL OR status = :status)
 ORDER BY created_at, prepayment_id LIMIT :limit
""")


def view(row: Row) -> dict[str, Any]:
    return stored_answer(PrepaymentOut, row)


async def _institution(unit: Unit, code: str, *, allow_suspended: bool = False) -> Row:
    """The local copy of an institution, or 422 UNKNOWN_INSTITUTION / INSTITUTION_SUSPENDED."""
    row = await unit.fetchrow(_INSTITUTION, code=code)
    store.check_code_known(row is not None, code)
    if row.suspended and not allow_suspended:
        raise invalid("INSTITUTION_SUSPENDED", f"institution {code} is suspended", field="fixmedins_code")
    return row


async def _disburse(unit: Unit, row: Row, *, disbursed_on: date, admdvs: str) -> dict[str, Any]:
    """Mark a prepayment disbursed, post it and announce it."""
    done = await unit.fetchrow(_DISBURSED, prepayment_id=row.prepayment_id, disbursed_on=disbursed_on)
    await store.post(
        unit,
        [
            postings.prepayment_entry(
                prepayment_id=done.prepayment_id,
                fixmedins_code=done.fixmedins_code,
                amount=done.amount,
                disbursed_on=disbursed_on,
                kind=done.kind,
            )
        ],
    )
    await unit.publish(
        topic=PREPAYMENT_DISBURSED,
        key=done.fixmedins_code,
        payload={
            "prepayment_id": done.prepayment_id,
            "fixmedins_code": done.fixmedins_code,
            "kind": done.kind,
            "amount": done.amount,
            "disbursed_on": disbursed_on,
            "scheduled_on": done.scheduled_on,
            "admdvs": admdvs,
        },
    )
    return view(done)


async def disburse(unit: Unit, body: PrepaymentIn) -> dict[str, Any]:
    """Pay a prepayment now (annual turnover in full, COVID special, a monthly one, a top-up)."""
    institution = await _institution(unit, body.fixmedins_code)
    row = await unit.fetchrow(
        _ADD,
        prepayment_id=str(uuid.uuid4()),
        code=body.fixmedins_code,
        kind=body.kind,
        amount=body.amount,
        scheduled_on=body.disbursed_on,
    )
    return await _disburse(unit, row, disbursed_on=body.disbursed_on, admdvs=institution.admdvs)


def plan_dates(first_month: str, months: int, day_of_month: int) -> list[date]:
    """The payment days of a monthly plan."""
    year, month = (int(part) for part in first_month.split("-"))
    days = []
    for _ in range(months):
        days.append(date(year, month, day_of_month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return days


async def schedule(unit: Unit, body: ScheduleIn) -> dict[str, Any]:
    """A monthly prepayment plan; each payment is disbursed on its day (or earlier, when advanced)."""
    await _institution(unit, body.fixmedins_code)
    plan_id = str(uuid.uuid4())
    days = plan_dates(body.first_month, body.months, body.day_of_month)
    rows = await unit.fetch(
        _ADD_PLAN,
        code=body.fixmedins_code,
        amount=body.amount,
        plan_id=plan_id,
        ids=[str(uuid.uuid4()) for _ in days],
        days=days,
    )
    return {
        "plan_id": plan_id,
        "fixmedins_code": body.fixmedins_code,
        "prepayments": sorted((view(row) for row in rows), key=lambda p: p["scheduled_on"]),
    }


async def advance(unit: Unit, prepayment_id: str, disbursed_on: date) -> dict[str, Any]:
    """Disburse a scheduled prepayment earlier than planned (e.g. a week early during the epidemic)."""
    row = await unit.fetchrow(_HOLD, prepayment_id=prepayment_id)
    if row is None:
        raise not_found("prepayment", prepayment_id, "PREPAYMENT_NOT_FOUND")
    if row.status != "scheduled":
        raise Problem(
            409, "PREPAYMENT_ALREADY_DISBURSED", f"prepayment {prepayment_id} was disbursed on {row.disbursed_on}"
        )
    if disbursed_on >= row.scheduled_on:
        raise invalid(
            "NOT_EARLIER", f"disbursed_on must be before the scheduled day {row.scheduled_on}", field="disbursed_on"
        )
    institution = await _institution(unit, row.fixmedins_code)
    return await _disburse(unit, row, disbursed_on=disbursed_on, admdvs=institution.admdvs)


async def disburse_due(unit: Unit, on: date) -> list[dict[str, Any]]:
    """Disburse scheduled prepayments due on or before `on`, each on its scheduled day (bounded batch)."""
    done = []
    for row in await unit.fetch(_DUE, on=on, limit=MAX_DUE_BATCH):
        institution = await _institution(unit, row.fixmedins_code, allow_suspended=True)
        done.append(await _disburse(unit, row, disbursed_on=row.scheduled_on, admdvs=institution.admdvs))
    return done


async def get(unit: Unit, prepayment_id: str) -> dict[str, Any]:
    row = await unit.fetchrow(_GET, prepayment_id=prepayment_id)
    if row is None:
        raise not_found("prepayment", prepayment_id, "PREPAYMENT_NOT_FOUND")
    return view(row)


async def find(unit: Unit, *, fixmedins_code: str | None, status: str | None, limit: int) -> list[dict[str, Any]]:
    rows = await unit.fetch(_FIND, code=fixmedins_code, status=status, limit=limit)
    return [view(row) for row in rows]
