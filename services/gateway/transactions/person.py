"""9001 sign-in and 1101 person information by credential."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from services.gateway.errors import require_ok
from services.gateway.inputs import Failure, node
from services.gateway.runtime import Call
from services.gateway.transactions.common import CERT_TYPES, basics_of, holder
from services.gateway.transactions.setl import age_on, amount
from shared.db import Sql
from shared.events.envelope import BUSINESS_TZ

_SIGN_IN = Sql("""
INSERT INTO sign_ins (sign_no, fixmedins_code, opter_no, mac, ip, signed_at)
VALUES (:sign_no, :code, :opter_no, :mac, :ip, :at)
""")


async def sign_in(call: Call) -> dict[str, Any]:
    """9001 签到 → {signinoutb: {sign_time, sign_no}}; later calls may send this sign_no or none."""
    s = node(call.input, "signIn")
    opter_no, mac, ip = s.need("opter_no", max_len=30), s.need("mac", max_len=40), s.need("ip", max_len=40)
    now = call.gw.clock().astimezone(BUSINESS_TZ)
    sign_no = now.strftime("%Y%m%d%H%M%S") + f"{secrets.randbelow(10**16):016d}"
    assert call.unit is not None
    await call.unit.execute(
        _SIGN_IN, sign_no=sign_no, code=call.fixmedins_code, opter_no=opter_no, mac=mac, ip=ip, at=now
    )
    return {"signinoutb": {"sign_time": now.strftime("%Y-%m-%d %H:%M:%S"), "sign_no": sign_no}}


async def person_info(call: Call) -> dict[str, Any]:
    """1101 人员信息获取 → {baseinfo, insuinfo[], idetinfo[]}: who holds the credential, the insurance (with the
    personal account's balance) and the aid identities in force today."""
    d = node(call.input, "data")
    cert_type = d.flag("mdtrt_cert_type", required=True, allowed=CERT_TYPES)
    cert_no = d.need("mdtrt_cert_no", max_len=64)
    if cert_type == "03":
        d.need("card_sn", max_len=32)
    d.need("psn_cert_type", max_len=6)
    certno = d.need("certno", max_len=50)
    d.need("psn_name", max_len=50)
    d.time("begntime")
    assert cert_type is not None
    found = await holder(call, cert_type=cert_type, cert_no=cert_no)
    if certno.upper() != str(found.get("certno", "")).upper():
        raise Failure("证件号码与就诊凭证所属人员不符（人证不符）")
    psn_no = found["psn_no"]
    account = await call.settlement(
        "GET", f"/v1/accounts/{psn_no}", params={"mdtrt_cert_type": cert_type, "mdtrt_cert_no": cert_no}
    )
    balc = amount(require_ok(account).body["balc"])
    codes = call.gw.codes
    basics = basics_of(found, codes)
    await call.remember_person(basics)
    call.effect.psn_no = psn_no
    today = call.gw.clock().astimezone(BUSINESS_TZ).date()
    return {
        "baseinfo": {
            "psn_no": psn_no,
            "psn_cert_type": "01",
            "certno": found["certno"],
            "psn_name": found["psn_name"],
            "gend": found["gend"],
            "naty": None,
            "brdy": found["brdy"],
            "age": age_on(found["brdy"], today),
        },
        "insuinfo": [
            {
                "balc": balc,
                "insutype": found["insutype"],
                "psn_type": basics["psn_type"],
                "psn_insu_stas": "1" if found.get("active") else "2",
                "psn_insu_date": found.get("insured_since"),
                "paus_insu_date": None if found.get("active") else today.isoformat(),
                "cvlserv_flag": "0",
                "insuplc_admdvs": found["insuplc_admdvs"],
                "emp_name": found.get("emp_name"),
            }
        ],
        "idetinfo": [
            {
                "psn_idet_type": codes.idet_types.get(identity["category"], identity["category"]),
                "psn_type_lv": None,
                "memo": identity["category"],
                "begntime": f"{identity['start_date']} 00:00:00",
                "endtime": f"{identity['lost_on']} 23:59:59" if identity.get("lost_on") else None,
            }
            for identity in found.get("aid_identities", [])
            if date.fromisoformat(identity["start_date"]) <= today
        ],
    }
