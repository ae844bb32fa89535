"""Outpatient (门急诊结算): 2201 register, 2202 cancel it, 2203 / 2203A visit information, 2204 fee lines, 2205 cancel
lines, 2206 presettle, 2207 settle, 2208 cancel the settlement."""

from __future__ import annotations

from typing import Any

from services.gateway.errors import require_ok
from services.gateway.inputs import Failure, node, rows
from services.gateway.runtime import Call
from services.gateway.transactions import lines
from services.gateway.transactions.common import (
    basics_of,
    cancel_settlement,
    check_visit_person,
    credential,
    iso,
    presettle_visit,
    registered,
    settle_visit,
)

MAX_DIAGNOSES = 50


async def register(call: Call) -> dict[str, Any]:
    """2201 门诊挂号 → {data: {mdtrt_id, psn_no, ipt_otp_no}}; med_type and diagnoses come with 2203."""
    d = node(call.input, "data")
    psn_no = d.code("psn_no", required=True, max_len=30)
    d.need("insutype")
    begntime = d.time("begntime", required=True)
    cert_type, cert_no = credential(d)
    d.require("psn_cert_type", "certno", "psn_type", "psn_name", "dept_code", "dept_name", "caty")
    ipt_otp_no = d.need("ipt_otp_no", max_len=30)
    assert psn_no is not None and begntime is not None
    reply = await call.settlement(
        "POST",
        "/v1/visits",
        body={
            "psn_no": psn_no,
            "mdtrt_cert_type": cert_type,
            "mdtrt_cert_no": cert_no,
            "fixmedins_code": call.fixmedins_code,
            "med_type": "11",
            "begntime": iso(begntime),
            "diagnoses": [],
        },
    )
    mdtrt_id = require_ok(reply).body["mdtrt_id"]

    async def cancel_it(same: bool) -> None:
        """A visit registered under a msgid already answered (a retry, a twin) or another message's: not wanted."""
        await call.settlement("POST", f"/v1/visits/{mdtrt_id}/cancel")

    call.undo_if_taken(cancel_it)
    call.effect.psn_no, call.effect.mdtrt_id = psn_no, mdtrt_id
    registered(call, mdtrt_id=mdtrt_id, psn_no=psn_no, begntime=begntime)
    if await call.person(psn_no) is None:
        await call.remember_person(
            basics_of(
                {
                    "psn_no": psn_no,
                    "psn_name": d.text("psn_name"),
                    "certno": d.text("certno"),
                    "insutype": d.text("insutype"),
                },
                call.gw.codes,
            )
            | {"psn_type": d.text("psn_type")}
        )
    return {"data": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "ipt_otp_no": ipt_otp_no}}


async def cancel_registration(call: Call) -> dict[str, Any]:
    """2202 门诊挂号撤销 → {}."""
    d = node(call.input, "data")
    psn_no, mdtrt_id = d.code("psn_no", required=True), d.code("mdtrt_id", required=True)
    d.need("ipt_otp_no", max_len=30)
    assert psn_no is not None and mdtrt_id is not None
    await check_visit_person(call, mdtrt_id=mdtrt_id, psn_no=psn_no)
    require_ok(
        await call.settlement("POST", f"/v1/visits/{mdtrt_id}/cancel"),
        ALREADY_SETTLED="该就诊已结算，请先撤销结算（2208）再撤销挂号",
        VISIT_CLOSED="该挂号已撤销或不是门诊挂号",
    )
    call.effect.psn_no, call.effect.mdtrt_id = psn_no, mdtrt_id
    return {}


def diagnoses_of(data: Any, name: str, *, need_valid_flag: bool) -> list[str]:
    """The diagnosis codes of a diseinfo node in their order (diag_srt_no), the valid ones (vali_flag 1)."""
    found: list[tuple[int, str]] = []
    for row in rows(data, name, at_most=MAX_DIAGNOSES):
        row.require("diag_type", "diag_name", "diag_dept", "dise_dor_no", "dise_dor_name")
        row.time("diag_time", required=True)
        order = row.decimal("diag_srt_no", required=True, places=0)
        code = row.need("diag_code", max_len=20)
        valid = row.flag("vali_flag", required=need_valid_flag) or "1"
        if valid == "1":
            assert order is not None
            found.append((int(order), code))
    return [code for _, code in sorted(found)]


async def visit_information(call: Call) -> dict[str, Any]:
    """2203 / 2203A 门诊就诊信息上传 → {}: med_type (11 or 14), diagnoses, the chronic disease of a 14."""
    m = node(call.input, "mdtrtinfo")
    mdtrt_id, psn_no = m.code("mdtrt_id", required=True), m.code("psn_no", required=True)
    national = m.need("med_type", max_len=6)
    m.time("begntime", required=True)
    dise_codg = m.need("dise_codg", max_len=30)
    m.need("dise_name", max_len=500)
    med_type = call.gw.codes.med_type(national)
    if med_type not in ("11", "14"):
        raise Failure(f"医疗类别[{national}]不能用于门诊就诊（支持普通门诊11、门诊慢特病14）")
    diagnoses = diagnoses_of(call.input.get("diseinfo"), "diseinfo", need_valid_flag=True)
    assert mdtrt_id is not None and psn_no is not None
    await check_visit_person(call, mdtrt_id=mdtrt_id, psn_no=psn_no)
    chronic = call.gw.codes.chronic_diseases.get(dise_codg, dise_codg) if med_type == "14" else None
    require_ok(
        await call.settlement(
            "POST",
            f"/v1/visits/{mdtrt_id}/information",
            body={"med_type": med_type, "diagnoses": diagnoses, "chronic_disease": chronic},
        ),
        NOT_OUTPATIENT="该就诊不是门诊就诊（住院请用2401入院办理）",
    )
    call.effect.psn_no, call.effect.mdtrt_id = psn_no, mdtrt_id
    return {}


async def upload_fees(call: Call) -> dict[str, Any]:
    """2204 门诊费用明细信息上传 → {result: [per line]}."""
    return await lines.upload(call, inpatient=False)


async def cancel_fees(call: Call) -> dict[str, Any]:
    """2205 门诊费用明细信息撤销 → {}: a charge batch (chrg_bchno), or "0000" every unsettled line."""
    d = node(call.input, "data")
    mdtrt_id, psn_no = d.code("mdtrt_id", required=True), d.code("psn_no", required=True)
    batch = d.need("chrg_bchno", max_len=30)
    assert mdtrt_id is not None and psn_no is not None
    await check_visit_person(call, mdtrt_id=mdtrt_id, psn_no=psn_no)
    await lines.cancel_batch(call, mdtrt_id=mdtrt_id, batch=batch)
    call.effect.psn_no, call.effect.mdtrt_id = psn_no, mdtrt_id
    return {}


def _settle_input(call: Call) -> tuple[Any, str, str]:
    d = node(call.input, "data")
    psn_no, mdtrt_id = d.code("psn_no", required=True), d.code("mdtrt_id", required=True)
    d.require("psn_cert_type", "certno", "psn_setlway", "chrg_bchno", "insutype")
    if call.infno == "2206":
        d.require("psn_type", "psn_name")
    national = d.need("med_type", max_len=6)
    if call.gw.codes.med_type(national) not in ("11", "14"):
        raise Failure(f"医疗类别[{national}]不能用于门诊结算")
    assert psn_no is not None and mdtrt_id is not None
    return d, psn_no, mdtrt_id


async def presettle(call: Call) -> dict[str, Any]:
    """2206 门诊预结算 → {setlinfo (without setl_id), setldetail}."""
    d, psn_no, mdtrt_id = _settle_input(call)
    return await presettle_visit(call, d, psn_no=psn_no, mdtrt_id=mdtrt_id)


async def settle(call: Call) -> dict[str, Any]:
    """2207 门诊结算 → {setlinfo, setldetail}; the four split amounts the HIS sends are its own (not used)."""
    d, psn_no, mdtrt_id = _settle_input(call)
    for field in ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"):
        d.decimal(field)  # accepted empty: the gateway computes them itself
    return await settle_visit(call, d, psn_no=psn_no, mdtrt_id=mdtrt_id)


async def cancel_settle(call: Call) -> dict[str, Any]:
    """2208 门诊结算撤销 → the settlement's setlinfo, every amount negated."""
    d = node(call.input, "data")
    setl_id, mdtrt_id = d.code("setl_id", required=True), d.code("mdtrt_id", required=True)
    psn_no = d.code("psn_no", required=True)
    assert setl_id is not None and mdtrt_id is not None and psn_no is not None
    return await cancel_settlement(call, setl_id=setl_id, mdtrt_id=mdtrt_id, psn_no=psn_no)
