"""What several transactions share: who the person is, whose visit it is, presettle / settle / cancel a settlement."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from services.gateway.codes import Codes
from services.gateway.errors import require_ok
from services.gateway.inputs import Failure, Node, node
from services.gateway.runtime import Call, Memo
from services.gateway.transactions.setl import amount, setldetail, setlinfo
from shared.db import Sql
from shared.events.envelope import BUSINESS_TZ

CERT_TYPES = ("01", "02", "03")
ACCT_FLAGS = ("0", "1", "2")  # 2: 使用共济人个账 (V1.1.22); the holder's own account here
_REGISTERED = Sql("""
SELECT psn_no FROM messages
 WHERE fixmedins_code = :code AND mdtrt_id = :mdtrt_id AND infno IN ('2201', '2401') AND response IS NOT NULL
 LIMIT 1
""")
# What the HIS uploaded through the gateway for a visit and did not cancel (refunds negative).
_UPLOADED = Sql("""
SELECT count(*) AS lines, coalesce(sum(CAST(item->>'det_item_fee_sumamt' AS numeric) * sign(cnt)), 0) AS total
  FROM fee_lines WHERE mdtrt_id = :mdtrt_id AND fixmedins_code = :code AND status = 'active'
""")
_CREATED_BY = Sql("""
SELECT msgid FROM messages
 WHERE fixmedins_code = :code AND setl_id = :setl_id AND infno IN ('2207', '2304', '2102') AND response IS NOT NULL
 LIMIT 1
""")


def iso(moment: datetime) -> str:
    """RFC 3339 of a Beijing time, as the services take it."""
    return moment.astimezone(BUSINESS_TZ).isoformat()


def basics_of(holder: dict[str, Any], codes: Codes) -> dict[str, Any]:
    """The names and numbers the platform's answers carry, from eligibility's credential holder."""
    return {
        "psn_no": holder["psn_no"],
        "psn_name": holder.get("psn_name") or "",
        "psn_cert_type": "01",
        "certno": holder.get("certno") or "",
        "gend": holder.get("gend") or "0",
        "brdy": holder.get("brdy"),
        "insutype": holder.get("insutype"),
        "psn_type": codes.psn_types.get(holder.get("psn_type") or "resident", codes.psn_types["resident"]),
        "insuplc_admdvs": holder.get("insuplc_admdvs"),
        "emp_name": holder.get("emp_name"),
    }


async def holder(call: Call, *, cert_type: str, cert_no: str) -> dict[str, Any]:
    """The person a credential belongs to (eligibility), remembered for later answers."""
    reply = await call.eligibility(
        "GET", "/v1/credential-holder", params={"mdtrt_cert_type": cert_type, "mdtrt_cert_no": cert_no}
    )
    require_ok(reply, CREDENTIAL_NOT_FOUND="未查询到该就诊凭证对应的参保人员，请核对就诊凭证")
    return reply.body  # type: ignore[no-any-return]


async def basics_for(
    call: Call, psn_no: str, *, cert_type: str | None = None, cert_no: str | None = None
) -> dict[str, Any]:
    """What the institution knows of the person (1101 before, else the credential presented now)."""
    known = await call.person(psn_no)
    if known is not None:
        return known
    if cert_type and cert_no:
        found = await holder(call, cert_type=cert_type, cert_no=cert_no)
        if found["psn_no"] != psn_no:
            raise Failure("就诊凭证与人员编号不符（人证不符）")
        basics = basics_of(found, call.gw.codes)
        await call.remember_person(basics)
        return basics
    return {"psn_no": psn_no}


def registered(call: Call, *, mdtrt_id: str, psn_no: str, begntime: datetime) -> None:
    """A visit this process registered (2201 / 2401) is the person's, from that day."""
    key = (call.fixmedins_code, mdtrt_id)
    Memo.put(call.gw.memo.visits, key, psn_no)
    Memo.put(call.gw.memo.dates, key, (f"{begntime.astimezone(BUSINESS_TZ):%Y-%m-%d}", None))


def discharged(call: Call, *, mdtrt_id: str, endtime: datetime | None) -> None:
    """The discharge day of a visit this process knows (2402; None: 2405 took it back)."""
    key = (call.fixmedins_code, mdtrt_id)
    known = call.gw.memo.dates.get(key)
    if known is not None:
        day = None if endtime is None else f"{endtime.astimezone(BUSINESS_TZ):%Y-%m-%d}"
        call.gw.memo.dates[key] = (known[0], day)


async def check_visit_person(call: Call, *, mdtrt_id: str, psn_no: str) -> None:
    """A visit registered through the gateway belongs to the person the HIS names (人员编号与就诊ID不符)."""
    key = (call.fixmedins_code, mdtrt_id)
    owner = call.gw.memo.visits.get(key)
    if owner is None:
        async with call.gw.db.connect() as unit:
            owner = await unit.fetchval(_REGISTERED, code=call.fixmedins_code, mdtrt_id=mdtrt_id)
        if owner is not None:
            Memo.put(call.gw.memo.visits, key, owner)
    if owner is not None and owner != psn_no:
        raise Failure("人员编号与就诊ID不符")


async def created_by(call: Call, setl_id: str) -> str:
    """The msgid that created a settlement (medins_setl_id); the setl_id when it was settled elsewhere."""
    key = (call.fixmedins_code, setl_id)
    found = call.gw.memo.settled_by.get(key)
    if found is None:
        async with call.gw.db.connect() as unit:
            found = await unit.fetchval(_CREATED_BY, code=call.fixmedins_code, setl_id=setl_id)
    return found or setl_id


def settled_by(call: Call, setl_id: str) -> None:
    """This message made the settlement (medins_setl_id of later answers)."""
    Memo.put(call.gw.memo.settled_by, (call.fixmedins_code, setl_id), call.msgid)


def visit_in_data(input_: dict[str, Any]) -> str | None:
    """data.mdtrt_id of a settle's input when it reads as one (else None: the settle's own checks refuse it)."""
    try:
        return node(input_, "data").code("mdtrt_id")
    except Failure:
        return None


def credential(d: Node, *, required: bool = True) -> tuple[str, str]:
    """(mdtrt_cert_type, mdtrt_cert_no); without a number, the ID number (certno) as credential 02."""
    cert_type = d.flag("mdtrt_cert_type", required=True, allowed=CERT_TYPES)
    cert_no = d.text("mdtrt_cert_no", required=required, max_len=64)
    if cert_type == "03":
        d.need("card_sn", max_len=32)
    if cert_no is None:
        return "02", d.need("certno", max_len=64)
    assert cert_type is not None
    return cert_type, cert_no


def check_medfee(declared: Decimal, breakdown: dict[str, Any]) -> None:
    """The HIS's medfee_sumamt is the sum of the lines uploaded (医疗费总额与明细不符 otherwise)."""
    ours = amount(breakdown.get("medfee_sumamt"))
    if declared != ours:
        raise Failure(f"医疗费总额[{declared}]与已上传费用明细合计[{ours}]不符，请核对费用明细")


def settle_output(
    call: Call,
    breakdown: dict[str, Any],
    *,
    basics: dict[str, Any],
    cert_type: str | None,
    with_setl_id: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    info = setlinfo(
        breakdown,
        codes=call.gw.codes,
        basics=basics,
        medins_setl_id=call.msgid,
        now=call.gw.clock(),
        mdtrt_cert_type=cert_type,
        with_setl_id=with_setl_id,
    )
    return {"setlinfo": info, "setldetail": setldetail(breakdown, codes=call.gw.codes), **(extra or {})}


async def presettle_visit(call: Call, d: Node, *, psn_no: str, mdtrt_id: str) -> dict[str, Any]:
    """2206 / 2303: what the settlement would be now (writes nothing)."""
    cert_type, cert_no = credential(d, required=call.infno == "2206")
    acct = d.flag("acct_used_flag", required=call.infno == "2206", allowed=ACCT_FLAGS) or "0"
    declared = d.decimal("medfee_sumamt", required=True)
    assert declared is not None
    await check_visit_person(call, mdtrt_id=mdtrt_id, psn_no=psn_no)
    reply = await call.settlement("POST", f"/v1/visits/{mdtrt_id}/presettle", body={"acct_used_flag": acct != "0"})
    breakdown = require_ok(reply).body
    check_medfee(declared, breakdown)
    basics = await basics_for(call, psn_no, cert_type=cert_type, cert_no=cert_no)
    return settle_output(call, breakdown, basics=basics, cert_type=cert_type, with_setl_id=False)


async def settle_visit(call: Call, d: Node, *, psn_no: str, mdtrt_id: str) -> dict[str, Any]:
    """2207 / 2304: settle the visit. The HIS's total is checked against the lines it uploaded through the gateway
    before, and against the settlement's after (a settlement that differs, e.g. lines uploaded elsewhere, is reversed
    at once). A visit settles once: a second 2207 with the same msgid replays the log; with another msgid it is
    refused (该就诊已结算). No Idempotency-Key here (it would take settlement's slower path for every visit): the
    one case it would cover, this gateway stopping between the settlement and its log, is recovered from the visit
    (_lost_settlement)."""
    cert_type, cert_no = credential(d, required=call.infno == "2207")
    acct = d.flag("acct_used_flag", required=True, allowed=ACCT_FLAGS)
    declared = d.decimal("medfee_sumamt", required=True)
    assert declared is not None
    await check_visit_person(call, mdtrt_id=mdtrt_id, psn_no=psn_no)
    if call.uploaded is not None and call.uploaded[0] == mdtrt_id:  # read with the msgid's claim
        lines, total = call.uploaded[1], call.uploaded[2]
    else:
        assert call.unit is not None
        row = await call.unit.fetchrow(_UPLOADED, mdtrt_id=mdtrt_id, code=call.fixmedins_code)
        assert row is not None  # an aggregate: always one row
        lines, total = row["lines"], Decimal(row["total"])
    if lines and total != declared:  # refused before anything is settled
        raise Failure(f"医疗费总额[{declared}]与已上传费用明细合计[{total:.2f}]不符，请核对费用明细")
    reply = await call.settlement("POST", f"/v1/visits/{mdtrt_id}/settle", body={"acct_used_flag": acct != "0"})
    if reply.code == "ALREADY_SETTLED" and call.retaken:
        breakdown = await _lost_settlement(call, mdtrt_id) or require_ok(reply).body
    else:
        breakdown = require_ok(reply).body
    try:
        check_medfee(declared, breakdown)
    except Failure:
        undone = await call.settlement(
            "POST", f"/v1/settlements/{breakdown['setl_id']}/reverse", idem=call.idempotency_key("undo")
        )
        if not undone.ok and undone.code != "ALREADY_REVERSED":
            require_ok(undone)
        raise
    call.effect.psn_no, call.effect.mdtrt_id, call.effect.setl_id = psn_no, mdtrt_id, breakdown["setl_id"]
    settled_by(call, breakdown["setl_id"])
    basics = await basics_for(call, psn_no, cert_type=cert_type, cert_no=cert_no)
    return settle_output(call, breakdown, basics=basics, cert_type=cert_type)


async def _lost_settlement(call: Call, mdtrt_id: str) -> dict[str, Any] | None:
    """The visit's settlement when no answered message made it: this message's own, made before the gateway stopped
    without keeping its answer (its claim was taken over, so it runs again)."""
    visit = await call.settlement("GET", f"/v1/visits/{mdtrt_id}")
    setl_id = visit.body.get("setl_id") if visit.ok else None
    if not setl_id:
        return None
    async with call.gw.db.connect() as unit:
        if await unit.fetchval(_CREATED_BY, code=call.fixmedins_code, setl_id=setl_id) is not None:
            return None
    found = await call.settlement("GET", f"/v1/settlements/{setl_id}")
    if found.ok and found.body.get("status") == "settled":
        return dict(found.body)
    return None


async def cancel_settlement(call: Call, *, setl_id: str, mdtrt_id: str, psn_no: str) -> dict[str, Any]:
    """2208 / 2305 / 2103: reverse the settlement; its setlinfo with every amount negated (not ratios, balances)."""
    found = require_ok(await call.settlement("GET", f"/v1/settlements/{setl_id}")).body
    if found.get("mdtrt_id") != mdtrt_id or found.get("psn_no") != psn_no:
        raise Failure("结算ID与就诊ID或人员编号不符")
    if found.get("status") == "reversed":
        raise Failure("该结算已撤销")
    reversed_ = await call.settlement("POST", f"/v1/settlements/{setl_id}/reverse", idem=call.idempotency_key())
    done = require_ok(reversed_, ALREADY_REVERSED="该结算已撤销").body
    account = await call.settlement("GET", f"/v1/accounts/{psn_no}")
    balc = amount(account.body.get("balc")) if account.ok else amount(found.get("balc"))
    call.effect.psn_no, call.effect.mdtrt_id = psn_no, mdtrt_id
    basics = await basics_for(call, psn_no)
    info = setlinfo(
        found,
        codes=call.gw.codes,
        basics=basics,
        medins_setl_id=call.msgid,
        now=call.gw.clock(),
        negate=True,
        balc=balc,
        setl_time=done.get("reversed_at"),
    )
    info["pdn_cash_pay"] = info["psn_cash_pay"]  # the spec's 2208 names the cash part so
    return {"setlinfo": info, "setldetail": setldetail(found, codes=call.gw.codes, negate=True)}
