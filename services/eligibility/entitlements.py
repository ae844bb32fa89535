"""What a person is entitled to over time: aid identities, chronic qualifications, off-site
registrations, family. Each change locks the person, checks the windows, writes, announces."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility import domain
from services.eligibility.domain import RuleViolation, Window
from services.eligibility.models import (aid_identities, chronic_qualifications, family, institutions,
                                         offsite_registrations, persons)
from services.eligibility.persons import admdvs, announce, lock_person, qualification_view, registration_view
from services.eligibility.schemas import AidIdentityIn, ChronicQualificationIn, FamilyIn, OffsiteRegistrationIn
from shared.admdvs import same_city
from shared.problems import Problem, not_found


def _aid_view(row) -> dict:
    return {"id": row.id, "psn_no": row.psn_no, "category": row.category, "start_date": row.start_date.isoformat(),
            "lost_on": None if row.lost_on is None else row.lost_on.isoformat(),
            "window_end": None if row.window_end is None else row.window_end.isoformat()}


async def _others(session: AsyncSession, table: Table, *conditions, except_id: int | None = None) -> list:
    query = select(table).where(*conditions)
    if except_id is not None:
        query = query.where(table.c.id != except_id)
    return (await session.execute(query)).all()


# ------------------------------------------------------------------ aid identities (医疗救助身份)


async def add_aid_identity(session: AsyncSession, psn_no: str, body: AidIdentityIn, *, today: date) -> dict:
    """A new identity; its window may not overlap another of the same category."""
    await lock_person(session, psn_no)
    domain.check_aid_category(body.category)
    new = domain.aid_window(body.start_date, body.lost_on)
    same = await _others(session, aid_identities, aid_identities.c.psn_no == psn_no,
                         aid_identities.c.category == body.category)
    domain.refuse_overlap(new, [Window(r.start_date, r.window_end) for r in same], f"{body.category} identity")
    row = (await session.execute(insert(aid_identities).values(
        psn_no=psn_no, category=body.category, start_date=body.start_date, lost_on=body.lost_on,
        window_end=new.end).returning(*aid_identities.c))).one()
    await announce(session, [psn_no], "aid_identity", today=today)
    return _aid_view(row)


async def set_aid_lost_on(session: AsyncSession, psn_no: str, identity_id: int, lost_on: date | None, *,
                          today: date) -> dict:
    """Record (or clear) the day an identity was lost; covered until the end of that month."""
    await lock_person(session, psn_no)
    row = (await session.execute(select(aid_identities).where(
        aid_identities.c.id == identity_id, aid_identities.c.psn_no == psn_no))).first()
    if row is None:
        raise not_found("aid identity", str(identity_id), "AID_IDENTITY_NOT_FOUND")
    new = domain.aid_window(row.start_date, lost_on)
    same = await _others(session, aid_identities, aid_identities.c.psn_no == psn_no,
                         aid_identities.c.category == row.category, except_id=identity_id)
    domain.refuse_overlap(new, [Window(r.start_date, r.window_end) for r in same], f"{row.category} identity")
    row = (await session.execute(update(aid_identities).where(aid_identities.c.id == identity_id)
                                 .values(lost_on=lost_on, window_end=new.end, updated_at=func.now())
                                 .returning(*aid_identities.c))).one()
    await announce(session, [psn_no], "aid_identity", today=today)
    return _aid_view(row)


# ------------------------------------------------------------------ chronic and 两病 qualifications


async def _certifier(session: AsyncSession, code: str) -> None:
    """A qualification is certified by a known, designated (not suspended) hospital."""
    row = (await session.execute(select(institutions).where(institutions.c.fixmedins_code == code))).first()
    if row is None:
        raise RuleViolation("UNKNOWN_INSTITUTION", f"institution {code} is not registered", field="certified_by")
    if row.kind != "hospital":
        raise RuleViolation("CERTIFIER_NOT_HOSPITAL", f"{code} is a pharmacy; a hospital certifies",
                            field="certified_by")
    if row.suspended:
        raise RuleViolation("INSTITUTION_SUSPENDED", f"institution {code} is suspended", field="certified_by")


async def add_qualification(session: AsyncSession, psn_no: str, body: ChronicQualificationIn, *,
                            today: date) -> dict:
    """A chronic / 两病 qualification from start to end (open when no end)."""
    await lock_person(session, psn_no)
    two_disease_class = domain.check_qualification(body.disease, body.two_disease_class)
    new = domain.window(body.start_date, body.end_date)
    await _certifier(session, body.certified_by)
    same = await _others(session, chronic_qualifications, chronic_qualifications.c.psn_no == psn_no,
                         chronic_qualifications.c.disease == body.disease)
    domain.refuse_overlap(new, [Window(r.start_date, r.end_date) for r in same], f"{body.disease} qualification")
    row = (await session.execute(insert(chronic_qualifications).values(
        psn_no=psn_no, disease=body.disease, two_disease_class=two_disease_class, start_date=body.start_date,
        end_date=body.end_date, certified_by=body.certified_by).returning(*chronic_qualifications.c))).one()
    await announce(session, [psn_no], "chronic_qualification", today=today)
    return {"psn_no": psn_no, **qualification_view(row)}


async def end_qualification(session: AsyncSession, psn_no: str, qualification_id: int, end_date: date | None, *,
                            today: date) -> dict:
    await lock_person(session, psn_no)
    row = (await session.execute(select(chronic_qualifications).where(
        chronic_qualifications.c.id == qualification_id, chronic_qualifications.c.psn_no == psn_no))).first()
    if row is None:
        raise not_found("qualification", str(qualification_id), "QUALIFICATION_NOT_FOUND")
    new = domain.window(row.start_date, end_date)
    same = await _others(session, chronic_qualifications, chronic_qualifications.c.psn_no == psn_no,
                         chronic_qualifications.c.disease == row.disease, except_id=qualification_id)
    domain.refuse_overlap(new, [Window(r.start_date, r.end_date) for r in same], f"{row.disease} qualification")
    row = (await session.execute(update(chronic_qualifications).where(chronic_qualifications.c.id == qualification_id)
                                 .values(end_date=end_date, updated_at=func.now())
                                 .returning(*chronic_qualifications.c))).one()
    await announce(session, [psn_no], "chronic_qualification", today=today)
    return {"psn_no": psn_no, **qualification_view(row)}


# ------------------------------------------------------------------ off-site registrations (异地备案)


async def add_registration(session: AsyncSession, psn_no: str, body: OffsiteRegistrationIn, *, today: date) -> dict:
    """Registered to be treated in another area from start to end; not the home city, no overlap per area."""
    person = await lock_person(session, psn_no)
    area = admdvs(body.mdtrtarea_admdvs, "mdtrtarea_admdvs")
    new = domain.window(body.start_date, body.end_date)
    if same_city(area, person.insuplc_admdvs):
        raise RuleViolation("OFFSITE_IN_HOME_CITY", f"{area} is in the insured city {person.insuplc_admdvs}",
                            field="mdtrtarea_admdvs")
    same = await _others(session, offsite_registrations, offsite_registrations.c.psn_no == psn_no,
                         offsite_registrations.c.mdtrtarea_admdvs == area)
    domain.refuse_overlap(new, [Window(r.start_date, r.end_date) for r in same], f"registration to {area}")
    row = (await session.execute(insert(offsite_registrations).values(
        psn_no=psn_no, mdtrtarea_admdvs=area, start_date=body.start_date, end_date=body.end_date)
        .returning(*offsite_registrations.c))).one()
    await announce(session, [psn_no], "offsite_registration", today=today)
    return {"psn_no": psn_no, **registration_view(row)}


async def end_registration(session: AsyncSession, psn_no: str, registration_id: int, end_date: date | None, *,
                           today: date) -> dict:
    await lock_person(session, psn_no)
    row = (await session.execute(select(offsite_registrations).where(
        offsite_registrations.c.id == registration_id, offsite_registrations.c.psn_no == psn_no))).first()
    if row is None:
        raise not_found("registration", str(registration_id), "REGISTRATION_NOT_FOUND")
    new = domain.window(row.start_date, end_date)
    same = await _others(session, offsite_registrations, offsite_registrations.c.psn_no == psn_no,
                         offsite_registrations.c.mdtrtarea_admdvs == row.mdtrtarea_admdvs, except_id=registration_id)
    domain.refuse_overlap(new, [Window(r.start_date, r.end_date) for r in same],
                          f"registration to {row.mdtrtarea_admdvs}")
    row = (await session.execute(update(offsite_registrations).where(offsite_registrations.c.id == registration_id)
                                 .values(end_date=end_date, updated_at=func.now())
                                 .returning(*offsite_registrations.c))).one()
    await announce(session, [psn_no], "offsite_registration", today=today)
    return {"psn_no": psn_no, **registration_view(row)}


# ------------------------------------------------------------------ family (家庭共济)


async def add_family(session: AsyncSession, psn_no: str, body: FamilyIn, *, today: date) -> tuple[dict, bool]:
    """Link two persons both ways (spouse ↔ spouse, parent ↔ child); the same link again is a no-op."""
    inverse = domain.inverse_relation(body.relation)
    if body.member_psn_no == psn_no:
        raise RuleViolation("FAMILY_SELF", "a person is not their own family member", field="member_psn_no")
    exists = await session.scalar(select(persons.c.psn_no).where(persons.c.psn_no == psn_no))
    if exists is None:
        raise not_found("person", psn_no, "PERSON_NOT_FOUND")
    locked = (await session.execute(select(persons.c.psn_no).where(persons.c.psn_no.in_([psn_no, body.member_psn_no]))
                                    .order_by(persons.c.psn_no).with_for_update())).scalars().all()
    if body.member_psn_no not in locked:
        raise RuleViolation("UNKNOWN_FAMILY_MEMBER", f"person {body.member_psn_no} is not registered",
                            field="member_psn_no")
    current = await session.scalar(select(family.c.relation).where(
        family.c.psn_no == psn_no, family.c.member_psn_no == body.member_psn_no))
    link = {"psn_no": psn_no, "relation": body.relation, "member_psn_no": body.member_psn_no}
    if current == body.relation:
        return link, False
    if current is not None:
        raise Problem(409, "FAMILY_CONFLICT", f"{body.member_psn_no} is already recorded as {current}")
    await session.execute(insert(family).values([
        {"psn_no": psn_no, "member_psn_no": body.member_psn_no, "relation": body.relation},
        {"psn_no": body.member_psn_no, "member_psn_no": psn_no, "relation": inverse},
    ]))
    await announce(session, [psn_no, body.member_psn_no], "family", today=today)
    return link, True
