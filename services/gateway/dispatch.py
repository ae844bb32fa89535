"""One request to the gateway, from its headers and bytes to the answer's bytes.

1. The signing scheme (auth.py): a refusal is HTTP 401 {"code": 401, "message"}, before anything else.
2. The envelope (envelope.py): required fields, the path's infno equal to the envelope's, a known infno, the
   envelope's fixmedins_code the credential's institution, `_api_name` the infno.
3. The transaction, under its msgid (messages.py).
Every business failure is HTTP 200 with infcode -1; nothing a client sends makes a 5xx (an unexpected error is
logged and answered as a failure the client may retry).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson

from services.gateway import auth, envelope, messages
from services.gateway.inputs import Failure
from services.gateway.runtime import Call, Gateway
from services.gateway.transactions import TRANSACTIONS
from shared.db import DatabaseUnavailable, Sql, is_outage

log = logging.getLogger("yibao.gateway")

INTERNAL = "医保业务处理异常，请稍后用原报文ID重试"
UNAVAILABLE = "医保业务系统暂时无法访问，请稍后用原报文ID重试"
_NONCE = Sql("INSERT INTO nonces (access_key, nonce) VALUES (:key, :nonce) ON CONFLICT DO NOTHING RETURNING nonce")


def refusal(message: str) -> bytes:
    return orjson.dumps({"code": 401, "message": message})


async def handle(gw: Gateway, *, headers: Mapping[str, str], body: bytes, path_infno: str | None) -> tuple[int, bytes]:
    """(HTTP status, answer bytes) of one request."""
    received_at = gw.clock()

    async def nonce_is_new(access_key: str, nonce: str) -> bool:
        async with gw.db.connect() as unit:
            return await unit.fetchval(_NONCE, key=access_key, nonce=nonce) is not None

    try:
        client = await auth.authenticate(
            headers, clients=gw.clients, now_ms=int(time.time() * 1000), nonce_is_new=nonce_is_new
        )
    except auth.Refused as refused:
        return 401, refusal(refused.message)
    except (DatabaseUnavailable, OSError) as exc:  # the nonce could not be recorded
        log.warning("nonce check failed: %s", type(exc).__name__)
        return 401, refusal("服务网关暂时无法校验请求，请稍后重试!")

    def failed(reason: str, data: dict[str, Any] | None = None) -> tuple[int, bytes]:
        admdvs = data.get("mdtrtarea_admvs") if isinstance(data, dict) else None
        return 200, envelope.answer(
            infcode_type=client.infcode_type,
            admdvs=admdvs,
            received_at=received_at,
            responded_at=gw.clock(),
            output=None,
            reason=reason,
        )

    data: dict[str, Any] | None = None
    try:
        data = envelope.parse_body(body)
        infno, msgid, input_ = envelope.read_envelope(data)
        if path_infno is not None and path_infno != infno:
            raise Failure(f"请求路径的交易编号[{path_infno[:8]}]与报文infno[{infno}]不一致")
        if client.api_name is not None and client.api_name != infno:
            raise Failure(f"请求头_api_name[{client.api_name[:8]}]与报文infno[{infno}]不一致")
        transaction = TRANSACTIONS.get(infno)
        if transaction is None:
            raise Failure(f"交易编号[{infno}]不存在或本平台未开通该交易")
        if str(data.get("fixmedins_code")).strip() != client.fixmedins_code:
            raise Failure("报文fixmedins_code（定点医药机构编号）与接入凭证所属机构不一致")
    except Failure as refused:
        return failed(refused.reason, data)
    call = Call(gw=gw, client=client, infno=infno, msgid=msgid, envelope=data, input=input_, received_at=received_at)
    try:
        if not transaction.writes:
            return 200, await messages.run_read(call, transaction.run)
        if transaction.once:
            return 200, await messages.run_once(call, transaction.run)
        lines_of = transaction.lines_of(input_) if transaction.lines_of is not None else None
        return 200, await messages.run_write(call, transaction.run, lines_of=lines_of)
    except Exception as exc:  # never a 5xx: the client may retry with the same msgid (nothing was kept)
        if is_outage(exc):
            log.warning("%s %s: database unavailable", infno, msgid)
            return failed(UNAVAILABLE, data)
        log.exception("%s %s failed", infno, msgid)
        return failed(INTERNAL, data)
