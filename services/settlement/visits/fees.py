"""Fee lines 费用明细: upload-time checks (catalogue price caps, line totals, supply days), idempotent per feedetl_sn,
stored by one guarded statement; the same storage for the lines of pharmacy and declared settlements."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

from services.settlement.engine import (
    LINE_TOTAL_MISMATCH,
    PRICE_ABOVE_CAP,
    SUPPLY_DAYS_ABOVE_LIMIT,
    Policy,
    PolicyNotFound,
    validate_line,
)
from services.settlement.runtime import Ctx, as_business_time
from services.settlement.schemas import FeeItemIn, FeesIn
from services.settlement.settle.inputs import fee_line
from services.settlement.visits.visits import NOT_OPEN
from shared.auth import Principal
from shared.db import Row, Sql, Unit
from shared.idempotency import Answer
from shared.problems import Problem, not_found

T = TypeVar("T")


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
_LINE_COLUMNS = """fee_lines (mdtrt_id, feedetl_sn, med_list_codg, med_list_name, item_class, pric, cnt,
                                  det_item_fee_sumamt, preselfpay_prop, days_supply, fee_ocur_time, line_hash)"""
_INSERT_LINES = Sql(f"""
INSERT INTO {_LINE_COLUMNS}
SELECT CAST(:mdtrt_id AS text), * FROM {_LINE_ROWS}
ON CONFLICT DO NOTHING RETURNING feedetl_sn
""")


def _line_columns(items: list[tuple[FeeItemIn, str]]) -> dict[str, list]:
    """(item, line_hash) pairs as the column arrays of _LINE_ROWS."""
    columns: dict[str, list] = {
        k: [] for k in ("sn", "codg", "name", "cls", "pric", "cnt", "det", "prop", "days", "ocur", "hash")
    }
    for item, digest in items:
        for key, value in (
            ("sn", item.feedetl_sn),
            ("codg", item.med_list_codg),
            ("name", item.med_list_name),
            ("cls", item.item_class),
            ("pric", item.pric),
            ("cnt", item.cnt),
            ("det", item.det_item_fee_sumamt),
            ("prop", item.preselfpay_prop),
            ("days", item.days_supply),
            ("ocur", as_business_time(item.fee_ocur_time) if item.fee_ocur_time else None),
            ("hash", digest),
        ):
            columns[key].append(value)
    return columns


async def insert_lines(unit: Unit, *, mdtrt_id: str, items: list[tuple[FeeItemIn, str]]) -> set[str]:
    """Insert (item, line_hash) pairs in one fixed statement; returns the feedetl_sn actually inserted."""
    return {row["feedetl_sn"] for row in await unit.fetch(_INSERT_LINES, mdtrt_id=mdtrt_id, **_line_columns(items))}


def _check_lines(ctx: Ctx, items: list[FeeItemIn], *, max_days_supply: int) -> list[tuple[FeeItemIn, str]]:
    """Upload-time checks: price caps, line totals, supply days above every limit, duplicates in the request."""
    seen: dict[str, str] = {}
    unique: list[tuple[FeeItemIn, str]] = []
    errors: list[dict] = []
    for item in items:
        digest = line_hash(item)
        if item.feedetl_sn in seen:
            if seen[item.feedetl_sn] != digest:
                errors.append(
                    {
                        "field": f"items[{item.feedetl_sn}]",
                        "code": "DUPLICATE_LINE",
                        "detail": "the same feedetl_sn twice with different content",
                        "feedetl_sn": item.feedetl_sn,
                    }
                )
            continue
        seen[item.feedetl_sn] = digest
        unique.append((item, digest))
        for code in validate_line(fee_line(item), catalogue=ctx.catalogue, max_days_supply=max_days_supply):
            detail = {
                PRICE_ABOVE_CAP: "price above the catalogue cap",
                LINE_TOTAL_MISMATCH: "det_item_fee_sumamt differs from pric × cnt",
                SUPPLY_DAYS_ABOVE_LIMIT: f"days_supply above {max_days_supply}",
            }.get(code, code)
            errors.append(
                {
                    "field": f"items[{item.feedetl_sn}]",
                    "code": code,
                    "detail": f"{item.med_list_codg}: {detail}",
                    "feedetl_sn": item.feedetl_sn,
                }
            )
    if errors:
        raise Problem(
            422, errors[0]["code"], f"{len(errors)} fee line(s) refused: {errors[0]['detail']}", errors=errors
        )
    return unique


_VISIT_FOR_UPLOAD = """
SELECT v.fixmedins_code, v.status, v.begndate, v.lines_version,
       (SELECT i.admdvs FROM institutions i WHERE i.fixmedins_code = v.fixmedins_code) AS admdvs
  FROM visits v WHERE v.mdtrt_id = :mdtrt_id"""
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
  SELECT l.feedetl_sn FROM fee_lines l JOIN incoming r ON r.sn = l.feedetl_sn
   WHERE l.mdtrt_id = :mdtrt_id AND l.line_hash <> r.hash),
fresh AS (
  SELECT r.* FROM incoming r
   WHERE NOT EXISTS (SELECT 1 FROM fee_lines l WHERE l.mdtrt_id = :mdtrt_id AND l.feedetl_sn = r.sn)),
locked AS (
  UPDATE visits SET lines_version = lines_version + 1
   WHERE mdtrt_id = :mdtrt_id AND status = 'open' AND lines_version = :version
     AND NOT EXISTS (SELECT 1 FROM conflicts)
     AND (SELECT count(*) FROM fee_lines l WHERE l.mdtrt_id = :mdtrt_id)
         + (SELECT count(*) FROM fresh) <= :max_lines
  RETURNING mdtrt_id),
inserted AS (
  INSERT INTO {_LINE_COLUMNS}
  SELECT CAST(:mdtrt_id AS text), f.* FROM fresh f WHERE EXISTS (SELECT 1 FROM locked)
  ON CONFLICT DO NOTHING RETURNING feedetl_sn)
SELECT (SELECT count(*) FROM locked) AS locked, ARRAY(SELECT feedetl_sn FROM conflicts) AS conflicts,
       (SELECT count(*) FROM fee_lines l WHERE l.mdtrt_id = :mdtrt_id) AS stored,
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


async def add_fees(ctx: Ctx, *, mdtrt_id: str, body: FeesIn, principal: Principal) -> Answer:
    """Store fee lines; the same line again is a no-op, the same feedetl_sn with another body 409.

    Read the visit, check the lines against its policy, then one guarded statement (_UPLOAD_LINES),
    committed by itself. When another upload or a settle changed the visit in between, once more in a
    transaction that holds the visit's row from the read on."""
    return await upload_once(
        ctx,
        mdtrt_id,
        lambda unit, read: _upload(ctx, unit, mdtrt_id=mdtrt_id, body=body, principal=principal, read=read),
    )


async def upload_once(ctx: Ctx, mdtrt_id: str, upload: Callable[[Unit, Sql], Awaitable[T | None]]) -> T:
    """`upload(unit, read)` on a connection, the visit read without a lock (`read`: the statement that reads it);
    when the visit changed in between (None), once more in a transaction that holds its row."""
    async with ctx.db.connect() as unit:
        done = await upload(unit, _READ_FOR_UPLOAD)
    if done is None:
        done = await ctx.db.transaction(lambda unit: upload(unit, _LOCK_FOR_UPLOAD))
    if done is None:
        raise AssertionError(f"visit {mdtrt_id} changed while its row was locked")
    return done


async def open_visit(unit: Unit, *, read: Sql, mdtrt_id: str, principal: Principal) -> Row:
    """The visit lines are uploaded to: 404 unknown, 403 another institution's, 409 not open."""
    visit = await unit.fetchrow(read, mdtrt_id=mdtrt_id)
    if visit is None:
        raise not_found("visit", mdtrt_id, "VISIT_NOT_FOUND")
    principal.require_institution(visit.fixmedins_code)
    if visit.status in NOT_OPEN:
        code, why = NOT_OPEN[visit.status]
        raise Problem(409, code, f"visit {mdtrt_id} {why}")
    return visit


async def store_lines(
    unit: Unit, *, mdtrt_id: str, visit: Row, lines: list[tuple[FeeItemIn, str]], max_lines: int
) -> Row | None:
    """The guarded statement (_UPLOAD_LINES) for checked (item, line_hash) pairs: 409 FEE_LINE_CONFLICT, 422
    TOO_MANY_LINES; what it found, or None when the visit changed since it was read (nothing written)."""
    found = await unit.fetchrow(
        _UPLOAD_LINES, mdtrt_id=mdtrt_id, version=visit.lines_version, max_lines=max_lines, **_line_columns(lines)
    )
    if conflicts := sorted(found["conflicts"]):
        raise Problem(
            409,
            "FEE_LINE_CONFLICT",
            f"feedetl_sn {', '.join(conflicts[:5])} already uploaded with other content",
            errors=[
                {"field": f"items[{sn}]", "code": "FEE_LINE_CONFLICT", "detail": "differs", "feedetl_sn": sn}
                for sn in conflicts
            ],
        )
    if found["stored"] + found["fresh"] > max_lines:
        raise Problem(422, "TOO_MANY_LINES", f"a visit holds at most {max_lines} fee lines")
    return found if found["locked"] else None


async def _upload(
    ctx: Ctx, unit: Unit, *, mdtrt_id: str, body: FeesIn, principal: Principal, read: Sql
) -> Answer | None:
    """The answer, or None when the visit changed between the read and the write."""
    visit = await open_visit(unit, read=read, mdtrt_id=mdtrt_id, principal=principal)
    policy = _upload_policy(ctx, admdvs=visit.admdvs, on=visit.begndate)
    max_lines = policy.max_lines_per_claim if policy else 1000
    max_days = policy.prescription.max_days_supply_chronic if policy else 366
    unique = _check_lines(ctx, body.items, max_days_supply=max_days)
    found = await store_lines(unit, mdtrt_id=mdtrt_id, visit=visit, lines=unique, max_lines=max_lines)
    if found is None:
        return None
    inserted = set(found["inserted"])
    repeated = sorted(item.feedetl_sn for item, _ in unique if item.feedetl_sn not in inserted)
    return Answer.json(
        {
            "mdtrt_id": mdtrt_id,
            "accepted": sorted(inserted),
            "duplicates": repeated,
            "line_count": found["stored"] + len(inserted),
        },
        201 if inserted else 200,
    )
