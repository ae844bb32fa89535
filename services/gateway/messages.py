"""The message log: every answered transaction under (fixmedins_code, msgid).

- The same msgid with the same infno and input answers the stored bytes again, byte for byte (a client retrying
  after a timeout settles nothing twice); with another infno or input it fails (报文ID重复).
- A transaction that could move money (or whose work cannot be undone) first claims its msgid (one row, committed
  at once) and keeps its answer in that row when done (`run_write`). A second identical request arriving meanwhile
  waits until the first one's answer is there and answers the same bytes (one settlement, two identical answers).
  A failure (infcode -1) gives the msgid back, as nothing was done. A claim left without an answer for
  STALE_SECONDS (its process died) is taken over by the next request with that msgid; the services' money-moving
  calls carry an Idempotency-Key made of the msgid, so running such a transaction again replays the service's
  first answer.
- A transaction whose twin could move no money (2201 registration, 2204 fee lines: `Transaction.once`) runs
  without a claim and logs its answer in one statement (`run_once`). A second identical request in the same process
  waits for the first one's answer; a msgid this process answered before is answered from the log without running
  again. When the log shows the msgid taken after all (a twin in another process, a retry after a restart: the same
  message; or another message's msgid), what the work did is undone (Call.undo_if_taken: the second visit
  cancelled; lines newly uploaded under another message's msgid cancelled) and the stored answer, or 报文ID重复,
  given.
- A read answers first and is logged afterwards in one statement; a msgid a concurrent read took first answers
  that one's bytes.
- Every statement commits by itself: the gateway's own rows (fee lines, sign-ins) record what a service has done
  already, so they are written as soon as it is done, at the latest with the answer (Call.keep_with_answer: 2204's
  lines go in the statement that logs its answer, and only if it does).
- Round trips are the cost of the log (each statement wakes a PostgreSQL backend; benchmarks/gateway.py): a read
  or a claimless write is one row, a claimed write two (claim, answer), and the rows of the transactions in flight
  go together in one statement (logwriter.py). What a claimed write reads of the gateway's own rows before its
  work goes with its claim (a settle's uploaded lines: `lines_of`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from services.gateway import envelope, logwriter
from services.gateway.inputs import Failure
from services.gateway.runtime import Call, Memo, Statements
from shared.db import Sql

log = logging.getLogger("yibao.gateway")
DUPLICATE = "报文ID重复：该发送方报文ID已用于其他交易或其他输入，请重新生成报文ID"
RUNNING = "原报文正在处理中，请稍后用原报文ID重试"
STALE_SECONDS = 120.0  # a claim without an answer this old: its process is gone
WAIT_SECONDS = 30.0  # how long a second identical request waits for the first one's answer
POLL_SECONDS = 0.02

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


def _row(call: Call, kind: str, digest: str, body: bytes) -> logwriter.Row:
    """The message log's row of an answer (`log`: under a free msgid; `remember`: in its claimed row)."""
    effect = call.effect
    return logwriter.Row(
        kind,
        call.fixmedins_code,
        call.msgid,
        call.infno,
        digest,
        response=body.decode(),
        psn_no=effect.psn_no,
        mdtrt_id=effect.mdtrt_id,
        setl_id=effect.setl_id,
        kept=call.kept,
    )


async def _log(call: Call, digest: str, body: bytes) -> bool:
    """The answer logged (True), or the msgid found taken (False)."""
    if not (await call.gw.log.write(_row(call, "log", digest, body))).done:
        return False
    Memo.put(call.gw.memo.answered, (call.fixmedins_code, call.msgid), digest)
    return True


async def _write_kept(call: Call, db: Statements) -> None:
    """The rows to keep with the answer, written by themselves: they record what a service did before the
    transaction failed."""
    if call.kept is not None:
        kept, params = call.kept
        call.kept = None
        await db.execute(logwriter.kept_alone(kept), code=call.fixmedins_code, **params)


async def _claim(call: Call, digest: str, lines_of: str | None) -> bytes | None:
    """None: the msgid is this request's to run; else the answer to give (stored, or a refusal). `lines_of`: a visit
    whose uploaded lines are read with the claim (call.uploaded)."""
    code, msgid = call.fixmedins_code, call.msgid
    db = Statements(call.gw.db)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        claimed = await call.gw.log.claim(code=code, msgid=msgid, infno=call.infno, digest=digest, lines_of=lines_of)
        if claimed.done:
            if lines_of is not None:
                call.uploaded = (lines_of, claimed.lines, claimed.total)
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


async def _give_back(call: Call, db: Statements) -> None:
    """The claim released after a failure (the rows to keep with the answer written first)."""
    await _write_kept(call, db)
    await db.execute(_RELEASE, code=call.fixmedins_code, msgid=call.msgid)


async def run_write(call: Call, work: Work, *, lines_of: str | None = None) -> bytes:
    """A changing transaction under its msgid (see the module's docstring)."""
    digest = envelope.input_hash(call.infno, call.input)
    code, msgid = call.fixmedins_code, call.msgid
    answer = await _claim(call, digest, lines_of)
    if answer is not None:
        return answer
    db = call.unit = Statements(call.gw.db)
    try:
        output = await work(call)
    except Failure as refused:
        await _give_back(call, db)
        return failure(call, refused.reason)
    except BaseException:
        try:
            await _give_back(call, db)
        except Exception:  # the database is away: the claim goes stale and is taken over
            pass
        raise
    finally:
        call.unit = None
    body = success(call, output)
    await call.gw.log.write(_row(call, "remember", digest, body))
    Memo.put(call.gw.memo.answered, (code, msgid), digest)
    return body


async def run_once(call: Call, work: Work) -> bytes:
    """A changing transaction without a claim (see the module's docstring)."""
    digest = envelope.input_hash(call.infno, call.input)
    key = (call.fixmedins_code, call.msgid)
    memo = call.gw.memo
    while True:
        known = memo.answered.get(key)
        if known is not None:  # answered by this process: from the log, without running again
            if known != digest:
                return failure(call, DUPLICATE)
            async with call.gw.db.connect() as unit:
                row = await unit.fetchrow(_FIND, code=call.fixmedins_code, msgid=call.msgid)
            if row is not None:
                return _stored(call, row, digest)
        running = memo.running.get(key)
        if running is None:
            break
        if running[0] != digest:
            return failure(call, DUPLICATE)
        answer = await asyncio.shield(running[1])  # a twin in this process: its answer
        if answer is not None:
            return answer
    done: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
    memo.running[key] = (digest, done)
    answer = None
    try:
        answer = await _run_once(call, work, digest)
        return answer
    finally:
        del memo.running[key]
        done.set_result(answer)  # None (it raised): a waiting twin runs by itself


async def _run_once(call: Call, work: Work, digest: str) -> bytes:
    db = call.unit = Statements(call.gw.db)
    try:
        output = await work(call)
    except Failure as refused:
        await _write_kept(call, db)
        return failure(call, refused.reason)
    except BaseException:
        try:
            await _write_kept(call, db)
        except Exception:  # the database is away: the client retries the message
            pass
        raise
    finally:
        call.unit = None
    body = success(call, output)
    for _ in range(3):
        if await _log(call, digest, body):
            return body
        row = await db.fetchrow(_FIND, code=call.fixmedins_code, msgid=call.msgid)
        if row is None:  # a claim given back meanwhile: the msgid is free again
            continue
        same = row["infno"] == call.infno and row["input_hash"] == digest
        for undo in call.undos:
            try:
                await undo(same)
            except Exception:  # the service is away: what stays is logged for support
                log.exception("%s %s: undoing the work of a msgid taken failed", call.infno, call.msgid)
        return _stored(call, row, digest)
    return failure(call, RUNNING)


async def run_read(call: Call, work: Work) -> bytes:
    """A reading transaction: answered, then logged in one statement (a msgid already used: the stored answer, also
    when the read would fail now, e.g. a presettle retried after its visit settled)."""
    digest = envelope.input_hash(call.infno, call.input)
    db = Statements(call.gw.db)
    if (call.fixmedins_code, call.msgid) in call.gw.memo.answered:  # a retry: from the log, without reading again
        row = await db.fetchrow(_FIND, code=call.fixmedins_code, msgid=call.msgid)
        if row is not None:
            return _stored(call, row, digest)
    try:
        output = await work(call)
    except Failure as refused:
        row = await db.fetchrow(_FIND, code=call.fixmedins_code, msgid=call.msgid)
        return failure(call, refused.reason) if row is None else _stored(call, row, digest)
    body = success(call, output)
    if not await _log(call, digest, body):
        return _stored(call, await db.fetchrow(_FIND, code=call.fixmedins_code, msgid=call.msgid), digest)
    return body
