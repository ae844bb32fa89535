"""Queries: 5203 a settlement, 5206 a person's accumulations, 3201 reconciliation of an institution's totals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.gateway.errors import require_ok
from services.gateway.inputs import Failure, node
from services.gateway.runtime import Call
from services.gateway.transactions.common import basics_for, created_by
from services.gateway.transactions.setl import amount, setldetail, setlinfo
from shared.events.envelope import BUSINESS_TZ

CLR_TYPES = ("11", "21", "41")


async def settlement(call: Call) -> dict[str, Any]:
    """5203 结算信息查询 → {setlinfo, setldetail}."""
    d = node(call.input, "data")
    psn_no, setl_id = d.code("psn_no", required=True), d.code("setl_id", required=True)
    mdtrt_id = d.code("mdtrt_id", required=True)
    assert psn_no is not None and setl_id is not None and mdtrt_id is not None
    found = require_ok(await call.settlement("GET", f"/v1/settlements/{setl_id}")).body
    if found.get("mdtrt_id") != mdtrt_id or found.get("psn_no") != psn_no:
        raise Failure("结算ID与就诊ID或人员编号不符")
    known = call.gw.memo.dates.get((call.fixmedins_code, mdtrt_id))
    begndate: str | None = known[0] if known else None
    enddate: str | None = known[1] if known else None
    if known is None:
        visit = await call.settlement("GET", f"/v1/visits/{mdtrt_id}")
        if visit.ok:
            begndate, enddate = visit.body.get("begndate"), visit.body.get("enddate")
    enddate = enddate or (found.get("setl_time") or "")[:10]
    basics = await basics_for(call, psn_no)
    msgid = await created_by(call, setl_id)
    info = setlinfo(found, codes=call.gw.codes, basics=basics, medins_setl_id=msgid, now=call.gw.clock())
    reversed_ = found.get("status") == "reversed"
    info.update(
        insu_optins=basics.get("insuplc_admdvs"),
        emp_name=basics.get("emp_name"),
        pay_loc="2",
        fixmedins_code=call.fixmedins_code,
        fixmedins_name=str(call.envelope.get("fixmedins_name") or call.fixmedins_code),
        begndate=begndate or enddate,
        enddate=enddate,
        psn_pay=info["psn_part_amt"],
        cash_payamt=info["psn_cash_pay"],
        refd_setl_flag="1" if reversed_ else "0",
        year=(found.get("setl_time") or "")[:4],
    )
    call.effect.psn_no = psn_no
    return {"setlinfo": info, "setldetail": setldetail(found, codes=call.gw.codes)}


async def accumulations(call: Call) -> dict[str, Any]:
    """5206 人员累计信息查询 → {cuminfo: [{insutype, year, cum_ym, cum_type_code, cum}]}."""
    d = node(call.input, "data")
    psn_no = d.code("psn_no", required=True)
    cum_ym = d.text("cum_ym", max_len=6)
    now = call.gw.clock().astimezone(BUSINESS_TZ)
    if cum_ym is not None and not (cum_ym.isdigit() and len(cum_ym) == 6 and 1 <= int(cum_ym[4:]) <= 12):
        raise Failure("data.cum_ym（累计年月）格式应为yyyyMM")
    cum_ym = cum_ym or now.strftime("%Y%m")
    year = cum_ym[:4]
    if not 1900 <= int(year) <= 2099:
        raise Failure("data.cum_ym（累计年月）超出范围")
    assert psn_no is not None
    reply = await call.settlement("GET", f"/v1/persons/{psn_no}/accumulators", params={"year": year})
    found = require_ok(reply, PERSON_NOT_SEEN="本机构无该人员的就诊记录，不能查询其累计信息").body
    insutype = found.get("insutype") or (await basics_for(call, psn_no)).get("insutype") or "310"
    cum_types = call.gw.codes.cum_types
    call.effect.psn_no = psn_no
    return {
        "cuminfo": [
            {
                "insutype": insutype,
                "year": year,
                "cum_ym": cum_ym,
                "cum_type_code": cum_types[key][0],
                "cum": amount(value),
            }
            for key, value in found["amounts"].items()
            if key in cum_types
        ]
    }


async def reconcile(call: Call) -> dict[str, Any]:
    """3201 医药机构费用结算对总账 → {stmtinfo: {setl_optins, stmt_rslt 0 平 / 1 不平, stmt_rslt_dscr}}."""
    d = node(call.input, "data")
    insutype = d.flag("insutype", required=True, allowed=("310", "390"))
    clr_type = d.flag("clr_type", required=True, allowed=CLR_TYPES)
    area = d.need("setl_optins", max_len=6)
    if not (area.isdigit() and len(area) == 6):
        raise Failure("data.setl_optins（结算经办机构）应为6位医保区划")
    begin, end = d.day("stmt_begndate", required=True), d.day("stmt_enddate", required=True)
    medfee = d.decimal("medfee_sumamt", required=True)
    fund = d.decimal("fund_pay_sumamt", required=True)
    acct = d.decimal("acct_pay", required=True)
    count = d.decimal("fixmedins_setl_cnt", required=True, places=0)
    d.flag("fixmedins_refd_setl_flag", required=True)
    assert begin is not None and end is not None and insutype is not None and clr_type is not None
    assert medfee is not None and fund is not None and acct is not None and count is not None
    if end < begin:
        raise Failure("对账结束日期早于开始日期")
    reply = await call.settlement(
        "GET",
        f"/v1/institutions/{call.fixmedins_code}/settlement-totals",
        params={
            "insutype": insutype,
            "clr_type": clr_type,
            "setl_optins": area,
            "begndate": begin.isoformat(),
            "enddate": end.isoformat(),
        },
    )
    ours = require_ok(reply).body
    differences = []
    for label, theirs, mine in (
        ("医疗费总额", medfee, amount(ours["medfee_sumamt"])),
        ("基金支付总额", fund, amount(ours["fund_pay_sumamt"])),
        ("个人账户支付金额", acct, amount(ours["acct_pay"])),
        ("结算笔数", count, Decimal(ours["count"])),
    ):
        if theirs != mine:
            differences.append(f"{label}：机构{theirs}，医保{mine}")
    text = "；".join(differences)
    return {
        "stmtinfo": {
            "setl_optins": area,
            "stmt_rslt": "1" if differences else "0",
            "stmt_rslt_dscr": (f"不平：{text}" if differences else "平")[:200],
        }
    }
