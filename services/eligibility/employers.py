"""Employers: contribution deferrals (缓缴) and arrears (欠缴); changes reach every employee's snapshot."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.eligibility import domain
from services.eligibility.domain import RuleViolation
from services.eligibility.persons import admdvs, announce, ensure_employer
from services.eligibility.schemas import ArrearsIn, DeferralIn, EmployerIn
from shared.db import Row, Sql, Unit
from shared.problems import Problem, not_found

_LOCK = Sql("SELECT emp_name, admdvs FROM employers WHERE emp_no = :emp_no FOR UPDATE")
_EMPLOYER = Sql("SELECT emp_no, emp_name, admdvs FROM employers WHERE emp_no = :emp_no")
_REGISTER = Sql("""
INSERT INTO employers (emp_no, emp_name, admdvs) VALUES (:emp_no, :emp_name, :admdvs)
ON CONFLICT DO NOTHING RETURNING emp_no
""")
_COMPLETE = Sql("UPDATE employers SET emp_name = :emp_name, admdvs = :admdvs WHERE emp_no = :emp_no")
_STAFF = Sql("SELECT psn_no FROM persons WHERE emp_no = :emp_no")
_DEFERRALS = Sql("SELECT * FROM deferrals WHERE emp_no = :emp_no ORDER BY start_month")
_ADD_DEFERRAL = Sql("""
INSERT INTO deferrals (emp_no, start_month, end_month, months) VALUES (:emp_no, :start_month, :end_month, :months)
RETURNING *
""")
_ARREARS = Sql("SELECT * FROM arrears WHERE emp_no = :emp_no ORDER BY since_month")
_ARREARS_ONE = Sql("SELECT * FROM arrears WHERE id = :id AND emp_no = :emp_no")
_ADD_ARREARS = Sql("INSERT INTO arrears (emp_no, since_month) VALUES (:emp_no, :since_month) RETURNING *")
_SETTLE_ARREARS = Sql("UPDATE arrears SET settled_on = :settled_on, updated_at = now() WHERE id = :id RETURNING *")


def _month(day: date) -> str:
    return f"{day:%Y-%m}"


def _deferral_view(row: Row) -> dict[str, Any]:
    return {
        "id": row.id,
        "emp_no": row.emp_no,
        "start_month": _month(row.start_month),
        "end_month": _month(row.end_month),
        "months": row.months,
    }


def _arrears_view(row: Row) -> dict[str, Any]:
    return {
        "id": row.id,
        "emp_no": row.emp_no,
        "since_month": _month(row.since_month),
        "settled_on": None if row.settled_on is None else row.settled_on.isoformat(),
    }


async def _lock_employer(unit: Unit, emp_no: str) -> None:
    """Lock the employer's row (serialises its deferrals and arrears); created on first mention."""
    await ensure_employer(unit, emp_no)
    await unit.execute(_LOCK, emp_no=emp_no)


async def _announce_employees(unit: Unit, emp_no: str, *, today: date) -> None:
    staff = [r.psn_no for r in await unit.fetch(_STAFF, emp_no=emp_no)]
    await announce(unit, staff, "employer", today=today)


async def register_employer(unit: Unit, body: EmployerIn) -> tuple[dict[str, Any], bool]:
    """Create an employer; the same body again is a no-op, other attributes a 409."""
    place = None if body.admdvs is None else admdvs(body.admdvs, "admdvs")
    values = {"emp_no": body.emp_no, "emp_name": body.emp_name, "admdvs": place}
    if await unit.fetchval(_REGISTER, **values) is not None:
        return values, True
    existing = await unit.fetchrow(_LOCK, emp_no=body.emp_no)
    if existing.emp_name is None and existing.admdvs is None:  # known only by number so far: complete it
        await unit.execute(_COMPLETE, **values)
        return values, True
    if (existing.emp_name, existing.admdvs) != (body.emp_name, place):
        raise Problem(409, "EMPLOYER_EXISTS", f"employer {body.emp_no} exists with other attributes")
    return values, False


async def get_employer(unit: Unit, emp_no: str) -> dict[str, Any]:
    row = await unit.fetchrow(_EMPLOYER, emp_no=emp_no)
    if row is None:
        raise not_found("employer", emp_no, "EMPLOYER_NOT_FOUND")
    deferred = await unit.fetch(_DEFERRALS, emp_no=emp_no)
    owed = await unit.fetch(_ARREARS, emp_no=emp_no)
    return {
        "emp_no": row.emp_no,
        "emp_name": row.emp_name,
        "admdvs": row.admdvs,
        "deferrals": [_deferral_view(d) for d in deferred],
        "arrears": [_arrears_view(a) for a in owed],
    }


async def add_deferral(unit: Unit, emp_no: str, body: DeferralIn, *, today: date) -> dict[str, Any]:
    """Defer contributions for 1..6 months from start_month; benefits continue meanwhile."""
    start_month = domain.parse_month(body.start_month)
    if body.months > domain.MAX_DEFERRAL_MONTHS or body.months < 1:  # before touching the database
        domain.deferral_end(start_month=start_month, months=body.months, existing=())
    await _lock_employer(unit, emp_no)
    existing = await unit.fetch(_DEFERRALS, emp_no=emp_no)
    end_month = domain.deferral_end(
        start_month=start_month, months=body.months, existing=[(r.start_month, r.end_month) for r in existing]
    )
    row = await unit.fetchrow(
        _ADD_DEFERRAL, emp_no=emp_no, start_month=start_month, end_month=end_month, months=body.months
    )
    await _announce_employees(unit, emp_no, today=today)
    return _deferral_view(row)


async def add_arrears(unit: Unit, emp_no: str, body: ArrearsIn, *, today: date) -> dict[str, Any]:
    """The employer stopped paying from since_month; beyond 3 months not deferred, benefits stop."""
    since_month = domain.parse_month(body.since_month)
    await _lock_employer(unit, emp_no)
    existing = await unit.fetch(_ARREARS, emp_no=emp_no)
    domain.check_arrears(since_month=since_month, existing=[(r.since_month, r.settled_on) for r in existing])
    row = await unit.fetchrow(_ADD_ARREARS, emp_no=emp_no, since_month=since_month)
    await _announce_employees(unit, emp_no, today=today)
    return _arrears_view(row)


async def settle_arrears(unit: Unit, emp_no: str, arrears_id: int, settled_on: date, *, today: date) -> dict[str, Any]:
    """The arrears are paid: benefits resume from settled_on."""
    await _lock_employer(unit, emp_no)
    row = await unit.fetchrow(_ARREARS_ONE, id=arrears_id, emp_no=emp_no)
    if row is None:
        raise not_found("arrears", str(arrears_id), "ARREARS_NOT_FOUND")
    if row.settled_on is not None:
        raise Problem(409, "ARREARS_SETTLED", f"these arrears were settled on {row.settled_on}")
    if settled_on < row.since_month:
        raise RuleViolation(
            "END_BEFORE_START", f"settled_on {settled_on} is before {_month(row.since_month)}", field="settled_on"
        )
    row = await unit.fetchrow(_SETTLE_ARREARS, id=arrears_id, settled_on=settled_on)
    await _announce_employees(unit, emp_no, today=today)
    return _arrears_view(row)
