"""Visits (就诊), fee lines (费用明细) and discharge; the 3-day pre-admission merge (DOMAIN §3)."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import asyncpg
from fastapi.responses import Response
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.settlement import idempotency as idem
from services.settlement.claim_input import checked_person, fee_line, institution_of
from services.settlement.engine import (
    LINE_TOTAL_MISMATCH,
    PRICE_ABOVE_CAP,
    SUPPLY_DAYS_ABOVE_LIMIT,
    PendingVisit,
    Policy,
    PolicyNotFound,
    validate_line,
    visits_to_merge,
)
from services.settlement.ledger import new_id
from services.settlement.models import fee_lines, visits
from services.settlement.pgconn import Attrs, Sql, connection, execute, fetch, fetchrow, run_in_transaction
from services.settlement.runtime import Ctx, as_business_time, business_date
from services.settlement.schemas import DischargeIn, FeeItemIn, FeesIn, VisitIn
from shared.auth import Principal
from shared.db import run_in_transaction as run_in_session
from shared.events.envelope import dumps
from shared.problems import Problem, not_found

_UPLOAD_STATUS = {"settled": ("ALREADY_SETTLED", "is already settled"),
                  "merged": ("MERGED_INTO_ADMISSION", "is merged into an admission; upload to the admission"),
                  "closed": ("VISIT_CLOSED", "is closed")}


def visit_json(row) -> dict:
    """A visit as answered (row: any mapping of the visits columns)."""
    return {"mdtrt_id": row["mdtrt_id"], "psn_no": row["psn_no"], "fixmedins_code": row["fixmedins_code"],
            "med_type": row["med_type"], "begntime": row["begntime"].isoformat(),
            "begndate": row["begndate"].isoformat(),
            "endtime": row["endtime"].isoformat() if row["endtime"] else None,
            "enddate": row["enddate"].isoformat() if row["enddate"] else None, "diagnoses": list(row["diagnoses"]),
            "chronic_disease": row["chronic_disease"], "referral_compliant": row["referral_compliant"],
            "status": row["status"], "merged_into": row["merged_into"], "setl_id": row["setl_id"]}


# Open visits of the person at the institution that the new one may merge with (DOMAIN §3): outpatient
# visits up to :days before a new admission, an admission up to :days after a new outpatient visit.
_NEIGHBOURS = """
     FROM settlement.visits o
    WHERE o.psn_no = :psn_no AND o.fixmedins_code = :code AND o.status = 'open'
      AND ((CAST(:med_type AS text) = '21' AND o.med_type = '11'
            AND o.begndate BETWEEN CAST(:begndate AS date) - CAST(:days AS int) AND :begndate)
        OR (CAST(:med_type AS text) = '11' AND o.med_type = '21'
            AND o.begndate BETWEEN :begndate AND CAST(:begndate AS date) + CAST(:days AS int)))"""
_VISIT_COLUMNS = """settlement.visits (mdtrt_id, psn_no, fixmedins_code, med_type, mdtrt_cert_type, begntime, begndate,
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
_MERGE = Sql("UPDATE settlement.visits SET status = 'merged', merged_into = :admission "
             "WHERE mdtrt_id = ANY(:ids) AND status = 'open' RETURNING mdtrt_id")


async def _merge(conn: asyncpg.Connection, *, row, policy: Policy) -> str | None:
    """The 3-day pre-admission merge (DOMAIN §3, engine.visits_to_merge): an admission takes in the person's
    unsettled outpatient visits at the same institution in the days before it; an outpatient visit dated
    in that window of an unsettled admission joins it. Returns the admission this visit joined, if any."""
    neighbours = [PendingVisit(m, row["fixmedins_code"], t, date.fromisoformat(d)) for m, t, d in row["neighbours"]]
    if row["med_type"] == "21" and neighbours:
        merged = visits_to_merge(admission_date=row["begndate"], fixmedins_code=row["fixmedins_code"],
                                 outpatient_visits=neighbours, policy=policy)
        if merged:
            await execute(conn, _MERGE, admission=row["mdtrt_id"], ids=[v.mdtrt_id for v in merged])
    elif row["med_type"] == "11":
        visit = PendingVisit(row["mdtrt_id"], row["fixmedins_code"], "11", row["begndate"])
        for admission in neighbours:
            if visits_to_merge(admission_date=admission.visit_date, fixmedins_code=row["fixmedins_code"],
                               outpatient_visits=[visit], policy=policy):
                await execute(conn, _MERGE, admission=admission.mdtrt_id, ids=[row["mdtrt_id"]])
                return admission.mdtrt_id
    return None


async def create_visit(ctx: Ctx, *, body: VisitIn, principal: Principal, key: idem.IdempotencyKey | None) -> Response:
    """201 {mdtrt_id, ...}: the institution designated and not suspended, the credential the person's."""
    principal.require_institution(body.fixmedins_code)
    replay = await idem.stored_answer(ctx.pool, key)
    if replay is not None:
        return replay
    institution = institution_of(await ctx.institutions.get(ctx.pool, body.fixmedins_code), code=body.fixmedins_code)
    if institution.kind != "hospital":
        raise Problem(422, "INSTITUTION_NOT_DESIGNATED",
                      f"{body.fixmedins_code} is a pharmacy: it settles prescriptions (POST /v1/pharmacy/settlements)")
    begntime = as_business_time(body.begntime)
    begndate = business_date(begntime)
    person = await checked_person(ctx, psn_no=body.psn_no, on=begndate, cert_type=body.mdtrt_cert_type,
                                  cert_no=body.mdtrt_cert_no)
    policy = ctx.policy_for(insuplc_admdvs=person.insuplc_admdvs, institution_admdvs=institution.admdvs, on=begndate)
    values = dict(mdtrt_id=new_id("M"), psn_no=body.psn_no, code=body.fixmedins_code, med_type=body.med_type,
                  cert_type=body.mdtrt_cert_type, begntime=begntime, begndate=begndate,
                  diagnoses=dumps([d.upper() for d in body.diagnoses]), chronic_disease=body.chronic_disease,
                  referral_compliant=body.referral_compliant, days=policy.pre_admission_merge_days)
    if key is None:
        async with connection(ctx.pool) as conn:
            row = await fetchrow(conn, _INSERT_LONE_VISIT, **values)
        if row is not None:
            return idem.json_response(visit_json(row), 201)

    async def work(conn: asyncpg.Connection) -> Response:
        first = await idem.claim(conn, key)
        if first is not None:
            return first
        row = await fetchrow(conn, _INSERT_VISIT, **values)
        answer = visit_json(row)
        joined = await _merge(conn, row=row, policy=policy)
        if joined:
            answer.update(status="merged", merged_into=joined)
        response = idem.json_response(answer, 201)
        await idem.remember(conn, key, response)
        return response

    return await run_in_transaction(ctx.pool, work)


def line_hash(item: FeeItemIn) -> str:
    """Identity of a line's content: the same feedetl_sn with another hash is a conflict."""
    data = item.model_dump(mode="json", exclude={"feedetl_sn"})
    for name in ("cnt", "preselfpay_prop"):
        if data.get(name) is not None:
            data[name] = format(getattr(item, name).normalize(), "f")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


_LINE_ROWS = """unnest(
       CAST(:sn AS text[]), CAST(:codg AS text[]), CAST(:name AS text[]), CAST(:cls AS text[]),
       CAST(:pric AS numeric[]), CAST(:cnt AS numeric[]), CAST(:det AS numeric[]), CAST(:prop AS numeric[]),
       CAST(:days AS int[]), CAST(:ocur AS timestamptz[]), CAST(:hash AS text[]))"""
_LINE_COLUMNS = """settlement.fee_lines (mdtrt_id, feedetl_sn, med_list_codg, med_list_name, item_class, pric, cnt,
                                  det_item_fee_sumamt, preselfpay_prop, days_supply, fee_ocur_time, line_hash)"""
_INSERT_LINES = Sql(f"""
INSERT INTO {_LINE_COLUMNS}
SELECT CAST(:mdtrt_id AS text), * FROM {_LINE_ROWS}
ON CONFLICT DO NOTHING RETURNING feedetl_sn
""")


def _line_columns(items: list[tuple[FeeItemIn, str]]) -> dict[str, list]:
    """(item, line_hash) pairs as the column arrays of _LINE_ROWS."""
    columns: dict[str, list] = {k: [] for k in ("sn", "codg", "name", "cls", "pric", "cnt", "det", "prop", "days",
                                                "ocur", "hash")}
    for item, digest in items:
        for key, value in (("sn", item.feedetl_sn), ("codg", item.med_list_codg), ("name", item.med_list_name),
                           ("cls", item.item_class), ("pric", item.pric), ("cnt", item.cnt),
                           ("det", item.det_item_fee_sumamt), ("prop", item.preselfpay_prop),
                           ("days", item.days_supply),
                           ("ocur", as_business_time(item.fee_ocur_time) if item.fee_ocur_time else None),
                           ("hash", digest)):
            columns[key].append(value)
    return columns


async def insert_lines(conn: asyncpg.Connection, *, mdtrt_id: str, items: list[tuple[FeeItemIn, str]]) -> set[str]:
    """Insert (item, line_hash) pairs in one fixed statement; returns the feedetl_sn actually inserted."""
    return {row["feedetl_sn"] for row in await fetch(conn, _INSERT_LINES, mdtrt_id=mdtrt_id,
                                                      **_line_columns(items))}


def _check_lines(ctx: Ctx, items: list[FeeItemIn], *, max_days_supply: int) -> list[tuple[FeeItemIn, str]]:
    """Upload-time checks: price caps, line totals, supply days above every limit, duplicates in the request."""
    seen: dict[str, str] = {}
    unique: list[tuple[FeeItemIn, str]] = []
    errors: list[dict] = []
    for item in items:
        digest = line_hash(item)
        if item.feedetl_sn in seen:
            if seen[item.feedetl_sn] != digest:
                errors.append({"field": f"items[{item.feedetl_sn}]", "code": "DUPLICATE_LINE",
                               "detail": "the same feedetl_sn twice with different content",
                               "feedetl_sn": item.feedetl_sn})
            continue
        seen[item.feedetl_sn] = digest
        unique.append((item, digest))
        for code in validate_line(fee_line(item), catalogue=ctx.catalogue, max_days_supply=max_days_supply):
            detail = {PRICE_ABOVE_CAP: "price above the catalogue cap",
                      LINE_TOTAL_MISMATCH: "det_item_fee_sumamt differs from pric × cnt",
                      SUPPLY_DAYS_ABOVE_LIMIT: f"days_supply above {max_days_supply}"}.get(code, code)
            errors.append({"field": f"items[{item.feedetl_sn}]", "code": code,
                           "detail": f"{item.med_list_codg}: {detail}", "feedetl_sn": item.feedetl_sn})
    if errors:
        raise Problem(422, errors[0]["code"], f"{len(errors)} fee line(s) refused: {errors[0]['detail']}",
                      errors=errors)
    return unique


_VISIT_FOR_UPLOAD = """
SELECT v.fixmedins_code, v.status, v.begndate, v.lines_version,
       (SELECT i.admdvs FROM settlement.institutions i WHERE i.fixmedins_code = v.fixmedins_code) AS admdvs
  FROM settlement.visits v WHERE v.mdtrt_id = :mdtrt_id"""
_READ_FOR_UPLOAD = Sql(_VISIT_FOR_UPLOAD)
_LOCK_FOR_UPLOAD = Sql(_VISIT_FOR_UPLOAD + " FOR UPDATE OF v")
# One statement: the lines new to the visit are inserted and its lines_version raised, only if the visit is
# still open and as read (:version), no line conflicts with a stored one (same feedetl_sn, other content)
# and the visit stays within :max_lines. It answers what it found either way.
_UPLOAD_LINES = Sql(f"""
WITH incoming AS (
  SELECT * FROM {_LINE_ROWS}
      AS r(sn, codg, name, cls, pric, cnt, det, prop, days, ocur, hash)),
conflicts AS (
  SELECT l.feedetl_sn FROM settlement.fee_lines l JOIN incoming r ON r.sn = l.feedetl_sn
   WHERE l.mdtrt_id = :mdtrt_id AND l.line_hash <> r.hash),
fresh AS (
  SELECT r.* FROM incoming r
   WHERE NOT EXISTS (SELECT 1 FROM settlement.fee_lines l WHERE l.mdtrt_id = :mdtrt_id AND l.feedetl_sn = r.sn)),
locked AS (
  UPDATE settlement.visits SET lines_version = lines_version + 1
   WHERE mdtrt_id = :mdtrt_id AND status = 'open' AND lines_version = :version
     AND NOT EXISTS (SELECT 1 FROM conflicts)
     AND (SELECT count(*) FROM settlement.fee_lines l WHERE l.mdtrt_id = :mdtrt_id)
         + (SELECT count(*) FROM fresh) <= :max_lines
  RETURNING mdtrt_id),
inserted AS (
  INSERT INTO {_LINE_COLUMNS}
  SELECT CAST(:mdtrt_id AS text), f.* FROM fresh f WHERE EXISTS (SELECT 1 FROM locked)
  ON CONFLICT DO NOTHING RETURNING feedetl_sn)
SELECT (SELECT count(*) FROM locked) AS locked, ARRAY(SELECT feedetl_sn FROM conflicts) AS conflicts,
       (SELECT count(*) FROM settlement.fee_lines l WHERE l.mdtrt_id = :mdtrt_id) AS stored,
       (SELECT count(*) FROM fresh) AS fresh, ARRAY(SELECT feedetl_sn FROM inserted) AS inserted
""")


def _upload_policy(ctx: Ctx, *, admdvs: str | None, on) -> Policy | None:
    """The policy whose limits bound an upload: the institution's area, else any area in force."""
    for region in ((admdvs,) if admdvs else ()) + ctx.book.regions:
        try:
            return ctx.book.policy_for(admdvs=region, on=on)
        except PolicyNotFound:
            continue
    return None


async def add_fees(ctx: Ctx, *, mdtrt_id: str, body: FeesIn, principal: Principal) -> Response:
    """Store fee lines; the same line again is a no-op, the same feedetl_sn with another body 409.

    Read the visit, check the lines against its policy, then one guarded statement (_UPLOAD_LINES),
    committed by itself. When another upload or a settle changed the visit in between, once more in a
    transaction that holds the visit's row from the read on."""
    async with connection(ctx.pool) as conn:
        answer = await _upload(ctx, conn, mdtrt_id=mdtrt_id, body=body, principal=principal, read=_READ_FOR_UPLOAD)
        if answer is None:
            async with conn.transaction():
                answer = await _upload(ctx, conn, mdtrt_id=mdtrt_id, body=body, principal=principal,
                                       read=_LOCK_FOR_UPLOAD)
    if answer is None:
        raise AssertionError(f"visit {mdtrt_id} changed while its row was locked")
    return answer


async def _upload(ctx: Ctx, conn: asyncpg.Connection, *, mdtrt_id: str, body: FeesIn, principal: Principal,
                  read: Sql) -> Response | None:
    """The answer, or None when the visit changed between the read and the write."""
    record = await fetchrow(conn, read, mdtrt_id=mdtrt_id)
    if record is None:
        raise not_found("visit", mdtrt_id, "VISIT_NOT_FOUND")
    visit = Attrs(record)
    principal.require_institution(visit.fixmedins_code)
    if visit.status in _UPLOAD_STATUS:
        code, why = _UPLOAD_STATUS[visit.status]
        raise Problem(409, code, f"visit {mdtrt_id} {why}")
    policy = _upload_policy(ctx, admdvs=visit.admdvs, on=visit.begndate)
    max_lines = policy.max_lines_per_claim if policy else 1000
    max_days = policy.prescription.max_days_supply_chronic if policy else 366
    unique = _check_lines(ctx, body.items, max_days_supply=max_days)
    found = await fetchrow(conn, _UPLOAD_LINES, mdtrt_id=mdtrt_id, version=visit.lines_version, max_lines=max_lines,
                           **_line_columns(unique))
    if conflicts := sorted(found["conflicts"]):
        raise Problem(409, "FEE_LINE_CONFLICT",
                      f"feedetl_sn {', '.join(conflicts[:5])} already uploaded with other content",
                      errors=[{"field": f"items[{sn}]", "code": "FEE_LINE_CONFLICT", "detail": "differs",
                               "feedetl_sn": sn} for sn in conflicts])
    if found["stored"] + found["fresh"] > max_lines:
        raise Problem(422, "TOO_MANY_LINES", f"a visit holds at most {max_lines} fee lines")
    if not found["locked"]:
        return None
    inserted = set(found["inserted"])
    repeated = sorted(item.feedetl_sn for item, _ in unique if item.feedetl_sn not in inserted)
    return idem.json_response({"mdtrt_id": mdtrt_id, "accepted": sorted(inserted), "duplicates": repeated,
                               "line_count": found["stored"] + len(inserted)}, 201 if inserted else 200)


async def discharge(ctx: Ctx, *, mdtrt_id: str, body: DischargeIn, principal: Principal) -> dict:
    """Record the discharge time of an admission (before its settlement)."""
    endtime = as_business_time(body.endtime)

    async def work(session: AsyncSession) -> dict:
        row = (await session.execute(select(visits).where(visits.c.mdtrt_id == mdtrt_id).with_for_update())).first()
        if row is None:
            raise not_found("visit", mdtrt_id, "VISIT_NOT_FOUND")
        principal.require_institution(row.fixmedins_code)
        if row.med_type != "21":
            raise Problem(422, "NOT_INPATIENT", f"visit {mdtrt_id} is not an admission (med_type 21)")
        if row.status != "open":
            code, why = _UPLOAD_STATUS.get(row.status, ("VISIT_CLOSED", "is closed"))
            raise Problem(409, code, f"visit {mdtrt_id} {why}")
        if endtime < row.begntime:
            raise Problem(422, "ENDTIME_BEFORE_BEGNTIME", "endtime is before the admission's begntime",
                          errors=[{"field": "endtime", "code": "ENDTIME_BEFORE_BEGNTIME", "detail": "too early"}])
        updated = (await session.execute(update(visits).where(visits.c.mdtrt_id == mdtrt_id)
                                          .values(endtime=endtime, enddate=business_date(endtime))
                                          .returning(*visits.c))).one()
        return visit_json(updated._mapping)

    return await run_in_session(ctx.sessions, work)


async def get_visit(ctx: Ctx, *, mdtrt_id: str, principal: Principal) -> dict:
    async with ctx.sessions() as session:
        row = (await session.execute(select(visits).where(visits.c.mdtrt_id == mdtrt_id))).first()
        if row is None:
            raise not_found("visit", mdtrt_id, "VISIT_NOT_FOUND")
        principal.require_institution(row.fixmedins_code)
        lines = (await session.execute(select(fee_lines).where(fee_lines.c.mdtrt_id == mdtrt_id)
                                       .order_by(fee_lines.c.feedetl_sn))).all()
    body = visit_json(row._mapping)
    body["items"] = [{"feedetl_sn": x.feedetl_sn, "med_list_codg": x.med_list_codg, "med_list_name": x.med_list_name,
                      "item_class": x.item_class, "pric": f"{x.pric:.2f}", "cnt": format(x.cnt.normalize(), "f"),
                      "days_supply": x.days_supply} for x in lines]
    return body
