"""One unsettled fee line replaced (PUT: a refund of part of a line nets into it, as 住院费用明细上传 2301
sends it with a negative cnt and init_feedetl_sn), and a visit's lines as the catalogue classifies them (the
2204 / 2301 answer: per line its class, self-pay ratio, price cap and split).

The classification is the engine's own (`classify_lines`, DOMAIN §2) with the visit's policy, for a patient without
COVID status (a COVID-only item is marked restricted, `lmt_used_flag`; settlement decides with the diagnoses).
"""

from __future__ import annotations

from decimal import Decimal

from services.settlement.engine import Policy
from services.settlement.engine.catalogue import classify_lines
from services.settlement.runtime import Ctx, as_business_time
from services.settlement.schemas import FeeItemIn, FeesIn
from services.settlement.settle.inputs import fee_line
from services.settlement.visits import fees
from services.settlement.visits.cancel import locked_visit, refuse_unless_open
from services.settlement.visits.fees import _check_lines, _upload_policy
from shared.auth import Principal
from shared.db import Sql, Unit
from shared.idempotency import Answer
from shared.money import fmt
from shared.problems import Problem, not_found

_INSTITUTION_AREA = Sql("SELECT admdvs FROM institutions WHERE fixmedins_code = :code")
_EXISTING = Sql("SELECT line_hash FROM fee_lines WHERE mdtrt_id = :mdtrt_id AND feedetl_sn = :sn")
_COUNT = Sql("SELECT count(*) FROM fee_lines WHERE mdtrt_id = :mdtrt_id")
_UPSERT = Sql("""
INSERT INTO fee_lines (mdtrt_id, feedetl_sn, med_list_codg, med_list_name, item_class, pric, cnt,
                       det_item_fee_sumamt, preselfpay_prop, days_supply, fee_ocur_time, line_hash)
VALUES (:mdtrt_id, :sn, :codg, :name, :cls, :pric, :cnt, :det, :prop, :days, :ocur, :hash)
ON CONFLICT (mdtrt_id, feedetl_sn) DO UPDATE SET
  med_list_codg = EXCLUDED.med_list_codg, med_list_name = EXCLUDED.med_list_name, item_class = EXCLUDED.item_class,
  pric = EXCLUDED.pric, cnt = EXCLUDED.cnt, det_item_fee_sumamt = EXCLUDED.det_item_fee_sumamt,
  preselfpay_prop = EXCLUDED.preselfpay_prop, days_supply = EXCLUDED.days_supply,
  fee_ocur_time = EXCLUDED.fee_ocur_time, line_hash = EXCLUDED.line_hash
""")
_BUMP = Sql("UPDATE visits SET lines_version = lines_version + 1 WHERE mdtrt_id = :mdtrt_id")
_VISIT_AND_LINES = Sql("""
SELECT v.fixmedins_code, v.begndate, v.status, i.admdvs,
       (SELECT coalesce(json_agg(json_build_array(l.feedetl_sn, l.med_list_codg, l.med_list_name, l.item_class,
                   l.pric::text, l.cnt::text, l.det_item_fee_sumamt::text, l.preselfpay_prop::text, l.days_supply)
                   ORDER BY l.feedetl_sn), '[]'::json)
          FROM fee_lines l WHERE l.mdtrt_id = v.mdtrt_id) AS lines
  FROM visits v LEFT JOIN institutions i ON i.fixmedins_code = v.fixmedins_code
 WHERE v.mdtrt_id = :mdtrt_id
""")


async def put_line(ctx: Ctx, *, mdtrt_id: str, feedetl_sn: str, item: FeeItemIn, principal: Principal) -> Answer:
    """201 the line created, 200 replaced (or already so); the same upload-time checks as POST …/fees."""
    if item.feedetl_sn != feedetl_sn:
        raise Problem(
            422,
            "FEEDETL_SN_MISMATCH",
            "the body's feedetl_sn differs from the path's",
            errors=[{"field": "feedetl_sn", "code": "FEEDETL_SN_MISMATCH", "detail": "differs from the path"}],
        )

    async def work(unit: Unit) -> Answer:
        visit = await locked_visit(unit, mdtrt_id=mdtrt_id, principal=principal)
        refuse_unless_open(visit)
        admdvs = await unit.fetchval(_INSTITUTION_AREA, code=visit.fixmedins_code)
        policy = _upload_policy(ctx, admdvs=admdvs, on=visit.begndate)
        max_lines = policy.max_lines_per_claim if policy else 1000
        max_days = policy.prescription.max_days_supply_chronic if policy else 366
        [(checked, digest)] = _check_lines(ctx, [item], max_days_supply=max_days)
        existing = await unit.fetchval(_EXISTING, mdtrt_id=mdtrt_id, sn=feedetl_sn)
        if existing is None and await unit.fetchval(_COUNT, mdtrt_id=mdtrt_id) >= max_lines:
            raise Problem(422, "TOO_MANY_LINES", f"a visit holds at most {max_lines} fee lines")
        if existing != digest:
            await unit.execute(
                _UPSERT,
                mdtrt_id=mdtrt_id,
                sn=feedetl_sn,
                codg=checked.med_list_codg,
                name=checked.med_list_name,
                cls=checked.item_class,
                pric=checked.pric,
                cnt=checked.cnt,
                det=checked.det_item_fee_sumamt,
                prop=checked.preselfpay_prop,
                days=checked.days_supply,
                ocur=as_business_time(checked.fee_ocur_time) if checked.fee_ocur_time else None,
                hash=digest,
            )
            await unit.execute(_BUMP, mdtrt_id=mdtrt_id)
        body = {
            "mdtrt_id": mdtrt_id,
            "feedetl_sn": feedetl_sn,
            "created": existing is None,
            "replaced": existing is not None and existing != digest,
            "line_count": await unit.fetchval(_COUNT, mdtrt_id=mdtrt_id),
        }
        return Answer.json(body, 201 if existing is None else 200)

    return await ctx.db.transaction(work)


class _Stored:
    """A stored line as `fee_line` reads it."""

    __slots__ = (
        "feedetl_sn",
        "med_list_codg",
        "med_list_name",
        "item_class",
        "pric",
        "cnt",
        "det_item_fee_sumamt",
        "preselfpay_prop",
        "days_supply",
    )

    def __init__(self, values: list) -> None:
        for name, value in zip(self.__slots__, values, strict=True):
            setattr(self, name, value)


async def classified_lines(ctx: Ctx, *, mdtrt_id: str, principal: Principal) -> dict:
    """{mdtrt_id, status, items: [{feedetl_sn, …, item_class, selfpay_prop, price_cap, amounts}]}."""
    async with ctx.db.connect() as unit:
        row = await unit.fetchrow(_VISIT_AND_LINES, mdtrt_id=mdtrt_id)
    if row is None:
        raise not_found("visit", mdtrt_id, "VISIT_NOT_FOUND")
    principal.require_institution(row.fixmedins_code)
    policy = _upload_policy(ctx, admdvs=row.admdvs, on=row.begndate)
    if policy is None:
        raise Problem(422, "POLICY_NOT_FOUND", f"no policy in force for visit {mdtrt_id}")
    items = _classified_items(ctx, [_Stored(line) for line in row.lines], policy)
    return {"mdtrt_id": mdtrt_id, "status": row.status, "items": items}


def _classified_items(ctx: Ctx, lines: list, policy: Policy) -> list[dict]:
    """Each line as the catalogue classifies it under `policy` (per line: independent of the visit's other lines)."""
    classified = classify_lines(
        lines=tuple(fee_line(line) for line in lines),
        catalogue=ctx.catalogue,
        default_preselfpay_prop=policy.default_preselfpay_prop,
        covid=False,
        max_days_supply=policy.prescription.max_days_supply_chronic,
    )
    items = []
    for line, result in zip(lines, classified.lines, strict=True):
        entry = ctx.catalogue.get(line.med_list_codg)
        items.append(
            {
                "feedetl_sn": line.feedetl_sn,
                "med_list_codg": line.med_list_codg,
                "med_list_name": line.med_list_name,
                "pric": fmt(Decimal(line.pric)),
                "cnt": format(Decimal(line.cnt).normalize(), "f"),
                "det_item_fee_sumamt": fmt(result.amount),
                "item_class": result.item_class,
                "selfpay_prop": format(result.preselfpay_prop, "f"),
                "price_cap": fmt(entry.price_cap) if entry is not None and entry.price_cap is not None else None,
                "in_catalogue": entry is not None,
                "restricted": entry is not None and entry.covid_only,
                "fulamt_ownpay_amt": fmt(result.fulamt_ownpay_amt),
                "preselfpay_amt": fmt(result.preselfpay_amt),
                "inscp_scp_amt": fmt(result.inscp_amt),
            }
        )
    return items


async def add_classified(ctx: Ctx, *, mdtrt_id: str, body: FeesIn, principal: Principal) -> Answer:
    """POST …/fees (the same checks, answer and status) with `items`: the uploaded lines as classified_lines shows
    them (2204 answers this per line, in one call).

    The upload is POST …/fees's steps (fees.upload_once, open_visit, store_lines); the lines are classified from the
    upload itself under the policy of the visit as read for it, not read back (a line stored before has the same
    content, its line_hash, so the same classes). Without a policy in force the lines are stored as POST …/fees
    stores them, and the answer is 422 POLICY_NOT_FOUND, as classified_lines's."""
    upload, status = await fees.upload_once(
        ctx,
        mdtrt_id,
        lambda unit, read: _upload_classified(ctx, unit, mdtrt_id=mdtrt_id, body=body, principal=principal, read=read),
    )
    if upload["items"] is None:
        raise Problem(422, "POLICY_NOT_FOUND", f"no policy in force for visit {mdtrt_id}")
    return Answer.json(upload, status)


async def _upload_classified(
    ctx: Ctx, unit: Unit, *, mdtrt_id: str, body: FeesIn, principal: Principal, read: Sql
) -> tuple[dict, int] | None:
    """(the answer, its status), or None when the visit changed between the read and the write."""
    visit = await fees.open_visit(unit, read=read, mdtrt_id=mdtrt_id, principal=principal)
    policy = _upload_policy(ctx, admdvs=visit.admdvs, on=visit.begndate)
    max_lines = policy.max_lines_per_claim if policy else 1000
    max_days = policy.prescription.max_days_supply_chronic if policy else 366
    unique = _check_lines(ctx, body.items, max_days_supply=max_days)
    found = await fees.store_lines(unit, mdtrt_id=mdtrt_id, visit=visit, lines=unique, max_lines=max_lines)
    if found is None:
        return None
    inserted = set(found["inserted"])
    uploaded = sorted((item for item, _ in unique), key=lambda item: item.feedetl_sn)
    answer = {
        "mdtrt_id": mdtrt_id,
        "accepted": sorted(inserted),
        "duplicates": sorted(item.feedetl_sn for item, _ in unique if item.feedetl_sn not in inserted),
        "line_count": found["stored"] + len(inserted),
        "items": _classified_items(ctx, uploaded, policy) if policy is not None else None,
    }
    return answer, 201 if inserted else 200
