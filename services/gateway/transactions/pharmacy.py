"""Pharmacy (药店结算, med_type 41): 2101 presettle, 2102 settle, 2103 cancel.

A purchase whose `drugdetail` lines carry rx_circ_flag "1" and an `rxno` settles that dual-channel prescription
(POST /v1/pharmacy/settlements); without one it is a retail purchase paid from the personal account only
(POST /v1/pharmacy/purchases). One purchase is one or the other.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.gateway.errors import require_ok
from services.gateway.inputs import Failure, node, rows
from services.gateway.runtime import Call
from services.gateway.transactions.common import (
    ACCT_FLAGS,
    basics_for,
    cancel_settlement,
    check_medfee,
    credential,
    iso,
    settle_output,
    settled_by,
)
from services.gateway.transactions.setl import amount

CENT = Decimal("0.01")


def _purchase(call: Call) -> tuple[str, str, str, Decimal, bool, str | None, list[dict[str, Any]]]:
    """(psn_no, cert_type, cert_no, declared medfee, account used, rx_no or None, lines) of 2101 / 2102."""
    d = node(call.input, "druginfo")
    psn_no = d.code("psn_no", required=True, max_len=30)
    cert_type, cert_no = credential(d)
    d.require("psn_cert_type", "certno", "psn_type", "psn_name", "insutype")
    d.time("begntime", required=True)
    declared = d.decimal("medfee_sumamt", required=True)
    acct = d.flag("acct_used_flag", required=True, allowed=ACCT_FLAGS)
    national = d.need("med_type", max_len=6)
    if call.gw.codes.med_type(national) != "41":
        raise Failure(f"医疗类别[{national}]不能用于药店结算（定点药店购药41）")
    lines: list[dict[str, Any]] = []
    prescriptions: set[str | None] = set()
    for row in rows(call.input.get("drugdetail"), "drugdetail"):
        sn = row.code("feedetl_sn", required=True, max_len=30)
        flag = row.flag("rx_circ_flag", required=True)
        rxno = row.code("rxno", max_len=30)
        ocur = row.time("fee_ocur_time", required=True)
        codg = row.need("med_list_codg", max_len=50)
        row.need("medins_list_codg", max_len=150)
        det = row.decimal("det_item_fee_sumamt", required=True)
        cnt = row.decimal("cnt", required=True, places=4)
        pric = row.decimal("pric", required=True, places=6)
        assert sn and ocur and det is not None and cnt is not None and pric is not None
        if cnt <= 0 or pric < 0 or pric != pric.quantize(CENT):
            raise Failure(f"{row.name}数量应大于0，单价应为不小于0且最多两位小数的金额")
        if (pric * cnt).quantize(CENT) != det:
            raise Failure(f"{row.name}明细项目费用总额[{det}]与单价×数量不符")
        prescriptions.add(rxno if flag == "1" and rxno else None)
        line = {
            "feedetl_sn": sn,
            "med_list_codg": codg,
            "med_list_name": row.text("med_list_name", max_len=200) or "",
            "pric": f"{pric:.2f}",
            "cnt": format(cnt.normalize(), "f"),
            "det_item_fee_sumamt": f"{det:.2f}",
            "fee_ocur_time": iso(ocur),
        }
        lines.append(line)
    if len(prescriptions) > 1:
        raise Failure("外购处方药品与零售药品（或不同处方）请分开结算：一次结算只能对应一张外购处方")
    assert psn_no is not None and declared is not None and acct is not None
    return psn_no, cert_type, cert_no, declared, acct != "0", prescriptions.pop(), lines


def _retail(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: line[k] for k in ("feedetl_sn", "med_list_codg", "med_list_name", "pric", "cnt")} for line in lines]


async def _reply(call: Call, *, final: bool) -> tuple[str, str, str, Decimal, dict[str, Any]]:
    psn_no, cert_type, cert_no, declared, acct, rx_no, lines = _purchase(call)
    idem = call.idempotency_key() if final else None
    if rx_no is not None:
        body = {
            "rx_no": rx_no,
            "mdtrt_cert_type": cert_type,
            "mdtrt_cert_no": cert_no,
            "fixmedins_code": call.fixmedins_code,
            "items": lines,
            "acct_used_flag": acct,
        }
        path = "/v1/pharmacy/settlements" if final else "/v1/pharmacy/settlements/presettle"
    else:
        if not acct:
            raise Failure("零售购药（无外购处方）由个人账户支付，acct_used_flag应为1")
        body = {
            "mdtrt_cert_type": cert_type,
            "mdtrt_cert_no": cert_no,
            "fixmedins_code": call.fixmedins_code,
            "items": _retail(lines),
        }
        path = "/v1/pharmacy/purchases" if final else "/v1/pharmacy/purchases/presettle"
    reply = await call.settlement("POST", path, body=body, idem=idem)
    if reply.status in (404, 405):
        raise Failure("药店零售购药结算暂未开通，请使用外购处方结算或稍后重试")
    breakdown = require_ok(reply).body
    return psn_no, cert_type, cert_no, declared, breakdown


async def presettle(call: Call) -> dict[str, Any]:
    """2101 药店预结算 → {setlinfo (without setl_id), setldetail, detlcutinfo}."""
    psn_no, cert_type, cert_no, declared, breakdown = await _reply(call, final=False)
    if breakdown.get("psn_no") != psn_no:
        raise Failure("人员编号与就诊凭证（或处方）所属人员不符")
    check_medfee(declared, breakdown)
    basics = await basics_for(call, psn_no, cert_type=cert_type, cert_no=cert_no)
    return settle_output(
        call, breakdown, basics=basics, cert_type=cert_type, with_setl_id=False, extra={"detlcutinfo": []}
    )


async def settle(call: Call) -> dict[str, Any]:
    """2102 药店结算 → {setlinfo, setldetail, detlcutinfo}."""
    psn_no, cert_type, cert_no, declared, breakdown = await _reply(call, final=True)
    try:
        if breakdown.get("psn_no") != psn_no:
            raise Failure("人员编号与就诊凭证（或处方）所属人员不符")
        check_medfee(declared, breakdown)
    except Failure:
        undone = await call.settlement(
            "POST", f"/v1/settlements/{breakdown['setl_id']}/reverse", idem=call.idempotency_key("undo")
        )
        if not undone.ok and undone.code != "ALREADY_REVERSED":
            require_ok(undone)
        raise
    call.effect.psn_no, call.effect.mdtrt_id = psn_no, breakdown["mdtrt_id"]
    call.effect.setl_id = breakdown["setl_id"]
    settled_by(call, breakdown["setl_id"])
    basics = await basics_for(call, psn_no, cert_type=cert_type, cert_no=cert_no)
    split = await call.settlement("GET", f"/v1/visits/{breakdown['mdtrt_id']}/fees")
    detail = []
    if split.ok:
        codes = call.gw.codes
        for item in split.body["items"]:
            detail.append(
                {
                    "feedetl_sn": item["feedetl_sn"],
                    "det_item_fee_sumamt": amount(item["det_item_fee_sumamt"]),
                    "cnt": Decimal(item["cnt"]),
                    "pric": amount(item["pric"]),
                    "pric_uplmt_amt": amount(item["price_cap"] or item["pric"]),
                    "selfpay_prop": Decimal(item["selfpay_prop"]),
                    "fulamt_ownpay_amt": amount(item["fulamt_ownpay_amt"]),
                    "overlmt_amt": amount("0"),
                    "preselfpay_amt": amount(item["preselfpay_amt"]),
                    "inscp_scp_amt": amount(item["inscp_scp_amt"]),
                    "chrgitm_lv": codes.chrgitm_lv[item["item_class"]],
                    "med_chrgitm_type": codes.chrgitm_type(item["med_list_codg"]),
                }
            )
    return settle_output(call, breakdown, basics=basics, cert_type=cert_type, extra={"detlcutinfo": detail})


async def cancel(call: Call) -> dict[str, Any]:
    """2103 药店结算撤销 → the settlement's setlinfo, every amount negated."""
    d = node(call.input, "data")
    setl_id, mdtrt_id = d.code("setl_id", required=True), d.code("mdtrt_id", required=True)
    psn_no = d.code("psn_no", required=True)
    assert setl_id is not None and mdtrt_id is not None and psn_no is not None
    return await cancel_settlement(call, setl_id=setl_id, mdtrt_id=mdtrt_id, psn_no=psn_no)
