"""Declared claims (零星报销, separate COVID declarations): accepted with 202 and a `claim-submitted`
event; the service's own consumer settles them (declared=true) or rejects them with the reason."""

from __future__ import annotations

import logging

from services.settlement.channels.closed import ClosedVisit, write_closed_settlement
from services.settlement.eligibility_client import EligibilityUnavailable, require_credential
from services.settlement.engine import Claim, EngineError, accumulator_year, rule_date
from services.settlement.runtime import Ctx, as_business_time, business_date, engine_problem
from services.settlement.schemas import ClaimIn
from services.settlement.settle.inputs import (
    checked_person,
    fee_line,
    institution_of,
    person_for_claim,
    reject_violations,
    run_engine,
)
from services.settlement.settle.payloads import VisitFacts
from services.settlement.store.ledger import lock_accumulators, new_id
from shared import idempotency as idem
from shared.auth import Principal
from shared.db import Row, Sql, Unit
from shared.events import Envelope
from shared.events.topics import CLAIM_SUBMITTED
from shared.idempotency import Answer
from shared.problems import Problem, not_found

log = logging.getLogger("yibao.settlement.claims")


_INSTITUTION = Sql("SELECT * FROM institutions WHERE fixmedins_code = :code")
_SUBMIT = Sql("""
INSERT INTO claims (claim_id, psn_no, fixmedins_code, body, status, submitted_at)
VALUES (:claim_id, :psn_no, :code, CAST(:body AS jsonb), 'submitted', :at)
""")
_CLAIM = Sql("SELECT * FROM claims WHERE claim_id = :claim_id")
_LOCK_CLAIM = Sql("SELECT * FROM claims WHERE claim_id = :claim_id FOR UPDATE")
_BREAKDOWN = Sql("SELECT breakdown || jsonb_build_object('status', status) FROM settlements WHERE setl_id = :setl_id")
_REJECT = Sql("""
UPDATE claims SET status = 'rejected', processed_at = :at, reason = CAST(:reason AS jsonb) WHERE claim_id = :claim_id
""")
_SETTLED = Sql("""
UPDATE claims SET status = 'settled', setl_id = :setl_id, processed_at = :at, reason = NULL WHERE claim_id = :claim_id
""")
_ADMISSIONS = Sql("SELECT begndate, enddate FROM visits WHERE psn_no = :psn_no AND med_type = '21'")


class EligibilityDown(ConnectionError):
    """Raised in the consumer so the event is consumed again later (the claim stays `submitted`)."""


async def submit(ctx: Ctx, *, body: ClaimIn, principal: Principal, key: idem.IdempotencyKey | None) -> Answer:
    """202 {claim_id, status: "submitted"}: the claim row and its event commit together."""
    principal.require_institution(body.visit.fixmedins_code)
    async with ctx.db.connect() as unit:
        known = await unit.fetchrow(_INSTITUTION, code=body.visit.fixmedins_code)
    if known is None:
        raise Problem(422, "INSTITUTION_NOT_DESIGNATED", f"institution {body.visit.fixmedins_code} is not designated")
    content = body.model_dump(mode="json")

    async def work(unit: Unit) -> Answer:
        claim_id, now = new_id("C"), ctx.now()
        await unit.execute(
            _SUBMIT, claim_id=claim_id, psn_no=body.visit.psn_no, code=body.visit.fixmedins_code, body=content, at=now
        )
        await unit.publish(
            topic=CLAIM_SUBMITTED,
            key=body.visit.psn_no,
            payload={
                "claim_id": claim_id,
                "psn_no": body.visit.psn_no,
                "fixmedins_code": body.visit.fixmedins_code,
                "visit": content["visit"],
                "items": content["items"],
                "submitted_at": now.isoformat(),
            },
        )
        return Answer.json({"claim_id": claim_id, "status": "submitted"}, 202)

    return await idem.run(ctx.db, key, work)


async def get(ctx: Ctx, *, claim_id: str, principal: Principal) -> dict:
    async with ctx.db.connect() as unit:
        row = await unit.fetchrow(_CLAIM, claim_id=claim_id)
        if row is None:
            raise not_found("claim", claim_id, "CLAIM_NOT_FOUND")
        if principal.role in ("his", "pharmacy"):
            principal.require_institution(row.fixmedins_code)
        breakdown = None
        if row.setl_id:
            breakdown = await unit.fetchval(_BREAKDOWN, setl_id=row.setl_id)
    return {
        "claim_id": row.claim_id,
        "status": row.status,
        "psn_no": row.psn_no,
        "fixmedins_code": row.fixmedins_code,
        "submitted_at": row.submitted_at.isoformat(),
        "processed_at": row.processed_at.isoformat() if row.processed_at else None,
        "reason": row.reason,
        "setl_id": row.setl_id,
        "breakdown": breakdown,
    }


async def process(unit: Unit, event: Envelope, ctx: Ctx) -> None:
    """Consumer of claim-submitted: settle the claim in this (inbox) transaction, or reject it with the reason."""
    claim_id = event.payload.get("claim_id")
    row = await unit.fetchrow(_LOCK_CLAIM, claim_id=claim_id)
    if row is None or row.status != "submitted":
        return
    try:
        async with unit.savepoint():
            setl_id = await _settle(unit, ctx=ctx, row=row)
    except EligibilityUnavailable as exc:
        raise EligibilityDown(exc.detail) from None
    except Problem as exc:
        log.info("claim %s rejected: %s", claim_id, exc.code)
        await unit.execute(
            _REJECT,
            claim_id=claim_id,
            at=ctx.now(),
            reason={"code": exc.code, "detail": exc.detail, "errors": exc.errors},
        )
        return
    await unit.execute(_SETTLED, claim_id=claim_id, setl_id=setl_id, at=ctx.now())


async def _settle(unit: Unit, *, ctx: Ctx, row: Row) -> str:
    body = ClaimIn.model_validate(row.body)
    v = body.visit
    institution = institution_of(await unit.fetchrow(_INSTITUTION, code=v.fixmedins_code), code=v.fixmedins_code)
    begntime = as_business_time(v.begntime)
    endtime = as_business_time(v.endtime) if v.endtime else None
    admissions = await unit.fetch(_ADMISSIONS, psn_no=v.psn_no)
    mdtrt_id = new_id("M")
    try:
        claim = Claim(
            med_type=v.med_type,
            institution=institution,
            begin_date=business_date(begntime),
            end_date=business_date(endtime) if endtime else None,
            lines=tuple(fee_line(i) for i in body.items),
            mdtrt_id=mdtrt_id,
            diagnoses=tuple(d.upper() for d in v.diagnoses),
            chronic_disease=v.chronic_disease,
            referral_compliant=v.referral_compliant,
            admissions=tuple((a.begndate, a.enddate) for a in admissions),
        )
    except EngineError as exc:
        raise engine_problem(exc) from None
    person = await person_for_claim(ctx, claim, psn_no=v.psn_no)
    if v.mdtrt_cert_type and v.mdtrt_cert_no:
        require_credential(
            await checked_person(
                ctx, psn_no=v.psn_no, on=claim.begin_date, cert_type=v.mdtrt_cert_type, cert_no=v.mdtrt_cert_no
            )
        )
    policy = ctx.policy_for(
        insuplc_admdvs=person.insuplc_admdvs, institution_admdvs=institution.admdvs, on=rule_date(claim)
    )
    before = await lock_accumulators(unit, psn_no=v.psn_no, year=accumulator_year(claim))
    result = run_engine(ctx, claim=claim, person=person, accumulators=before, policy=policy)
    reject_violations(result)
    setl_id = new_id("S")
    await write_closed_settlement(
        unit,
        result,
        visit=ClosedVisit(
            psn_no=v.psn_no,
            med_type=v.med_type,
            cert_type=v.mdtrt_cert_type,
            begntime=begntime,
            endtime=endtime,
            diagnoses=claim.diagnoses,
            referral_compliant=v.referral_compliant,
        ),
        facts=VisitFacts(
            mdtrt_id=mdtrt_id,
            fixmedins_code=v.fixmedins_code,
            begndate=claim.begin_date,
            enddate=claim.end_date,
            chronic_disease=v.chronic_disease,
            declared=True,
            claim_id=row.claim_id,
        ),
        items=body.items,
        setl_id=setl_id,
        setl_time=ctx.now(),
        person=person,
        institution=institution,
        policy=policy,
        payer_psn_no=v.psn_no,
        before=before,
    )
    return setl_id
