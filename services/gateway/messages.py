"""The message log: every answered transaction under (fixmedins_code, msgid).

- The same msgid with the same infno and input answers the stored bytes again, byte for byte (a client retrying
  after a timeout settles nothing twice); with another infno or input it fails (报文ID重复).
- A transaction that changes something first claims its msgid (one row, committed at once) and keeps its answer
  in that row when done. A second identical request arriving meanwhile waits until the first one's answer is
  there and answers the same bytes (one settlement, two identical answers). A failure (infcode -1) gives the
  msgid back, as nothing was done. A claim left without an answer for STALE_SECONDS (its process died) is taken
  over by the next request with that msgid; the services' money-moving calls carry an Idempotency-Key made of
  the msgid, so running such a transaction again replays the service's first answer.
- A read answers first and is logged afterwards in one statement; a msgid a concurrent read took first answers
  that one's bytes.
- Every statement commits by itself: the gateway's own rows (fee lines, sign-ins) record what a service has done
  already, so they are written as soon as it is done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from services.gateway import envelope
from services.gateway.inputs import Failure
from services.gateway.runtime import Call, Statements
from shared.db import Sql

DUPLICATE = "报文ID重复：该发送方报文ID已用于其他交易或其他输入，请重新生成报文ID"
RUNNING = "原报文正在处理中，请稍后用原报文ID重试"
STALE_SECONDS = 120.0  # a claim without an answer this old: its process is gone
WAIT_SECONDS = 30.0  # how long a second identical request waits for the first one's answer
POLL_SECONDS = 0.02

_CLAIM = Sql("""
INSERT INTO messages (fixmedins_code, msgid, infno, input_hash) VALUES (:code, :msgid, :infno, :hash)
ON CONFLICT DO NOTHING RETURNING msgid
""")
_FIND = Sql("""
SELECT infno, input_hash, response, created_at, extract(epoch FROM now() - created_at) AS age
  FROM messages WHERE fixmedins_code = :code AND msgid = :msgid
""")
_RELEASE = Sql("DELETE FROM messages WHERE fixmedins_code = :code AND msgid = :msgid AND response IS NULL")
_TAKE_OVER = Sql("""
UPDATE messages SET created_at = now()
 WHERE fixmedins_code = :code AND msgid = :msgid AND response IS NULL AND created_at = :seen
RETURNING msgid
""")
_REMEMBER = Sql("""
UPDATE messages SET response = :response, psn_no = :psn_no, mdtrt_id = :mdtrt_id, setl_id = :setl_id
 WHERE fixmedins_code = :code AND msgid = :msgid
""")
_KEEP_READ = Sql("""
INSERT INTO messages (fixmedins_code, msgid, infno, input_hash, response, psn_no)
VALUES (:code, :msgid, :infno, :hash, :response, :psn_no)
ON CONFLICT DO NOTHING RETURNING msgid
""")

Work = Callable[[Call], Awaitable[dict[str, Any]]]


def success(call: Call, output: dict[str, Any]) -> bytes:
    return envelope.answer(
        infcode_type=call.client.infcode_type,
        admdvs=call.envelope.get("mdtrtarea_admvs"),
        received_at=call.received_at,
        responded_at=call.gw.clock(),
        output=output,
    )


def failure(call: Call, reason: str) -> bytes:
    return envelope.answer(
        infcode_type=call.client.infcode_type,
        admdvs=call.envelope.get("mdtrtarea_admvs"),
        received_at=call.received_at,
        responded_at=call.gw.clock(),
        output=None,
        reason=reason,
    )


def _stored(call: Call, row: Any, digest: str) -> bytes:
    if row is None or row["infno"] != call.infno or row["input_hash"] != digest:
        return failure(call, DUPLICATE)
    if row["response"] is None:
        return failure(call, RUNNING)
    return row["response"].encode()  # type: ignore[no-any-return]


async def _claim(call: Call, digest: str) -> bytes | None:
    """None: the msgid is this request's to run; else the answer to give (stored, or a refusal)."""
    code, msgid = call.fixmedins_code, call.msgid
    db = Statements(call.gw.db)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        if await db.fetchval(_CLAIM, code=code, msgid=msgid, infno=call.infno, hash=digest) is not None:
            return None
        row = await db.fetchrow(_FIND, code=code, msgid=msgid)
        if row is not None:
            if row["infno"] != call.infno or row["input_hash"] != digest:
                return failure(call, DUPLICATE)
            if row["response"] is not None:
                return row["response"].encode()  # type: ignore[no-any-return]
            if row["age"] > STALE_SECONDS and await db.fetchval(
                _TAKE_OVER, code=code, msgid=msgid, seen=row["created_at"]
            ):
                call.retaken = True
                return None
            if time.monotonic() > deadline:
                return failure(call, RUNNING)
            await asyncio.sleep(POLL_SECONDS)


async def run_write(call: Call, work: Work) -> bytes:
    """A changing transaction under its msgid (see the module's docstring)."""
    digest = envelope.input_hash(call.infno, call.input)
    code, msgid = call.fixmedins_code, call.msgid
    answer = await _claim(call, digest)
    if answer is not None:
        return answer
    db = call.unit = Statements(call.gw.db)
    try:
        output = await work(call)
    except Failure as refused:
        await db.execute(_RELEASE, code=code, msgid=msgid)
        return failure(call, refused.reason)
    except BaseException:
        try:
            await db.execute(_RELEASE, code=code, msgid=msgid)
        except Exception:  # the database is away: the claim goes stale and is taken over
            pass
        raise
    finally:
        call.unit = None
    body = success(call, output)
    effect = call.effect
    await db.execute(
        _REMEMBER,
        code=code,
        msgid=msgid,
        response=body.decode(),
        psn_no=effect.psn_no,
        mdtrt_id=effect.mdtrt_id,
        setl_id=effect.setl_id,
    )
    return body


async def run_read(call: Call, work: Work) -> bytes:
    """A reading transaction: answered, then logged in one statement (a msgid already used: the stored answer)."""
    digest = envelope.input_hash(call.infno, call.input)
    try:
        output = await work(call)
    except Failure as refused:
        return failure(call, refused.reason)
    body = success(call, output)
    async with call.gw.db.connect() as unit:
        kept = await unit.fetchval(
            _KEEP_READ,
            code=call.fixmedins_code,
            msgid=call.msgid,
            infno=call.infno,
            hash=digest,
            response=body.decode(),
            psn_no=call.effect.psn_no,
        )
        if kept is None:
            return _stored(call, await unit.fetchrow(_FIND, code=call.fixmedins_code, msgid=call.msgid), digest)
    return body
