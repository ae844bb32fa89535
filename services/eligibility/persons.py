"""Persons: registration, credentials, person type history, and the `person-changed` event."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import date

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility import domain
from services.eligibility.certno import parse_certno
from services.eligibility.domain import RuleViolation
from services.eligibility.models import (aid_identities, chronic_qualifications, covid_cases, employers, events,
                                         family, offsite_registrations, persons, psn_types)
from services.eligibility.schemas import PersonIn, PersonPatch
from shared.admdvs import check_admdvs
from shared.events import add_event
from shared.events.topics import PERSON_CHANGED
from shared.logs import mask_certno, mask_name
from shared.money import fmt
from shared.problems import Problem, not_found

PRODUCER = "eligibility"


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


async def ensure_employer(session: AsyncSession, emp_no: str) -> None:
    """Employers are known by number; the first mention registers one."""
    await session.execute(insert(employers).values(emp_no=emp_no).on_conflict_do_nothing())


async def lock_person(session: AsyncSession, psn_no: str):
    """The person's row, locked for this transaction (serialises one person's changes), or 404."""
    row = (await session.execute(select(persons).where(persons.c.psn_no == psn_no).with_for_update())).first()
    if row is None:
        raise not_found("person", psn_no, "PERSON_NOT_FOUND")
    return row


async def type_history(session: AsyncSession, psn_no: str) -> list[tuple[str, date]]:
    rows = await session.execute(select(psn_types.c.psn_type, psn_types.c.effective_from)
                                 .where(psn_types.c.psn_no == psn_no).order_by(psn_types.c.effective_from))
    return [(r.psn_type, r.effective_from) for r in rows]


def person_payload(row, *, change: str, history: Iterable[tuple[str, date]], today: date) -> dict:
    """`person-changed` as docs/events.md gives it: never the ID number or the name."""
    history = list(history)
    retired = next((since for kind, since in history if kind == "retired"), None)
    return {"psn_no": row.psn_no, "version": row.version, "change": change, "insutype": row.insutype,
            "psn_type": domain.psn_type_on(history, today), "insuplc_admdvs": row.insuplc_admdvs,
            "gend": row.gend, "brdy": row.brdy, "emp_no": row.emp_no, "retired_from": retired}


async def announce(session: AsyncSession, psn_nos: Iterable[str], change: str, *, today: date) -> None:
    """Bump the persons' versions and record one `person-changed` each, in this transaction."""
    psn_nos = sorted(set(psn_nos))
    if not psn_nos:
        return
    rows = (await session.execute(
        update(persons).where(persons.c.psn_no.in_(psn_nos))
        .values(version=persons.c.version + 1, updated_at=func.now()).returning(*persons.c))).all()
    histories: dict[str, list[tuple[str, date]]] = {}
    for entry in await session.execute(select(psn_types).where(psn_types.c.psn_no.in_(psn_nos))):
        histories.setdefault(entry.psn_no, []).append((entry.psn_type, entry.effective_from))
    for row in sorted(rows, key=lambda r: r.psn_no):
        await add_event(session, events.outbox, topic=PERSON_CHANGED, key=row.psn_no, producer=PRODUCER,
                        payload=person_payload(row, change=change, history=histories.get(row.psn_no, ()),
                                               today=today))


async def _next_psn_no(session: AsyncSession, insuplc_admdvs: str) -> str:
    """A fresh person number: the insured place, then 10 random digits, unused so far."""
    for _ in range(10):
        candidate = f"{insuplc_admdvs}{secrets.randbelow(10**10):010d}"
        if (await session.scalar(select(persons.c.psn_no).where(persons.c.psn_no == candidate))) is None:
            return candidate
    raise Problem(503, "PSN_NO_EXHAUSTED", "could not draw a free person number; retry")


async def register_person(session: AsyncSession, body: PersonIn, *, today: date) -> dict:
    """Register an insured person; returns the person with a fresh 电子凭证 token (shown once)."""
    resident = parse_certno(body.certno, today=today)
    psn_type = domain.check_scheme(body.insutype, body.psn_type)
    place = admdvs(body.insuplc_admdvs, "insuplc_admdvs")
    if body.contribution_base is not None and body.contribution_base < 0:
        raise RuleViolation("INVALID_CONTRIBUTION_BASE", "contribution_base must not be negative",
                            field="contribution_base")
    if body.emp_no is not None:
        await ensure_employer(session, body.emp_no)
    psn_no = body.psn_no or await _next_psn_no(session, place)
    token = new_ecert_token()
    row = (await session.execute(insert(persons).values(
        psn_no=psn_no, certno=resident.certno, psn_name=body.psn_name, gend=resident.gend, brdy=resident.brdy,
        insutype=body.insutype, insuplc_admdvs=place, emp_no=body.emp_no, contribution_base=body.contribution_base,
        card_no=body.card_no, ecert_hash=ecert_digest(token),
    ).on_conflict_do_nothing().returning(*persons.c))).first()
    if row is None:
        await _explain_conflict(session, psn_no=psn_no, certno=resident.certno, card_no=body.card_no)
    history = [(psn_type, domain.SINCE_EVER)] if psn_type else []  # residents have no person type
    if psn_type:
        await session.execute(insert(psn_types).values(psn_no=psn_no, effective_from=domain.SINCE_EVER,
                                                       psn_type=psn_type))
    await add_event(session, events.outbox, topic=PERSON_CHANGED, key=psn_no, producer=PRODUCER,
                    payload=person_payload(row, change="registered", history=history, today=today))
    return {**person_view(row, history=history, today=today, unmasked=True), "ecert_token": token}


async def _explain_conflict(session: AsyncSession, *, psn_no: str, certno: str, card_no: str | None) -> None:
    """Say which unique key the rejected registration collided with (409)."""
    by_certno = await session.scalar(select(persons.c.psn_no).where(persons.c.certno == certno))
    if by_certno is not None:
        raise Problem(409, "PERSON_EXISTS", f"a person with certno {mask_certno(certno)} is registered "
                                            f"as {by_certno}")
    if await session.scalar(select(persons.c.psn_no).where(persons.c.psn_no == psn_no)) is not None:
        raise Problem(409, "PERSON_EXISTS", f"person {psn_no} is registered")
    if card_no is not None:
        raise Problem(409, "CARD_IN_USE", "this card_no belongs to another person")
    raise Problem(409, "CONFLICT", "the registration collides with an existing person; retry")


def person_view(row, *, history: list[tuple[str, date]], today: date, unmasked: bool) -> dict:
    """The person as GET shows it; the ID number, name and card are masked unless the caller is admin."""
    return {
        "psn_no": row.psn_no,
        "certno": row.certno if unmasked else mask_certno(row.certno),
        "psn_name": row.psn_name if unmasked else mask_name(row.psn_name),
        "gend": row.gend, "brdy": row.brdy.isoformat(), "insutype": row.insutype,
        "psn_type": domain.psn_type_on(history, today),
        "psn_types": [{"psn_type": kind, "effective_from": since.isoformat()} for kind, since in history],
        "insuplc_admdvs": row.insuplc_admdvs, "emp_no": row.emp_no,
        "contribution_base": None if row.contribution_base is None else fmt(row.contribution_base),
        "card_no": row.card_no if unmasked else mask_card(row.card_no),
        "version": row.version,
    }


def _d(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


async def get_person(session: AsyncSession, psn_no: str, *, today: date, unmasked: bool) -> dict:
    """The person with every record kept about them (all windows, not only today's)."""
    row = (await session.execute(select(persons).where(persons.c.psn_no == psn_no))).first()
    if row is None:
        raise not_found("person", psn_no, "PERSON_NOT_FOUND")
    view = person_view(row, history=await type_history(session, psn_no), today=today, unmasked=unmasked)
    aid = await session.execute(select(aid_identities).where(aid_identities.c.psn_no == psn_no)
                                .order_by(aid_identities.c.start_date, aid_identities.c.id))
    chronic = await session.execute(select(chronic_qualifications).where(chronic_qualifications.c.psn_no == psn_no)
                                    .order_by(chronic_qualifications.c.start_date, chronic_qualifications.c.id))
    offsite = await session.execute(select(offsite_registrations).where(offsite_registrations.c.psn_no == psn_no)
                                    .order_by(offsite_registrations.c.start_date, offsite_registrations.c.id))
    members = await session.execute(select(family).where(family.c.psn_no == psn_no).order_by(family.c.member_psn_no))
    cases = await session.execute(select(covid_cases).where(covid_cases.c.psn_no == psn_no)
                                  .order_by(covid_cases.c.diagnosed_at, covid_cases.c.case_id))
    view["aid_identities"] = [{"id": a.id, "category": a.category, "start_date": _d(a.start_date),
                               "lost_on": _d(a.lost_on), "window_end": _d(a.window_end)} for a in aid]
    view["chronic_qualifications"] = [qualification_view(q) for q in chronic]
    view["offsite_registrations"] = [registration_view(r) for r in offsite]
    view["family"] = [{"relation": m.relation, "member_psn_no": m.member_psn_no} for m in members]
    view["covid_cases"] = [{"case_id": c.case_id, "status": c.status, "diagnosed_at": c.diagnosed_at.isoformat(),
                            "fixmedins_code": c.fixmedins_code, "published": c.published} for c in cases]
    return view


def qualification_view(q) -> dict:
    return {"id": q.id, "disease": q.disease, "two_disease_class": q.two_disease_class,
            "start_date": _d(q.start_date), "end_date": _d(q.end_date), "certified_by": q.certified_by}


def registration_view(r) -> dict:
    return {"id": r.id, "mdtrtarea_admdvs": r.mdtrtarea_admdvs, "start_date": _d(r.start_date),
            "end_date": _d(r.end_date)}


async def retire(session: AsyncSession, psn_no: str, retired_on: date, *, today: date) -> dict:
    """Record retirement; the person is `retired` from the first day of the next month."""
    row = await lock_person(session, psn_no)
    history = await type_history(session, psn_no)
    effective = domain.retirement_effective_from(insutype=row.insutype, retired_on=retired_on,
                                                 latest=history[-1] if history else None)
    await session.execute(insert(psn_types).values(psn_no=psn_no, effective_from=effective, psn_type="retired"))
    await announce(session, [psn_no], "psn_type", today=today)
    return {"psn_no": psn_no, "psn_type": "retired", "effective_from": effective.isoformat(),
            "retired_on": retired_on.isoformat()}


async def reissue_ecert(session: AsyncSession, psn_no: str, *, today: date) -> dict:
    """A new 电子凭证 token; the previous one stops resolving."""
    await lock_person(session, psn_no)
    token = new_ecert_token()
    await session.execute(update(persons).where(persons.c.psn_no == psn_no).values(ecert_hash=ecert_digest(token)))
    await announce(session, [psn_no], "credential", today=today)
    return {"psn_no": psn_no, "ecert_token": token}


async def update_person(session: AsyncSession, psn_no: str, patch: PersonPatch, *, today: date) -> dict:
    """Change employer, contribution base or card number."""
    await lock_person(session, psn_no)
    values = {name: getattr(patch, name) for name in patch.model_fields_set}
    if values.get("contribution_base") is not None and values["contribution_base"] < 0:
        raise RuleViolation("INVALID_CONTRIBUTION_BASE", "contribution_base must not be negative",
                            field="contribution_base")
    if values.get("emp_no"):
        await ensure_employer(session, values["emp_no"])
    if values.get("card_no"):
        owner = await session.scalar(select(persons.c.psn_no).where(persons.c.card_no == values["card_no"]))
        if owner is not None and owner != psn_no:
            raise Problem(409, "CARD_IN_USE", "this card_no belongs to another person")
    if values:
        await session.execute(update(persons).where(persons.c.psn_no == psn_no).values(**values))
        await announce(session, [psn_no], "employer" if "emp_no" in values else "person", today=today)
    return await get_person(session, psn_no, today=today, unmasked=True)
