"""Declared claims (零星报销, separate COVID declarations): accepted with 202 and a `claim-submitted`
event; the service's own consumer settles them (declared=true) or rejects them with the reason."""

from __future__ import annotations

import logging

from fastapi.responses import Response
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.settlement import idempotency as idem
from services.settlement.claim_input import (
    checked_person,
    fee_line,
    institution_of,
    person_for_claim,
    reject_violations,
    run_engine,
)
from services.settlement.eligibility_client import EligibilityUnavailable, require_credential
from services.settlement.engine import Claim, EngineError, accumulator_year, rule_date
from services.settlement.ledger import lock_accumulators, new_id, write_settlement
from services.settlement.models import claims, events, institutions, visits
from services.settlement.payloads import VisitFacts
from services.settlement.pgconn import driver
from services.settlement.runtime import PRODUCER, Ctx, as_business_time, business_date, engine_problem
from services.settlement.schemas import ClaimIn
from services.settlement.visits import insert_lines, line_hash
from shared.auth import Principal
from shared.db import run_in_transaction
from shared.events import Envelope, add_event
from shared.events.topics import CLAIM_SUBMITTED
from shared.problems import Problem, not_found

log = logging.getLogger("yibao.settlement.claims")


class EligibilityDown(ConnectionError):
    """Raised in the consumer so the event is consumed again later (the claim stays `submitted`)."""


async def submit(ctx: Ctx, *, body: ClaimIn, principal: Principal, key: idem.IdempotencyKey | None) -> Response:
    """202 {claim_id, status: "submitted"}: the claim row and its event commit together."""
    principal.require_institution(body.visit.fixmedins_code)
    replay = await idem.stored_answer(ctx.pool, key)
    if replay is not None:
        return replay
    async with ctx.sessions() as session:
        known = await session.scalar(select(institutions.c.fixmedins_code).where(
            institutions.c.fixmedins_code == body.visit.fixmedins_code))
    if known is None:
        raise Problem(422, "INSTITUTION_NOT_DESIGNATED", f"institution {body.visit.fixmedins_code} is not designated")
    content = body.model_dump(mode="json")

    async def work(session: AsyncSession) -> Response:
        first = await idem.claim(await driver(session), key)
        if first is not None:
            return first
        claim_id, now = new_id("C"), ctx.now()
        await session.execute(insert(claims).values(
            claim_id=claim_id, psn_no=body.visit.psn_no, fixmedins_code=body.visit.fixmedins_code, body=content,
            status="submitted", submitted_at=now))
        await add_event(session, events.outbox, topic=CLAIM_SUBMITTED, key=body.visit.psn_no, producer=PRODUCER,
                        payload={"claim_id": claim_id, "psn_no": body.visit.psn_no,
                                 "fixmedins_code": body.visit.fixmedins_code, "visit": content["visit"],
                                 "items": content["items"], "submitted_at": now.isoformat()})
        response = idem.json_response({"claim_id": claim_id, "status": "submitted"}, 202)
        await idem.remember(await driver(session), key, response)
        return response

    return await run_in_transaction(ctx.sessions, work)


async def get(ctx: Ctx, *, claim_id: str, principal: Principal) -> dict:
    async with ctx.sessions() as session:
        row = (await session.execute(select(claims).where(claims.c.claim_id == claim_id))).first()
        if row is None:
            raise not_found("claim", claim_id, "CLAIM_NOT_FOUND")
        if principal.role in ("his", "pharmacy"):
            principal.require_institution(row.fixmedins_code)
        breakdown = None
        if row.setl_id:
            breakdown = await session.scalar(text(
                "SELECT breakdown || jsonb_build_object('status', status) FROM settlement.settlements "
                "WHERE setl_id = :s"), {"s": row.setl_id})
    return {"claim_id": row.claim_id, "status": row.status, "psn_no": row.psn_no,
            "fixmedins_code": row.fixmedins_code, "submitted_at": row.submitted_at.isoformat(),
            "processed_at": row.processed_at.isoformat() if row.processed_at else None, "reason": row.reason,
            "setl_id": row.setl_id, "breakdown": breakdown}


async def process(session: AsyncSession, event: Envelope, ctx: Ctx) -> None:
    """Consumer of claim-submitted: settle the claim in this (inbox) transaction, or reject it with the reason."""
    claim_id = event.payload.get("claim_id")
    row = (await session.execute(select(claims).where(claims.c.claim_id == claim_id).with_for_update())).first()
    if row is None or row.status != "submitted":
        return
    try:
        async with session.begin_nested():
            setl_id = await _settle(session, ctx=ctx, row=row)
    except EligibilityUnavailable as exc:
        raise EligibilityDown(exc.detail) from None
    except Problem as exc:
        log.info("claim %s rejected: %s", claim_id, exc.code)
        await session.execute(update(claims).where(claims.c.claim_id == claim_id).values(
            status="rejected", processed_at=ctx.now(),
            reason={"code": exc.code, "detail": exc.detail, "errors": exc.errors}))
        return
    await session.execute(update(claims).where(claims.c.claim_id == claim_id).values(
        status="settled", setl_id=setl_id, processed_at=ctx.now(), reason=None))


async def _settle(session: AsyncSession, *, ctx: Ctx, row) -> str:
    body = ClaimIn.model_validate(row.body)
    v = body.visit
    inst_row = (await session.execute(select(institutions).where(
        institutions.c.fixmedins_code == v.fixmedins_code))).first()
    institution = institution_of(inst_row, code=v.fixmedins_code)
    begntime = as_business_time(v.begntime)
    endtime = as_business_time(v.endtime) if v.endtime else None
    admissions = (await session.execute(select(visits.c.begndate, visits.c.enddate).where(
        visits.c.psn_no == v.psn_no, visits.c.med_type == "21"))).all()
    mdtrt_id = new_id("M")
    try:
        claim = Claim(med_type=v.med_type, institution=institution, begin_date=business_date(begntime),
                      end_date=business_date(endtime) if endtime else None, lines=tuple(fee_line(i) for i in body.items),
                      mdtrt_id=mdtrt_id, diagnoses=tuple(d.upper() for d in v.diagnoses),
                      chronic_disease=v.chronic_disease, referral_compliant=v.referral_compliant,
                      admissions=tuple((a.begndate, a.enddate) for a in admissions))
    except EngineError as exc:
        raise engine_problem(exc) from None
    person = await person_for_claim(ctx, claim, psn_no=v.psn_no)
    if v.mdtrt_cert_type and v.mdtrt_cert_no:
        require_credential(await checked_person(ctx, psn_no=v.psn_no, on=claim.begin_date,
                                                cert_type=v.mdtrt_cert_type, cert_no=v.mdtrt_cert_no))
    policy = ctx.policy_for(insuplc_admdvs=person.insuplc_admdvs, institution_admdvs=institution.admdvs,
                            on=rule_date(claim))
    conn = await driver(session)
    before = await lock_accumulators(conn, psn_no=v.psn_no, year=accumulator_year(claim))
    result = run_engine(ctx, claim=claim, person=person, accumulators=before, policy=policy)
    reject_violations(result)
    setl_id, now = new_id("S"), ctx.now()
    await session.execute(insert(visits).values(
        mdtrt_id=mdtrt_id, psn_no=v.psn_no, fixmedins_code=v.fixmedins_code, med_type=v.med_type,
        mdtrt_cert_type=v.mdtrt_cert_type, begntime=begntime, begndate=claim.begin_date, endtime=endtime,
        enddate=claim.end_date, diagnoses=list(claim.diagnoses), chronic_disease=v.chronic_disease,
        referral_compliant=v.referral_compliant, status="closed", setl_id=setl_id, claim_id=row.claim_id))
    await insert_lines(conn, mdtrt_id=mdtrt_id, items=[(i, line_hash(i)) for i in body.items])
    facts = VisitFacts(mdtrt_id=mdtrt_id, fixmedins_code=v.fixmedins_code, begndate=claim.begin_date,
                       enddate=claim.end_date, chronic_disease=v.chronic_disease, declared=True,
                       claim_id=row.claim_id)
    await write_settlement(conn, result=result, before=before, setl_id=setl_id, setl_time=now, facts=facts,
                           person=person, institution=institution, policy=policy, payer_psn_no=v.psn_no)
    return setl_id
