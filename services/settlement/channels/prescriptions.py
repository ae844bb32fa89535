"""External prescriptions 外配处方 (DOMAIN §8): issued by a designated hospital, used once at a pharmacy."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta

from services.settlement.engine import Claim, max_days_supply_for
from services.settlement.runtime import Ctx, as_business_time, business_date
from services.settlement.schemas import PrescriptionIn
from services.settlement.settle.inputs import checked_person, institution_of
from shared import idempotency as idem
from shared.auth import Principal
from shared.db import Sql, Unit
from shared.idempotency import Answer
from shared.problems import Problem, not_found

_INSTITUTION = Sql("SELECT * FROM institutions WHERE fixmedins_code = :code")
_ISSUE = Sql("""
INSERT INTO prescriptions (rx_no, psn_no, fixmedins_code, issued_at, issued_on, valid_days, chronic_disease, items,
                           body_hash)
VALUES (:rx_no, :psn_no, :code, :issued_at, :issued_on, :valid_days, :chronic_disease, CAST(:items AS jsonb), :hash)
ON CONFLICT DO NOTHING RETURNING *
""")
_PRESCRIPTION = Sql("SELECT * FROM prescriptions WHERE rx_no = :rx_no")


def valid_until(issued_on: date, valid_days: int) -> date:
    """The issue day counts as day 1 (3 days → issued_on + 2), as the engine counts it."""
    return issued_on + timedelta(days=valid_days - 1)


def prescription_json(row, *, today: date) -> dict:
    until = valid_until(row.issued_on, row.valid_days)
    status = "used" if row.used_setl_id else ("expired" if today > until else "valid")
    return {
        "rx_no": row.rx_no,
        "psn_no": row.psn_no,
        "fixmedins_code": row.fixmedins_code,
        "issued_at": row.issued_at.isoformat(),
        "issued_on": row.issued_on.isoformat(),
        "valid_days": row.valid_days,
        "valid_until": until.isoformat(),
        "chronic_disease": row.chronic_disease,
        "items": row["items"],
        "status": status,
        "used_setl_id": row.used_setl_id,
        "used_at": row.used_at.isoformat() if row.used_at else None,
    }


def _items_json(body: PrescriptionIn) -> list[dict]:
    return [
        {
            "med_list_codg": i.med_list_codg,
            "med_list_name": i.med_list_name,
            "item_class": i.item_class,
            "cnt": format(i.cnt.normalize(), "f"),
            "days_supply": i.days_supply,
        }
        for i in body.items
    ]


async def issue(ctx: Ctx, *, body: PrescriptionIn, principal: Principal, key: idem.IdempotencyKey | None) -> Answer:
    """201 the prescription; the same body again 200; another body under the same rx_no 409."""
    principal.require_institution(body.fixmedins_code)
    replay = await idem.replay(ctx.db, key)
    if replay is not None:
        return replay
    async with ctx.db.connect() as unit:
        inst_row = await unit.fetchrow(_INSTITUTION, code=body.fixmedins_code)
    hospital = institution_of(inst_row, code=body.fixmedins_code)
    if hospital.kind != "hospital":
        raise Problem(
            422,
            "INSTITUTION_NOT_DESIGNATED",
            f"{body.fixmedins_code} is not a hospital: only hospitals issue external prescriptions",
        )
    issued_at = as_business_time(body.issued_at)
    issued_on = business_date(issued_at)
    person = await checked_person(ctx, psn_no=body.psn_no, on=issued_on)
    policy = ctx.policy_for(insuplc_admdvs=person.insuplc_admdvs, institution_admdvs=hospital.admdvs, on=issued_on)
    limit = max_days_supply_for(
        claim=Claim(med_type="11", institution=hospital, begin_date=issued_on, lines=()),
        eligibility=person.snapshot,
        policy=policy,
    )
    too_long = [i for i in body.items if i.days_supply > limit]
    if too_long:
        raise Problem(
            422,
            "SUPPLY_DAYS_ABOVE_LIMIT",
            f"at most {limit} days of supply for this patient",
            errors=[
                {
                    "field": f"items[{i.med_list_codg}].days_supply",
                    "code": "SUPPLY_DAYS_ABOVE_LIMIT",
                    "detail": f"{i.days_supply} > {limit}",
                }
                for i in too_long
            ],
        )
    digest = hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    today = business_date(ctx.now())

    async def work(unit: Unit) -> Answer:
        row = await unit.fetchrow(
            _ISSUE,
            rx_no=body.rx_no,
            psn_no=body.psn_no,
            code=body.fixmedins_code,
            issued_at=issued_at,
            issued_on=issued_on,
            valid_days=body.valid_days or policy.prescription.validity_days,
            chronic_disease=body.chronic_disease,
            items=_items_json(body),
            hash=digest,
        )
        if row is not None:
            return Answer.json(prescription_json(row, today=today), 201)
        row = await unit.fetchrow(_PRESCRIPTION, rx_no=body.rx_no)
        if row.body_hash != digest:
            raise Problem(409, "PRESCRIPTION_EXISTS", f"prescription {body.rx_no} exists with other content")
        return Answer.json(prescription_json(row, today=today), 200)

    return await idem.run(ctx.db, key, work)


async def get(ctx: Ctx, *, rx_no: str, principal: Principal) -> dict:
    """Pharmacies look any prescription up; a hospital sees its own."""
    async with ctx.db.connect() as unit:
        row = await unit.fetchrow(_PRESCRIPTION, rx_no=rx_no)
    if row is None:
        raise not_found("prescription", rx_no, "PRESCRIPTION_NOT_FOUND")
    if principal.role == "his":
        principal.require_institution(row.fixmedins_code)
    return prescription_json(row, today=business_date(ctx.now()))
