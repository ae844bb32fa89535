"""Employers: contribution deferrals (缓缴) and arrears (欠缴); changes reach every employee's snapshot."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility import domain
from services.eligibility.domain import RuleViolation
from services.eligibility.models import arrears, deferrals, employers, persons
from services.eligibility.persons import admdvs, announce, ensure_employer
from services.eligibility.schemas import ArrearsIn, DeferralIn, EmployerIn
from shared.problems import Problem, not_found


def _month(day: date) -> str:
    return f"{day:%Y-%m}"


def _deferral_view(row) -> dict:
    return {"id": row.id, "emp_no": row.emp_no, "start_month": _month(row.start_month),
            "end_month": _month(row.end_month), "months": row.months}


def _arrears_view(row) -> dict:
    return {"id": row.id, "emp_no": row.emp_no, "since_month": _month(row.since_month),
            "settled_on": None if row.settled_on is None else row.settled_on.isoformat()}


async def _lock_employer(session: AsyncSession, emp_no: str):
    """The employer's row, locked (serialises its deferrals and arrears); created on first mention."""
    await ensure_employer(session, emp_no)
    return (await session.execute(select(employers).where(employers.c.emp_no == emp_no).with_for_update())).one()


async def _announce_employees(session: AsyncSession, emp_no: str, *, today: date) -> None:
    staff = (await session.execute(select(persons.c.psn_no).where(persons.c.emp_no == emp_no))).scalars().all()
    await announce(session, staff, "employer", today=today)


async def register_employer(session: AsyncSession, body: EmployerIn) -> tuple[dict, bool]:
    """Create an employer; the same body again is a no-op, other attributes a 409."""
    place = None if body.admdvs is None else admdvs(body.admdvs, "admdvs")
    values = {"emp_no": body.emp_no, "emp_name": body.emp_name, "admdvs": place}
    row = (await session.execute(insert(employers).values(**values).on_conflict_do_nothing()
                                 .returning(*employers.c))).first()
    if row is not None:
        return values, True
    existing = (await session.execute(select(employers).where(employers.c.emp_no == body.emp_no)
                                      .with_for_update())).one()
    if existing.emp_name is None and existing.admdvs is None:  # known only by number so far: complete it
        await session.execute(update(employers).where(employers.c.emp_no == body.emp_no)
                              .values(emp_name=body.emp_name, admdvs=place))
        return values, True
    if (existing.emp_name, existing.admdvs) != (body.emp_name, place):
        raise Problem(409, "EMPLOYER_EXISTS", f"employer {body.emp_no} exists with other attributes")
    return values, False


async def get_employer(session: AsyncSession, emp_no: str) -> dict:
    row = (await session.execute(select(employers).where(employers.c.emp_no == emp_no))).first()
    if row is None:
        raise not_found("employer", emp_no, "EMPLOYER_NOT_FOUND")
    deferred = await session.execute(select(deferrals).where(deferrals.c.emp_no == emp_no)
                                     .order_by(deferrals.c.start_month))
    owed = await session.execute(select(arrears).where(arrears.c.emp_no == emp_no).order_by(arrears.c.since_month))
    return {"emp_no": row.emp_no, "emp_name": row.emp_name, "admdvs": row.admdvs,
            "deferrals": [_deferral_view(d) for d in deferred], "arrears": [_arrears_view(a) for a in owed]}


async def add_deferral(session: AsyncSession, emp_no: str, body: DeferralIn, *, today: date) -> dict:
    """Defer contributions for 1..6 months from start_month; benefits continue meanwhile."""
    start_month = domain.parse_month(body.start_month)
    if body.months > domain.MAX_DEFERRAL_MONTHS or body.months < 1:  # before touching the database
        domain.deferral_end(start_month=start_month, months=body.months, existing=())
    await _lock_employer(session, emp_no)
    existing = await session.execute(select(deferrals.c.start_month, deferrals.c.end_month)
                                     .where(deferrals.c.emp_no == emp_no))
    end_month = domain.deferral_end(start_month=start_month, months=body.months,
                                    existing=[(r.start_month, r.end_month) for r in existing])
    row = (await session.execute(insert(deferrals).values(
        emp_no=emp_no, start_month=start_month, end_month=end_month, months=body.months)
        .returning(*deferrals.c))).one()
    await _announce_employees(session, emp_no, today=today)
    return _deferral_view(row)


async def add_arrears(session: AsyncSession, emp_no: str, body: ArrearsIn, *, today: date) -> dict:
    """The employer stopped paying from since_month; beyond 3 months not deferred, benefits stop."""
    since_month = domain.parse_month(body.since_month)
    await _lock_employer(session, emp_no)
    existing = await session.execute(select(arrears.c.since_month, arrears.c.settled_on)
                                     .where(arrears.c.emp_no == emp_no))
    domain.check_arrears(since_month=since_month, existing=[(r.since_month, r.settled_on) for r in existing])
    row = (await session.execute(insert(arrears).values(emp_no=emp_no, since_month=since_month)
                                 .returning(*arrears.c))).one()
    await _announce_employees(session, emp_no, today=today)
    return _arrears_view(row)


async def settle_arrears(session: AsyncSession, emp_no: str, arrears_id: int, settled_on: date, *,
                         today: date) -> dict:
    """The arrears are paid: benefits resume from settled_on."""
    await _lock_employer(session, emp_no)
    row = (await session.execute(select(arrears).where(arrears.c.id == arrears_id, arrears.c.emp_no == emp_no))).first()
    if row is None:
        raise not_found("arrears", str(arrears_id), "ARREARS_NOT_FOUND")
    if row.settled_on is not None:
        raise Problem(409, "ARREARS_SETTLED", f"these arrears were settled on {row.settled_on}")
    if settled_on < row.since_month:
        raise RuleViolation("END_BEFORE_START", f"settled_on {settled_on} is before {_month(row.since_month)}",
                            field="settled_on")
    row = (await session.execute(update(arrears).where(arrears.c.id == arrears_id)
                                 .values(settled_on=settled_on, updated_at=func.now()).returning(*arrears.c))).one()
    await _announce_employees(session, emp_no, today=today)
    return _arrears_view(row)
