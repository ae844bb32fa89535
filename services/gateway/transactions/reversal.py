"""2601 冲正交易: undo what the message `omsgid` did when the client never saw its answer.

A settlement (2207, 2304, 2102) is reversed as 2208 / 2305 / 2103 would (accumulators and account restored); an
admission (2401) is cancelled. Reversing twice succeeds once in effect: a settlement already reversed, an
admission already cancelled, is a success that changes nothing. An unknown omsgid, or a psn_no or oinfno that do
not match it, fails.
"""

from __future__ import annotations

from typing import Any

from services.gateway.errors import require_ok
from services.gateway.inputs import Failure, node
from services.gateway.runtime import Call
from shared.db import Sql

REVERSIBLE = {"2207": "settlement", "2304": "settlement", "2102": "settlement", "2401": "admission"}
_ORIGINAL = Sql("""
SELECT infno, psn_no, mdtrt_id, setl_id, reversed_by FROM messages
 WHERE fixmedins_code = :code AND msgid = :msgid AND response IS NOT NULL
""")
_REVERSED = Sql("UPDATE messages SET reversed_by = :by WHERE fixmedins_code = :code AND msgid = :msgid")


async def reverse(call: Call) -> dict[str, Any]:
    """→ {} (the spec gives 2601 no output)."""
    d = node(call.input, "data")
    psn_no = d.code("psn_no", required=True)
    omsgid = d.code("omsgid", required=True, max_len=30)
    oinfno = d.need("oinfno", max_len=4)
    assert call.unit is not None and psn_no is not None
    original = await call.unit.fetchrow(_ORIGINAL, code=call.fixmedins_code, msgid=omsgid)
    if original is None:
        raise Failure(f"原发送方报文ID[{omsgid}]不存在（原交易未被医保受理，无需冲正）")
    if original["infno"] != oinfno:
        raise Failure(f"原交易编号[{oinfno}]与原报文的交易编号[{original['infno']}]不符")
    if original["psn_no"] != psn_no:
        raise Failure("人员编号与原交易不符")
    kind = REVERSIBLE.get(oinfno)
    if kind is None:
        raise Failure(f"交易[{oinfno}]不可冲正（可冲正：2102、2207、2304、2401）")
    call.effect.psn_no = psn_no
    if original["reversed_by"] is not None:
        return {}
    if kind == "settlement":
        reply = await call.settlement(
            "POST", f"/v1/settlements/{original['setl_id']}/reverse", idem=call.idempotency_key()
        )
        if not reply.ok and reply.code != "ALREADY_REVERSED":
            require_ok(reply)
    else:
        reply = await call.settlement("POST", f"/v1/visits/{original['mdtrt_id']}/cancel")
        require_ok(
            reply,
            ALREADY_SETTLED="该住院已结算，请先撤销结算（2305）",
            DISCHARGED="该患者已办理出院，请先撤销出院（2405）",
        )
    await call.unit.execute(_REVERSED, by=call.msgid, code=call.fixmedins_code, msgid=omsgid)
    return {}
