"""Inpatient (住院办理, 住院结算): 2401 admission, 2402 discharge, 2404 cancel the admission, 2405 cancel the discharge,
2301 fee lines (refunds as negative lines), 2302 cancel a line, 2303 presettle, 2304 settle, 2305 cancel it.
Real clients cancel an inpatient settlement with 2305, then 2405, then 2404."""

from __future__ import annotations

from typing import Any

from services.gateway.errors import require_ok
from services.gateway.inputs import Failure, node
from services.gateway.runtime import Call
from services.gateway.transactions import lines
from services.gateway.transactions.common import (
    basics_for,
    cancel_settlement,
    check_visit_person,
    credential,
    discharged,
    iso,
    presettle_visit,
    registered,
    settle_visit,
)
from services.gateway.transactions.outpatient import diagnoses_of


async def admit(call: Call) -> dict[str, Any]:
    """2401 入院办理 → {result: {mdtrt_id}}: the admission with its admission diagnoses."""
    m = node(call.input, "mdtrtinfo")
    psn_no = m.code("psn_no", required=True, max_len=30)
    m.need("insutype")
    begntime = m.time("begntime", required=True)
    cert_type, cert_no = credential(m, required=False)
    m.require("cert_type", "certno", "ipt_no", "atddr_no", "chfpdr_name", "adm_diag_dscr", "adm_dept_codg")
    m.require("adm_dept_name", "adm_bed", "dscg_maindiag_name", "insuplc_admdvs", "mdtrtarea_admvs")
    main = m.need("dscg_maindiag_code", max_len=20)
    national = m.need("med_type", max_len=6)
    if call.gw.codes.med_type(national) != "21":
        raise Failure(f"医疗类别[{national}]不能用于入院办理（支持普通住院21）")
    diagnoses = [main] + [
        code for code in diagnoses_of(call.input.get("diseinfo"), "diseinfo", need_valid_flag=False) if code != main
    ]
    assert psn_no is not None and begntime is not None
    reply = await call.settlement(
        "POST",
        "/v1/visits",
        body={
            "psn_no": psn_no,
            "mdtrt_cert_type": cert_type,
            "mdtrt_cert_no": cert_no,
            "fixmedins_code": call.fixmedins_code,
            "med_type": "21",
            "begntime": iso(begntime),
            "diagnoses": diagnoses[:50],
        },
    )
    mdtrt_id = require_ok(reply).body["mdtrt_id"]
    call.effect.psn_no, call.effect.mdtrt_id = psn_no, mdtrt_id
    registered(call, mdtrt_id=mdtrt_id, psn_no=psn_no, begntime=begntime)
    await basics_for(call, psn_no, cert_type=cert_type, cert_no=cert_no)
    return {"result": {"mdtrt_id": mdtrt_id}}


def _visit(call: Call, name: str = "data") -> tuple[Any, str, str]:
    d = node(call.input, name)
    mdtrt_id, psn_no = d.code("mdtrt_id", required=True), d.code("psn_no", required=True)
    assert mdtrt_id is not None and psn_no is not None
    return d, mdtrt_id, psn_no


async def discharge(call: Call) -> dict[str, Any]:
    """2402 出院办理 → {}."""
    d, mdtrt_id, psn_no = _visit(call, "dscginfo")
    d.need("insutype")
    d.require("dscg_dept_codg", "dscg_dept_name", "dscg_way")
    endtime = d.time("endtime", required=True)
    assert endtime is not None
    if call.input.get("diseinfo") is not None:
        diagnoses_of(call.input.get("diseinfo"), "diseinfo", need_valid_flag=False)  # checked; the stay keeps its own
    await check_visit_person(call, mdtrt_id=mdtrt_id, psn_no=psn_no)
    require_ok(
        await call.settlement("POST", f"/v1/visits/{mdtrt_id}/discharge", body={"endtime": iso(endtime)}),
        ALREADY_SETTLED="该住院已结算",
    )
    discharged(call, mdtrt_id=mdtrt_id, endtime=endtime)
    call.effect.psn_no, call.effect.mdtrt_id = psn_no, mdtrt_id
    return {}


async def cancel_admission(call: Call) -> dict[str, Any]:
    """2404 入院撤销 → {}."""
    _, mdtrt_id, psn_no = _visit(call)
    await check_visit_person(call, mdtrt_id=mdtrt_id, psn_no=psn_no)
    require_ok(
        await call.settlement("POST", f"/v1/visits/{mdtrt_id}/cancel"),
        ALREADY_SETTLED="该住院已结算，请先撤销结算（2305）和出院（2405）",
        DISCHARGED="该患者已办理出院，请先撤销出院（2405）",
        VISIT_CLOSED="该入院登记已撤销",
    )
    call.effect.psn_no, call.effect.mdtrt_id = psn_no, mdtrt_id
    return {}


async def cancel_discharge(call: Call) -> dict[str, Any]:
    """2405 出院撤销 → {}."""
    _, mdtrt_id, psn_no = _visit(call)
    await check_visit_person(call, mdtrt_id=mdtrt_id, psn_no=psn_no)
    require_ok(
        await call.settlement("POST", f"/v1/visits/{mdtrt_id}/discharge/cancel"),
        ALREADY_SETTLED="该住院已结算，请先撤销结算（2305）",
    )
    discharged(call, mdtrt_id=mdtrt_id, endtime=None)
    call.effect.psn_no, call.effect.mdtrt_id = psn_no, mdtrt_id
    return {}


async def upload_fees(call: Call) -> dict[str, Any]:
    """2301 住院费用明细上传 → {result: [per line]}."""
    return await lines.upload(call, inpatient=True)


async def cancel_fees(call: Call) -> dict[str, Any]:
    """2302 住院费用明细撤销 → {}: one line, or "0000" all."""
    d, mdtrt_id, psn_no = _visit(call)
    sn = d.code("feedetl_sn", required=True, max_len=30)
    assert sn is not None
    await check_visit_person(call, mdtrt_id=mdtrt_id, psn_no=psn_no)
    await lines.cancel_line(call, mdtrt_id=mdtrt_id, sn=sn)
    call.effect.psn_no, call.effect.mdtrt_id = psn_no, mdtrt_id
    return {}


def _settle_input(call: Call) -> tuple[Any, str, str]:
    d, mdtrt_id, psn_no = _visit(call)
    d.require("psn_cert_type", "certno", "psn_type", "psn_name", "psn_setlway", "insutype")
    d.require("insuplc_admdvs", "mdtrtarea_admvs")
    if d.flag("mid_setl_flag", required=True) == "1":
        raise Failure("本平台暂不支持中途结算，请办理出院后结算（mid_setl_flag应为0）")
    return d, psn_no, mdtrt_id


async def presettle(call: Call) -> dict[str, Any]:
    """2303 住院预结算 → {setlinfo (without setl_id), setldetail}."""
    d, psn_no, mdtrt_id = _settle_input(call)
    return await presettle_visit(call, d, psn_no=psn_no, mdtrt_id=mdtrt_id)


async def settle(call: Call) -> dict[str, Any]:
    """2304 住院结算 → {setlinfo, setldetail}."""
    d, psn_no, mdtrt_id = _settle_input(call)
    return await settle_visit(call, d, psn_no=psn_no, mdtrt_id=mdtrt_id)


async def cancel_settle(call: Call) -> dict[str, Any]:
    """2305 住院结算撤销 → the settlement's setlinfo, every amount negated."""
    d, mdtrt_id, psn_no = _visit(call)
    setl_id = d.code("setl_id", required=True)
    assert setl_id is not None
    return await cancel_settlement(call, setl_id=setl_id, mdtrt_id=mdtrt_id, psn_no=psn_no)
