"""Fee lines through the gateway: 2204 / 2301 upload (with 2301's refund lines), 2205 cancel a charge batch, 2302
cancel a line. The answer of an upload is, per line, what settlement's catalogue makes of it (class, self-pay
ratio, price cap, split).

Settlement keeps a visit's lines netted: a refund line (2301, negative cnt, init_feedetl_sn) lowers the quantity
of the line it refunds (PUT …/fees/{init}); cancelling the refund (2302) puts it back. The gateway keeps each line
as the HIS sent it (its charge batch, the refunds) in its own `fee_lines`: an upload's lines in the statement that
keeps its answer, refunds (which read the lines they refund) as they are netted.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

from services.gateway.errors import require_ok
from services.gateway.inputs import Failure, rows
from services.gateway.logwriter import kept_alone
from services.gateway.runtime import Call, Statements
from services.gateway.transactions.common import check_visit_person, iso
from services.gateway.transactions.setl import ZERO, amount
from shared.db import Sql
from shared.events.envelope import dumps

ALL = "0000"
CENT = Decimal("0.01")
_UPSERT = Sql("""
INSERT INTO fee_lines AS f (mdtrt_id, feedetl_sn, fixmedins_code, chrg_bchno, init_feedetl_sn, cnt, item, status)
VALUES (:mdtrt_id, :sn, :code, :batch, :init, :cnt, CAST(:item AS jsonb), 'active')
ON CONFLICT (mdtrt_id, feedetl_sn) DO UPDATE SET chrg_bchno = EXCLUDED.chrg_bchno,
       init_feedetl_sn = EXCLUDED.init_feedetl_sn, cnt = EXCLUDED.cnt, item = EXCLUDED.item, status = 'active'
""")
# The lines of one upload, in one statement (arrays: feedetl_sn, batch, cnt, item); with the answer of a 2204
# (Call.keep_with_answer), by itself when refunds follow (they read these rows).
_UPSERT_MANY_TEXT = """
INSERT INTO fee_lines AS f (mdtrt_id, feedetl_sn, fixmedins_code, chrg_bchno, init_feedetl_sn, cnt, item, status)
SELECT CAST(:line_visit AS text), r.sn, CAST(:code AS text), r.batch, NULL, r.cnt, r.item, 'active'
  FROM unnest(CAST(:sns AS text[]), CAST(:batches AS text[]), CAST(:cnts AS numeric[]), CAST(:items AS jsonb[]))
       AS r(sn, batch, cnt, item)
 WHERE {logged}
ON CONFLICT (mdtrt_id, feedetl_sn) DO UPDATE SET chrg_bchno = EXCLUDED.chrg_bchno, init_feedetl_sn = NULL,
       cnt = EXCLUDED.cnt, item = EXCLUDED.item, status = 'active'
"""
_UPSERT_MANY = kept_alone(_UPSERT_MANY_TEXT)
_LINE = Sql("""
SELECT feedetl_sn, init_feedetl_sn, cnt, item, status FROM fee_lines
 WHERE mdtrt_id = :mdtrt_id AND feedetl_sn = :sn AND fixmedins_code = :code
""")
_REFUNDED = Sql("""
SELECT coalesce(sum(cnt), 0) FROM fee_lines
 WHERE mdtrt_id = :mdtrt_id AND init_feedetl_sn = :init AND status = 'active' AND feedetl_sn <> :sn
""")
_BATCH = Sql("""
SELECT feedetl_sn FROM fee_lines
 WHERE mdtrt_id = :mdtrt_id AND fixmedins_code = :code AND chrg_bchno = :batch AND status = 'active'
 ORDER BY feedetl_sn
""")
_CANCEL = Sql("""
UPDATE fee_lines SET status = 'cancelled'
 WHERE mdtrt_id = :mdtrt_id AND fixmedins_code = :code AND status = 'active'
   AND (CAST(:everything AS boolean) OR feedetl_sn = ANY(CAST(:sns AS text[]))
        OR init_feedetl_sn = ANY(CAST(:sns AS text[])))
""")


@dataclass
class Line:
    sn: str
    batch: str | None
    init: str | None
    cnt: Decimal
    pric: Decimal
    det: Decimal
    item: dict[str, Any]  # as settlement takes it (a refund: its own values)


def _line(row: Any, *, inpatient: bool) -> tuple[str, str, Line]:
    sn = row.code("feedetl_sn", required=True, max_len=30)
    mdtrt_id = row.code("mdtrt_id", required=True, max_len=30)
    psn_no = row.code("psn_no", required=True, max_len=30)
    if inpatient:
        init, batch = row.code("init_feedetl_sn", max_len=30), None
        row.need("med_type", max_len=6)
    else:
        init, batch = None, row.need("chrg_bchno", max_len=30)
        row.flag("rx_circ_flag", required=True)
        row.flag("hosp_appr_flag", required=True, allowed=("0", "1", "2", "3"))
    ocur = row.time("fee_ocur_time", required=True)
    codg = row.need("med_list_codg", max_len=50)
    row.need("medins_list_codg", max_len=150)
    det = row.decimal("det_item_fee_sumamt", required=True)
    cnt = row.decimal("cnt", required=True, places=4)
    pric = row.decimal("pric", required=True, places=6)
    row.require("bilg_dept_codg", "bilg_dept_name", "bilg_dr_codg", "bilg_dr_name")
    days = row.decimal("prd_days", places=2)
    assert sn and mdtrt_id and psn_no and ocur and det is not None and cnt is not None and pric is not None
    where = f"{row.name}（费用明细流水号{sn}）"
    if pric < 0 or pric != pric.quantize(CENT):
        raise Failure(f"{where}单价[{pric}]应为不小于0且最多两位小数的金额（本平台按元、分计价）")
    if cnt == 0:
        raise Failure(f"{where}数量不能为0")
    if cnt < 0 and not init:
        raise Failure(f"{where}数量为负数（退费）时必须填写原费用流水号init_feedetl_sn")
    if (cnt < 0) != (det < 0) and det != 0:
        raise Failure(f"{where}明细项目费用总额与数量的正负不一致")
    if (pric * cnt).quantize(CENT, rounding=ROUND_HALF_UP) != det:
        raise Failure(f"{where}明细项目费用总额[{det}]与单价×数量[{(pric * cnt).quantize(CENT)}]不符")
    item: dict[str, Any] = {
        "feedetl_sn": sn,
        "med_list_codg": codg,
        "med_list_name": (row.text("med_list_name", max_len=200) or ""),
        "pric": f"{pric.quantize(CENT):.2f}",
        "cnt": format(abs(cnt).normalize(), "f"),
        "det_item_fee_sumamt": f"{abs(det):.2f}",
        "fee_ocur_time": iso(ocur),
    }
    if days is not None and days > 0:
        item["days_supply"] = min(366, int(days.to_integral_value(rounding=ROUND_CEILING)))
    return mdtrt_id, psn_no, Line(sn, batch, init if cnt < 0 else None, cnt, pric, det, item)


def _result(
    line: Line, classified: dict[str, Any] | None, call: Call, diff: dict[str, Decimal] | None = None
) -> dict[str, Any]:
    """One row of the upload's answer (2204 / 2301 result)."""
    codes = call.gw.codes
    c = classified or {}
    cap = c.get("price_cap")

    def part(name: str) -> Decimal:
        return diff[name] if diff is not None else amount(c.get(name))

    return {
        "feedetl_sn": line.sn,
        "det_item_fee_sumamt": line.det,
        "cnt": line.cnt,
        "pric": line.pric,
        "pric_uplmt_amt": Decimal(cap) if cap is not None else line.pric,
        "selfpay_prop": Decimal(c.get("selfpay_prop") or "0"),
        "fulamt_ownpay_amt": part("fulamt_ownpay_amt"),
        "overlmt_amt": ZERO,
        "preselfpay_amt": part("preselfpay_amt"),
        "inscp_scp_amt": part("inscp_scp_amt"),
        "chrgitm_lv": codes.chrgitm_lv[c.get("item_class") or "C"],
        "med_chrgitm_type": codes.chrgitm_type(line.item["med_list_codg"]),
        "lmt_used_flag": "1" if c.get("restricted") else "0",
        "memo": None if c.get("in_catalogue", True) else "医保目录外项目，按全自费处理",
    }


async def _classified(call: Call, mdtrt_id: str) -> dict[str, dict[str, Any]]:
    reply = require_ok(await call.settlement("GET", f"/v1/visits/{mdtrt_id}/fees"))
    return {item["feedetl_sn"]: item for item in reply.body["items"]}


def _unit(call: Call) -> Statements:
    assert call.unit is not None, "a writing transaction runs in the message log's unit"
    return call.unit


async def upload(call: Call, *, inpatient: bool) -> dict[str, Any]:
    """2204 / 2301: new lines to settlement (idempotent per feedetl_sn), refunds netted, the answer per line."""
    parsed = [_line(row, inpatient=inpatient) for row in rows(call.input.get("feedetail"), "feedetail")]
    (mdtrt_id, psn_no) = parsed[0][:2]
    if any((m, p) != (mdtrt_id, psn_no) for m, p, _ in parsed):
        raise Failure("同一次上传的费用明细应属于同一就诊ID和人员编号")
    lines: dict[str, Line] = {}
    for _, _, line in parsed:
        if line.sn in lines and lines[line.sn].item != line.item:
            raise Failure(f"费用明细流水号[{line.sn}]在本次上传中重复且内容不同")
        lines[line.sn] = line
    await check_visit_person(call, mdtrt_id=mdtrt_id, psn_no=psn_no)
    unit = _unit(call)
    charges = [line for line in lines.values() if line.cnt > 0]
    refunds = [line for line in lines.values() if line.cnt < 0]
    classified: dict[str, dict[str, Any]] | None = None
    if charges:
        body = {"items": [line.item for line in charges]}
        path = f"/v1/visits/{mdtrt_id}/fees" if refunds else f"/v1/visits/{mdtrt_id}/fees/classified"
        uploaded = require_ok(
            await call.settlement("POST", path, body=body),
            FEE_LINE_CONFLICT="费用明细流水号已上传且内容不同，请先撤销原明细（2205/2302）",
            ALREADY_SETTLED="该就诊已结算，不能再上传费用明细",
        ).body
        kept = dict(
            line_visit=mdtrt_id,
            sns=[line.sn for line in charges],
            batches=[line.batch for line in charges],
            cnts=[line.cnt for line in charges],
            items=[dumps(line.item) for line in charges],
        )
        if refunds:
            await unit.execute(_UPSERT_MANY, code=call.fixmedins_code, **kept)
        else:
            classified = {item["feedetl_sn"]: item for item in uploaded["items"]}
            call.keep_with_answer(_UPSERT_MANY_TEXT, **kept)
        accepted = list(uploaded.get("accepted") or [])
        if accepted:

            async def take_back(same: bool) -> None:
                """Lines new to settlement under a msgid another message holds: cancelled (a retry or twin of this
                upload keeps them: they are its lines)."""
                if not same:
                    await _cancel_at_settlement(call, mdtrt_id=mdtrt_id, sns=accepted)

            call.undo_if_taken(take_back)
    diffs: dict[str, dict[str, Decimal]] = {}
    if refunds:
        before = await _classified(call, mdtrt_id)
        touched = []
        for refund in refunds:
            touched.append(await _apply_refund(call, unit, mdtrt_id=mdtrt_id, refund=refund))
        after = await _classified(call, mdtrt_id)
        for refund, init in zip(refunds, touched, strict=True):
            diffs[refund.sn] = {
                name: amount(after.get(init, {}).get(name)) - amount(before.get(init, {}).get(name))
                for name in ("fulamt_ownpay_amt", "preselfpay_amt", "inscp_scp_amt")
            }
        classified = after
    elif classified is None:
        classified = await _classified(call, mdtrt_id)
    call.effect.psn_no, call.effect.mdtrt_id = psn_no, mdtrt_id
    results = []
    for line in lines.values():
        if line.cnt < 0:
            assert line.init is not None
            results.append(_result(line, classified.get(line.init), call, diffs[line.sn]))
        else:
            results.append(_result(line, classified.get(line.sn), call))
    return {"result": results}


async def _net(call: Call, unit: Statements, *, mdtrt_id: str, init: str, without: str) -> tuple[Any, Decimal]:
    """The refunded line as the HIS sent it and its quantity net of its other active refunds."""
    origin = await unit.fetchrow(_LINE, mdtrt_id=mdtrt_id, sn=init, code=call.fixmedins_code)
    if origin is None or origin["status"] != "active" or origin["cnt"] <= 0:
        raise Failure(f"原费用流水号[{init}]不存在或已撤销")
    refunded = Decimal(await unit.fetchval(_REFUNDED, mdtrt_id=mdtrt_id, init=init, sn=without))
    return origin, Decimal(origin["cnt"]) + refunded


async def _set_quantity(call: Call, *, mdtrt_id: str, origin: Any, cnt: Decimal) -> None:
    """The refunded line at settlement with its net quantity (none left: cancelled there)."""
    init = origin["feedetl_sn"]
    if cnt == 0:
        require_ok(await call.settlement("POST", f"/v1/visits/{mdtrt_id}/fees/cancel", body={"feedetl_sn": [init]}))
        return
    item = dict(origin["item"])
    pric = Decimal(item["pric"])
    item.update(cnt=format(cnt.normalize(), "f"), det_item_fee_sumamt=f"{(pric * cnt).quantize(CENT, ROUND_HALF_UP)}")
    require_ok(await call.settlement("PUT", f"/v1/visits/{mdtrt_id}/fees/{init}", body=item))


async def _apply_refund(call: Call, unit: Statements, *, mdtrt_id: str, refund: Line) -> str:
    """A refund line netted into the line it refunds; returns that line's feedetl_sn."""
    init = refund.init
    assert init is not None
    known = await unit.fetchrow(_LINE, mdtrt_id=mdtrt_id, sn=refund.sn, code=call.fixmedins_code)
    if known is not None and known["status"] == "active":
        if known["init_feedetl_sn"] != init or Decimal(known["cnt"]) != refund.cnt:
            raise Failure(f"费用明细流水号[{refund.sn}]已上传且内容不同，请先撤销原明细（2302）")
        return init  # the same refund again: already netted
    origin, net = await _net(call, unit, mdtrt_id=mdtrt_id, init=init, without=refund.sn)
    if Decimal(origin["item"]["pric"]) != refund.pric:
        raise Failure(f"退费明细[{refund.sn}]单价与原费用明细[{init}]不符")
    remaining = net + refund.cnt
    if remaining < 0:
        raise Failure(f"退费数量[{-refund.cnt}]超过原费用明细[{init}]剩余数量[{net}]")
    await _set_quantity(call, mdtrt_id=mdtrt_id, origin=origin, cnt=remaining)
    await unit.execute(
        _UPSERT,
        mdtrt_id=mdtrt_id,
        sn=refund.sn,
        code=call.fixmedins_code,
        batch=None,
        init=init,
        cnt=refund.cnt,
        item=dumps(refund.item),
    )
    return init


async def _cancel_at_settlement(call: Call, *, mdtrt_id: str, sns: list[str] | None) -> list[str]:
    body: dict[str, Any] = {"all": True} if sns is None else {"feedetl_sn": sns}
    reply = await call.settlement("POST", f"/v1/visits/{mdtrt_id}/fees/cancel", body=body)
    return require_ok(reply, ALREADY_SETTLED="该就诊已结算，请先撤销结算再撤销费用明细").body["cancelled"]  # type: ignore


async def cancel_batch(call: Call, *, mdtrt_id: str, batch: str) -> None:
    """2205: every unsettled line of a charge batch ("0000": of the visit)."""
    unit = _unit(call)
    if batch == ALL:
        await _cancel_at_settlement(call, mdtrt_id=mdtrt_id, sns=None)
        await unit.execute(_CANCEL, mdtrt_id=mdtrt_id, code=call.fixmedins_code, everything=True, sns=[])
        return
    sns = [r["feedetl_sn"] for r in await unit.fetch(_BATCH, mdtrt_id=mdtrt_id, code=call.fixmedins_code, batch=batch)]
    if not sns:
        raise Failure(f"收费批次号[{batch}]没有可撤销的费用明细（不存在或已撤销）")
    await _cancel_at_settlement(call, mdtrt_id=mdtrt_id, sns=sns)
    await unit.execute(_CANCEL, mdtrt_id=mdtrt_id, code=call.fixmedins_code, everything=False, sns=sns)


async def cancel_line(call: Call, *, mdtrt_id: str, sn: str) -> None:
    """2302: one line ("0000": every line); a refund line cancelled puts the refunded quantity back."""
    unit = _unit(call)
    if sn == ALL:
        await cancel_batch(call, mdtrt_id=mdtrt_id, batch=ALL)
        return
    row = await unit.fetchrow(_LINE, mdtrt_id=mdtrt_id, sn=sn, code=call.fixmedins_code)
    if row is not None and row["status"] == "active" and row["init_feedetl_sn"]:
        origin, net = await _net(call, unit, mdtrt_id=mdtrt_id, init=row["init_feedetl_sn"], without=sn)
        await _set_quantity(call, mdtrt_id=mdtrt_id, origin=origin, cnt=net)
    elif row is not None and row["status"] == "active":
        await _cancel_at_settlement(call, mdtrt_id=mdtrt_id, sns=[sn])  # a line refunded to nothing is gone there
    elif not await _cancel_at_settlement(call, mdtrt_id=mdtrt_id, sns=[sn]):
        raise Failure(f"费用明细流水号[{sn}]不存在或已撤销")
    await unit.execute(_CANCEL, mdtrt_id=mdtrt_id, code=call.fixmedins_code, everything=False, sns=[sn])
