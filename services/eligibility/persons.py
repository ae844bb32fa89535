"""Persons: registration, credentials, person type history, and the `person-changed` event."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import date
from typing import Any, NoReturn

from services.eligibility import domain
from services.eligibility.certno import parse_certno
from services.eligibility.domain import RuleViolation
from services.eligibility.schemas import PersonIn, PersonPatch
from shared.admdvs import check_admdvs
from shared.db import Row, Sql, Unit
from shared.events.topics import PERSON_CHANGED
from shared.logs import mask_certno, mask_name
from shared.money import fmt
from shared.problems import Problem, not_found

_ENSURE_EMPLOYER = Sql("INSERT INTO employers (emp_no) VALUES (:emp_no) ON CONFLICT DO NOTHING")
_LOCK_PERSON = Sql("SELECT * FROM persons WHERE psn_no = :psn_no FOR UPDATE")
_PERSON = Sql("SELECT * FROM persons WHERE psn_no = :psn_no")
_PSN_NO_TAKEN = Sql("SELECT EXISTS (SELECT FROM persons WHERE psn_no = :psn_no)")
_BY_CERTNO = Sql("SELECT psn_no FROM persons WHERE certno = :certno")
_CARD_OWNER = Sql("SELECT psn_no FROM persons WHERE card_no = :card_no")
_TYPE_HISTORY = Sql("SELECT psn_type, effective_from FROM psn_types WHERE psn_no = :psn_no ORDER BY effective_from")
_TYPE_HISTORIES = Sql("""
SELECT psn_no, psn_type, effective_from FROM psn_types
WHERE psn_no = ANY(CAST(:psn_nos AS text[])) ORDER BY psn_no, effective_from
""")
_ADD_TYPE = Sql("INSERT INTO psn_types (psn_no, effective_from, psn_type) VALUES (:psn_no, :effective_from, :psn_type)")
_BUMP_VERSIONS = Sql("""
UPDATE persons SET version = version + 1, updated_at = now()
WHERE psn_no = ANY(CAST(:psn_nos AS text[])) RETURNING *
""")
_REGISTER = Sql("""
INSERT INTO persons (psn_no, certno, psn_name, gend, brdy, insutype, insuplc_admdvs, emp_no, contribution_base,
                     card_no, ecert_hash)
VALUES (:psn_no, :certno, :psn_name, :gend, :brdy, :insutype, :insuplc_admdvs, :emp_no, :contribution_base,
        :card_no, :ecert_hash)
ON CONFLICT DO NOTHING RETURNING *
""")
_SET_ECERT = Sql("UPDATE persons SET ecert_hash = :ecert_hash WHERE psn_no = :psn_no")
# Only the fields the patch names change (a field given as null is cleared).
_PATCH = Sql("""
UPDATE persons SET
  emp_no = CASE WHEN :emp_no_given THEN :emp_no ELSE emp_no END,
  contribution_base = CASE WHEN :contribution_base_given THEN :contribution_base ELSE contribution_base END,
  card_no = CASE WHEN :card_no_given THEN :card_no ELSE card_no END
WHERE psn_no = :psn_no
""")
_AID_IDENTITIES = Sql("SELECT * FROM aid_identities WHERE psn_no = :psn_no ORDER BY start_date, id")
_QUALIFICATIONS = Sql("SELECT * FROM chronic_qualifications WHERE psn_no = :psn_no ORDER BY start_date, id")
_REGISTRATIONS = Sql("SELECT * FROM offsite_registrations WHERE psn_no = :psn_no ORDER BY start_date, id")
_FAMILY = Sql("SELECT relation, member_psn_no FROM family WHERE psn_no = :psn_no ORDER BY member_psn_no")
_CASES = Sql("""
SELECT case_id, status, diagnosed_at, fixmedins_code, published FROM covid_cases
WHERE psn_no = :psn_no ORDER BY diagnosed_at, case_id
""")


def ecert_digest(token: str) -> str:
    """What is stored of an 电子凭证 token: its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_ecert_token() -> str:
    return "EC" + secrets.token_urlsafe(24)


def admdvs(value: str, field: str) -> str:
    """A 6-digit division of a known province, else INVALID_ADMDVS."""
    try:
        return check_admdvs(value)
    except ValueError as exc:
        raise RuleViolation("INVALID_ADMDVS", str(exc), field=field) from None


def mask_card(card_no: str | None) -> str | None:
    return None if card_no is None else "*" * max(len(card_no) - 4, 1) + card_no[-4:]


async def ensure_employer(unit: Unit, emp_no: str) -> None:
    """Employers are known by number; the first mention registers one."""
    await unit.execute(_ENSURE_EMPLOYER, emp_no=emp_no)


async def lock_person(unit: Unit, psn_no: str) -> Row:
    """The person's row, locked for this transaction (serialises one person's changes), or 404."""
    row = await unit.fetchrow(_LOCK_PERSON, psn_no=psn_no)
    if row is None:
        raise not_found("person", psn_no, "PERSON_NOT_FOUND")
    return row


async def type_history(unit: Unit, psn_no: str) -> list[tuple[str, date]]:
    return [(r.psn_type, r.effective_from) for r in await unit.fetch(_TYPE_HISTORY, psn_no=psn_no)]


def person_payload(row: Row, *, change: str, history: Iterable[tuple[str, date]], today: date) -> dict[str, Any]:
    """`person-changed` as docs/events.md gives it: never the ID number or the name."""
    history = list(history)
    retired = next((since for kind, since in history if kind == "retired"), None)
    return {
        "psn_no": row.psn_no,
        "version": row.version,
        "change": change,
        "insutype": row.insutype,
        "psn_type": domain.psn_type_on(history, today),
        "insuplc_admdvs": row.insuplc_admdvs,
        "gend": row.gend,
        "brdy": row.brdy,
        "emp_no": row.emp_no,
        "retired_from": retired,
    }


async def announce(unit: Unit, psn_nos: Iterable[str], change: str, *, today: date) -> None:
    """Bump the persons' versions and record one `person-changed` each, in this unit of work."""
    psn_nos = sorted(set(psn_nos))
    if not psn_nos:
        return
    rows = await unit.fetch(_BUMP_VERSIONS, psn_nos=psn_nos)
    histories: dict[str, list[tuple[str, date]]] = {}
    for entry in await unit.fetch(_TYPE_HISTORIES, psn_nos=psn_nos):
        histories.setdefault(entry.psn_no, []).append((entry.psn_type, entry.effective_from))
    for row in sorted(rows, key=lambda r: r.psn_no):
        await unit.publish(
            topic=PERSON_CHANGED,
            key=row.psn_no,
            payload=person_payload(row, change=change, history=histories.get(row.psn_no, ()), today=today),
        )


async def _next_psn_no(unit: Unit, insuplc_admdvs: str) -> str:
    """A fresh person number: the insured place, then 10 random digits, unused so far."""
    for _ in range(10):
        candidate = f"{insuplc_admdvs}{secrets.randbelow(10**10):010d}"
        if not await unit.fetchval(_PSN_NO_TAKEN, psn_no=candidate):
            return candidate
    raise Problem(503, "PSN_NO_EXHAUSTED", "could not draw a free person number; retry")


async def register_person(unit: Unit, body: PersonIn, *, today: date) -> dict[str, Any]:
    """Register an insured person; returns the person with a fresh 电子凭证 token (shown once)."""
    resident = parse_certno(body.certno, today=today)
    psn_type = domain.check_scheme(body.insutype, body.psn_type)
    place = admdvs(body.insuplc_admdvs, "insuplc_admdvs")
    if body.contribution_base is not None and body.contribution_base < 0:
        raise RuleViolation(
            "INVALID_CONTRIBUTION_BASE", "contribution_base must not be negative", field="contribution_base"
        )
    if body.emp_no is not None:
        await ensure_employer(unit, body.emp_no)
    psn_no = body.psn_no or await _next_psn_no(unit, place)
    token = new_ecert_token()
    row = await unit.fetchrow(
        _REGISTER,
        psn_no=psn_no,
        certno=resident.certno,
        psn_name=body.psn_name,
        gend=resident.gend,
        brdy=resident.brdy,
        insutype=body.insutype,
        insuplc_admdvs=place,
        emp_no=body.emp_no,
        contribution_base=body.contribution_base,
        card_no=body.card_no,
        ecert_hash=ecert_digest(token),
    )
    if row is None:
        await _explain_conflict(unit, psn_no=psn_no, certno=resident.certno, card_no=body.card_no)
    history = [(psn_type, domain.SINCE_EVER)] if psn_type else []  # residents have no person type
    if psn_type:
        await unit.execute(_ADD_TYPE, psn_no=psn_no, effective_from=domain.SINCE_EVER, psn_type=psn_type)
    await unit.publish(
        topic=PERSON_CHANGED, key=psn_no, payload=person_payload(row, change="registered", history=history, today=today)
    )
    return {**person_view(row, history=history, today=today, unmasked=True), "ecert_token": token}


async def _explain_conflict(unit: Unit, *, psn_no: str, certno: str, card_no: str | None) -> NoReturn:
    """Say which unique key the rejected registration collided with (409)."""
    by_certno = await unit.fetchval(_BY_CERTNO, certno=certno)
    if by_certno is not None:
        raise Problem(409, "PERSON_EXISTS", f"a person with certno {mask_certno(certno)} is registered as {by_certno}")
    if await unit.fetchval(_PSN_NO_TAKEN, psn_no=psn_no):
        raise Problem(409, "PERSON_EXISTS", f"person {psn_no} is registered")
    if card_no is not None:
        raise Problem(409, "CARD_IN_USE", "this card_no belongs to another person")
    raise Problem(409, "CONFLICT", "the registration collides with an existing person; retry")


def person_view(row: Row, *, history: list[tuple[str, date]], today: date, unmasked: bool) -> dict[str, Any]:
    """The person as GET shows it; the ID number, name and card are masked unless the caller is admin."""
    return {
        "psn_no": row.psn_no,
        "certno": row.certno if unmasked else mask_certno(row.certno),
        "psn_name": row.psn_name if unmasked else mask_name(row.psn_name),
        "gend": row.gend,
        "brdy": row.brdy.isoformat(),
        "insutype": row.insutype,
        "psn_type": domain.psn_type_on(history, today),
        "psn_types": [{"psn_type": kind, "effective_from": since.isoformat()} for kind, since in history],
        "insuplc_admdvs": row.insuplc_admdvs,
        "emp_no": row.emp_no,
        "contribution_base": None if row.contribution_base is None else fmt(row.contribution_base),
        "card_no": row.card_no if unmasked else mask_card(row.card_no),
        "version": row.version,
    }


def _d(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


async def get_person(unit: Unit, psn_no: str, *, today: date, unmasked: bool) -> dict[str, Any]:
    """The person with every record kept about them (all windows, not only today's)."""
    row = await unit.fetchrow(_PERSON, psn_no=psn_no)
    if row is None:
        raise not_found("person", psn_no, "PERSON_NOT_FOUND")
    view = person_view(row, history=await type_history(unit, psn_no), today=today, unmasked=unmasked)
    aid = await unit.fetch(_AID_IDENTITIES, psn_no=psn_no)
    chronic = await unit.fetch(_QUALIFICATIONS, psn_no=psn_no)
    offsite = await unit.fetch(_REGISTRATIONS, psn_no=psn_no)
    members = await unit.fetch(_FAMILY, psn_no=psn_no)
    cases = await unit.fetch(_CASES, psn_no=psn_no)
    view["aid_identities"] = [
        {
            "id": a.id,
            "category": a.category,
            "start_date": _d(a.start_date),
            "lost_on": _d(a.lost_on),
            "window_end": _d(a.window_end),
        }
        for a in aid
    ]
    view["chronic_qualifications"] = [qualification_view(q) for q in chronic]
    view["offsite_registrations"] = [registration_view(r) for r in offsite]
    view["family"] = [{"relation": m.relation, "member_psn_no": m.member_psn_no} for m in members]
    view["covid_cases"] = [
        {
            "case_id": c.case_id,
            "status": c.status,
            "diagnosed_at": c.diagnosed_at.isoformat(),
            "fixmedins_code": c.fixmedins_code,
            "published": c.published,
        }
        for c in cases
    ]
    return view


def qualification_view(q: Row) -> dict[str, Any]:
    return {
        "id": q.id,
        "disease": q.disease,
        "two_disease_class": q.two_disease_class,
        "start_date": _d(q.start_date),
        "end_date": _d(q.end_date),
        "certified_by": q.certified_by,
    }


def registration_view(r: Row) -> dict[str, Any]:
    return {
        "id": r.id,
        "mdtrtarea_admdvs": r.mdtrtarea_admdvs,
        "start_date": _d(r.start_date),
        "end_date": _d(r.end_date),
    }


async def retire(unit: Unit, psn_no: str, retired_on: date, *, today: date) -> dict[str, Any]:
    """Record retirement; the person is `retired` from the first day of the next month."""
    row = await lock_person(unit, psn_no)
    history = await type_history(unit, psn_no)
    effective = domain.retirement_effective_from(
        insutype=row.insutype, retired_on=retired_on, latest=history[-1] if history else None
    )
    await unit.execute(_ADD_TYPE, psn_no=psn_no, effective_from=effective, psn_type="retired")
    await announce(unit, [psn_no], "psn_type", today=today)
    return {
        "psn_no": psn_no,
        "psn_type": "retired",
        "effective_from": effective.isoformat(),
        "retired_on": retired_on.isoformat(),
    }


async def reissue_ecert(unit: Unit, psn_no: str, *, today: date) -> dict[str, Any]:
    """A new 电子凭证 token; the previous one stops resolving."""
    await lock_person(unit, psn_no)
    token = new_ecert_token()
    await unit.execute(_SET_ECERT, psn_no=psn_no, ecert_hash=ecert_digest(token))
    await announce(unit, [psn_no], "credential", today=today)
    return {"psn_no": psn_no, "ecert_token": token}


async def update_person(unit: Unit, psn_no: str, patch: PersonPatch, *, today: date) -> dict[str, Any]:
    """Change employer, contribution base or card number."""
    await lock_person(unit, psn_no)
    given = patch.model_fields_set
    if patch.contribution_base is not None and patch.contribution_base < 0:
        raise RuleViolation(
            "INVALID_CONTRIBUTION_BASE", "contribution_base must not be negative", field="contribution_base"
        )
    if patch.emp_no:
        await ensure_employer(unit, patch.emp_no)
    if patch.card_no:
        owner = await unit.fetchval(_CARD_OWNER, card_no=patch.card_no)
        if owner is not None and owner != psn_no:
            raise Problem(409, "CARD_IN_USE", "this card_no belongs to another person")
    if given:
        await unit.execute(
            _PATCH,
            psn_no=psn_no,
            emp_no=patch.emp_no,
            emp_no_given="emp_no" in given,
            contribution_base=patch.contribution_base,
            contribution_base_given="contribution_base" in given,
            card_no=patch.card_no,
            card_no_given="card_no" in given,
        )
        await announce(unit, [psn_no], "employer" if "emp_no" in given else "person", today=today)
    return await get_person(unit, psn_no, today=today, unmasked=True)
