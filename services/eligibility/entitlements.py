"""What a person is entitled to over time: aid identities, chronic qualifications, off-site
registrations, family. Each change locks the person, checks the windows, writes, announces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.eligibility import domain
from services.eligibility.domain import RuleViolation, Window
from services.eligibility.persons import admdvs, announce, lock_person, qualification_view, registration_view
from services.eligibility.schemas import AidIdentityIn, ChronicQualificationIn, FamilyIn, OffsiteRegistrationIn
from shared.admdvs import same_city
from shared.db import Row, Sql, Unit
from shared.problems import Problem, not_found

_AID_WINDOWS = Sql("""
SELECT id, start_date, window_end AS end_date FROM aid_identities WHERE psn_no = :psn_no AND category = :key
""")
_AID_IDENTITY = Sql("SELECT *, category AS key FROM aid_identities WHERE id = :id AND psn_no = :psn_no")
_ADD_AID_IDENTITY = Sql("""
INSERT INTO aid_identities (psn_no, category, start_date, lost_on, window_end)
VALUES (:psn_no, :category, :start_date, :lost_on, :window_end) RETURNING *
""")
_SET_LOST_ON = Sql("""
UPDATE aid_identities SET lost_on = :end, window_end = :window_end, updated_at = now() WHERE id = :id RETURNING *
""")

_CERTIFIER = Sql("SELECT kind, suspended FROM institutions WHERE fixmedins_code = :code")
_QUALIFICATION_WINDOWS = Sql("""
SELECT id, start_date, end_date FROM chronic_qualifications WHERE psn_no = :psn_no AND disease = :key
""")
_QUALIFICATION = Sql("SELECT *, disease AS key FROM chronic_qualifications WHERE id = :id AND psn_no = :psn_no")
_ADD_QUALIFICATION = Sql("""
INSERT INTO chronic_qualifications (psn_no, disease, two_disease_class, start_date, end_date, certified_by)
VALUES (:psn_no, :disease, :two_disease_class, :start_date, :end_date, :certified_by) RETURNING *
""")
_END_QUALIFICATION = Sql("""
UPDATE chronic_qualifications SET end_date = :end, updated_at = now() WHERE id = :id RETURNING *
""")

_REGISTRATION_WINDOWS = Sql("""
SELECT id, start_date, end_date FROM offsite_registrations WHERE psn_no = :psn_no AND mdtrtarea_admdvs = :key
""")
_REGISTRATION = Sql("""
SELECT *, mdtrtarea_admdvs AS key FROM offsite_registrations WHERE id = :id AND psn_no = :psn_no
""")
_ADD_REGISTRATION = Sql("""
INSERT INTO offsite_registrations (psn_no, mdtrtarea_admdvs, start_date, end_date)
VALUES (:psn_no, :area, :start_date, :end_date) RETURNING *
""")
_END_REGISTRATION = Sql("""
UPDATE offsite_registrations SET end_date = :end, updated_at = now() WHERE id = :id RETURNING *
""")

_PERSON_EXISTS = Sql("SELECT EXISTS (SELECT FROM persons WHERE psn_no = :psn_no)")
_LOCK_PERSONS = Sql("""
SELECT psn_no FROM persons WHERE psn_no = ANY(CAST(:psn_nos AS text[])) ORDER BY psn_no FOR UPDATE
""")
_RELATION = Sql("SELECT relation FROM family WHERE psn_no = :psn_no AND member_psn_no = :member_psn_no")
_LINK = Sql("""
INSERT INTO family (psn_no, member_psn_no, relation)
VALUES (:psn_no, :member_psn_no, :relation), (:member_psn_no, :psn_no, :inverse)
""")


def _aid_view(row: Row) -> dict[str, Any]:
    return {
        "id": row.id,
        "psn_no": row.psn_no,
        "category": row.category,
        "start_date": row.start_date.isoformat(),
        "lost_on": None if row.lost_on is None else row.lost_on.isoformat(),
        "window_end": None if row.window_end is None else row.window_end.isoformat(),
    }


@dataclass(frozen=True, slots=True)
class _Windowed:
    """A kind of record whose windows may not overlap within its key (the category, disease or area)."""

    noun: str  # as a 404 names it
    missing: str  # the 404's code
    find: Sql  # one record of the person (:id, :psn_no), with its `key`
    windows: Sql  # the person's windows of one key (:psn_no, :key): id, start_date, end_date
    what: str  # the overlapping thing as OVERLAPPING_WINDOW names it, "{}" standing for the key
    window: Callable[[date, date | None], Window]  # the new window from the start and the given end
    update: Sql  # the new end (:id, :end, :window_end)
    change: str  # the `change` of person-changed


_AID_IDENTITIES = _Windowed(
    noun="aid identity",
    missing="AID_IDENTITY_NOT_FOUND",
    find=_AID_IDENTITY,
    windows=_AID_WINDOWS,
    what="{} identity",
    window=domain.aid_window,
    update=_SET_LOST_ON,
    change="aid_identity",
)
_QUALIFICATIONS = _Windowed(
    noun="qualification",
    missing="QUALIFICATION_NOT_FOUND",
    find=_QUALIFICATION,
    windows=_QUALIFICATION_WINDOWS,
    what="{} qualification",
    window=domain.window,
    update=_END_QUALIFICATION,
    change="chronic_qualification",
)
_REGISTRATIONS = _Windowed(
    noun="registration",
    missing="REGISTRATION_NOT_FOUND",
    find=_REGISTRATION,
    windows=_REGISTRATION_WINDOWS,
    what="registration to {}",
    window=domain.window,
    update=_END_REGISTRATION,
    change="offsite_registration",
)


async def _refuse_overlap(
    unit: Unit, kind: _Windowed, *, psn_no: str, key: str, new: Window, except_id: int | None = None
) -> None:
    """OVERLAPPING_WINDOW when `new` shares a day with another window of the person's records of `key`."""
    same = await unit.fetch(kind.windows, psn_no=psn_no, key=key)
    others = [Window(r.start_date, r.end_date) for r in same if r.id != except_id]
    domain.refuse_overlap(new, others, kind.what.format(key))


# ------------------------------------------------------------------ aid identities (医疗救助身份)


async def add_aid_identity(unit: Unit, psn_no: str, body: AidIdentityIn, *, today: date) -> dict[str, Any]:
    """A new identity; its window may not overlap another of the same category."""
    await lock_person(unit, psn_no)
    domain.check_aid_category(body.category)
    new = domain.aid_window(body.start_date, body.lost_on)
    await _refuse_overlap(unit, _AID_IDENTITIES, psn_no=psn_no, key=body.category, new=new)
    row = await unit.fetchrow(
        _ADD_AID_IDENTITY,
        psn_no=psn_no,
        category=body.category,
        start_date=body.start_date,
        lost_on=body.lost_on,
        window_end=new.end,
    )
    await announce(unit, [psn_no], "aid_identity", today=today)
    return _aid_view(row)


async def set_aid_lost_on(
    unit: Unit, psn_no: str, identity_id: int, lost_on: date | None, *, today: date
) -> dict[str, Any]:
    """Record (or clear) the day an identity was lost; covered until the end of that month."""
    return _aid_view(await _end_window(unit, _AID_IDENTITIES, psn_no, identity_id, lost_on, today=today))


# ------------------------------------------------------------------ chronic and 两病 qualifications


async def _certifier(unit: Unit, code: str) -> None:
    """A qualification is certified by a known, designated (not suspended) hospital."""
    row = await unit.fetchrow(_CERTIFIER, code=code)
    if row is None:
        raise RuleViolation("UNKNOWN_INSTITUTION", f"institution {code} is not registered", field="certified_by")
    if row.kind != "hospital":
        raise RuleViolation(
            "CERTIFIER_NOT_HOSPITAL", f"{code} is a pharmacy; a hospital certifies", field="certified_by"
        )
    if row.suspended:
        raise RuleViolation("INSTITUTION_SUSPENDED", f"institution {code} is suspended", field="certified_by")


async def add_qualification(unit: Unit, psn_no: str, body: ChronicQualificationIn, *, today: date) -> dict[str, Any]:
    """A chronic / 两病 qualification from start to end (open when no end)."""
    await lock_person(unit, psn_no)
    two_disease_class = domain.check_qualification(body.disease, body.two_disease_class)
    new = domain.window(body.start_date, body.end_date)
    await _certifier(unit, body.certified_by)
    await _refuse_overlap(unit, _QUALIFICATIONS, psn_no=psn_no, key=body.disease, new=new)
    row = await unit.fetchrow(
        _ADD_QUALIFICATION,
        psn_no=psn_no,
        disease=body.disease,
        two_disease_class=two_disease_class,
        start_date=body.start_date,
        end_date=body.end_date,
        certified_by=body.certified_by,
    )
    await announce(unit, [psn_no], "chronic_qualification", today=today)
    return {"psn_no": psn_no, **qualification_view(row)}


async def end_qualification(
    unit: Unit, psn_no: str, qualification_id: int, end_date: date | None, *, today: date
) -> dict[str, Any]:
    row = await _end_window(unit, _QUALIFICATIONS, psn_no, qualification_id, end_date, today=today)
    return {"psn_no": psn_no, **qualification_view(row)}


# ------------------------------------------------------------------ off-site registrations (异地备案)


async def add_registration(unit: Unit, psn_no: str, body: OffsiteRegistrationIn, *, today: date) -> dict[str, Any]:
    """Registered to be treated in another area from start to end; not the home city, no overlap per area."""
    person = await lock_person(unit, psn_no)
    area = admdvs(body.mdtrtarea_admdvs, "mdtrtarea_admdvs")
    new = domain.window(body.start_date, body.end_date)
    if same_city(area, person.insuplc_admdvs):
        raise RuleViolation(
            "OFFSITE_IN_HOME_CITY", f"{area} is in the insured city {person.insuplc_admdvs}", field="mdtrtarea_admdvs"
        )
    await _refuse_overlap(unit, _REGISTRATIONS, psn_no=psn_no, key=area, new=new)
    row = await unit.fetchrow(
        _ADD_REGISTRATION, psn_no=psn_no, area=area, start_date=body.start_date, end_date=body.end_date
    )
    await announce(unit, [psn_no], "offsite_registration", today=today)
    return {"psn_no": psn_no, **registration_view(row)}


async def end_registration(
    unit: Unit, psn_no: str, registration_id: int, end_date: date | None, *, today: date
) -> dict[str, Any]:
    row = await _end_window(unit, _REGISTRATIONS, psn_no, registration_id, end_date, today=today)
    return {"psn_no": psn_no, **registration_view(row)}


# ------------------------------------------------------------------ a window's end, moved


async def _end_window(
    unit: Unit, kind: _Windowed, psn_no: str, record_id: int, end: date | None, *, today: date
) -> Row:
    """Move (or clear) the end of one of the person's records; its new window may not overlap another of its key."""
    await lock_person(unit, psn_no)
    row = await unit.fetchrow(kind.find, id=record_id, psn_no=psn_no)
    if row is None:
        raise not_found(kind.noun, str(record_id), kind.missing)
    new = kind.window(row.start_date, end)
    await _refuse_overlap(unit, kind, psn_no=psn_no, key=row.key, new=new, except_id=record_id)
    row = await unit.fetchrow(kind.update, id=record_id, end=end, window_end=new.end)
    await announce(unit, [psn_no], kind.change, today=today)
    return row


# ------------------------------------------------------------------ family (家庭共济)


async def add_family(unit: Unit, psn_no: str, body: FamilyIn, *, today: date) -> tuple[dict[str, Any], bool]:
    """Link two persons both ways (spouse ↔ spouse, parent ↔ child); the same link again is a no-op."""
    inverse = domain.inverse_relation(body.relation)
    if body.member_psn_no == psn_no:
        raise RuleViolation("FAMILY_SELF", "a person is not their own family member", field="member_psn_no")
    if not await unit.fetchval(_PERSON_EXISTS, psn_no=psn_no):
        raise not_found("person", psn_no, "PERSON_NOT_FOUND")
    locked = {r.psn_no for r in await unit.fetch(_LOCK_PERSONS, psn_nos=[psn_no, body.member_psn_no])}
    if body.member_psn_no not in locked:
        raise RuleViolation(
            "UNKNOWN_FAMILY_MEMBER", f"person {body.member_psn_no} is not registered", field="member_psn_no"
        )
    current = await unit.fetchval(_RELATION, psn_no=psn_no, member_psn_no=body.member_psn_no)
    link = {"psn_no": psn_no, "relation": body.relation, "member_psn_no": body.member_psn_no}
    if current == body.relation:
        return link, False
    if current is not None:
        raise Problem(409, "FAMILY_CONFLICT", f"{body.member_psn_no} is already recorded as {current}")
    await unit.execute(_LINK, psn_no=psn_no, member_psn_no=body.member_psn_no, relation=body.relation, inverse=inverse)
    await announce(unit, [psn_no, body.member_psn_no], "family", today=today)
    return link, True
