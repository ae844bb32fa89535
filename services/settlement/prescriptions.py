"""External prescriptions 外配处方 (DOMAIN §8): issued by a designated hospital, used once at a pharmacy."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta

from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.settlement import idempotency as idem
from services.settlement.claim_input import checked_person, institution_of
from services.settlement.engine import Claim, max_days_supply_for
from services.settlement.models import institutions, prescriptions
from services.settlement.pgconn import driver
from services.settlement.runtime import Ctx, as_business_time, business_date
from services.settlement.schemas import PrescriptionIn
from shared.auth import Principal
from shared.db import run_in_transaction
from shared.problems import Problem, not_found


def valid_until(issued_on: date, valid_days: int) -> date:
    """The issue day counts as day 1 (3 days → issued_on + 2), as the engine counts it."""
    return issued_on + timedelta(days=valid_days - 1)


def prescription_json(row, *, today: date) -> dict:
    until = valid_until(row.issued_on, row.valid_days)
    status = "used" if row.used_setl_id else ("expired" if today > until else "valid")
    return {"rx_no": row.rx_no, "psn_no": row.psn_no, "fixmedins_code": row.fixmedins_code,
            "issued_at": row.issued_at.isoformat(), "issued_on": row.issued_on.isoformat(),
            "valid_days": row.valid_days, "valid_until": until.isoformat(), "chronic_disease": row.chronic_disease,
            "items": row.items, "status": status, "used_setl_id": row.used_setl_id,
            "used_at": row.used_at.isoformat() if row.used_at else None}


def _items_json(body: PrescriptionIn) -> list[dict]:
    return [{"med_list_codg": i.med_list_codg, "med_list_name": i.med_list_name, "item_class": i.item_class,
             "cnt": format(i.cnt.normalize(), "f"), "days_supply": i.days_supply} for i in body.items]


async def issue(ctx: Ctx, *, body: PrescriptionIn, principal: Principal, key: idem.IdempotencyKey | None) -> Response:
    """201 the prescription; the same body again 200; another body under the same rx_no 409."""
    principal.require_institution(body.fixmedins_code)
    replay = await idem.stored_answer(ctx.pool, key)
    if replay is not None:
        return replay
    async with ctx.sessions() as session:
        inst_row = (await session.execute(select(institutions).where(
            institutions.c.fixmedins_code == body.fixmedins_code))).first()
    hospital = institution_of(inst_row, code=body.fixmedins_code)
    if hospital.kind != "hospital":
        raise Problem(422, "INSTITUTION_NOT_DESIGNATED", f"{body.fixmedins_code} is not a hospital: only hospitals "
                      "issue external prescriptions")
    issued_at = as_business_time(body.issued_at)
    issued_on = business_date(issued_at)
    person = await checked_person(ctx, psn_no=body.psn_no, on=issued_on)
    policy = ctx.policy_for(insuplc_admdvs=person.insuplc_admdvs, institution_admdvs=hospital.admdvs, on=issued_on)
    limit = max_days_supply_for(claim=Claim(med_type="11", institution=hospital, begin_date=issued_on, lines=()),
                                eligibility=person.snapshot, policy=policy)
    too_long = [i for i in body.items if i.days_supply > limit]
    if too_long:
        raise Problem(422, "SUPPLY_DAYS_ABOVE_LIMIT", f"at most {limit} days of supply for this patient",
                      errors=[{"field": f"items[{i.med_list_codg}].days_supply", "code": "SUPPLY_DAYS_ABOVE_LIMIT",
                               "detail": f"{i.days_supply} > {limit}"} for i in too_long])
    digest = hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    today = business_date(ctx.now())

    async def work(session: AsyncSession) -> Response:
        first = await idem.claim(await driver(session), key)
        if first is not None:
            return first
        row = (await session.execute(insert(prescriptions).values(
            rx_no=body.rx_no, psn_no=body.psn_no, fixmedins_code=body.fixmedins_code, issued_at=issued_at,
            issued_on=issued_on, valid_days=body.valid_days or policy.prescription.validity_days,
            chronic_disease=body.chronic_disease, items=_items_json(body), body_hash=digest)
            .on_conflict_do_nothing().returning(*prescriptions.c))).first()
        if row is None:
            row = (await session.execute(select(prescriptions).where(prescriptions.c.rx_no == body.rx_no))).one()
            if row.body_hash != digest:
                raise Problem(409, "PRESCRIPTION_EXISTS", f"prescription {body.rx_no} exists with other content")
            response = idem.json_response(prescription_json(row, today=today), 200)
        else:
            response = idem.json_response(prescription_json(row, today=today), 201)
        await idem.remember(await driver(session), key, response)
        return response

    return await run_in_transaction(ctx.sessions, work)


async def get(ctx: Ctx, *, rx_no: str, principal: Principal) -> dict:
    """Pharmacies look any prescription up; a hospital sees its own."""
    async with ctx.sessions() as session:
        row = (await session.execute(select(prescriptions).where(prescriptions.c.rx_no == rx_no))).first()
    if row is None:
        raise not_found("prescription", rx_no, "PRESCRIPTION_NOT_FOUND")
    if principal.role == "his":
        principal.require_institution(row.fixmedins_code)
    return prescription_json(row, today=business_date(ctx.now()))
