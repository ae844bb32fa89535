"""Visits (就诊) and discharge; the 3-day pre-admission merge (DOMAIN §3). Fee lines: fees.py."""

from __future__ import annotations

from datetime import date

from services.settlement.engine import (
    PendingVisit,
    Policy,
    visits_to_merge,
)
from services.settlement.runtime import Ctx, as_business_time, business_date
from services.settlement.schemas import DischargeIn, VisitIn
from services.settlement.settle.inputs import checked_person, institution_of
from services.settlement.store.ledger import new_id
from shared import idempotency as idem
from shared.auth import Principal
from shared.db import Row, Sql, Unit
from shared.events.envelope import dumps
from shared.idempotency import Answer
from shared.problems import Problem, not_found

# Why a visit that is not open takes no more lines and no discharge: (code, reason).
NOT_OPEN = {
    "settled": ("ALREADY_SETTLED", "is already settled"),
    "merged": ("MERGED_INTO_ADMISSION", "is merged into an admission; upload to the admission"),
    "closed": ("VISIT_CLOSED", "is closed"),
}


def visit_json(row) -> dict:
    """A visit as answered (row: any mapping of the visits columns)."""
    return {
        "mdtrt_id": row["mdtrt_id"],
        "psn_no": row["psn_no"],
        "fixmedins_code": row["fixmedins_code"],
        "med_type": row["med_type"],
        "begntime": row["begntime"].isoformat(),
        "begndate": row["begndate"].isoformat(),
        "endtime": row["endtime"].isoformat() if row["endtime"] else None,
        "enddate": row["enddate"].isoformat() if row["enddate"] else None,
        "diagnoses": list(row["diagnoses"]),
        "chronic_disease": row["chronic_disease"],
        "referral_compliant": row["referral_compliant"],
        "status": row["status"],
        "merged_into": row["merged_into"],
        "setl_id": row["setl_id"],
    }


# Open visits of the person at the institution that the new one may merge with (DOMAIN §3): outpatient
# visits up to :days before a new admission, an admission up to :days after a new outpatient visit.
_NEIGHBOURS = """
     FROM visits o
    WHERE o.psn_no = :psn_no AND o.fixmedins_code = :code AND o.status = 'open'
      AND ((CAST(:med_type AS text) = '21' AND o.med_type = '11'
            AND o.begndate BETWEEN CAST(:begndate AS date) - CAST(:days AS int) AND :begndate)
        OR (CAST(:med_type AS text) = '11' AND o.med_type = '21'
            AND o.begndate BETWEEN :begndate AND CAST(:begndate AS date) + CAST(:days AS int)))"""
_VISIT_COLUMNS = """visits (mdtrt_id, psn_no, fixmedins_code, med_type, mdtrt_cert_type, begntime, begndate,
                               diagnoses, chronic_disease, referral_compliant)"""
_INSERT_VISIT = Sql(f"""
INSERT INTO {_VISIT_COLUMNS}
VALUES (:mdtrt_id, :psn_no, :code, :med_type, :cert_type, :begntime, :begndate, CAST(:diagnoses AS jsonb),
        :chronic_disease, :referral_compliant)
RETURNING *,
  (SELECT coalesce(json_agg(json_build_array(o.mdtrt_id, o.med_type, o.begndate) ORDER BY o.begndate), '[]'::json)
   {_NEIGHBOURS}) AS neighbours
""")
# The common case in one statement, committed by itself: the visit is inserted only when it has nothing to
# merge with; otherwise nothing is written and the visit is made in a transaction with the merge.
_INSERT_LONE_VISIT = Sql(f"""
INSERT INTO {_VISIT_COLUMNS}
SELECT CAST(:mdtrt_id AS text), CAST(:psn_no AS text), CAST(:code AS text), CAST(:med_type AS text),
       CAST(:cert_type AS text), CAST(:begntime AS timestamptz), CAST(:begndate AS date), CAST(:diagnoses AS jsonb),
       CAST(:chronic_disease AS text), CAST(:referral_compliant AS boolean)
 WHERE NOT EXISTS (SELECT 1 {_NEIGHBOURS})
RETURNING *
""")
_MERGE = Sql(
    "UPDATE visits SET status = 'merged', merged_into = :admission "
    "WHERE mdtrt_id = ANY(:ids) AND status = 'open' RETURNING mdtrt_id"
)


async def _merge(unit: Unit, *, row: Row, policy: Policy) -> str | None:
    """The 3-day pre-admission merge (DOMAIN §3, engine.visits_to_merge): an admission takes in the person's
    unsettled outpatient visits at the same institution in the days before it; an outpatient visit dated
    in that window of an unsettled admission joins it. Returns the admission this visit joined, if any."""
    neighbours = [PendingVisit(m, row["fixmedins_code"], t, date.fromisoformat(d)) for m, t, d in row["neighbours"]]
    if row["med_type"] == "21" and neighbours:
        merged = visits_to_merge(
            admission_date=row["begndate"],
            fixmedins_code=row["fixmedins_code"],
            outpatient_visits=neighbours,
            policy=policy,
        )
        if merged:
            await unit.execute(_MERGE, admission=row["mdtrt_id"], ids=[v.mdtrt_id for v in merged])
    elif row["med_type"] == "11":
        visit = PendingVisit(row["mdtrt_id"], row["fixmedins_code"], "11", row["begndate"])
        for admission in neighbours:
            if visits_to_merge(
                admission_date=admission.visit_date,
                fixmedins_code=row["fixmedins_code"],
                outpatient_visits=[visit],
                policy=policy,
            ):
                await unit.execute(_MERGE, admission=admission.mdtrt_id, ids=[row["mdtrt_id"]])
                return admission.mdtrt_id
    return None


async def create_visit(ctx: Ctx, *, body: VisitIn, principal: Principal, key: idem.IdempotencyKey | None) -> Answer:
    """201 {mdtrt_id, ...}: the institution designated and not suspended, the credential the person's."""
    principal.require_institution(body.fixmedins_code)
    return await idem.answer_once(ctx.db, key, lambda: _create_visit(ctx, body=body, key=key))


async def _create_visit(ctx: Ctx, *, body: VisitIn, key: idem.IdempotencyKey | None) -> Answer:
    institution = institution_of(await ctx.institutions.get(ctx.db, body.fixmedins_code), code=body.fixmedins_code)
    if institution.kind != "hospital":
        raise Problem(
            422,
            "INSTITUTION_NOT_DESIGNATED",
            f"{body.fixmedins_code} is a pharmacy: it settles prescriptions (POST /v1/pharmacy/settlements)",
        )
    begntime = as_business_time(body.begntime)
    begndate = business_date(begntime)
    person = await checked_person(
        ctx, psn_no=body.psn_no, on=begndate, cert_type=body.mdtrt_cert_type, cert_no=body.mdtrt_cert_no
    )
    policy = ctx.policy_for(insuplc_admdvs=person.insuplc_admdvs, institution_admdvs=institution.admdvs, on=begndate)
    values = dict(
        mdtrt_id=new_id("M"),
        psn_no=body.psn_no,
        code=body.fixmedins_code,
        med_type=body.med_type,
        cert_type=body.mdtrt_cert_type,
        begntime=begntime,
        begndate=begndate,
        diagnoses=dumps([d.upper() for d in body.diagnoses]),
        chronic_disease=body.chronic_disease,
        referral_compliant=body.referral_compliant,
        days=policy.pre_admission_merge_days,
    )
    if key is None:
        async with ctx.db.connect() as unit:
            row = await unit.fetchrow(_INSERT_LONE_VISIT, **values)
        if row is not None:
            return Answer.json(visit_json(row), 201)

    async def work(unit: Unit) -> Answer:
        row = await unit.fetchrow(_INSERT_VISIT, **values)
        answer = visit_json(row)
        joined = await _merge(unit, row=row, policy=policy)
        if joined:
            answer.update(status="merged", merged_into=joined)
        return Answer.json(answer, 201)

    return await ctx.db.transaction(idem.keeping(key, work))


_VISIT = Sql("SELECT * FROM visits WHERE mdtrt_id = :mdtrt_id")
_LOCK_VISIT = Sql("SELECT * FROM visits WHERE mdtrt_id = :mdtrt_id FOR UPDATE")
_DISCHARGE = Sql("UPDATE visits SET endtime = :endtime, enddate = :enddate WHERE mdtrt_id = :mdtrt_id RETURNING *")
_LINES = Sql("SELECT * FROM fee_lines WHERE mdtrt_id = :mdtrt_id ORDER BY feedetl_sn")


async def discharge(ctx: Ctx, *, mdtrt_id: str, body: DischargeIn, principal: Principal) -> dict:
    """Record the discharge time of an admission (before its settlement)."""
    endtime = as_business_time(body.endtime)

    async def work(unit: Unit) -> dict:
        row = await unit.fetchrow(_LOCK_VISIT, mdtrt_id=mdtrt_id)
        if row is None:
            raise not_found("visit", mdtrt_id, "VISIT_NOT_FOUND")
        principal.require_institution(row.fixmedins_code)
        if row.med_type != "21":
            raise Problem(422, "NOT_INPATIENT", f"visit {mdtrt_id} is not an admission (med_type 21)")
        if row.status != "open":
            code, why = NOT_OPEN.get(row.status, ("VISIT_CLOSED", "is closed"))
            raise Problem(409, code, f"visit {mdtrt_id} {why}")
        if endtime < row.begntime:
            raise Problem(
                422,
                "ENDTIME_BEFORE_BEGNTIME",
                "endtime is before the admission's begntime",
                errors=[{"field": "endtime", "code": "ENDTIME_BEFORE_BEGNTIME", "detail": "too early"}],
            )
        return visit_json(
            await unit.fetchrow(_DISCHARGE, mdtrt_id=mdtrt_id, endtime=endtime, enddate=business_date(endtime))
        )

    return await ctx.db.transaction(work)


async def get_visit(ctx: Ctx, *, mdtrt_id: str, principal: Principal) -> dict:
    async with ctx.db.connect() as unit:
        row = await unit.fetchrow(_VISIT, mdtrt_id=mdtrt_id)
        if row is None:
            raise not_found("visit", mdtrt_id, "VISIT_NOT_FOUND")
        principal.require_institution(row.fixmedins_code)
        lines = await unit.fetch(_LINES, mdtrt_id=mdtrt_id)
    body = visit_json(row)
    body["items"] = [
        {
            "feedetl_sn": x.feedetl_sn,
            "med_list_codg": x.med_list_codg,
            "med_list_name": x.med_list_name,
            "item_class": x.item_class,
            "pric": f"{x.pric:.2f}",
            "cnt": format(x.cnt.normalize(), "f"),
            "days_supply": x.days_supply,
        }
        for x in lines
    ]
    return body
