"""The platform's envelope (spec 表2, 表3, 表4): reading a request, writing an answer.

Request: {infno, msgid, mdtrtarea_admvs, insuplc_admdvs, recer_sys_code, …, fixmedins_code, fixmedins_name,
sign_no, input}; `input` an object or a JSON string holding one; unknown fields ignored. Answer: {infcode,
inf_refmsgid, refmsg_time, respond_time, err_msg, output}: infcode 0 with err_msg null and the output object, or -1
with a reason and output null; infcode a JSON number unless the client asked for strings. Money goes out as JSON
numbers with two decimals, written from Decimal exactly.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from services.gateway.inputs import Failure, Node
from shared.events.envelope import BUSINESS_TZ

REQUIRED = (
    "infno",
    "msgid",
    "mdtrtarea_admvs",
    "recer_sys_code",
    "infver",
    "opter_type",
    "opter",
    "opter_name",
    "inf_time",
    "fixmedins_code",
    "fixmedins_name",
)
ENVELOPE_NAMES = {
    "infno": "交易编号",
    "msgid": "发送方报文ID",
    "mdtrtarea_admvs": "就医地医保区划",
    "recer_sys_code": "接收方系统代码",
    "infver": "接口版本号",
    "opter_type": "经办人类别",
    "opter": "经办人",
    "opter_name": "经办人姓名",
    "inf_time": "交易时间",
    "fixmedins_code": "定点医药机构编号",
    "fixmedins_name": "定点医药机构名称",
    "input": "交易输入",
}
_MSGID = re.compile(r"[A-Za-z0-9]{1,30}")
MAX_INPUT = 1_000_000


def parse_body(body: bytes) -> dict[str, Any]:
    """The envelope object of a request body (application/json or text/plain alike)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Failure("报文格式错误：请求体不是合法的JSON（UTF-8）") from None
    if not isinstance(data, dict):
        raise Failure("报文格式错误：请求体应为JSON对象")
    return data


def read_envelope(data: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(infno, msgid, input) after the spec's required fields are checked."""
    head = Node(data, "报文")
    for field in REQUIRED:
        if head.text(field, max_len=200) is None:
            raise Failure(f"报文{field}（{ENVELOPE_NAMES[field]}）不能为空")
    infno = head.need("infno", max_len=8)
    msgid = head.need("msgid", max_len=40)
    if not _MSGID.fullmatch(msgid):
        raise Failure("报文msgid（发送方报文ID）应为不超过30位的字母数字：定点医药机构编号+yyyyMMddHHmmss+4位顺序号")
    raw = data.get("input")
    if isinstance(raw, str):
        if len(raw) > MAX_INPUT:
            raise Failure("交易输入input过长")
        try:
            raw = orjson.loads(raw) if raw.strip() else None
        except orjson.JSONDecodeError:
            raise Failure("交易输入input不是合法的JSON") from None
    if raw is None:
        raise Failure("报文input（交易输入）不能为空")
    if not isinstance(raw, dict):
        raise Failure("交易输入input应为JSON对象")
    return infno, msgid, raw


def input_hash(infno: str, input_: dict[str, Any]) -> str:
    """Identity of what a message asked: its infno and input (keys sorted, so a string input hashes alike)."""
    canonical = orjson.dumps(input_, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(infno.encode() + b"\n" + canonical).hexdigest()


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f").encode())
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dump(data: Any) -> bytes:
    """Compact UTF-8 JSON; a Decimal is written as the number it is ("12.50" → 12.50)."""
    return orjson.dumps(data, default=_default)


def stamp(moment: datetime) -> str:
    """yyyyMMddHHmmssSSS, Beijing time."""
    local = moment.astimezone(BUSINESS_TZ)
    return local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}"


def refmsgid(admdvs: Any, moment: datetime) -> str:
    """The receiver's message id: insurance area (6) + yyyyMMddHHmmss + a 10-digit serial."""
    area = admdvs if isinstance(admdvs, str) and len(admdvs) == 6 and admdvs.isdigit() else "000000"
    return area + moment.astimezone(BUSINESS_TZ).strftime("%Y%m%d%H%M%S") + f"{secrets.randbelow(10**10):010d}"


def answer(
    *,
    infcode_type: str,
    admdvs: Any,
    received_at: datetime,
    responded_at: datetime,
    output: dict[str, Any] | None,
    reason: str | None = None,
) -> bytes:
    """The answer envelope: success (`output`) or failure (`reason`, output null)."""
    ok = reason is None
    code: int | str = 0 if ok else -1
    if infcode_type == "string":
        code = str(code)
    return dump(
        {
            "infcode": code,
            "inf_refmsgid": refmsgid(admdvs, responded_at),
            "refmsg_time": stamp(received_at),
            "respond_time": stamp(responded_at),
            "err_msg": None if ok else reason,
            "output": output if ok else None,
        }
    )
